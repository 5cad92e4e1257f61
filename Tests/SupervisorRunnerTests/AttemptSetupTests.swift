import CSupervisorLinux
import Foundation
import SupervisorCore
import SupervisorRunner
import Testing

@Suite("attempt setup")
struct AttemptSetupTests {
    func scratch() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("runner-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test("a work directory is made fresh and private, and removed whole")
    func workDirectory() throws {
        let workRoot = try scratch()
        let job = UUIDv7Generator().next(at: Date())
        let work = WorkDirectory.location(workRoot: workRoot, workerID: "w1", job: job, attempt: 2)
        #expect(work.root == workRoot.path + "/w1/\(job.rawValue)-2")

        let files = FileManager.default
        try files.createDirectory(atPath: work.root, withIntermediateDirectories: true)
        try "left over".write(toFile: work.root + "/stale", atomically: true, encoding: .utf8)
        // Someone else's link in TMPDIR's place is replaced, never followed.
        try files.createSymbolicLink(atPath: work.temporary, withDestinationPath: workRoot.path)
        try work.create()
        let entries = try files.contentsOfDirectory(atPath: work.root).sorted()
        #expect(entries == ["home", "tmp", "user-data"])
        // This work root is long, so TMPDIR is a short link in /tmp to tmp/.
        #expect(work.temporary.hasPrefix("/tmp/supervisor-") && work.temporary.utf8.count == 32)
        #expect(try files.destinationOfSymbolicLink(atPath: work.temporary) == work.tmp)
        #expect(WorkDirectory(root: "/w/1").temporary == "/w/1/tmp", "a short tmp/ needs no link")
        #expect(try files.contentsOfDirectory(atPath: work.userData).isEmpty)
        for directory in [work.root, work.home, work.tmp, work.userData] {
            let mode = try files.attributesOfItem(atPath: directory)[.posixPermissions] as? Int
            #expect(mode == 0o700, "\(directory)")
        }

        // What a job might leave: nested files, an unreadable directory, links out.
        let outside = workRoot.appendingPathComponent("outside.txt")
        try "keep me".write(to: outside, atomically: true, encoding: .utf8)
        let nested = work.userData + "/Default/Cache"
        try files.createDirectory(atPath: nested, withIntermediateDirectories: true)
        try Data(count: 4096).write(to: URL(fileURLWithPath: nested + "/data_0"))
        try files.createSymbolicLink(atPath: work.tmp + "/link", withDestinationPath: outside.path)
        try files.createSymbolicLink(atPath: work.home + "/up", withDestinationPath: workRoot.path)
        chmod(work.userData + "/Default", 0)
        // A name that is not UTF-8.
        let notUTF8 = Array(work.tmp.utf8CString.dropLast()) + [CChar(UInt8(ascii: "/")), CChar(bitPattern: 0xFF), 0]
        let descriptor = open(notUTF8, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
        #expect(descriptor >= 0)
        close(descriptor)

        try work.remove()
        #expect(!FileManager.default.fileExists(atPath: work.root))
        #expect((try? files.destinationOfSymbolicLink(atPath: work.temporary)) == nil)
        #expect(try String(contentsOf: outside, encoding: .utf8) == "keep me")
        try work.remove()
    }

    @Test("the job's environment is exactly SPEC section 6")
    func environment() throws {
        let job = UUIDv7Generator().next(at: Date())
        let work = WorkDirectory(root: "/work/w1/\(job.rawValue)-1")
        var environment = AttemptEnvironment(
            jobID: job, jobType: "shot", attempt: 1, workDirectory: work,
            artifactsDirectory: "/artifacts/\(job.rawValue)", payloadFile: "/work/w1/\(job.rawValue)-1/payload.json",
            debugPort: 9301,
            typeEnvironment: ["LANG": "C.UTF-8", "HOME": "/root", "SUPERVISOR_WORK_DIR": "/elsewhere"],
            supervisorPath: "/usr/local/bin:/usr/bin:/bin"
        )
        let root = work.root
        #expect(environment.variables == [
            "SUPERVISOR_JOB_ID": job.rawValue, "SUPERVISOR_JOB_TYPE": "shot", "SUPERVISOR_ATTEMPT": "1",
            "SUPERVISOR_WORK_DIR": root, "SUPERVISOR_USER_DATA_DIR": root + "/user-data",
            "SUPERVISOR_DEBUG_PORT": "9301", "SUPERVISOR_ARTIFACTS_DIR": "/artifacts/\(job.rawValue)",
            "SUPERVISOR_PAYLOAD_FILE": root + "/payload.json", "HOME": root + "/home", "TMPDIR": work.temporary,
            "XDG_CONFIG_HOME": root + "/home/.config", "XDG_CACHE_HOME": root + "/home/.cache",
            "XDG_DATA_HOME": root + "/home/.local/share", "XDG_STATE_HOME": root + "/home/.local/state",
            "XDG_RUNTIME_DIR": work.temporary, "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
        ])

        environment.typeEnvironment["PATH"] = "/opt/venv/bin:/usr/bin"
        environment.secretsFile = "/work/secrets.json"
        environment.cdpURL = "ws://127.0.0.1:9301/devtools/browser/abc"
        let variables = environment.variables
        #expect(variables["PATH"] == "/opt/venv/bin:/usr/bin")
        #expect(variables["SUPERVISOR_SECRETS_FILE"] == "/work/secrets.json")
        #expect(variables["SUPERVISOR_CDP_URL"] == "ws://127.0.0.1:9301/devtools/browser/abc")
    }

    /// A listening socket on 127.0.0.1:port, or nil if the port is taken.
    static func listener(on port: Int) -> Int32? {
        // Close-on-exec: other suites spawn processes meanwhile, and file descriptors are the
        // whole process's even where the network namespace is one thread's.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr = in_addr(s_addr: inet_addr("127.0.0.1"))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 1) == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Whether this process may make network namespaces (CAP_SYS_ADMIN in CapEff).
    static let mayMakeNetworks: Bool = {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
              let mask = UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
        else { return false }
        return mask & (1 << 21) != 0
    }()

    /// Runs `body` on a thread of its own in a network namespace of its own, with loopback up.
    /// On the host, any process (another suite's client sockets, where the ephemeral range
    /// reaches low ports) may take a port between the test's look and the pool's; here the
    /// ports are the test's alone. The namespace goes with the thread.
    static func inOwnNetwork<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result {
                    guard supervisor_unshare_network() == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EPERM) }
                    let control = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                    defer { close(control) }
                    var request = ifreq()
                    withUnsafeMutableBytes(of: &request.ifr_ifrn.ifrn_name) { $0.copyBytes(from: Array("lo".utf8)) }
                    guard ioctl(control, UInt(SIOCGIFFLAGS), &request) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
                    request.ifr_ifru.ifru_flags |= Int16(IFF_UP)
                    guard ioctl(control, UInt(SIOCSIFFLAGS), &request) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
                    return try body()
                })
            }
        }
    }

    @Test(
        "debug ports: held ports and ports in use elsewhere are skipped; the range can run out",
        .enabled(if: Self.mayMakeNetworks, "needs CAP_SYS_ADMIN, for a network of its own where no other process takes the ports it checks")
    )
    func ports() async throws {
        let (first, second, exhausted, again) = try await Self.inOwnNetwork { () throws -> (Int, Int, Bool, Int) in
            // The first of three ports is taken by another program.
            guard let taken = Self.listener(on: 21_000) else { throw POSIXError(.EADDRINUSE) }
            defer { close(taken) }
            let pool = DebugPortPool(range: 21_000...21_002)
            let first = try pool.reserve()
            let second = try pool.reserve()
            let exhausted: Bool
            do {
                _ = try pool.reserve()
                exhausted = false
            } catch is DebugPortPool.Exhausted {
                exhausted = true
            }
            pool.release(first)
            return (first, second, exhausted, try pool.reserve())
        }
        #expect(Set([first, second]) == [21_001, 21_002])
        #expect(exhausted)
        #expect(again == first)
    }
}
