import ArgumentParser
import Foundation
import SupervisorConfig
import SupervisorCore
import SupervisorRunner
import SupervisorSQLite
import SupervisorStore

/// `supervisor cleanup`: the host sweep of SPEC section 8, run from the command line. It
/// asks nothing of a running daemon: it reads the store and the host itself.
struct CleanupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cleanup",
        abstract: "Sweep what job attempts left on this host (orphaned processes, stale work directories, expired leases) and jobs past retention.",
        discussion: """
            Kills every process of an attempt that no live worker of this host runs (found by its cgroup, \
            its SUPERVISOR_JOB_ID environment or a work directory on its command line), removes those attempts' \
            work directories and a dead worker's cgroups, and puts jobs whose lease ran out, or whose worker \
            here died, back to pending (failed when their attempts are spent). Finished jobs older than \
            [retention] are deleted with their logs and artifacts. Nothing without the mark of an attempt \
            is touched. Safe while the daemon runs.
            """)

    @Flag(help: "Report what would be done, and change nothing.") var dryRun = false
    @Flag(help: "Print the summary as one JSON document.") var json = false
    @OptionGroup var options: ConfigOption

    func run() async throws {
        let configuration = try ConfigurationLoader.load(explicitPath: options.config)
        let store = try StoreOpening.open(configuration)
        // A dry run changes nothing, the schema included.
        if !dryRun { try await store.migrate() }
        let cleanup = HostCleanup(store: store, host: ProcessInfo.processInfo.hostName, configuration: configuration)
        let report: HostCleanup.Report
        do {
            report = try await cleanup.run(now: Date(), dryRun: dryRun)
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
        if json {
            Printing.json(report)
            return
        }
        print(dryRun ? "cleanup (dry run: nothing was changed)" : "cleanup")
        let verb = dryRun ? "would be " : ""
        let rows: [(String, [String])] = [
            ("processes \(verb)killed", report.killedProcesses.map { "\($0.pid) job \($0.jobId)\($0.attempt.map { " attempt \($0)" } ?? ""): \($0.command)" }),
            ("work directories \(verb)removed", report.removedDirectories),
            ("dangling TMPDIR links \(verb)removed", report.removedLinks),
            ("jobs \(verb)requeued", report.requeuedJobs),
            ("cgroups \(verb)removed", report.removedCgroups),
            ("dead workers \(verb)forgotten", report.removedWorkers),
            ("finished jobs \(verb)pruned", report.prunedJobs),
        ]
        let width = rows.map(\.0.count).max() ?? 0
        for (title, items) in rows {
            print("  \(title.padding(toLength: width, withPad: " ", startingAt: 0))  \(items.count)")
            for item in items { print("      \(item)") }
        }
    }
}

/// `supervisor backup FILE`: a consistent copy of the SQLite store, safe while the daemon
/// runs (SQLite's online backup, from one read transaction).
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Write a consistent copy of the SQLite store to a new file, safe while the daemon runs.")

    @Argument(help: "Where to write the copy; must not exist.") var file: String
    @OptionGroup var options: ConfigOption

    func run() async throws {
        let configuration = try ConfigurationLoader.load(explicitPath: options.config)
        guard configuration.store.url.hasPrefix("sqlite://") else {
            throw CommandFailure("backup copies an SQLite store; \(configuration.store.url) is not one")
        }
        let source = try SQLiteJobStore.path(url: configuration.store.url, relativeTo: configuration.baseDirectory)
        let target = URL(fileURLWithPath: file).standardizedFileURL.path
        let bar = ProgressBar()
        do {
            try await SQLiteJobStore.backup(storeAt: source, to: target) { copied, total in
                let percent = total > 0 ? Double(copied) / Double(total) * 100 : 100
                bar.draw(status: "pages copied", progress: .object(["percent": .double(percent)]))
            }
        } catch {
            bar.finish()
            throw CommandFailure("backup failed: \(error)")
        }
        bar.finish()
        let size = (try? FileManager.default.attributesOfItem(atPath: target)[.size] as? Int) ?? 0
        print("backup of \(configuration.store.url) written to \(target) (\(size) bytes)")
    }
}
