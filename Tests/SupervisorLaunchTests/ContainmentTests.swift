import Foundation
import SupervisorSandbox
import Testing

/// What the launcher does last before `execve`: capabilities, `no_new_privs`, the filter.
@Suite("the launcher's containment")
struct ContainmentTests {
    /// Runs `command` through the launcher with `profile` compiled and handed over on fd 4,
    /// as the runner hands it over.
    func run(_ command: [String], under profile: SeccompProfile?) async throws -> Launcher.Result {
        guard let profile else { return try await Launcher.run(["--"] + command) }
        let program = try SeccompProgram(compiling: profile)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("filter-\(UUID().uuidString)")
        try Data(program.instructions).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        return try await Launcher.run([
            "--", "/bin/sh", "-c", #"exec 4<"$0"; launcher=$1; shift; exec "$launcher" --seccomp-fd 4 -- "$@""#,
            file.path, Launcher.url.path,
        ] + command)
    }

    func shipped(_ name: String) throws -> SeccompProfile {
        try SeccompProfiles.load(name, relativeTo: URL(fileURLWithPath: "/nonexistent"))
    }

    /// Prints the errno of each call (0: it worked), one per line.
    static let attempts = """
        import ctypes, socket
        libc = ctypes.CDLL(None, use_errno=True)
        def errno_of(call):
            ctypes.set_errno(0)
            return 0 if call() == 0 else ctypes.get_errno()
        print(errno_of(lambda: libc.unshare(0x20000)))                 # CLONE_NEWNS
        print(errno_of(lambda: libc.unshare(0x10000000 | 0x20000)))    # CLONE_NEWUSER | CLONE_NEWNS
        print(errno_of(lambda: libc.mount(b"none", b"/mnt", b"tmpfs", 0, None)))
        """

    @Test("the job has no capability and no_new_privs, and runs under the filter")
    func status() async throws {
        let fields = ["/bin/sh", "-c", "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status"]
        let filtered = try await run(fields, under: try shipped("default"))
        #expect(filtered.status == 0, "\(filtered.stderr)")
        let lines = filtered.stdout.split(separator: "\n").map { $0.split(separator: "\t").joined(separator: " ") }
        #expect(lines == [
            "CapInh: 0000000000000000", "CapPrm: 0000000000000000", "CapEff: 0000000000000000",
            "CapBnd: 0000000000000000", "CapAmb: 0000000000000000", "NoNewPrivs: 1", "Seccomp: 2",
        ])
        let unfiltered = try await run(fields, under: nil)
        #expect(unfiltered.stdout.contains("Seccomp:\t0"))
        #expect(unfiltered.stdout.contains("NoNewPrivs:\t1"))
    }

    @Test("default: mount and new namespaces fail with EPERM (without the filter a user namespace is allowed)")
    func defaultDenies() async throws {
        let filtered = try await run(["python3", "-c", Self.attempts], under: try shipped("default"))
        #expect(filtered.status == 0, "\(filtered.stderr)")
        #expect(filtered.stdout == "1\n1\n1\n")
        let unfiltered = try await run(["python3", "-c", Self.attempts], under: nil)
        #expect(unfiltered.stdout.split(separator: "\n")[1] == "0", "the control: \(unfiltered.stdout)")
    }

    @Test("a rule's errnoRet is the errno the job gets")
    func errnoRet() async throws {
        let profile = try SeccompProfile(
            name: "no-mkdir",
            json: Data(#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28}]}"#.utf8))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("denied-\(UUID().uuidString)").path
        let result = try await run(["/bin/mkdir", directory], under: profile)
        #expect(result.status == 1)
        #expect(result.stderr.contains("No space left on device"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory))
    }

    @Test(
        "the chromium profile: headless Chromium renders a page, with no capabilities and no_new_privs",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium"), "needs Debian's chromium (scripts/install-deps installs it)")
    )
    func chromium() async throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("chromium-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: home) }
        let result = try await run(
            [
                "/usr/bin/chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                "--user-data-dir=\(home.appendingPathComponent("user-data").path)",
                "--dump-dom", "data:text/html,<title>contained</title><p>ok</p>",
            ], under: try shipped("chromium"))
        #expect(result.status == 0, "\(result.stderr.suffix(800))")
        #expect(result.stdout.contains("<title>contained</title>"), "\(result.stderr.suffix(800))")
    }

    @Test("strict runs a plain shell and Python script, and refuses raw, packet, AF_ALG and AF_VSOCK sockets")
    func strict() async throws {
        let script = """
            import socket, json, os, tempfile
            def errno_of(family, kind):
                try:
                    socket.socket(family, kind).close()
                    return 0
                except OSError as error:
                    return error.errno
            print(errno_of(socket.AF_INET, socket.SOCK_STREAM), errno_of(socket.AF_INET6, socket.SOCK_DGRAM),
                  errno_of(socket.AF_UNIX, socket.SOCK_STREAM), errno_of(socket.AF_INET, socket.SOCK_RAW),
                  errno_of(socket.AF_PACKET, socket.SOCK_RAW), errno_of(38, socket.SOCK_SEQPACKET),
                  errno_of(40, socket.SOCK_STREAM))
            with tempfile.TemporaryDirectory() as d:
                open(os.path.join(d, "x"), "w").write(json.dumps({"ok": True}))
            """
        let result = try await run(["/bin/sh", "-c", "echo shell; ls / > /dev/null && python3 -c \"$0\"", script], under: try shipped("strict"))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "shell\n0 0 0 1 1 1 1\n")
    }
}
