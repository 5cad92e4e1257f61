import Foundation
public import SupervisorConfig
import SupervisorCore
public import SupervisorStore

/// The sweep of SPEC section 8 for this host: what `supervisor cleanup` runs, and the
/// runner at its start and on a timer.
///
/// An attempt is live when its job runs in the store, under a lease that has not run
/// out, held by a worker of this host whose process is still the one that registered
/// (same pid, same start time). Everything else an attempt left on this host is an
/// orphan: its processes — found by their cgroup, their `SUPERVISOR_JOB_ID` and
/// `SUPERVISOR_ATTEMPT` environment, or a work directory on their command line — are
/// killed, and its work directory is removed, as is a `TMPDIR` link left leading into an
/// attempt directory that is gone. A dead worker's cgroup directories and its record go
/// too, and jobs whose lease ran out, or whose worker here is dead, go back to the queue,
/// and finished jobs past `[retention]` are deleted with their logs and artifacts.
/// Nothing that carries no mark of an attempt of this store and `work_root` is ever
/// touched: another supervisor's jobs on the same host are not orphans.
public struct HostCleanup: Sendable {
    public struct Report: Sendable, Equatable, Codable {
        public struct KilledProcess: Sendable, Equatable, Codable {
            public var pid: Int32
            public var jobId: String
            public var attempt: Int?
            public var command: String
        }

        public var dryRun: Bool
        public var killedProcesses: [KilledProcess] = []
        public var removedDirectories: [String] = []
        /// `TMPDIR` links in `/tmp` whose attempt directory is gone.
        public var removedLinks: [String] = []
        public var removedCgroups: [String] = []
        /// Jobs taken from a dead worker or a lease that ran out: back to pending, or
        /// failed when their attempts are spent.
        public var requeuedJobs: [String] = []
        public var removedWorkers: [String] = []
        /// Finished jobs past `[retention]`, deleted with their logs and artifacts.
        public var prunedJobs: [String] = []

        public var isEmpty: Bool {
            killedProcesses.isEmpty && removedDirectories.isEmpty && removedLinks.isEmpty && removedCgroups.isEmpty
                && requeuedJobs.isEmpty && removedWorkers.isEmpty && prunedJobs.isEmpty
        }
    }

    let store: any JobStore
    let host: String
    let workRoot: String
    let artifactsRoot: URL
    let retention: RetentionSettings

    public init(store: any JobStore, host: String, configuration: SupervisorConfiguration) {
        self.store = store
        self.host = host
        workRoot = configuration.runner.workRoot.standardizedFileURL.path
        artifactsRoot = configuration.runner.artifactsRoot
        retention = configuration.retention
    }

    /// An attempt by its job and number; the number is unknown for a process whose
    /// environment lost `SUPERVISOR_ATTEMPT`.
    struct AttemptMark: Hashable {
        var job: JobID
        var attempt: Int?

        /// "<job id>-<attempt>", the name of an attempt's work directory and cgroups.
        init?(directoryName name: some StringProtocol) {
            guard let dash = name.lastIndex(of: "-"), let job = JobID(name[..<dash]),
                let attempt = Int(name[name.index(after: dash)...])
            else { return nil }
            self.job = job
            self.attempt = attempt
        }

        init(job: JobID, attempt: Int?) {
            self.job = job
            self.attempt = attempt
        }
    }

    struct MarkedProcess {
        var pid: pid_t
        var mark: AttemptMark
        /// Who the process was when it was found (nil where /proc does not say), so that a
        /// pid reused since is not killed.
        var identity: String?
        var command: String
    }

    public func run(now: Date, dryRun: Bool) async throws -> Report {
        // What is on the host is looked at before the store is read: a process or
        // directory seen here was made after its attempt's claim, so the store read
        // next knows that attempt.
        let marked = markedProcesses()
        let directories = attemptDirectories()
        let workers = try await store.workers().filter { $0.host == host }
        let running = try await store.runningAttempts()
        // Another supervisor on the host (another store) has jobs of its own: a mark counts
        // only for a job of this store.
        var ours: Set<JobID> = []
        for job in Set(marked.map(\.mark.job)) where try await store.job(id: job, owner: nil) != nil {
            ours.insert(job)
        }
        let processes = marked.filter { ours.contains($0.mark.job) }

        // A worker is dead only when that can be proven; one this process cannot judge (in
        // another pid namespace, say) holds its attempts until their leases run out.
        let dead = workers.filter { ProcessIdentity.isProvablyGone($0.pid, recorded: $0.processStart) }
        let deadIDs = Set(dead.map(\.id))
        let liveAttempts = running.filter { !deadIDs.contains($0.lease.workerID) && $0.leaseExpiresAt > now }
        let liveMarks = Set(liveAttempts.map { AttemptMark(job: $0.lease.jobID, attempt: $0.lease.attempt) })
        let liveJobs = Set(liveAttempts.map(\.lease.jobID))
        func isLive(_ mark: AttemptMark) -> Bool {
            mark.attempt == nil ? liveJobs.contains(mark.job) : liveMarks.contains(mark)
        }
        let orphans = processes.filter { !isLive($0.mark) }
        let liveDirectories = Set(liveAttempts.map { "\($0.lease.workerID)/\($0.lease.jobID.rawValue)-\($0.lease.attempt)" })
        let staleDirectories = directories.filter { !liveDirectories.contains("\($0.worker)/\($0.name)") }

        var report = Report(dryRun: dryRun)
        if dryRun {
            report.killedProcesses = orphans.map(Self.killed)
            report.removedDirectories = staleDirectories.map(\.path)
            report.removedLinks = danglingTemporaryLinks()
            report.requeuedJobs = running.filter { $0.leaseExpiresAt < now || deadIDs.contains($0.lease.workerID) }
                .map(\.lease.jobID.rawValue)
            report.removedCgroups = dead.flatMap { Self.cgroupDirectories(of: $0) }
            report.removedWorkers = dead.map(\.id)
            report.prunedJobs = try await store.finishedJobs(endedBefore: retentionCutoffs(now), limit: Self.pruneBatch)
                .map(\.rawValue)
            return report
        }

        var killed: [MarkedProcess] = []
        for orphan in orphans {
            // Still the process that was found, still marked the same: a pid reused while
            // the store was read is someone else's.
            guard ProcessIdentity.of(orphan.pid) == orphan.identity, mark(of: orphan.pid) == orphan.mark,
                kill(orphan.pid, SIGKILL) == 0
            else { continue }
            killed.append(orphan)
        }
        report.killedProcesses = killed.map(Self.killed)
        let deadline = ContinuousClock.now + .seconds(5)
        while killed.contains(where: { !ProcessTable.hasEnded($0.pid) }) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        for directory in staleDirectories where (try? WorkDirectory(root: directory.path).remove()) != nil {
            report.removedDirectories.append(directory.path)
        }
        for link in danglingTemporaryLinks() where unlink(link) == 0 {
            report.removedLinks.append(link)
        }
        // The directory of a dead worker, or of one that has no record, goes once empty
        // (never its other files).
        let recorded = Set(workers.map(\.id))
        for worker in Set(directories.map(\.worker)).filter({ deadIDs.contains($0) || !recorded.contains($0) }) {
            rmdir(workRoot + "/" + worker)
        }
        for worker in dead {
            rmdir(workRoot + "/" + worker.id)
            for cgroup in Self.cgroupDirectories(of: worker) where rmdir(cgroup) == 0 {
                report.removedCgroups.append(cgroup)
            }
        }
        report.requeuedJobs = try await store.requeueExpiredLeases(now: now, heldBy: deadIDs).map(\.rawValue)
        for worker in dead {
            try await store.removeWorker(id: worker.id)
            report.removedWorkers.append(worker.id)
        }
        report.prunedJobs = try await prune(now: now)
        return report
    }

    private static func killed(_ process: MarkedProcess) -> Report.KilledProcess {
        Report.KilledProcess(pid: process.pid, jobId: process.mark.job.rawValue, attempt: process.mark.attempt, command: process.command)
    }

    /// Jobs deleted per store call; a sweep makes calls until fewer come back.
    static let pruneBatch = 1000
    static let pruneBatchesPerSweep = 10

    func retentionCutoffs(_ now: Date) -> [JobStatus: Date] {
        func before(_ duration: Duration) -> Date {
            now.addingTimeInterval(-(Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18))
        }
        return [.completed: before(retention.completed), .failed: before(retention.failed), .cancelled: before(retention.cancelled)]
    }

    /// Deletes the finished jobs past retention, then their logs and artifacts: the rows
    /// first, so that no job is left pointing at files that are gone. At most
    /// `pruneBatchesPerSweep` batches: a large backlog goes over several sweeps, each
    /// holding the store's write lock briefly.
    private func prune(now: Date) async throws -> [String] {
        var pruned: [String] = []
        for _ in 0..<Self.pruneBatchesPerSweep {
            let batch = try await store.pruneFinished(endedBefore: retentionCutoffs(now), limit: Self.pruneBatch)
            for id in batch { try? JobFiles(artifactsRoot: artifactsRoot, job: id).remove() }
            pruned += batch.map(\.rawValue)
            if batch.count < Self.pruneBatch { break }
        }
        return pruned
    }

    /// A dead worker's cgroup directories, innermost first: what is inside each parent
    /// (the attempts' cgroups, the leaf the worker moved into), then the parent.
    static func cgroupDirectories(of worker: WorkerRecord) -> [String] {
        worker.cgroupDirectories.flatMap { parent -> [String] in
            guard let children = try? FileManager.default.contentsOfDirectory(atPath: parent) else { return [] }
            let inner = children.sorted().map { parent + "/" + $0 }.filter { path in
                var isDirectory: ObjCBool = false
                return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
            }
            return inner + [parent]
        }
    }

    /// Every process on the host that carries the mark of an attempt, except this one.
    func markedProcesses() -> [MarkedProcess] {
        let own = getpid()
        return ProcessTable.allPIDs().compactMap { pid in
            guard pid != own, !ProcessTable.hasEnded(pid), let mark = mark(of: pid) else { return nil }
            let command = (FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data())
                .split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
            return MarkedProcess(pid: pid, mark: mark, identity: ProcessIdentity.of(pid), command: String(command.prefix(200)))
        }
    }

    /// The attempt a process belongs to: its cgroup's name, its environment, or a work
    /// directory on its command line (an argument that starts with one, or has one after
    /// `=`, as `--user-data-dir=…`).
    func mark(of pid: pid_t) -> AttemptMark? {
        if let membership = try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8) {
            for line in membership.split(separator: "\n") {
                let components = line.split(separator: "/")
                guard components.count >= 2, components[components.count - 2].hasPrefix("supervisor-"),
                    let mark = AttemptMark(directoryName: components[components.count - 1])
                else { continue }
                return mark
            }
        }
        if let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ") {
            var job: JobID?
            var attempt: Int?
            for variable in environment.split(separator: 0) {
                let text = String(decoding: variable, as: UTF8.self)
                if text.hasPrefix("SUPERVISOR_JOB_ID=") { job = JobID(text.dropFirst("SUPERVISOR_JOB_ID=".count)) }
                if text.hasPrefix("SUPERVISOR_ATTEMPT=") { attempt = Int(text.dropFirst("SUPERVISOR_ATTEMPT=".count)) }
            }
            if let job { return AttemptMark(job: job, attempt: attempt) }
        }
        if let arguments = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") {
            let prefix = workRoot + "/"
            for argument in arguments.split(separator: 0) {
                let text = String(decoding: argument, as: UTF8.self)
                let path = text.hasPrefix(prefix) ? Substring(text) : text.firstRange(of: "=" + prefix).map { text[text.index(after: $0.lowerBound)...] }
                guard let path else { continue }
                let components = path.dropFirst(prefix.count).split(separator: "/")
                if components.count >= 2, let mark = AttemptMark(directoryName: components[1]) { return mark }
            }
        }
        return nil
    }

    /// The `TMPDIR` links of attempt directories under `work_root/<workerId>/` that are
    /// gone; links into anything else are not ours.
    func danglingTemporaryLinks() -> [String] {
        WorkDirectory.danglingTemporaryLinks(workRoot: workRoot).compactMap { link, directory in
            let components = directory.root.dropFirst(workRoot.count + 1).split(separator: "/", omittingEmptySubsequences: false)
            guard components.count == 2, AttemptMark(directoryName: components[1]) != nil else { return nil }
            return link
        }
    }

    /// Every attempt directory under `work_root/<workerId>/`; other files are not ours.
    func attemptDirectories() -> [(worker: String, name: String, path: String)] {
        let files = FileManager.default
        return ((try? files.contentsOfDirectory(atPath: workRoot)) ?? []).sorted().flatMap { worker in
            ((try? files.contentsOfDirectory(atPath: workRoot + "/" + worker)) ?? []).sorted().compactMap { name in
                AttemptMark(directoryName: name) == nil ? nil : (worker, name, workRoot + "/" + worker + "/" + name)
            }
        }
    }
}
