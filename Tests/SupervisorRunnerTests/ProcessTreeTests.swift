import Foundation
import SupervisorCore
import SupervisorRunner
import Testing

/// A process tree started from a test: `/bin/sh -c SCRIPT` (through `supervisor-launch`
/// when given launcher options), with SUPERVISOR_JOB_ID set, reporting "ready" on stdout.
struct SpawnedTree {
    static let launcher = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/debug/supervisor-launch").path

    let pid: pid_t
    let jobID: JobID

    static func start(script: String, jobID: JobID, launcherOptions: [String]? = nil) async throws -> SpawnedTree {
        let arguments = (launcherOptions.map { [launcher] + $0 + ["--", "/bin/sh"] } ?? ["/bin/sh"]) + ["-c", script]
        let (pid, reader) = try spawn(arguments, environment: ["SUPERVISOR_JOB_ID=\(jobID.rawValue)"])
        let ready = await Task.detached { () -> Bool in
            defer { close(reader) }
            var byte: UInt8 = 0
            var line: [UInt8] = []
            while read(reader, &byte, 1) == 1 {
                if byte == UInt8(ascii: "\n") { return line == Array("ready".utf8) }
                line.append(byte)
            }
            return false
        }.value
        guard ready else { throw POSIXError(.EIO) }
        return SpawnedTree(pid: pid, jobID: jobID)
    }

    /// Starts `arguments` as the runner starts the launcher: `posix_spawn`, with no
    /// process group of its own (a Foundation `Process` leads one, where setsid fails),
    /// stdin from /dev/null and stdout into a pipe, whose read end is returned.
    static func spawn(_ arguments: [String], environment: [String]) throws -> (pid: pid_t, stdout: Int32) {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw POSIXError(.EIO) }
        // Close-on-exec, so that processes other tests spawn meanwhile do not hold the pipe open.
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, ends[1], 1)
        posix_spawn_file_actions_addclose(&actions, ends[0])
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = (["PATH=/usr/bin:/bin"] + environment).map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, arguments[0], &actions, nil, argv, envp)
        close(ends[1])
        guard spawned == 0 else {
            close(ends[0])
            throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EIO)
        }
        return (pid, ends[0])
    }

    /// Waits for a child of the test process and returns its wait status.
    static func waitStatus(_ pid: pid_t) async -> Int32 {
        await Task.detached {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            return status
        }.value
    }

    /// Collects the exit of the tree's root (the test process is its parent).
    @discardableResult
    func reapRoot() async -> Int32 {
        await Self.waitStatus(pid)
    }
}

/// Waits for a condition the kernel makes true shortly (a killed tree emptying).
func eventually(_ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .seconds(10)
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

@Suite("process trees")
struct ProcessTreeTests {
    static let ids = UUIDv7Generator()
    /// This test process's attempt cgroups; their parent directories are left for the
    /// host's cleanup, as a daemon killed with SIGKILL would leave them.
    static let cgroups = AttemptCgroups.detect()

    @Test("without cgroups: descendants and processes carrying the job's marker are found and killed, nothing else")
    func processTable() async throws {
        let id = Self.ids.next(at: Date())
        let bystander = try await SpawnedTree.start(script: "echo ready; exec sleep 100", jobID: Self.ids.next(at: Date()))
        // A child, and a grandchild that leaves the session and clears its environment but
        // one variable: only the marker can find it once it is reparented.
        let tree = try await SpawnedTree.start(
            script: """
                sleep 100 &
                setsid sh -c 'exec env -i SUPERVISOR_JOB_ID=$SUPERVISOR_JOB_ID sleep 100' </dev/null >/dev/null 2>&1 &
                sleep 0.2; echo ready; wait
                """,
            jobID: id)
        let tracked = AttemptProcessTree(tracking: .processTable, jobID: id, roots: [tree.pid])
        let members = tracked.members()
        #expect(members.contains(tree.pid))
        #expect(members.count >= 3, "\(members)")
        #expect(!members.contains(bystander.pid))

        tracked.signalAll(SIGKILL)
        await tree.reapRoot()
        #expect(await eventually { tracked.isEmpty }, "left: \(tracked.members())")
        #expect(kill(bystander.pid, 0) == 0, "a process of another job is left alone")
        kill(bystander.pid, SIGKILL)
        await bystander.reapRoot()
    }

    @Test(
        "with cgroup v2: the job starts inside its cgroup and its exit status comes back through the launcher",
        .enabled(if: Self.cgroups.unified != nil, "needs a writable cgroup v2 hierarchy")
    )
    func launchIntoCgroup() async throws {
        let cgroup = Self.cgroups.make(name: "launch-\(UUID().uuidString)", limits: AttemptLimits())
        let path = try #require(cgroup.unified)
        defer { cgroup.remove() }
        /// The wait status of the launched job, and what it printed.
        func launch(_ script: String) async throws -> (status: Int32, output: String) {
            let (pid, reader) = try SpawnedTree.spawn(
                [SpawnedTree.launcher, "--cgroup", path, "--", "/bin/sh", "-c", script], environment: [])
            let output = await Task.detached { () -> [UInt8] in
                defer { close(reader) }
                var output: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let count = read(reader, &buffer, buffer.count)
                    if count <= 0 { return output }
                    output += buffer[..<count]
                }
            }.value
            return (await SpawnedTree.waitStatus(pid), String(decoding: output, as: UTF8.self))
        }
        let (status, text) = try await launch("cat /proc/self/cgroup; exit 3")
        #expect(status & 0x7f == 0 && (status >> 8) & 0xff == 3, "wait status \(status)")
        #expect(text.split(separator: "\n").contains { $0.hasPrefix("0::") && path.hasSuffix(String($0.dropFirst(3))) }, "\(text)")
        let (killed, _) = try await launch("kill -9 $$")
        #expect(killed & 0x7f == SIGKILL, "wait status \(killed)")
    }
    @Test(
        "with cgroup v2: the job's cgroup lists and kills the whole tree",
        .enabled(if: Self.cgroups.unified != nil, "needs a writable cgroup v2 hierarchy; the process-table test covers the fallback")
    )
    func cgroup() async throws {
        let id = Self.ids.next(at: Date())
        let cgroup = Self.cgroups.make(name: "\(id.rawValue)-1", limits: AttemptLimits())
        let path = try #require(cgroup.unified)
        defer { cgroup.remove() }
        let tree = try await SpawnedTree.start(
            script: "setsid sleep 100 </dev/null >/dev/null 2>&1 & sleep 100 & echo ready; wait",
            jobID: id, launcherOptions: ["--cgroup", path])
        let tracked = AttemptProcessTree(tracking: .cgroup(path: path), jobID: id, roots: [tree.pid])
        let members = tracked.members()
        #expect(members.count == 3, "\(members)")
        #expect(!members.contains(tree.pid), "the launcher stays outside, as the job's parent")
        #expect(!tracked.isEmpty)
        tracked.signalAll(SIGKILL)
        await tree.reapRoot()
        #expect(await eventually { tracked.isEmpty })
        #expect(tracked.members().isEmpty)
    }

    @Test(
        "limits go into the attempt's cgroups; peak memory and OOM kills are read back",
        .enabled(if: Self.cgroups.memory != nil && Self.cgroups.pids != nil, "needs writable memory and pids cgroups (v2 or v1); the rlimit fallback has its own test")
    )
    func limits() async throws {
        let id = Self.ids.next(at: Date())
        let cgroup = Self.cgroups.make(name: "\(id.rawValue)-1", limits: AttemptLimits(memoryMax: 32 << 20, pidsMax: 16))
        defer { cgroup.remove() }
        #expect(cgroup.fallbackMemoryMax == nil && cgroup.fallbackPidsMax == nil)
        var options: [String] = []
        if let unified = cgroup.unified { options += ["--cgroup", unified] }
        for directory in cgroup.joins { options += ["--join", directory] }
        // Forks past the limit are refused (EAGAIN); then memory past the limit ends it.
        let report = FileManager.default.temporaryDirectory.appendingPathComponent("forks-\(UUID().uuidString)").path
        let forks = """
            import os, time
            children = []
            try:
                for _ in range(40):
                    pid = os.fork()
                    if pid == 0:
                        time.sleep(5)
                        os._exit(0)
                    children.append(pid)
            except OSError as error:
                print(len(children), error.errno)
            for pid in children:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            """
        let tree = try await SpawnedTree.start(
            script: """
                echo ready
                python3 -c '\(forks)' > \(report)
                python3 -c 'b = [b"x" * (4 << 20) for _ in range(64)]'
                """,
            jobID: id, launcherOptions: options)
        let status = await tree.reapRoot()
        #expect(status & 0x7f == 0 && (status >> 8) & 0xff != 0, "python3 was killed, the shell reported it: \(status)")
        let forked = try String(contentsOfFile: report, encoding: .utf8).split(separator: " ")
        #expect(forked.count == 2 && Int(forked[0]) ?? 99 < 16 && forked[1] == "11\n", "forks refused with EAGAIN: \(forked)")
        #expect(cgroup.oomKills() >= 1)
        let peak = try #require(cgroup.peakMemoryBytes())
        #expect(peak > 16 << 20 && peak <= 33 << 20, "\(peak)")
    }

    @Test("without writable memory and pids cgroups the limits fall back to the launcher's rlimits")
    func limitsFallBack() {
        let none = AttemptCgroups(unified: nil, memory: nil, pids: nil)
        let cgroup = none.make(name: "x", limits: AttemptLimits(memoryMax: 64 << 20, pidsMax: 32))
        #expect(cgroup.fallbackMemoryMax == 64 << 20)
        #expect(cgroup.fallbackPidsMax == 32)
        #expect(cgroup.joins.isEmpty && cgroup.unified == nil)
        #expect(cgroup.peakMemoryBytes() == nil && cgroup.oomKills() == 0)
    }

    /// A v2 controller the test process's own cgroup can pass down, and that cgroup: where
    /// a test cgroup can play a delegated service's cgroup. Pure v2 hosts offer `pids`;
    /// hybrid ones (HOST-NOTES) only `hugetlb`, which obeys the same rules.
    static let delegable: (controller: String, own: String, enabledHere: Bool)? = {
        guard let parent = cgroups.unified?.parent else { return nil }
        let own = (parent as NSString).deletingLastPathComponent
        let available = ((try? String(contentsOfFile: own + "/cgroup.controllers", encoding: .utf8)) ?? "").split(whereSeparator: \.isWhitespace)
        guard let controller = ["pids", "memory", "hugetlb"].first(where: { available.contains(Substring($0)) }) else { return nil }
        let control = own + "/cgroup.subtree_control"
        let enabled = ((try? String(contentsOfFile: control, encoding: .utf8)) ?? "").split(whereSeparator: \.isWhitespace)
        if enabled.contains(Substring(controller)) { return (controller, own, false) }
        return AttemptCgroups.write("+" + controller, to: control) ? (controller, own, true) : nil
    }()

    @Test(
        "on a delegated cgroup v2 subtree the daemon moves itself into a leaf so the attempts get controllers; beside another process nothing moves",
        .enabled(if: Self.delegable != nil, "needs a cgroup v2 controller that the test process's cgroup can delegate")
    )
    func delegation() async throws {
        let (controller, own, enabledHere) = try #require(Self.delegable)
        defer { if enabledHere { _ = AttemptCgroups.write("-" + controller, to: own + "/cgroup.subtree_control") } }
        /// A service's cgroup holding `count` sleeping processes, the first playing the daemon.
        func service(holding count: Int) throws -> (directory: String, pids: [pid_t]) {
            let directory = own + "/delegation-\(UUID().uuidString)"
            guard mkdir(directory, 0o755) == 0 else { throw POSIXError(.EACCES) }
            let pids = try (0..<count).map { _ in
                let (pid, output) = try SpawnedTree.spawn(["/bin/sleep", "100"], environment: [])
                close(output)
                #expect(AttemptCgroups.write(String(pid), to: directory + "/cgroup.procs"))
                return pid
            }
            return (directory, pids)
        }
        func cgroupPath(of pid: pid_t) -> String {
            ((try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)) ?? "").split(separator: "\n")
                .first { $0.hasPrefix("0::") }.map { String($0.dropFirst(3)) } ?? ""
        }
        func end(_ pids: [pid_t], removing directories: [String]) async {
            for pid in pids {
                kill(pid, SIGKILL)
                await SpawnedTree.waitStatus(pid)
            }
            for directory in directories { rmdir(directory) }
        }

        let alone = try service(holding: 1)
        let parent = alone.directory + "/supervisor-test"
        #expect(mkdir(parent, 0o755) == 0)
        let delegated = AttemptCgroups.delegate([controller], own: alone.directory, parent: parent, process: alone.pids[0])
        #expect(delegated.controllers == [controller] && delegated.daemonLeaf == parent + "/daemon", "\(delegated)")
        #expect(cgroupPath(of: alone.pids[0]).hasSuffix("/supervisor-test/daemon"))
        let attempt = parent + "/attempt"
        #expect(mkdir(attempt, 0o755) == 0)
        let attemptControllers = (try? String(contentsOfFile: attempt + "/cgroup.controllers", encoding: .utf8)) ?? ""
        #expect(attemptControllers.split(whereSeparator: \.isWhitespace).contains(Substring(controller)), "\(attemptControllers)")
        await end(alone.pids, removing: [attempt, parent + "/daemon", parent, alone.directory])

        let shared = try service(holding: 2)
        let sharedParent = shared.directory + "/supervisor-test"
        #expect(mkdir(sharedParent, 0o755) == 0)
        let refused = AttemptCgroups.delegate([controller], own: shared.directory, parent: sharedParent, process: shared.pids[0])
        #expect(refused.controllers.isEmpty && refused.daemonLeaf == nil, "\(refused)")
        #expect(cgroupPath(of: shared.pids[0]) == cgroupPath(of: shared.pids[1]), "the daemon stayed beside the other process")
        await end(shared.pids, removing: [sharedParent, shared.directory])
    }

    @Test("a worker is judged gone only when that is certain: its pid free or reused, or the host rebooted; not in another pid namespace")
    func workerIdentity() async throws {
        let own = try #require(ProcessIdentity.of(getpid()))
        #expect(!ProcessIdentity.isProvablyGone(getpid(), recorded: own))
        let parts = own.split(separator: ":").map(String.init)
        #expect(ProcessIdentity.isProvablyGone(getpid(), recorded: "another-boot:\(parts[1]):\(parts[2])"))
        #expect(ProcessIdentity.isProvablyGone(getpid(), recorded: "\(parts[0]):\(parts[1]):1"), "the pid now belongs to a later process")
        #expect(!ProcessIdentity.isProvablyGone(getpid(), recorded: "\(parts[0]):1:1"), "another pid namespace cannot be judged")
        #expect(!ProcessIdentity.isProvablyGone(getpid(), recorded: "garbled"))

        let (pid, output) = try SpawnedTree.spawn(["/bin/true"], environment: [])
        close(output)
        let recorded = ProcessIdentity.of(pid)
        await SpawnedTree.waitStatus(pid)
        if let recorded { #expect(ProcessIdentity.isProvablyGone(pid, recorded: recorded), "an exited process") }
    }
}
