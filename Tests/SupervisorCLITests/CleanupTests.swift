import Foundation
import SupervisorCore
import NIOHTTP1
import SupervisorRunner
import SupervisorSQLite
import Testing

@Suite("operations: cleanup, recovery, backup", .serialized)
struct CleanupTests {
    /// Runs `supervisor cleanup --json` (and `extra`) on the harness's config.
    func cleanup(_ harness: RunnerHarness, _ extra: [String] = []) async throws -> JSONValue {
        let result = try await SupervisorBinary.run(["cleanup", "--json", "--config", harness.setup.config.path] + extra)
        #expect(result.status == 0, "\(result.stderr)")
        return try JSONValue(parsing: Data(result.stdout.utf8))
    }

    func start(_ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        process.environment = [:]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    @Test("after kill -9 of the daemon, cleanup finds the orphans (dry run changes nothing), kills them, removes their dirs, and a restart completes the jobs")
    func recoveryAfterKill() async throws {
        var harness = try await RunnerHarness.start()
        let ids = [try await harness.submit("orphaned"), try await harness.submit("orphaned")]
        for id in ids { try await harness.waitUntilRunning(id) }
        let grandchildren = try ids.map { try pid(in: harness.artifacts($0).appendingPathComponent("setsid.pid")) }
        let userData = try String(contentsOf: harness.artifacts(ids[0]).appendingPathComponent("user-data.txt"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        // A process an attempt started that left its cgroup and environment behind, found
        // only by the work directory on its command line (as a Chromium's --user-data-dir),
        // and one that looks the same but carries no mark of any attempt.
        let loop = "while :; do sleep 1; done"
        let escaped = try start(["/usr/bin/env", "-i", "/bin/sh", "-c", loop, "--user-data-dir=\(userData)"])
        let bystander = try start(["/usr/bin/env", "-i", "/bin/sh", "-c", loop, "--user-data-dir=/tmp/not-a-job"])
        // A job of another supervisor on the same host (another store) is not an orphan.
        let foreignJob = UUIDv7Generator().next(at: Date()).rawValue
        let foreign = try start(["/usr/bin/env", "-i", "SUPERVISOR_JOB_ID=\(foreignJob)", "SUPERVISOR_ATTEMPT=1", "/bin/sh", "-c", loop])
        defer {
            for process in [escaped, bystander, foreign] where process.isRunning { process.terminate() }
        }

        harness.daemon.signal(SIGKILL)
        _ = await harness.daemon.waitForExit()
        let directories = try harness.leftoverWorkDirectories()
        #expect(directories.count == 2, "\(directories)")

        let planned = try await cleanup(harness, ["--dry-run"])
        #expect(planned["dryRun"] == true)
        let plannedPIDs = Set(arrayItems(planned["killedProcesses"]).compactMap { item -> Int32? in
            if case .int(let pid)? = item["pid"] { return Int32(pid) }
            return nil
        })
        for grandchild in grandchildren {
            #expect(plannedPIDs.contains(grandchild), "the setsid grandchild \(grandchild) is listed: \(plannedPIDs)")
            #expect(!processEnded(grandchild), "a dry run kills nothing")
        }
        #expect(plannedPIDs.contains(escaped.processIdentifier))
        #expect(!plannedPIDs.contains(bystander.processIdentifier) && !plannedPIDs.contains(foreign.processIdentifier))
        #expect(Set(ids.map(JSONValue.string)) == Set(arrayItems(planned["requeuedJobs"])))
        #expect(arrayItems(planned["removedDirectories"]).count == 2)
        #expect(try harness.leftoverWorkDirectories().count == 2, "a dry run removes nothing")

        let done = try await cleanup(harness)
        #expect(done["dryRun"] == false)
        for grandchild in grandchildren { #expect(processEnded(grandchild), "\(grandchild) was killed") }
        let deadline = ContinuousClock.now + .seconds(10)
        while escaped.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!escaped.isRunning && escaped.terminationStatus == SIGKILL, "the escaped process was killed")
        #expect(bystander.isRunning, "a process that is not a job's survives")
        #expect(foreign.isRunning, "another supervisor's job survives")
        #expect(try harness.leftoverWorkDirectories().isEmpty)
        #expect(Set(ids.map(JSONValue.string)) == Set(arrayItems(done["requeuedJobs"])))
        #expect(arrayItems(done["removedWorkers"]).count == 1)

        let again = try await cleanup(harness)
        for key in ["killedProcesses", "removedDirectories", "requeuedJobs", "removedWorkers", "removedCgroups"] {
            #expect(arrayItems(again[key]).isEmpty, "\(key): nothing is left for a second sweep")
        }

        harness = try await harness.restarted()
        for id in ids {
            let job = try await harness.ended(id, attempt: 2)
            #expect(job["status"] == "completed")
            #expect(job["attempts"]?[0]?["outcome"] == "lease_expired")
            #expect(job["result"]?["attempt"] == 2)
        }
        await harness.stop()
    }

    @Test("after kill -9 of the daemon, its next start sweeps the orphans before claiming and completes the jobs")
    func recoveryAtStart() async throws {
        var harness = try await RunnerHarness.start()
        let id = try await harness.submit("orphaned")
        try await harness.waitUntilRunning(id)
        let grandchild = try pid(in: harness.artifacts(id).appendingPathComponent("setsid.pid"))
        harness.daemon.signal(SIGKILL)
        _ = await harness.daemon.waitForExit()
        #expect(!processEnded(grandchild))

        harness = try await harness.restarted()
        let swept = await harness.daemon.log.first { $0["message"] == "cleanup swept what attempts left behind" }
        #expect(swept?["killed"]?.contains("\(grandchild) (job \(id))") == true, "\(swept ?? [:])")
        #expect(processEnded(grandchild))
        let job = try await harness.ended(id, attempt: 2)
        #expect(job["status"] == "completed")
        #expect(try harness.leftoverWorkDirectories().isEmpty)
        await harness.stop()
    }

    @Test("cleanup removes a TMPDIR link whose attempt directory is gone, and no other link")
    func danglingTemporaryLinks() async throws {
        func isLink(_ path: String) -> Bool { (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) != nil }
        // Stopped: its own sweeps would race this test's.
        let harness = try await RunnerHarness.start()
        await harness.stop()
        let workRoot = harness.workRoot.standardizedFileURL.path
        // An attempt's directory removed by hand (or lost with a tmpfs work_root at a reboot).
        let gone = WorkDirectory(root: "\(workRoot)/gone-1-2/\(UUIDv7Generator().next(at: Date()).rawValue)-1")
        try #require(gone.temporary != gone.tmp, "the work root is long enough to need a link")
        try #require(symlink(gone.tmp, gone.temporary) == 0)
        // Left alone: a link whose directory is there (not an attempt's, which the sweep
        // would take), one into a gone directory that is no attempt's, one into a gone
        // attempt's under a name its directory would not have made, one elsewhere.
        let present = WorkDirectory(root: "\(workRoot)/elsewhere/scratch")
        try present.create()
        defer { try? present.remove() }
        let notAttempt = WorkDirectory(root: "\(workRoot)/elsewhere/gone-scratch")
        try #require(symlink(notAttempt.tmp, notAttempt.temporary) == 0)
        defer { unlink(notAttempt.temporary) }
        let unique = "\(getpid())-\(UInt32.random(in: 0 ... .max))"
        let misnamed = "/tmp/supervisor-test-\(unique)"
        try #require(symlink(gone.tmp, misnamed) == 0)
        defer { unlink(misnamed) }
        let foreign = "/tmp/supervisor-test-foreign-\(unique)"
        try #require(symlink("/nonexistent/\(getpid())/tmp", foreign) == 0)
        defer { unlink(foreign) }

        let planned = try await cleanup(harness, ["--dry-run"])
        #expect(arrayItems(planned["removedLinks"]) == [.string(gone.temporary)], "\(planned)")
        #expect(isLink(gone.temporary), "a dry run removes nothing")
        let swept = try await cleanup(harness)
        #expect(arrayItems(swept["removedLinks"]) == [.string(gone.temporary)], "\(swept)")
        #expect(!isLink(gone.temporary))
        for link in [present.temporary, notAttempt.temporary, misnamed, foreign] { #expect(isLink(link), "\(link) is kept") }
    }

    @Test("a backup taken while jobs are submitted and run opens and holds every job accepted before it began")
    func backupUnderLoad() async throws {
        let harness = try await RunnerHarness.start()
        var before: [String] = []
        for _ in 0..<200 { before.append(try await harness.submit("echo")) }
        let load = Task {
            var count = 0
            while !Task.isCancelled, (try? await harness.submit("echo")) != nil { count += 1 }
            return count
        }
        let file = harness.setup.directory.appendingPathComponent("backup.sqlite")
        let result = try await SupervisorBinary.run(["backup", file.path, "--config", harness.setup.config.path])
        load.cancel()
        let duringBackup = await load.value
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("written to \(file.path)"))
        #expect(duringBackup > 0, "submits went on while the backup ran")

        let copy = try SQLiteJobStore(path: file.path)
        for id in before {
            #expect(try await copy.job(id: try #require(JobID(id)), owner: nil) != nil, "\(id) is in the backup")
        }
        try await copy.close()
        let again = try await SupervisorBinary.run(["backup", file.path, "--config", harness.setup.config.path])
        #expect(again.status == 1 && again.stderr.contains("exists"), "a backup never overwrites: \(again.stderr)")
        await harness.stop()
    }

    @Test("DELETE removes a finished job with its files; cleanup beside the running daemon prunes one past retention and leaves the running job alone")
    func deleteAndRetention() async throws {
        let harness = try await RunnerHarness.start(config: "[retention]\ncompleted = \"1ms\"")
        let gate = harness.gate()
        let held = try await harness.holdRunning(1, until: gate)[0]
        let refused = try await harness.request(.DELETE, "/api/jobs/\(held)")
        #expect(refused.status == 409, "a running job cannot be deleted")

        let deleted = try await harness.submit("artifacts")
        _ = try await harness.ended(deleted)
        let files = harness.artifacts(deleted).deletingLastPathComponent()
        #expect(FileManager.default.fileExists(atPath: files.path))
        let result = try await SupervisorBinary.run(["delete", deleted, "--url", harness.daemon.baseURL])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try await harness.request(.GET, "/api/jobs/\(deleted)").status == 404)
        #expect(!FileManager.default.fileExists(atPath: files.path), "its logs and artifacts are gone")
        #expect(try await harness.request(.DELETE, "/api/jobs/\(deleted)").status == 404)

        let old = try await harness.submit("artifacts")
        _ = try await harness.ended(old)
        let oldFiles = harness.artifacts(old).deletingLastPathComponent()
        let swept = try await cleanup(harness)
        #expect(arrayItems(swept["prunedJobs"]).contains(.string(old)), "\(swept)")
        #expect(!arrayItems(swept["prunedJobs"]).contains(.string(held)), "a running job is never pruned")
        #expect(try await harness.request(.GET, "/api/jobs/\(old)").status == 404)
        #expect(try await harness.request(.GET, "/api/jobs/\(old)/artifacts/report.txt").status == 404)
        #expect(!FileManager.default.fileExists(atPath: oldFiles.path))
        // Run beside the daemon, the sweep left its running attempt alone.
        #expect(arrayItems(swept["killedProcesses"]).isEmpty && arrayItems(swept["removedDirectories"]).isEmpty, "\(swept)")
        #expect(arrayItems(swept["requeuedJobs"]).isEmpty && arrayItems(swept["removedWorkers"]).isEmpty)
        harness.open(gate)
        #expect(try await harness.ended(held)["status"] == "completed")
        await harness.stop()
    }

    @Test("a drained worker claims nothing new while its running job finishes; another worker takes the queue")
    func drainedWorker() async throws {
        let harness = try await RunnerHarness.start()
        let gate = harness.gate()
        let held = try await harness.holdRunning(1, until: gate)[0]
        let workers = try await harness.request(.GET, "/api/workers").document
        let drainedID = try #require(workers["workers"]?[0]?["id"].flatMap { value -> String? in
            if case .string(let id) = value { return id }
            return nil
        })
        let drained = try await SupervisorBinary.run(["drain", drainedID, "--url", harness.daemon.baseURL])
        #expect(drained.status == 0, "\(drained.stderr)")
        #expect(try await SupervisorBinary.run(["drain", "no-such-worker", "--url", harness.daemon.baseURL]).status == 1)

        let queued = try await harness.submit("echo")
        // A second worker on the same store: only it may take the job.
        let other = Process()
        other.executableURL = SupervisorBinary.url
        other.arguments = ["worker", "--config", harness.setup.config.path]
        other.standardError = FileHandle.nullDevice
        other.standardOutput = FileHandle.nullDevice
        async let otherStatus = SupervisorBinary.runToExit(other)
        let done = try await harness.poll(queued) { $0["status"] == "completed" }
        #expect(done["attempt"] == 1)
        let job = try await harness.job(queued)
        #expect(job["attempts"]?[0]?["workerId"] != .string(drainedID), "the drained worker claimed nothing")

        harness.open(gate)
        let finished = try await harness.ended(held)
        #expect(finished["status"] == "completed")
        #expect(finished["attempts"]?[0]?["workerId"] == .string(drainedID), "its running job finished where it ran")
        let listed = try await harness.request(.GET, "/api/workers").document
        #expect(arrayItems(listed["workers"]).contains { $0["id"] == .string(drainedID) && $0["draining"] == true })
        other.terminate()
        #expect(try await otherStatus == 0)
        await harness.stop()
    }

    @Test("/metrics is Prometheus text: jobs by type, attempt durations, queue depth, what cleanup swept; it needs an admin token unless metrics_public")
    func metrics() async throws {
        let harness = try await RunnerHarness.start(config: "[[auth.tokens]]\ntoken = \"admin-token-0123456789\"\nowner = \"ops\"\nrole = \"admin\"\n[[auth.tokens]]\ntoken = \"user-token-0123456789\"\nowner = \"u\"", token: "admin-token-0123456789")
        let done = try await harness.submit("echo")
        _ = try await harness.ended(done)
        let failing = try await harness.submit("permanent")
        _ = try await harness.ended(failing)
        #expect(try await harness.request(.GET, "/metrics", token: "user-token-0123456789").status == 403)

        let answer = try await harness.request(.GET, "/metrics")
        #expect(answer.status == 200)
        let samples = try PrometheusText.parse(answer.text)
        #expect(samples["supervisor_jobs_submitted_total{type=\"echo\"}"] == 1)
        #expect(samples["supervisor_jobs_finished_total{type=\"echo\",status=\"completed\"}"] == 1)
        #expect(samples["supervisor_jobs_finished_total{type=\"permanent\",status=\"failed\"}"] == 1)
        #expect(samples["supervisor_attempt_duration_seconds_count{type=\"echo\"}"] == 1)
        #expect(samples["supervisor_queue_jobs{status=\"completed\"}"] == 1)
        #expect(samples["supervisor_queue_jobs{status=\"failed\"}"] == 1)
        #expect(samples["supervisor_running_attempts"] == 0)
        #expect(samples["supervisor_orphans_killed_total"] == 0, "the sweep at start found nothing")
        await harness.stop()
    }

    @Test("SIGHUP: a token added to the config then works, a new job type runs, a running job goes on, and a broken config is refused")
    func reload() async throws {
        let (first, added) = ("first-token-0123456789", "added-token-0123456789")
        let harness = try await RunnerHarness.start(
            config: "[[auth.tokens]]\ntoken = \"\(first)\"\nowner = \"ops\"\nrole = \"admin\"", token: first)
        let gate = harness.gate()
        let held = try await harness.holdRunning(1, until: gate)[0]
        #expect(try await harness.request(.GET, "/api/queue", token: added).status == 401)

        /// The daemon's sealed seccomp programs: a reload with the same profiles opens none.
        func sealedPrograms() -> Int {
            let directory = "/proc/\(harness.daemon.process.processIdentifier)/fd"
            return ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).count { name in
                (try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + name))?.hasPrefix("/memfd:") == true
            }
        }
        let programs = sealedPrograms()
        #expect(programs > 0)
        let original = try String(contentsOf: harness.setup.config, encoding: .utf8)
        try (original + "\n[[auth.tokens]]\ntoken = \"\(added)\"\nowner = \"bob\"\n[job_types.late]\ncommand = [\"/bin/cat\"]\n")
            .write(to: harness.setup.config, atomically: true, encoding: .utf8)
        harness.daemon.signal(SIGHUP)
        let reloaded = await harness.daemon.log.first { $0["message"] == "config reloaded: tokens and job types replaced" }
        #expect(reloaded?["tokens"] == "2")
        #expect(sealedPrograms() == programs, "the unchanged profiles' programs were reused")
        #expect(try await harness.request(.GET, "/api/queue", token: added).status == 200)
        let late = try await harness.submit("late", token: added)
        #expect(try await harness.ended(late)["status"] == "completed")

        try "this is = not toml =".write(to: harness.setup.config, atomically: true, encoding: .utf8)
        harness.daemon.signal(SIGHUP)
        let refused = await harness.daemon.log.first { $0["message"] == "config reload refused; the running tokens and job types stay" }
        #expect(refused?["error"]?.contains("not valid TOML") == true, "\(refused ?? [:])")
        #expect(try await harness.request(.GET, "/api/queue", token: added).status == 200)

        harness.open(gate)
        let finished = try await harness.ended(held)
        #expect(finished["status"] == "completed", "the job that ran through both reloads completed")
        await harness.stop()
    }

    func arrayItems(_ value: JSONValue?) -> [JSONValue] {
        if case .array(let items)? = value { return items }
        return []
    }
}

/// The Prometheus text exposition format (0.0.4), strictly: every line a `# HELP`/`# TYPE`
/// comment or `name{labels} value`; answers the samples by name and labels as written.
enum PrometheusText {
    struct Malformed: Error, CustomStringConvertible {
        let line: String
        var description: String { "not Prometheus text: \(line)" }
    }

    static func parse(_ text: String) throws -> [String: Double] {
        let name = #"[a-zA-Z_:][a-zA-Z0-9_:]*"#
        let label = #"[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*""#
        let sample = try Regex(#"^(\#(name)(?:\{(?:\#(label)(?:,\#(label))*)?\})?) (\S+)$"#)
        let comment = try Regex(#"^# (?:HELP \#(name) .*|TYPE \#(name) (?:counter|gauge|histogram|summary|untyped))$"#)
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") {
            if line.wholeMatch(of: comment) != nil { continue }
            guard let match = line.wholeMatch(of: sample), let key = match.output[1].substring,
                let value = match.output[match.output.count - 1].substring.flatMap({ Double($0) })
            else { throw Malformed(line: String(line)) }
            samples[String(key)] = value
        }
        return samples
    }
}
