import CSupervisorLinux
import Foundation
public import SupervisorConfig
public import SupervisorCore
public import SupervisorStore
import Synchronization

/// One run of a job's command, from a fresh work directory to the last reaped process
/// (SPEC sections 6 and 7). `run` returns only when every process of the tree is gone,
/// the work directory is removed and the port is free.
public final class Attempt: Sendable {
    /// What the attempt runs with, from the runner.
    public struct Context: Sendable {
        public var settings: RunnerSettings
        public var workerID: String
        /// The `supervisor-launch` executable.
        public var launcher: String
        public var ports: DebugPortPool
        public var cgroups: AttemptCgroups
        public var supervisorPath: String
        /// Each job type's compiled seccomp program, as a sealed descriptor.
        public var seccompPrograms: [String: Int32]
        /// The kernel's Landlock ABI; nil: file access is not confined.
        public var landlockABI: Int?
        /// Each job type's `run_as` user, resolved at start-up.
        public var users: [String: RunAsUser]

        public init(
            settings: RunnerSettings, workerID: String, launcher: String, ports: DebugPortPool,
            cgroups: AttemptCgroups, supervisorPath: String, seccompPrograms: [String: Int32], landlockABI: Int?,
            users: [String: RunAsUser]
        ) {
            self.settings = settings
            self.workerID = workerID
            self.launcher = launcher
            self.ports = ports
            self.cgroups = cgroups
            self.supervisorPath = supervisorPath
            self.seccompPrograms = seccompPrograms
            self.landlockABI = landlockABI
            self.users = users
        }
    }

    /// What the job reported on stdout, kept as the lines arrive.
    private struct Observations {
        var progress: JobProgress?
        var result: JSONValue?
        var resultTooLarge = false
        var failure: (kind: ProgressMarker.FailureKind, message: String)?
        var lastLine = ContinuousClock.now
    }

    private struct Control {
        var stop: AttemptReport.Stop?
        var tree: AttemptProcessTree?
        var killer: Task<Void, Never>?
        /// The job's main process has exited: its own ending stands whatever comes next.
        var mainExited = false
        var finished = false
    }

    public let job: Job
    public let type: JobTypeSettings
    public let lease: AttemptLease
    private let context: Context
    private let observations = Mutex(Observations())
    private let control = Mutex(Control())

    public init(job: Job, type: JobTypeSettings, lease: AttemptLease, context: Context) {
        self.job = job
        self.type = type
        self.lease = lease
        self.context = context
    }

    /// Ends the attempt early. A cancel, or a lease this worker lost, kills the tree at
    /// once; anything else sends SIGTERM and SIGKILL after `kill_grace`. The first reason
    /// is kept, but a cancel overrides it (a cancelled job is never retried). Once the
    /// main process has exited, the job's own ending stands and a stop only hastens the
    /// end of what it left behind.
    public func stop(_ reason: AttemptReport.Stop) {
        let immediately = reason == .cancelled || reason == .leaseExpired
        control.withLock { control in
            guard !control.finished else { return }
            if !control.mainExited {
                if control.stop != nil && reason != .cancelled { return }
                control.stop = reason
            } else if !immediately {
                return
            }
            guard let tree = control.tree else { return }
            control.killer?.cancel()
            control.killer = Self.terminate(tree, immediately: immediately, grace: context.settings.killGrace)
        }
    }

    /// What an attempt came to.
    public struct Summary: Sendable {
        /// What the outcome rules of SPEC section 6 judge.
        public var report: AttemptReport
        /// The last progress the job reported.
        public var progress: JobProgress?
        /// The most memory the attempt used at once, where its cgroup counts it.
        public var peakMemoryBytes: Int64?
    }

    /// Runs the attempt to its end. `onProgress` gets the latest progress at most every
    /// `progressInterval`; the last value is in the summary as well.
    public func run(
        progressInterval: Duration = .milliseconds(200), onProgress: @escaping @Sendable (JobProgress) async -> Void
    ) async -> Summary {
        let work = WorkDirectory.location(
            workRoot: context.settings.workRoot, workerID: context.workerID, job: job.id, attempt: lease.attempt)
        let files = JobFiles(artifactsRoot: context.settings.artifactsRoot, job: job.id)
        let log: AttemptLog
        do {
            log = try AttemptLog(path: files.log(attempt: lease.attempt), maxBytes: context.settings.maxLogBytes)
        } catch {
            return Summary(report: AttemptReport(termination: .exited(127)))
        }
        defer { log.close() }
        var port: Int?
        var cgroup: AttemptCgroup?
        defer {
            try? work.remove()
            if let port { context.ports.release(port) }
            cgroup?.remove()
        }
        do {
            try work.create()
            try WorkDirectory.make(files.artifacts)
            port = try context.ports.reserve()
            let limits = AttemptLimits(memoryMax: type.memoryMax, pidsMax: type.pidsMax)
            cgroup = context.cgroups.make(name: "\(job.id.rawValue)-\(lease.attempt)", limits: limits)
            let report = try await execute(
                work: work, files: files, port: port!, cgroup: cgroup!, log: log, progressInterval: progressInterval,
                onProgress: onProgress)
            return Summary(
                report: report, progress: observations.withLock { $0.progress }, peakMemoryBytes: cgroup!.peakMemoryBytes())
        } catch {
            log.append("supervisor: the attempt could not start: \(error)")
            return Summary(report: AttemptReport(termination: .exited(127)))
        }
    }

    private func execute(
        work: WorkDirectory, files: JobFiles, port: Int, cgroup: AttemptCgroup, log: AttemptLog,
        progressInterval: Duration, onProgress: @escaping @Sendable (JobProgress) async -> Void
    ) async throws -> AttemptReport {
        let payloadFile = work.root + "/payload.json"
        try Descriptors.writePrivateFile(payloadFile, job.payload.serialized())
        var secretsFile: String?
        if let secrets = job.secrets {
            let file = work.root + "/secrets.json"
            try Descriptors.writePrivateFile(file, secrets.serialized())
            secretsFile = file
        }
        let environment = AttemptEnvironment(
            jobID: job.id, jobType: job.type, attempt: lease.attempt, workDirectory: work,
            artifactsDirectory: files.artifacts, payloadFile: payloadFile, secretsFile: secretsFile, debugPort: port,
            typeEnvironment: type.environment, supervisorPath: context.supervisorPath)

        let variables = environment.variables
        let user = context.users[job.type]
        if let user {
            // The user's own: what the job must write, and the files it must read.
            for path in [work.root, work.home, work.tmp, work.userData, files.artifacts, payloadFile] + [secretsFile].compactMap({ $0 }) {
                try user.own(path)
            }
        }
        let stdin = try Descriptors.open(payloadFile)
        defer { close(stdin) }
        let stdout = try Descriptors.pipe()
        let stderr: Descriptors.Pipe
        let report: Descriptors.Pipe
        do {
            stderr = try Descriptors.pipe()
            do {
                report = try Descriptors.pipe()
            } catch {
                stderr.close()
                throw error
            }
        } catch {
            stdout.close()
            throw error
        }
        var arguments = ["--cwd", work.root, "--report-fd", "3", "--nofile", String(type.nofile)]
        if let unified = cgroup.unified { arguments += ["--cgroup", unified] }
        for directory in cgroup.joins { arguments += ["--join", directory] }
        if let bytes = cgroup.fallbackMemoryMax { arguments += ["--rlimit-as", String(bytes)] }
        if let count = cgroup.fallbackPidsMax { arguments += ["--nproc", String(count)] }
        if let user { arguments += user.launcherArguments }
        if let abi = context.landlockABI {
            let access = AttemptFileAccess(
                command: type.command, searchPath: variables["PATH"] ?? context.supervisorPath,
                workDirectory: work.root, artifactsDirectory: files.artifacts, readPaths: type.readPaths,
                writePaths: type.writePaths)
            arguments += ["--landlock", String(abi)]
            for path in access.read { arguments += ["--read", path] }
            for path in access.write { arguments += ["--write", path] }
        }
        let seccomp = context.seccompPrograms[job.type]
        if seccomp != nil { arguments += ["--seccomp-fd", "4"] }
        arguments += ["--"] + type.command
        let pid: pid_t
        do {
            pid = try await ChildProcesses.shared.spawn(
                ChildProcesses.Launch(
                    executable: context.launcher, arguments: arguments, environment: variables,
                    stdin: stdin, stdout: stdout.write, stderr: stderr.write, report: report.write,
                    seccomp: seccomp))
        } catch {
            for pipe in [stdout, stderr, report] { pipe.close() }
            throw error
        }
        for descriptor in [stdout.write, stderr.write, report.write] { close(descriptor) }
        defer { close(report.read) }

        let tree = AttemptProcessTree(
            tracking: cgroup.unified.map { .cgroup(path: $0) } ?? .processTable, jobID: job.id, root: pid)
        let (progressSignals, progressSignal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let (ends, end) = AsyncStream.makeStream(of: Void.self)
        startReading(stdout.read, log: log, progressSignal: progressSignal, end: end)
        startReading(stderr.read, log: log, progressSignal: nil, end: end)

        // A stop asked before the tree existed takes effect now.
        control.withLock { control in
            control.tree = tree
            if let stop = control.stop {
                control.killer = Self.terminate(
                    tree, immediately: stop == .cancelled || stop == .leaseExpired, grace: context.settings.killGrace)
            }
        }
        let watchdogs = startWatchdogs()
        let publisher = Task {
            for await _ in progressSignals {
                if let progress = observations.withLock({ $0.progress }) { await onProgress(progress) }
                try? await Task.sleep(for: progressInterval)
            }
        }

        let termination = await ChildProcesses.shared.termination(of: pid)
        watchdogs.cancel()
        // The main process is gone; what it left behind ends too.
        control.withLock { control in
            control.mainExited = true
            if control.killer == nil && !tree.isEmpty {
                control.killer = Self.terminate(tree, immediately: false, grace: context.settings.killGrace)
            }
        }
        while !tree.isEmpty { try? await Task.sleep(for: .milliseconds(5)) }
        // With the tree gone its pipes close; a process that left the tree (moved to
        // another cgroup, say) could hold them open for ever, so the wait is bounded.
        let drained = await withTaskGroup(of: Bool.self) { race in
            race.addTask {
                var streamsEnded = 0
                for await _ in ends {
                    streamsEnded += 1
                    if streamsEnded == 2 { return true }
                }
                return false
            }
            race.addTask {
                try? await Task.sleep(for: .seconds(2))
                return false
            }
            let first = await race.next() ?? false
            race.cancelAll()
            return first
        }
        if !drained { log.append("supervisor: a process outside the attempt's tree still holds its output; stopped reading it") }
        let stop = control.withLock { control in
            control.finished = true
            control.killer?.cancel()
            return control.stop
        }
        // The kernel's OOM killer ended a process of the tree and the job did not succeed:
        // that is why it failed.
        let outOfMemory = stop == nil && termination != .exited(0) && cgroup.oomKills() > 0
        progressSignal.finish()
        publisher.cancel()
        _ = await publisher.value

        if let message = Descriptors.readAvailable(report.read), !message.isEmpty { log.append(message) }
        return observations.withLock { seen in
            AttemptReport(
                termination: termination, stoppedBy: outOfMemory ? .oom : stop, failure: seen.failure, result: seen.result,
                resultTooLarge: seen.resultTooLarge)
        }
    }

    private func startReading(
        _ descriptor: Int32, log: AttemptLog, progressSignal: AsyncStream<Void>.Continuation?,
        end: AsyncStream<Void>.Continuation
    ) {
        guard let progressSignal else {
            OutputLines.start(
                descriptor: descriptor, onLine: { log.append($0.bytes) },
                onChunk: { log.flush() }, onEnd: { end.yield() })
            return
        }
        // Markers of one read are gathered here, on the reader's thread, and handed over
        // under the lock once per read rather than once per line.
        let gathered = GatheredMarkers()
        OutputLines.start(
            descriptor: descriptor,
            onLine: { line in
                guard line.bytes.count >= 2, line.bytes[0] == UInt8(ascii: ":"), line.bytes[1] == UInt8(ascii: ":") else {
                    log.append(line.bytes)
                    return
                }
                switch line.length > line.bytes.count ? Self.overlong(line) : StdoutLine(utf8: line.bytes) {
                case .log: log.append(line.bytes)
                case .marker(let marker): gathered.add(marker)
                }
            },
            onChunk: { [self] in
                log.flush()
                let changed = observations.withLock { seen in
                    seen.lastLine = .now
                    return gathered.handOver(to: &seen)
                }
                if changed { progressSignal.yield() }
            },
            onEnd: { end.yield() }
        )
    }

    /// Markers read since the last hand-over; only the stdout stream's callbacks touch it.
    private final class GatheredMarkers: @unchecked Sendable {
        var progress: JobProgress?
        var result: JSONValue?
        var resultTooLarge = false
        var failure: (kind: ProgressMarker.FailureKind, message: String)?

        func add(_ marker: ProgressMarker) {
            switch marker {
            case .progress(let value): progress = value
            case .result(let value): result = value
            case .resultTooLarge: resultTooLarge = true
            case .fail(let kind, let message): failure = (kind, message)
            case .heartbeat: break
            }
        }

        /// Moves what was gathered into `seen`; true when the progress changed.
        func handOver(to seen: inout Observations) -> Bool {
            defer { (progress, result, resultTooLarge, failure) = (nil, nil, false, nil) }
            if let result { seen.result = result }
            if resultTooLarge { seen.resultTooLarge = true }
            if let failure { seen.failure = failure }
            guard let progress else { return false }
            seen.progress = progress
            return true
        }
    }

    /// A line cut at `OutputLines.maxLineBytes`: only a `::result` can be a marker that long.
    private static func overlong(_ line: OutputLines.Line) -> StdoutLine {
        let head = String(decoding: line.bytes.prefix(9), as: UTF8.self)
        return head == "::result " ? .marker(.resultTooLarge(byteCount: line.length)) : .log("")
    }

    /// The timeout and the idle timeout, as one task cancelled when the main process exits.
    private func startWatchdogs() -> Task<Void, Never> {
        let timeout = Duration.seconds(job.timeoutSeconds ?? Int(type.timeout.components.seconds))
        let idle = type.idleTimeout
        return Task {
            let deadline = ContinuousClock.now + timeout
            while !Task.isCancelled {
                var wake = deadline
                if idle > .zero {
                    let idleDeadline = observations.withLock { $0.lastLine } + idle
                    if idleDeadline <= .now {
                        stop(.idleTimeout)
                        return
                    }
                    wake = min(wake, idleDeadline)
                }
                if deadline <= .now {
                    stop(.timeout)
                    return
                }
                try? await Task.sleep(until: wake, clock: .continuous)
            }
        }
    }

    /// SIGKILL now, or SIGTERM and SIGKILL after `grace`, to the whole tree.
    private static func terminate(_ tree: AttemptProcessTree, immediately: Bool, grace: Duration) -> Task<Void, Never> {
        Task {
            if immediately {
                tree.signalAll(SIGKILL)
            } else {
                tree.signalAll(SIGTERM)
                try? await Task.sleep(for: grace)
                guard !Task.isCancelled else { return }
                tree.signalAll(SIGKILL)
            }
            // Processes forked while the signals went out are caught by repeating.
            while !Task.isCancelled && !tree.isEmpty {
                try? await Task.sleep(for: .milliseconds(20))
                tree.signalAll(SIGKILL)
            }
        }
    }
}

/// Descriptors the supervisor keeps: close-on-exec, and above 3 so that the spawn's
/// dup2 onto 0–3 never overwrites a source before it is copied.
enum Descriptors {
    struct Pipe {
        let read: Int32
        let write: Int32

        func close() {
            Glibc.close(read)
            Glibc.close(write)
        }
    }

    static func pipe() throws -> Pipe {
        var ends: [Int32] = [0, 0]
        guard supervisor_pipe_cloexec(&ends) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let read: Int32
        do {
            read = try high(ends[0])
        } catch {
            Glibc.close(ends[1])
            throw error
        }
        do {
            return Pipe(read: read, write: try high(ends[1]))
        } catch {
            Glibc.close(read)
            throw error
        }
    }

    /// A new file only the supervisor's user can read, written without an fsync: it
    /// lives as long as the attempt's directory.
    static func writePrivateFile(_ path: String, _ bytes: Data) throws {
        let descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { Glibc.close(descriptor) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, bytes.count - offset) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            offset += written
        }
    }

    static func open(_ path: String) throws -> Int32 {
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        return try high(descriptor)
    }

    private static func high(_ descriptor: Int32) throws -> Int32 {
        guard descriptor <= 3 else { return descriptor }
        let moved = fcntl(descriptor, F_DUPFD_CLOEXEC, 4)
        close(descriptor)
        guard moved >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        return moved
    }

    /// What is in the pipe now, without waiting for more.
    static func readAvailable(_ descriptor: Int32) -> String? {
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = read(descriptor, &buffer, buffer.count)
        guard count > 0 else { return nil }
        return String(decoding: buffer[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
