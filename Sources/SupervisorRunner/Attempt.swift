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
        /// The browser program of `browser = "chromium"` types, resolved at start-up; nil
        /// when no type has one.
        public var chromium: String?

        public init(
            settings: RunnerSettings, workerID: String, launcher: String, ports: DebugPortPool,
            cgroups: AttemptCgroups, supervisorPath: String, seccompPrograms: [String: Int32], landlockABI: Int?,
            users: [String: RunAsUser], chromium: String? = nil
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
            self.chromium = chromium
        }
    }

    /// What the job reported on stdout, kept as the lines arrive.
    private struct Observations {
        var progress: JobProgress?
        var result: JSONValue?
        var resultTooLarge = false
        var failure: (kind: ProgressMarker.FailureKind, message: String)?
        var lastLine = ContinuousClock.now
        /// From the attempt's start to its browser's DevTools endpoint answering.
        var browserStartup: Duration?
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
        let immediately = Self.killsAtOnce(reason)
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

    /// A cancel, or a lease this worker lost, kills the tree at once.
    private static func killsAtOnce(_ reason: AttemptReport.Stop) -> Bool {
        reason == .cancelled || reason == .leaseExpired
    }

    /// Makes `tree` the one stops act on: the browser's alone, then the browser's and the
    /// job's. A stop asked before, while nothing or less of the attempt ran, takes effect
    /// now on the whole of it.
    private func track(_ tree: AttemptProcessTree) {
        control.withLock { control in
            control.tree = tree
            guard let stop = control.stop else { return }
            control.killer?.cancel()
            control.killer = Self.terminate(tree, immediately: Self.killsAtOnce(stop), grace: context.settings.killGrace)
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
        /// From the attempt's start to its browser answering, for `browser` types.
        public var browserStartup: Duration?
    }

    /// Runs the attempt to its end. `onProgress` gets the latest progress at most every
    /// `progressInterval`; the last value is in the summary as well.
    public func run(
        progressInterval: Duration = .milliseconds(200), onProgress: @escaping @Sendable (JobProgress) async -> Void
    ) async -> Summary {
        let started = ContinuousClock.now
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
                work: work, files: files, port: port!, cgroup: cgroup!, log: log, started: started,
                progressInterval: progressInterval, onProgress: onProgress)
            let (progress, browserStartup) = observations.withLock { ($0.progress, $0.browserStartup) }
            return Summary(
                report: report, progress: progress, peakMemoryBytes: cgroup!.peakMemoryBytes(), browserStartup: browserStartup)
        } catch {
            log.append("supervisor: the attempt could not start: \(error)")
            return Summary(report: AttemptReport(termination: .exited(127)))
        }
    }

    private func execute(
        work: WorkDirectory, files: JobFiles, port: Int, cgroup: AttemptCgroup, log: AttemptLog,
        started: ContinuousClock.Instant, progressInterval: Duration,
        onProgress: @escaping @Sendable (JobProgress) async -> Void
    ) async throws -> AttemptReport {
        let payloadFile = work.root + "/payload.json"
        try Descriptors.writePrivateFile(payloadFile, job.payload.serialized())
        var secretsFile: String?
        if let secrets = job.secrets {
            let file = work.root + "/secrets.json"
            try Descriptors.writePrivateFile(file, secrets.serialized())
            secretsFile = file
        }
        var environment = AttemptEnvironment(
            jobID: job.id, jobType: job.type, attempt: lease.attempt, workDirectory: work,
            artifactsDirectory: files.artifacts, payloadFile: payloadFile, secretsFile: secretsFile, debugPort: port,
            typeEnvironment: type.environment, supervisorPath: context.supervisorPath)

        let user = context.users[job.type]
        if let user {
            // The user's own: what the job must write, and the files it must read.
            for path in [work.root, work.home, work.tmp, work.userData, files.artifacts, payloadFile] + [secretsFile].compactMap({ $0 }) {
                try user.own(path)
            }
        }
        let tracking: AttemptProcessTree.Tracking = cgroup.unified.map { .cgroup(path: $0) } ?? .processTable
        // Every output stream of the attempt (the job's two, the browser's) ends here.
        let (ends, end) = AsyncStream.makeStream(of: Void.self)
        var streams = 2
        var roots: [pid_t] = []
        if let browser = type.browser {
            streams += 1
            switch try await startBrowser(
                browser, work: work, files: files, port: port, cgroup: cgroup, user: user,
                variables: environment.variables, tracking: tracking, log: log, started: started, end: end)
            {
            case .ready(let pid, let url):
                roots.append(pid)
                environment.cdpURL = url
            case .failed(let report, let tree):
                _ = await drain(tree, streams: 1, ends: ends)
                control.withLock { control in
                    control.finished = true
                    control.killer?.cancel()
                }
                return report
            }
        }
        let variables = environment.variables

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
        let seccomp = context.seccompPrograms[job.type]
        let arguments = launcherArguments(
            command: type.command, work: work, files: files, cgroup: cgroup, user: user, variables: variables,
            seccomp: seccomp != nil)
        let pid: pid_t
        do {
            pid = try await ChildProcesses.shared.spawn(
                ChildProcesses.Launch(
                    executable: context.launcher, arguments: arguments, environment: variables,
                    stdin: stdin, stdout: stdout.write, stderr: stderr.write, report: report.write,
                    seccomp: seccomp))
        } catch {
            for pipe in [stdout, stderr, report] { pipe.close() }
            // The browser started for this job ends with it.
            if !roots.isEmpty { await killAndWait(AttemptProcessTree(tracking: tracking, jobID: job.id, roots: roots)) }
            throw error
        }
        for descriptor in [stdout.write, stderr.write, report.write] { close(descriptor) }
        defer { close(report.read) }

        roots.append(pid)
        let tree = AttemptProcessTree(tracking: tracking, jobID: job.id, roots: roots)
        let (progressSignals, progressSignal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        startReading(stdout.read, log: log, progressSignal: progressSignal, end: end)
        startReading(stderr.read, log: log, progressSignal: nil, end: end)

        track(tree)
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
        let drained = await drain(tree, streams: streams, ends: ends)
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

    /// The launcher's arguments for one command of the attempt: its directory, limits,
    /// cgroups, user, Landlock rules (which depend on the command) and seccomp filter.
    private func launcherArguments(
        command: [String], work: WorkDirectory, files: JobFiles, cgroup: AttemptCgroup, user: RunAsUser?,
        variables: [String: String], seccomp: Bool, browserSandbox: AttemptFileAccess.BrowserSandbox? = nil
    ) -> [String] {
        var arguments = ["--cwd", work.root, "--report-fd", "3", "--nofile", String(type.nofile)]
        if let unified = cgroup.unified { arguments += ["--cgroup", unified] }
        for directory in cgroup.joins { arguments += ["--join", directory] }
        // RLIMIT_AS breaks Chromium's address-space reservations (HOST-NOTES): where no
        // memory cgroup holds `memory_max`, the supervisor's browser runs without it.
        if let bytes = cgroup.fallbackMemoryMax, browserSandbox == nil { arguments += ["--rlimit-as", String(bytes)] }
        if let count = cgroup.fallbackPidsMax { arguments += ["--nproc", String(count)] }
        if let user { arguments += user.launcherArguments }
        if let abi = context.landlockABI {
            let access = AttemptFileAccess(
                command: command, searchPath: variables["PATH"] ?? context.supervisorPath,
                workDirectory: work.root, artifactsDirectory: files.artifacts, readPaths: type.readPaths,
                writePaths: type.writePaths, browserSandbox: browserSandbox)
            arguments += ["--landlock", String(abi)]
            for path in access.read { arguments += ["--read", path] }
            for path in access.write { arguments += ["--write", path] }
            for path in access.writeFiles { arguments += ["--write-files", path] }
        }
        if seccomp { arguments += ["--seccomp-fd", "4"] }
        return arguments + ["--"] + command
    }

    /// Waits until every process of the tree is gone and its output streams have ended.
    /// A process that left the tree (moved to another cgroup, say) could hold a pipe open
    /// for ever, so the wait for the streams is bounded: false when it ran out.
    private func drain(_ tree: AttemptProcessTree, streams: Int, ends: AsyncStream<Void>) async -> Bool {
        while !tree.isEmpty { try? await Task.sleep(for: .milliseconds(5)) }
        return await withTaskGroup(of: Bool.self) { race in
            race.addTask {
                var streamsEnded = 0
                for await _ in ends {
                    streamsEnded += 1
                    if streamsEnded == streams { return true }
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
    }

    private enum BrowserStart {
        case ready(launcher: pid_t, url: String)
        /// It never answered: the attempt ends with this report once the tree is gone.
        case failed(AttemptReport, AttemptProcessTree)
    }

    private enum BrowserEvent {
        case listening(String)
        case exited(AttemptReport.Termination)
        case tooSlow
    }

    /// Starts the type's browser through the launcher, in the attempt's cgroup, session,
    /// limits and filter, and waits until its DevTools endpoint answers, it ends, or
    /// `AttemptBrowser.startupLimit` passes. Its output goes to the attempt's log. From
    /// then until the job's main process exits, a browser that dies other than by a clean
    /// exit stops the attempt as `browser_crashed` (retried while attempts remain).
    private func startBrowser(
        _ browser: JobTypeSettings.Browser, work: WorkDirectory, files: JobFiles, port: Int, cgroup: AttemptCgroup,
        user: RunAsUser?, variables: [String: String], tracking: AttemptProcessTree.Tracking, log: AttemptLog,
        started: ContinuousClock.Instant, end: AsyncStream<Void>.Continuation
    ) async throws -> BrowserStart {
        guard let program = context.chromium else {
            throw BrowserUnavailable(type: job.type)
        }
        let runsAsRoot = (user?.uid ?? geteuid()) == 0
        let command = AttemptBrowser.command(
            browser, program: program, userDataDirectory: work.userData, port: port, runsAsRoot: runsAsRoot)
        let seccomp = context.seccompPrograms[job.type]
        let arguments = launcherArguments(
            command: command, work: work, files: files, cgroup: cgroup, user: user, variables: variables,
            seccomp: seccomp != nil, browserSandbox: runsAsRoot ? .supervisorsOnly : .chromiums)
        let nothing = try Descriptors.open("/dev/null")
        defer { close(nothing) }
        // Its stdout, stderr and the launcher's report share one pipe: all of it is log.
        let output = try Descriptors.pipe()
        let pid: pid_t
        do {
            pid = try await ChildProcesses.shared.spawn(
                ChildProcesses.Launch(
                    executable: context.launcher, arguments: arguments, environment: variables, stdin: nothing,
                    stdout: output.write, stderr: output.write, report: output.write, seccomp: seccomp))
        } catch {
            output.close()
            throw error
        }
        close(output.write)
        let tree = AttemptProcessTree(tracking: tracking, jobID: job.id, roots: [pid])
        track(tree)

        let (events, event) = AsyncStream.makeStream(of: BrowserEvent.self)
        OutputLines.start(
            descriptor: output.read,
            onLine: { line in
                log.append("browser: " + String(decoding: line.bytes, as: UTF8.self))
                if let url = AttemptBrowser.devToolsURL(inLine: line.bytes) { event.yield(.listening(url)) }
            },
            onChunk: { log.flush() }, onEnd: { end.yield() })
        Task { [self] in
            let termination = await ChildProcesses.shared.termination(of: pid)
            event.yield(.exited(termination))
            // A clean exit is the job closing its browser; anything else is a crash.
            if termination != .exited(0) { stop(.browserCrashed) }
        }
        let timer = Task {
            try? await Task.sleep(for: AttemptBrowser.startupLimit)
            event.yield(.tooSlow)
        }
        defer { timer.cancel() }
        var pending = events.makeAsyncIterator()
        let first = await pending.next() ?? .tooSlow

        var termination: AttemptReport.Termination?
        switch first {
        case .listening(let url):
            let startup = ContinuousClock.now - started
            observations.withLock { $0.browserStartup = startup }
            return .ready(launcher: pid, url: url)
        case .exited(let ended):
            termination = ended
            log.append("supervisor: the browser ended before its DevTools endpoint answered")
        case .tooSlow:
            log.append("supervisor: the browser's DevTools endpoint did not answer within \(AttemptBrowser.startupLimit)")
        }
        stop(.browserCrashed)
        while termination == nil, let happened = await pending.next() {
            if case .exited(let ended) = happened { termination = ended }
        }
        let reason = control.withLock { $0.stop }
        return .failed(
            AttemptReport(termination: termination ?? .signaled(SIGKILL), stoppedBy: reason ?? .browserCrashed), tree)
    }

    /// Kills what runs of the attempt and waits until it is gone.
    private func killAndWait(_ tree: AttemptProcessTree) async {
        let killer = Self.terminate(tree, immediately: true, grace: .zero)
        while !tree.isEmpty { try? await Task.sleep(for: .milliseconds(5)) }
        killer.cancel()
    }

    /// A `browser` type on a runner that found no browser program at start-up.
    struct BrowserUnavailable: Error, CustomStringConvertible {
        let type: String
        var description: String { "job type \(type) needs a browser, and none was found when the runner started" }
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
