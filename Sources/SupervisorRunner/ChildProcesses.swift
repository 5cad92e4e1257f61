import CSupervisorLinux
import Foundation
import SupervisorCore
import Synchronization

/// Starts and reaps every child process of the supervisor (SPEC section 7).
///
/// Two Linux facts shape it (HOST-NOTES): `PR_SET_PDEATHSIG` fires when the *thread* that
/// forked a child exits, so every spawn happens on one thread that lives as long as the
/// process; and a child subreaper inherits every orphaned descendant, which only
/// `waitpid(-1)` collects, so one thread owns all reaping. Nothing else in the process
/// may wait for children (no Foundation `Process` in the daemon).
public final class ChildProcesses: Sendable {
    /// What to start: an executable with exactly this argv and environment, and the
    /// descriptors that become its 0, 1, 2 and 3.
    public struct Launch: Sendable {
        public var executable: String
        public var arguments: [String]
        public var environment: [String: String]
        public var stdin: Int32
        public var stdout: Int32
        public var stderr: Int32
        /// Becomes descriptor 3 of the child.
        public var report: Int32
        /// Becomes descriptor 4 of the child: the seccomp program for the launcher.
        public var seccomp: Int32?

        public init(
            executable: String, arguments: [String], environment: [String: String], stdin: Int32, stdout: Int32,
            stderr: Int32, report: Int32, seccomp: Int32? = nil
        ) {
            self.executable = executable
            self.arguments = arguments
            self.environment = environment
            self.stdin = stdin
            self.stdout = stdout
            self.stderr = stderr
                self.report = report
            self.seccomp = seccomp
        }
    }

    public struct SpawnFailed: Error, CustomStringConvertible {
        public let executable: String
        public let errno: Int32
        public var description: String { "cannot start \(executable): \(String(cString: strerror(errno)))" }
    }

    /// The one instance of the process: there can be only one reaper.
    public static let shared = ChildProcesses()

    private enum Exit {
        case awaited(CheckedContinuation<AttemptReport.Termination, Never>)
        case collected(AttemptReport.Termination)
        case running
    }

    private struct Request: @unchecked Sendable {
        let launch: Launch
        let reply: CheckedContinuation<Result<pid_t, SpawnFailed>, Never>
    }

    private let exits = Mutex<[pid_t: Exit]>([:])
    private let requests = Mutex<[Request]>([])
    private let requestSignal = DispatchSemaphore(value: 0)
    /// Raised after each spawn, so the reaper stops waiting when there was nothing to reap.
    private let childSignal = DispatchSemaphore(value: 0)

    private init() {
        // Descendants that double-fork or setsid stay ours to kill and reap.
        _ = supervisor_set_child_subreaper()
        // A job runs as the supervisor's user (root included, without capabilities): not
        // dumpable, the supervisor's /proc/PID/mem, environ and fd/ are closed to it,
        // which no seccomp rule on ptrace alone would ensure.
        _ = supervisor_set_not_dumpable()
        let spawner = Thread { [self] in spawnLoop() }
        spawner.name = "supervisor-spawn"
        spawner.start()
        let reaper = Thread { [self] in reapLoop() }
        reaper.name = "supervisor-reap"
        reaper.start()
    }

    /// Starts the process; returns its pid.
    public func spawn(_ launch: Launch) async throws -> pid_t {
        let result = await withCheckedContinuation { continuation in
            requests.withLock { $0.append(Request(launch: launch, reply: continuation)) }
            requestSignal.signal()
        }
        return try result.get()
    }

    /// How the process ended, once it has been reaped. Each pid may be awaited once.
    public func termination(of pid: pid_t) async -> AttemptReport.Termination {
        await withCheckedContinuation { continuation in
            let ready: AttemptReport.Termination? = exits.withLock { exits in
                if case .collected(let termination) = exits[pid] {
                    exits[pid] = nil
                    return termination
                }
                exits[pid] = .awaited(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    private func spawnLoop() {
        while true {
            requestSignal.wait()
            guard let request = requests.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { continue }
            // The pid is registered under the same lock the reaper takes, so an exit
            // reaped before registration cannot be mistaken for an orphan's.
            let result = exits.withLock { exits -> Result<pid_t, SpawnFailed> in
                let outcome = Self.posixSpawn(request.launch)
                if case .success(let pid) = outcome { exits[pid] = .running }
                return outcome
            }
            if case .success = result { childSignal.signal() }
            request.reply.resume(returning: result)
        }
    }

    private func reapLoop() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, 0)
            if pid < 0 {
                if errno == ECHILD { childSignal.wait() }
                continue
            }
            let termination: AttemptReport.Termination =
                status & 0x7f == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
            let waiter: CheckedContinuation<AttemptReport.Termination, Never>? = exits.withLock { exits in
                switch exits[pid] {
                case .awaited(let continuation)?:
                    exits[pid] = nil
                    return continuation
                case .running?:
                    exits[pid] = .collected(termination)
                    return nil
                case .collected?, nil:
                    // An orphaned descendant of some attempt: reaped, nothing waits for it.
                    return nil
                }
            }
            waiter?.resume(returning: termination)
        }
    }

    private static func posixSpawn(_ launch: Launch) -> Result<pid_t, SpawnFailed> {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Sources are the supervisor's own close-on-exec descriptors, which are all above 3
        // in a running daemon; dup2 clears close-on-exec on the copies.
        var descriptors = [(launch.stdin, 0), (launch.stdout, 1), (launch.stderr, 2), (launch.report, 3)]
        if let seccomp = launch.seccomp { descriptors.append((seccomp, 4)) }
        for (source, target) in descriptors {
            posix_spawn_file_actions_adddup2(&actions, source, Int32(target))
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([launch.executable] + launch.arguments).map { strdup($0) } + [nil]
        let envp = launch.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let error = posix_spawn(&pid, launch.executable, &actions, &attributes, argv, envp)
        return error == 0 ? .success(pid) : .failure(SpawnFailed(executable: launch.executable, errno: error))
    }
}
