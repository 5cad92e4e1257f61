import Foundation
import SupervisorRunner
import Testing

/// `supervisor-launch`, as `swift build` left it, run as the runner will run it.
enum Launcher {
    static let url: URL = {
        if let path = ProcessInfo.processInfo.environment["SUPERVISOR_LAUNCH_BINARY"] { return URL(fileURLWithPath: path) }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/supervisor-launch")
    }()

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
        let pid: Int32
    }

    static func run(_ arguments: [String], environment: [String: String] = ["PATH": "/usr/bin:/bin"]) async throws -> Result {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("launch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("out")
        let err = scratch.appendingPathComponent("err")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        // Spawned as the runner spawns it: posix_spawn, no new process group, so that the
        // launcher's own setsid is what makes the job a session leader.
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, out.path, O_WRONLY | O_TRUNC, 0)
        posix_spawn_file_actions_addopen(&actions, 2, err.path, O_WRONLY | O_TRUNC, 0)
        let argv = ([url.path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, url.path, &actions, nil, argv, envp)
        guard spawned == 0 else { throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EIO) }
        let child = pid
        let status = await Task.detached { @Sendable () -> Int32 in
            var status: Int32 = 0
            while waitpid(child, &status, 0) < 0 && errno == EINTR {}
            return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        }.value
        return Result(
            status: status, stdout: try String(contentsOf: out, encoding: .utf8),
            stderr: try String(contentsOf: err, encoding: .utf8), pid: child)
    }
}

@Suite("the exec launcher")
struct LauncherTests {
    @Test("the job gets exactly the environment it was given, nothing else")
    func environment() async throws {
        let result = try await Launcher.run(["--", "env"], environment: ["PATH": "/usr/bin:/bin", "SUPERVISOR_JOB_ID": "j1"])
        #expect(result.status == 0)
        #expect(Set(result.stdout.split(separator: "\n")) == ["PATH=/usr/bin:/bin", "SUPERVISOR_JOB_ID=j1"])
    }

    @Test("the job leads its own session and process group")
    func session() async throws {
        // Fields 5 and 6 of /proc/PID/stat are the process group and the session.
        let result = try await Launcher.run(["--", "/bin/sh", "-c", "cat /proc/$$/stat"])
        #expect(result.status == 0)
        let fields = try #require(result.stdout.split(separator: ")").last).split(separator: " ")
        #expect(Int32(fields[2]) == result.pid)
        #expect(Int32(fields[3]) == result.pid)
    }

    @Test("the working directory, no core dumps, and the open-file limit")
    func plan() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("launch-cwd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let result = try await Launcher.run(
            ["--cwd", directory.path, "--nofile", "256", "--", "/bin/sh", "-c", "pwd; ulimit -c; ulimit -n"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.split(separator: "\n") == [Substring(directory.path), "0", "256"])
    }

    @Test("--uid, --gid and --groups make the job that user, with no capability left", .enabled(if: geteuid() == 0, "needs root"))
    func user() async throws {
        let result = try await Launcher.run([
            "--uid", "65534", "--gid", "65534", "--groups", "65534", "--", "/bin/sh", "-c",
            "id -u; id -g; id -G; grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status | cut -f2",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.split(separator: "\n") == ["65534", "65534", "65534", "0000000000000000", "0000000000000000", "0000000000000000"])
        let half = try await Launcher.run(["--uid", "65534", "--", "true"])
        #expect(half.status == 127)
        #expect(half.stderr.contains("--uid and --gid go together"))
    }

    @Test("where no cgroup can hold memory_max and pids_max: RLIMIT_AS and RLIMIT_NPROC")
    func fallbackLimits() async throws {
        let result = try await Launcher.run(["--rlimit-as", "268435456", "--nproc", "50", "--", "/bin/sh", "-c", "ulimit -v; ulimit -p"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.split(separator: "\n") == ["262144", "50"])
    }

    @Test(
        "--write-files: files that exist below it can be written, nothing can be made, removed or truncated there",
        .enabled(if: AttemptFileAccess.kernelABI ?? 0 >= 3, "needs Landlock ABI 3 (truncation is handled from there)")
    )
    func writeFilesOnly() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("write-files-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let existing = directory.appendingPathComponent("existing").path
        try "before".write(toFile: existing, atomically: false, encoding: .utf8)
        let script = """
            cd \(directory.path)
            printf AFTER! 1<> existing && echo written
            true > existing 2>/dev/null || echo no-truncate
            touch new 2>/dev/null || echo no-create
            mkdir sub 2>/dev/null || echo no-mkdir
            rm -f existing 2>/dev/null || echo no-remove
            """
        let result = try await Launcher.run(
            ["--landlock", String(AttemptFileAccess.kernelABI ?? 0), "--read", "/", "--write-files", directory.path, "--", "/bin/sh", "-c", script])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.split(separator: "\n") == ["written", "no-truncate", "no-create", "no-mkdir", "no-remove"])
        #expect(try String(contentsOfFile: existing, encoding: .utf8) == "AFTER!")
    }

    @Test("only stdin, stdout and stderr stay open")
    func descriptors() async throws {
        let result = try await Launcher.run(["--", "/bin/sh", "-c", "ls /proc/$$/fd"])
        #expect(result.status == 0)
        #expect(result.stdout.split(separator: "\n").sorted() == ["0", "1", "2"])
    }

    @Test("the report fd is closed by a successful exec and carries the reason of a failed one")
    func reportDescriptor() async throws {
        // The shell opens fd 5 for the launcher; the job then lists its own descriptors.
        let ok = try await Launcher.run([
            "--", "/bin/sh", "-c", #"exec 5>"$0"; exec "$1" --report-fd 5 -- /bin/sh -c 'ls /proc/$$/fd'"#,
            "/dev/null", Launcher.url.path,
        ])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.split(separator: "\n").sorted() == ["0", "1", "2"])

        let report = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString)")
        let failed = try await Launcher.run([
            "--", "/bin/sh", "-c", #"exec 5>"$0"; exec "$1" --report-fd 5 -- /nonexistent/job"#, report.path,
            Launcher.url.path,
        ])
        #expect(failed.status == 127)
        #expect(try String(contentsOf: report, encoding: .utf8) == "supervisor-launch: cannot run /nonexistent/job: No such file or directory\n")
        #expect(failed.stderr.isEmpty)
    }

    @Test("failures are one clear line and exit status 127", arguments: [
        (["--", "/nonexistent/job"], "cannot run /nonexistent/job: No such file or directory"),
        (["--", "no-such-program-anywhere"], "cannot run no-such-program-anywhere: No such file or directory"),
        (["--cwd", "/nonexistent", "--", "true"], "cannot enter /nonexistent: No such file or directory"),
        (["--nofile", "lots", "--", "true"], "--nofile needs a number"),
        (["--colour", "red", "--", "true"], "unknown option --colour"),
        (["--cwd"], "--cwd needs a value"),
        (["--"], "no command after --"),
        ([], "no command after --"),
    ])
    func failures(_ arguments: [String], _ message: String) async throws {
        let result = try await Launcher.run(arguments)
        #expect(result.status == 127)
        #expect(result.stderr.hasPrefix("supervisor-launch: "))
        #expect(result.stderr.contains(message), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    @Test("a program without a slash is found on the job's PATH")
    func pathLookup() async throws {
        let result = try await Launcher.run(["--", "sh", "-c", "echo found"])
        #expect(result.stdout == "found\n")
    }
}
