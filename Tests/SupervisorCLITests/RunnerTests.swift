import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SupervisorCore
import SupervisorRunner
import SupervisorSQLite
import SupervisorStore
import Testing

/// A daemon whose job types are the scripts in `Jobs/`, and the calls the runner tests make.
struct RunnerHarness {
    static let jobs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Jobs")

    let setup: DaemonSetup
    let daemon: Daemon
    /// Sent with every request that names no token of its own.
    var token: String?

    /// - Parameter config: more tables, after the job types.
    static func start(runner: String = "", config: String = "", token: String? = nil, environment: [String: String] = [:])
        async throws -> RunnerHarness
    {
        func type(_ name: String, _ extra: String = "") -> String {
            "[job_types.\(name)]\ncommand = [\"/bin/sh\", \"\(jobs.appendingPathComponent("\(name).sh").path)\"]\n\(extra)\n"
        }
        let setup = try DaemonSetup(
            runner: """
                concurrency = 4
                work_root = "./data/work"
                artifacts_root = "./data/artifacts"
                kill_grace = "300ms"
                max_log_bytes = "16K"
                \(runner)
                """,
            extraConfig: """
                \(type("progress"))
                \(type("environment", "env = { LANG = \"C.UTF-8\" }"))
                \(type("hold"))
                \(type("escape", "timeout = \"1s\""))
                \(type("orphaned"))
                [job_types.linger]
                command = ["/bin/sh", "\(jobs.appendingPathComponent("escape.sh").path)"]
                \(type("fail", "backoff = \"200ms\"\nbackoff_max = \"1s\"\nmax_attempts = 3"))
                \(type("permanent"))
                \(type("chatty"))
                \(type("twostreams"))
                \(type("bigresult"))
                \(type("flood"))
                \(type("artifacts"))
                \(type("secrets"))
                \(type("idle", "idle_timeout = \"400ms\"\nmax_attempts = 1"))
                \(type("heartbeat", "idle_timeout = \"400ms\"\nmax_attempts = 1"))
                [job_types.coded]
                command = ["/bin/sh", "\(jobs.appendingPathComponent("fail.sh").path)"]
                permanent_exit_codes = [3]
                \(type("confinement"))
                [job_types.nomkdir]
                command = ["/bin/sh", "\(jobs.appendingPathComponent("confinement.sh").path)"]
                profile = "no-mkdir"
                \(type("forkbomb", "pids_max = 64\ntimeout = \"2s\"\nmax_attempts = 1"))
                \(type("hog", "memory_max = \"64M\"\nmax_attempts = 1"))
                \(type("snoop", "read_paths = [\"./shared\"]"))
                [job_types.venv]
                command = ["./venv/bin/python", "\(jobs.appendingPathComponent("venv_job.py").path)"]
                [job_types.asnobody]
                command = ["/bin/sh", "\(jobs.appendingPathComponent("whoami.sh").path)"]
                run_as = "nobody"
                [job_types.single]
                command = ["/bin/sh", "\(jobs.appendingPathComponent("hold.sh").path)"]
                concurrency = 1
                \(config)
                """)
        // A profile of the harness's own, found by name in profiles/ next to the config.
        let profiles = setup.directory.appendingPathComponent("profiles")
        try FileManager.default.createDirectory(at: profiles, withIntermediateDirectories: true)
        try #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28}]}"#
            .write(to: profiles.appendingPathComponent("no-mkdir.json"), atomically: true, encoding: .utf8)
        let daemon = try await Daemon.start(config: setup.config, environment: environment)
        return RunnerHarness(setup: setup, daemon: daemon, token: token)
    }

    var workRoot: URL { setup.directory.appendingPathComponent("data/work") }

    func artifacts(_ id: String) -> URL {
        setup.directory.appendingPathComponent("data/artifacts/\(id)/artifacts")
    }

    /// A fresh gate file path for a job to wait on; `open(_:)` creates it.
    func gate() -> String {
        setup.directory.appendingPathComponent("gate-\(UUID().uuidString)").path
    }

    func open(_ gate: String) {
        FileManager.default.createFile(atPath: gate, contents: nil)
    }

    func submit(_ type: String, payload: JSONValue = .null, extra: [String: JSONValue] = [:], token: String? = nil)
        async throws -> String
    {
        let body = JSONValue.object(["type": .string(type), "payload": payload].merging(extra) { $1 })
        let answer = try await request(.POST, "/api/jobs", body: body, token: token)
        #expect(answer.status == 202)
        guard case .string(let id)? = answer.document["jobId"] else { throw HarnessFailure("no job id in \(answer.document)") }
        return id
    }

    func job(_ id: String) async throws -> JSONValue {
        try await request(.GET, "/api/jobs/\(id)").document
    }

    func request(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil, token: String? = nil) async throws
        -> (status: UInt, document: JSONValue, text: String, data: Data)
    {
        var request = HTTPClientRequest(url: daemon.baseURL + path)
        request.method = method
        if let token = token ?? self.token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body.serialized()))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        let data = Data(bytes.readableBytesView)
        return (response.status.code, (try? JSONValue(parsing: data)) ?? .null, String(decoding: data, as: UTF8.self), data)
    }

    /// Waits for the daemon to log that the job's attempt ended, then reads the job.
    func ended(_ id: String, attempt: Int = 1) async throws -> JSONValue {
        let line = await daemon.log.first { $0["message"] == "attempt ended" && $0["job"] == id && $0["attempt"] == "\(attempt)" }
        guard line != nil else { throw HarnessFailure("the daemon ended before attempt \(attempt) of \(id) did") }
        return try await job(id)
    }

    /// Polls the job until `condition` holds: the API has no event stream yet to await.
    func poll(_ id: String, until condition: (JSONValue) -> Bool) async throws -> JSONValue {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let document = try await request(.GET, "/api/jobs/\(id)/status").document
            if condition(document) { return document }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw HarnessFailure("job \(id) never reached the expected state")
    }

    /// Submits `count` hold jobs that wait for `gate`, and returns once all of them run.
    func holdRunning(_ count: Int, until gate: String) async throws -> [String] {
        var ids: [String] = []
        for _ in 0..<count { ids.append(try await submit("hold", payload: .string(gate))) }
        for id in ids { try await waitUntilRunning(id) }
        return ids
    }

    func waitUntilRunning(_ id: String) async throws {
        _ = try await poll(id) { $0["progress"]?["percent"] != nil && $0["progress"] != .null }
    }

    /// The attempt directories left under `work_root`.
    func leftoverWorkDirectories() throws -> [String] {
        let workers = (try? FileManager.default.contentsOfDirectory(atPath: workRoot.path)) ?? []
        return try workers.flatMap { worker in
            try FileManager.default.contentsOfDirectory(atPath: workRoot.appendingPathComponent(worker).path)
        }
    }

    /// The daemon started again on the same config and store, as after a crash.
    func restarted() async throws -> RunnerHarness {
        RunnerHarness(setup: setup, daemon: try await Daemon.start(config: setup.config), token: token)
    }

    func stop() async {
        daemon.signal(SIGTERM)
        _ = await daemon.waitForExit()
    }
}

struct HarnessFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Whether a process with this pid still exists (zombies included).
func processExists(_ pid: pid_t) -> Bool {
    kill(pid, 0) == 0 || errno == EPERM
}

/// Whether the process is gone or dead: a zombie counts as ended, because an orphan's
/// exit is collected by whichever ancestor adopted it, not by the test.
func processEnded(_ pid: pid_t) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")")
    else { return true }
    return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
}

func pid(in file: URL) throws -> pid_t {
    let text = try String(contentsOf: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    guard let pid = pid_t(text) else { throw HarnessFailure("no pid in \(file.path)") }
    return pid
}

@Suite("the runner", .serialized)
struct RunnerTests {
    @Test("progress shows on /status while the job runs; the result and last progress stay")
    func progressAndResult() async throws {
        let harness = try await RunnerHarness.start()
        let gate = harness.gate()
        let id = try await harness.submit("progress", payload: .string(gate))
        let running = try await harness.poll(id) { $0["progress"] != .null && $0["progress"] != nil }
        #expect(running["status"] == "running")
        #expect(running["progress"]?["percent"] == 50)
        #expect(running["progress"]?["message"] == "half way")
        #expect(running["attempt"] == 1)
        harness.open(gate)
        let job = try await harness.ended(id)
        #expect(job["status"] == "completed")
        #expect(job["result"] == ["done": true])
        #expect(job["progress"]?["percent"] == 50, "a completed job keeps its last progress")
        #expect(job["attempts"]?[0]?["exitCode"] == 0)
        #expect(job["attempts"]?[0]?["outcome"] == "completed")
        #expect(try await harness.request(.GET, "/api/jobs/\(id)/result").document == ["done": true])
        #expect(try harness.leftoverWorkDirectories().isEmpty)
        await harness.stop()
    }

    @Test("the job gets exactly the environment of SPEC section 6, the payload on stdin, and its work dir as cwd")
    func environmentAndPayload() async throws {
        let harness = try await RunnerHarness.start(environment: [
            "SUPERVISOR_TOKEN": "must-not-leak", "SUPERVISOR_DATABASE_URL": "", "SOME_DAEMON_SECRET": "must-not-leak",
        ])
        let payload: JSONValue = ["url": "https://example.com", "n": 3]
        let id = try await harness.submit("environment", payload: payload)
        let job = try await harness.ended(id)
        #expect(job["status"] == "completed")
        let files = harness.artifacts(id)
        let lines = try String(contentsOf: files.appendingPathComponent("env.txt"), encoding: .utf8).split(separator: "\n")
        var environment: [String: String] = [:]
        for line in lines {
            guard let equals = line.firstIndex(of: "=") else { continue }
            environment[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        let expected: Set<String> = [
            "SUPERVISOR_JOB_ID", "SUPERVISOR_JOB_TYPE", "SUPERVISOR_ATTEMPT", "SUPERVISOR_WORK_DIR",
            "SUPERVISOR_USER_DATA_DIR", "SUPERVISOR_DEBUG_PORT", "SUPERVISOR_ARTIFACTS_DIR", "SUPERVISOR_PAYLOAD_FILE",
            "HOME", "TMPDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR",
            "PATH", "LANG",
            // Added by the shell itself.
            "PWD",
        ]
        #expect(Set(environment.keys) == expected)
        #expect(environment["SUPERVISOR_JOB_ID"] == id)
        #expect(environment["SUPERVISOR_JOB_TYPE"] == "environment")
        #expect(environment["SUPERVISOR_ATTEMPT"] == "1")
        #expect(environment["LANG"] == "C.UTF-8")
        #expect(environment["PATH"] == ProcessInfo.processInfo.environment["PATH"])
        let workDir = try #require(environment["SUPERVISOR_WORK_DIR"])
        #expect(environment["HOME"] == workDir + "/home")
        // The harness's work root is long: TMPDIR is the short link, leading to tmp/.
        let temporary = try #require(environment["TMPDIR"])
        #expect(temporary.hasPrefix("/tmp/supervisor-") && temporary.utf8.count == 32)
        #expect(environment["XDG_RUNTIME_DIR"] == temporary)
        let resolved = try String(contentsOf: files.appendingPathComponent("tmpdir.txt"), encoding: .utf8)
        #expect(resolved.trimmingCharacters(in: .newlines) == workDir + "/tmp")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: temporary)) == nil, "the link is removed with the work dir")
        #expect(environment["SUPERVISOR_USER_DATA_DIR"] == workDir + "/user-data")
        #expect(workDir.hasPrefix(harness.workRoot.path))
        let stdin = try Data(contentsOf: files.appendingPathComponent("stdin.json"))
        #expect(try JSONValue(parsing: stdin) == payload)
        let cwd = try String(contentsOf: files.appendingPathComponent("cwd.txt"), encoding: .utf8)
        #expect(cwd.trimmingCharacters(in: .newlines) == workDir)
        #expect(!FileManager.default.fileExists(atPath: workDir), "the work dir is removed after the attempt")
        await harness.stop()
    }

    @Test("four attempts at once get distinct ports and directories")
    func fourConcurrentAttempts() async throws {
        let harness = try await RunnerHarness.start()
        let gate = harness.gate()
        let ids = try await harness.holdRunning(4, until: gate)
        let seen = try ids.map { id in
            try String(contentsOf: harness.artifacts(id).appendingPathComponent("seen.txt"), encoding: .utf8)
                .split(separator: " ").map(String.init)
        }
        #expect(Set(seen.map { $0[0] }).count == 4, "ports: \(seen.map { $0[0] })")
        #expect(Set(seen.map { $0[1] }).count == 4)
        #expect(Set(seen.map { $0[2] }).count == 4)
        #expect(try harness.leftoverWorkDirectories().count == 4)
        harness.open(gate)
        for id in ids { #expect(try await harness.ended(id)["status"] == "completed") }
        #expect(try harness.leftoverWorkDirectories().isEmpty)
        await harness.stop()
    }

    @Test("every attempt runs without capabilities, with no_new_privs and its type's seccomp profile (default unless named)")
    func confinement() async throws {
        let harness = try await RunnerHarness.start()
        let confined = try await harness.ended(try await harness.submit("confinement"))
        #expect(confined["status"] == "completed")
        #expect(confined["result"] == [
            "seccomp": 2, "noNewPrivs": 1, "capEff": "0000000000000000", "mkdir": true, "supervisorFound": true,
            "supervisorEnvironReadable": false,
        ])
        let denied = try await harness.ended(try await harness.submit("nomkdir"))
        #expect(denied["result"]?["mkdir"] == false, "the type's own profile denies mkdir: \(denied)")
        #expect(denied["result"]?["seccomp"] == 2)
        await harness.stop()
    }

    /// Whether this host has writable memory and pids cgroups for the daemon's attempts.
    /// The probe's (empty) parent directories stay: every suite of this test process
    /// shares them, and another may be using them.
    static let cgroupLimits: Bool = {
        let cgroups = AttemptCgroups.detect()
        return cgroups.memory != nil && cgroups.pids != nil
    }()

    @Test(
        "a fork bomb under pids_max = 64 is contained and ended at its timeout; the daemon stays healthy",
        .enabled(if: Self.cgroupLimits, "needs writable memory and pids cgroups (v2 or v1); the launcher's rlimit fallback has its own test")
    )
    func forkBomb() async throws {
        let harness = try await RunnerHarness.start()
        let id = try await harness.submit("forkbomb")
        let job = try await harness.ended(id)
        #expect(job["status"] == "failed")
        #expect(job["error"]?["class"] == "timeout")
        #expect(try await harness.request(.GET, "/healthz").status == 200)
        let log = try await harness.request(.GET, "/api/jobs/\(id)/logs").text
        #expect(log.contains("fork"), "the shell was refused forks: \(log.prefix(300))")
        #expect(try harness.leftoverWorkDirectories().isEmpty)
        await harness.stop()
    }

    @Test(
        "a job over memory_max ends as oom, with its peak memory in the attempt",
        .enabled(if: Self.cgroupLimits, "needs writable memory and pids cgroups (v2 or v1); the launcher's rlimit fallback has its own test")
    )
    func outOfMemory() async throws {
        let harness = try await RunnerHarness.start()
        let job = try await harness.ended(try await harness.submit("hog"))
        #expect(job["status"] == "failed")
        #expect(job["error"]?["class"] == "oom", "\(job)")
        guard case .int(let peak)? = job["attempts"]?[0]?["peakMemoryBytes"] else {
            Issue.record("no peakMemoryBytes in \(job)")
            return
        }
        #expect(peak > 32 << 20 && peak <= 65 << 20, "\(peak)")
        await harness.stop()
    }

    @Test(
        "Landlock: a job cannot read the store, the config or another attempt's directory, nor write outside its own",
        .enabled(if: AttemptFileAccess.kernelABI != nil, "needs Landlock; without it file access is not confined (logged at start)")
    )
    func landlock() async throws {
        let harness = try await RunnerHarness.start()
        let shared = harness.setup.directory.appendingPathComponent("shared")
        try FileManager.default.createDirectory(at: shared, withIntermediateDirectories: true)
        try "for every job of the type".write(to: shared.appendingPathComponent("data.txt"), atomically: true, encoding: .utf8)
        let gate = harness.gate()
        let holder = try await harness.submit("hold", payload: .string(gate))
        try await harness.waitUntilRunning(holder)
        let seen = try String(contentsOf: harness.artifacts(holder).appendingPathComponent("seen.txt"), encoding: .utf8)
        let otherWork = String(seen.split(separator: " ")[1])
        let outside = harness.setup.directory.appendingPathComponent("written-outside").path
        let paths = [
            harness.setup.directory.appendingPathComponent("data/jobs.sqlite").path, harness.setup.config.path, otherWork,
            outside, shared.appendingPathComponent("data.txt").path,
        ]
        let job = try await harness.ended(try await harness.submit("snoop", payload: .string(paths.joined(separator: " "))))
        #expect(job["result"] == [
            "store": "denied", "config": "denied", "otherAttempt": "denied", "outside": "denied", "readPath": "allowed",
            "own": "allowed",
        ])
        #expect(!FileManager.default.fileExists(atPath: outside))
        harness.open(gate)
        _ = try await harness.ended(holder)
        await harness.stop()
    }

    @Test(
        "Landlock: a Python job run by a virtualenv's interpreter finds its virtualenv and the standard library",
        .enabled(if: AttemptFileAccess.kernelABI != nil, "needs Landlock")
    )
    func virtualenv() async throws {
        let harness = try await RunnerHarness.start()
        let venv = harness.setup.directory.appendingPathComponent("venv")
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        python.arguments = ["-m", "venv", "--without-pip", venv.path]
        #expect(try await SupervisorBinary.runToExit(python) == 0)
        let job = try await harness.ended(try await harness.submit("venv"))
        #expect(job["status"] == "completed", "\(job)")
        #expect(job["result"] == ["prefix": .string(venv.path), "json": "[1]"])
        await harness.stop()
    }

    @Test(
        "run_as: the job runs as that user, and its directories and payload are its own",
        .enabled(if: geteuid() == 0 && getpwnam("nobody") != nil, "needs a root supervisor and a user named nobody")
    )
    func runAs() async throws {
        let harness = try await RunnerHarness.start()
        let nobody = try #require(getpwnam("nobody")).pointee
        let job = try await harness.ended(try await harness.submit("asnobody", payload: ["n": 1]))
        #expect(job["status"] == "completed", "\(job)")
        #expect(job["result"] == ["uid": .int(Int64(nobody.pw_uid)), "gid": .int(Int64(nobody.pw_gid)), "own": true])
        await harness.stop()
    }

    @Test("a type's concurrency cap holds its next job back while jobs of other types are claimed past it")
    func typeConcurrencyCap() async throws {
        let harness = try await RunnerHarness.start()
        let gate = harness.gate()
        let first = try await harness.submit("single", payload: .string(gate))
        try await harness.waitUntilRunning(first)
        let second = try await harness.submit("single", payload: .string(gate))
        let other = try await harness.submit("echo")
        #expect(try await harness.ended(other)["status"] == "completed")
        // `other` came after `second` in claim order and ran while three slots were free.
        #expect(try await harness.job(second)["status"] == "pending")
        harness.open(gate)
        #expect(try await harness.ended(first)["status"] == "completed")
        #expect(try await harness.ended(second)["status"] == "completed")
        await harness.stop()
    }

    @Test("limits.max_running_per_owner holds an owner's next job back while other owners' jobs run")
    func ownerRunningCap() async throws {
        let alice = "alice-token-0123456789", bob = "bob-token-0123456789"
        let harness = try await RunnerHarness.start(
            config: """
                [limits]
                max_running_per_owner = 1
                [[auth.tokens]]
                token = "\(alice)"
                owner = "alice"
                [[auth.tokens]]
                token = "\(bob)"
                owner = "bob"
                [[auth.tokens]]
                token = "admin-token-0123456789"
                owner = "ops"
                role = "admin"
                """,
            token: "admin-token-0123456789")
        let gate = harness.gate()
        let first = try await harness.submit("hold", payload: .string(gate), token: alice)
        try await harness.waitUntilRunning(first)
        let second = try await harness.submit("hold", payload: .string(gate), token: alice)
        let bobs = try await harness.submit("echo", token: bob)
        #expect(try await harness.ended(bobs)["status"] == "completed")
        #expect(try await harness.job(second)["status"] == "pending")
        harness.open(gate)
        #expect(try await harness.ended(first)["status"] == "completed")
        #expect(try await harness.ended(second)["status"] == "completed")
        await harness.stop()
    }

    @Test("estimatedWaitSeconds: null until an attempt was measured, then rounds of the queue ahead times the mean attempt")
    func estimatedWait() async throws {
        let harness = try await RunnerHarness.start()
        let gate = harness.gate()
        let holds = try await harness.holdRunning(4, until: gate)
        // Every slot busy and nothing measured yet: a queued job has a position, no estimate.
        let first = try await harness.submit("hold", payload: .string(gate))
        var status = try await harness.request(.GET, "/api/jobs/\(first)/status").document
        #expect(status["queuePosition"] == 1)
        #expect(status["estimatedWaitSeconds"] == .null)
        harness.open(gate)
        for id in holds + [first] { _ = try await harness.ended(id) }

        let secondGate = harness.gate()
        let busy = try await harness.holdRunning(4, until: secondGate)
        var queued: [String] = []
        for _ in 0..<5 { queued.append(try await harness.submit("hold", payload: .string(secondGate))) }
        status = try await harness.request(.GET, "/api/jobs/\(queued[0])/status").document
        #expect(status["queuePosition"] == 1)
        #expect(status["estimatedWaitSeconds"] == 0, "first in line, next round")
        status = try await harness.request(.GET, "/api/jobs/\(queued[4])/status").document
        #expect(status["queuePosition"] == 5)
        let wait: Double? = switch status["estimatedWaitSeconds"] {
        case .double(let seconds)?: seconds
        case .int(let seconds)?: Double(seconds)
        default: nil
        }
        #expect((wait ?? 0) > 0, "one round of four ahead: \(status)")
        harness.open(secondGate)
        for id in busy + queued { _ = try await harness.ended(id) }
        await harness.stop()
    }

    @Test("a timeout kills a setsid grandchild and a child that ignores SIGTERM, and removes the work dir")
    func timeoutKillsTheTree() async throws {
        let harness = try await RunnerHarness.start()
        let id = try await harness.submit("escape")
        let job = try await harness.ended(id)
        #expect(job["attempts"]?[0]?["outcome"] == "timeout")
        #expect(job["status"] == "pending", "a timeout is retried while attempts remain")
        #expect(job["error"]?["class"] == "timeout")
        let files = harness.artifacts(id)
        for name in ["setsid.pid", "stubborn.pid"] {
            let pid = try pid(in: files.appendingPathComponent(name))
            #expect(!processExists(pid), "\(name): \(pid) outlived the attempt")
        }
        #expect(try harness.leftoverWorkDirectories().filter { $0.hasPrefix("\(id)-1") }.isEmpty)
        _ = try await harness.request(.POST, "/api/jobs/\(id)/cancel")
        await harness.stop()
    }

    @Test("a cancel kills the whole tree at once and ends cancelled, never retried")
    func cancelKillsTheTree() async throws {
        let harness = try await RunnerHarness.start()
        let id = try await harness.submit("linger")
        try await harness.waitUntilRunning(id)
        let answer = try await harness.request(.POST, "/api/jobs/\(id)/cancel")
        #expect(answer.status == 200)
        #expect(answer.document["status"] == "cancelled")
        let job = try await harness.job(id)
        #expect(job["status"] == "cancelled")
        #expect(job["attempts"]?[0]?["outcome"] == "cancelled")
        #expect(job["attempts"]?[0]?["signal"] == 9)
        let files = harness.artifacts(id)
        for name in ["setsid.pid", "stubborn.pid"] {
            let pid = try pid(in: files.appendingPathComponent(name))
            #expect(!processExists(pid), "\(name): \(pid) outlived the cancel")
        }
        #expect(try harness.leftoverWorkDirectories().isEmpty)
        await harness.stop()
    }

    @Test("failures are retried with a growing backoff, then the job fails with the last exit status")
    func retriesWithBackoff() async throws {
        let harness = try await RunnerHarness.start()
        let id = try await harness.submit("fail")
        let job = try await harness.ended(id, attempt: 3)
        #expect(job["status"] == "failed")
        #expect(job["error"]?["class"] == "exit_code")
        guard case .array(let attempts)? = job["attempts"] else {
            Issue.record("no attempts in \(job)")
            return
        }
        #expect(attempts.count == 3)
        #expect(attempts.allSatisfy { $0["exitCode"] == 3 && $0["outcome"] == "exit_code" })
        func time(_ value: JSONValue?) throws -> Date {
            let format = ISO8601DateFormatter()
            format.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            guard case .string(let text)? = value, let date = format.date(from: text) else {
                throw HarnessFailure("not a timestamp: \(String(describing: value))")
            }
            return date
        }
        let firstWait = try time(attempts[1]["startedAt"]).timeIntervalSince(try time(attempts[0]["finishedAt"]))
        let secondWait = try time(attempts[2]["startedAt"]).timeIntervalSince(try time(attempts[1]["finishedAt"]))
        // backoff 200ms, then 400ms, each ±10%.
        // Times are stored in whole milliseconds: a millisecond of slack.
        #expect(firstWait >= 0.179, "first wait \(firstWait)")
        #expect(secondWait >= 0.359, "second wait \(secondWait)")
        #expect(secondWait > firstWait)
        #expect(try harness.leftoverWorkDirectories().isEmpty)
        await harness.stop()
    }

    @Test("::fail permanent fails the job at once, without retry")
    func permanentFailure() async throws {
        let harness = try await RunnerHarness.start()
        let id = try await harness.submit("permanent")
        let job = try await harness.ended(id)
        #expect(job["status"] == "failed")
        #expect(job["error"] == ["message": "Item not found", "class": "fail_permanent"])
        #expect(job["attempts"]?.arrayCount == 1)
        await harness.stop()
    }

    @Test("an exit code in permanent_exit_codes fails the job without retry")
    func permanentExitCode() async throws {
        let harness = try await RunnerHarness.start()
        let id = try await harness.submit("coded")
        let job = try await harness.ended(id)
        #expect(job["status"] == "failed")
        #expect(job["error"]?["class"] == "fail_permanent")
        #expect(job["attempts"]?.arrayCount == 1)
        #expect(job["attempts"]?[0]?["exitCode"] == 3)
        await harness.stop()
    }

    @Test("no stdout for idle_timeout ends the attempt as idle_timeout; heartbeats keep a quiet job alive")
    func idleTimeout() async throws {
        let harness = try await RunnerHarness.start()
        let idle = try await harness.submit("idle")
        let quiet = try await harness.submit("heartbeat")
        let stopped = try await harness.ended(idle)
        #expect(stopped["status"] == "failed")
        #expect(stopped["error"]?["class"] == "idle_timeout")
        let alive = try await harness.ended(quiet)
        #expect(alive["status"] == "completed", "\(alive)")
        #expect(try harness.leftoverWorkDirectories().isEmpty)
        await harness.stop()
    }

    @Test("a worker that finds its lease lost kills the attempt, and its ending is fenced out")
    func leaseLost() async throws {
        let harness = try await RunnerHarness.start(runner: "lease = \"3s\"")
        let gate = harness.gate()
        let id = try await harness.submit("hold", payload: .string(gate))
        try await harness.waitUntilRunning(id)
        // Another process decides the worker is gone (as cleanup will): the job goes back
        // to the queue and the lease with it.
        let store = try SQLiteJobStore(path: harness.setup.directory.appendingPathComponent("data/jobs.sqlite").path)
        let requeued = try await store.requeueExpiredLeases(now: Date().addingTimeInterval(3600))
        try await store.close()
        #expect(requeued.map(\.rawValue) == [id])
        let lost = await harness.daemon.log.first { $0["message"] == "lease lost; killing the attempt" }
        #expect(lost != nil)
        let dropped = await harness.daemon.log.first { $0["message"] == "attempt ending dropped: the lease was lost" }
        #expect(dropped != nil)
        // What the requeue recorded stands: the killed attempt's own ending was fenced out.
        let job = try await harness.job(id)
        #expect(job["status"] == "pending")
        #expect(job["attempts"]?[0]?["outcome"] == "lease_expired")
        #expect(job["attempts"]?[0]?["signal"] == .null)
        #expect(try harness.leftoverWorkDirectories().isEmpty, "the lost attempt's tree and directory are gone")
        harness.open(gate)
        await harness.stop()
    }

    @Test("a worker that cannot renew its leases for two thirds of their length kills its attempts itself", .timeLimit(.minutes(1)))
    func leaseNotRenewed() async throws {
        let harness = try await RunnerHarness.start(runner: "lease = \"3s\"")
        let gate = harness.gate()
        let id = try await harness.submit("hold", payload: .string(gate))
        try await harness.waitUntilRunning(id)
        // The store stops taking writes: another process holds its write lock.
        let locker = Process()
        locker.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        locker.arguments = [
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN IMMEDIATE'); "
                + "print('locked', flush=True); sys.stdin.read()",
            harness.setup.directory.appendingPathComponent("data/jobs.sqlite").path,
        ]
        let (input, output) = (Pipe(), Pipe())
        locker.standardInput = input
        locker.standardOutput = output
        try locker.run()
        let locked = try await Task.detached { try output.fileHandleForReading.read(upToCount: 7) }.value
        #expect(locked.map { String(decoding: $0, as: UTF8.self) } == "locked\n")

        let gaveUp = await harness.daemon.log.first { $0["message"] == "leases not renewed for two thirds of their length; killing the attempts" }
        #expect(gaveUp != nil)
        // With the store still locked, the attempt's tree is gone and its directory removed.
        let deadline = ContinuousClock.now + .seconds(10)
        while try !harness.leftoverWorkDirectories().isEmpty && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(try harness.leftoverWorkDirectories().isEmpty, "the attempt ended while its lease could not be renewed")
        #expect(locker.isRunning, "the store was locked all along")

        try input.fileHandleForWriting.close()
        locker.waitUntilExit()
        let job = try await harness.ended(id)
        #expect(job["attempts"]?[0]?["outcome"] == "lease_expired")
        harness.open(gate)
        await harness.stop()
    }

    @Test("malformed markers and stderr are kept as log lines; the log keeps its head and tail under max_log_bytes")
    func logsAndCap() async throws {
        let harness = try await RunnerHarness.start()
        let id = try await harness.submit("chatty")
        let job = try await harness.ended(id)
        #expect(job["status"] == "completed")
        #expect(job["progress"] == .null, "no valid marker, no progress")
        let logs = try await harness.request(.GET, "/api/jobs/\(id)/logs")
        #expect(logs.status == 200)
        // stdout and stderr are two pipes: their lines keep their order within each stream
        // only, and where stderr's lines land among stdout's depends on when each is read
        // (a stdout read taking the flood's head first puts them in the cut middle).
        let lines = logs.text.split(separator: "\n").map(String.init)
        let stderrLines: Set<String> = ["to stderr", "also to stderr"]
        #expect(Array(lines.filter { !stderrLines.contains($0) }.prefix(4)) == ["::progress abc", "::unknown thing", "::progress 150", "line 1 of the flood"])
        let stderrKept = lines.filter { stderrLines.contains($0) }
        #expect(stderrKept == ["to stderr", "also to stderr"] || (stderrKept.isEmpty && lines.contains { $0.contains("bytes of log left out here") }), "\(stderrKept)")
        // Below the cap nothing is left out: every line of both streams, each in order.
        let small = try await harness.submit("twostreams")
        _ = try await harness.ended(small)
        let both = try await harness.request(.GET, "/api/jobs/\(small)/logs").text.split(separator: "\n").map(String.init)
        #expect(both.filter { $0.hasPrefix("out") } == ["out 1", "out 2"] && both.filter { $0.hasPrefix("err") } == ["err 1", "err 2"], "\(both)")
        #expect(lines.last == "line 20000 of the flood")
        #expect(lines.contains { $0.contains("bytes of log left out here") })
        #expect(logs.text.utf8.count <= 16 * 1024 + 200)
        let cli = try await SupervisorBinary.run(["logs", id, "--url", harness.daemon.baseURL])
        #expect(cli.status == 0)
        #expect(cli.stdout == logs.text)
        await harness.stop()
    }

    @Test("artifacts are listed with size and URL and served by plain name; links, directories and paths are 404")
    func artifacts() async throws {
        let harness = try await RunnerHarness.start()
        let id = try await harness.submit("artifacts")
        let job = try await harness.ended(id)
        #expect(job["status"] == "completed")
        #expect(job["artifacts"] == [["name": "report.txt", "size": 6, "url": .string("/api/jobs/\(id)/artifacts/report.txt")]])
        let download = try await harness.request(.GET, "/api/jobs/\(id)/artifacts/report.txt")
        #expect(download.status == 200)
        #expect(download.text == "hello\n")
        for name in ["link", "sub", "missing", "%2E%2E", "..%2Fartifacts%2Freport.txt", "sub%2Finner.txt", "%2Fetc%2Fpasswd"] {
            let answer = try await harness.request(.GET, "/api/jobs/\(id)/artifacts/\(name)")
            #expect(answer.status == 404, "\(name): \(answer.status)")
            #expect(!answer.text.contains("root:"), "\(name) leaked a file outside the artifacts")
        }
        await harness.stop()
    }

    @Test("secrets reach the job only as a 0600 file, are never answered, and are gone from the store when it ends")
    func secrets() async throws {
        let harness = try await RunnerHarness.start()
        let secrets: JSONValue = ["apiKey": "s3cr3t-value"]
        let id = try await harness.submit("secrets", extra: ["secrets": secrets])
        let job = try await harness.ended(id)
        #expect(job["status"] == "completed")
        #expect(job["secrets"] == nil)
        let files = harness.artifacts(id)
        #expect(try String(contentsOf: files.appendingPathComponent("mode.txt"), encoding: .utf8) == "600\n")
        #expect(try JSONValue(parsing: Data(contentsOf: files.appendingPathComponent("secrets.json"))) == secrets)
        let logs = try await harness.request(.GET, "/api/jobs/\(id)/logs")
        #expect(!logs.text.contains("s3cr3t-value"))
        await harness.stop()
        let store = try SQLiteJobStore(path: harness.setup.directory.appendingPathComponent("data/jobs.sqlite").path)
        let jobID = try #require(JobID(id))
        let stored = try #require(try await store.job(id: jobID, owner: nil))
        try await store.close()
        #expect(stored.secrets == nil)
    }

    @Test("a job not started within startWithinSeconds fails as expired")
    func expires() async throws {
        let harness = try await RunnerHarness.start()
        let id = try await harness.submit("permanent", extra: ["delaySeconds": 3, "startWithinSeconds": 1])
        let job = try await harness.poll(id) { $0["status"] != "pending" }
        #expect(job["status"] == "failed")
        #expect(job["attempt"] == 0)
        let full = try await harness.job(id)
        #expect(full["error"]?["class"] == "expired")
        await harness.stop()
    }

    @Test("a ::result over 1 MiB fails the job as result_too_large")
    func resultTooLarge() async throws {
        let harness = try await RunnerHarness.start()
        let id = try await harness.submit("bigresult")
        let job = try await harness.ended(id)
        #expect(job["status"] == "failed")
        #expect(job["error"]?["class"] == "result_too_large")
        #expect(job["result"] == .null)
        await harness.stop()
    }

    @Test("a flood of a million progress markers completes with the last one")
    func markerFlood() async throws {
        let harness = try await RunnerHarness.start()
        let id = try await harness.submit("flood")
        let job = try await harness.ended(id)
        #expect(job["status"] == "completed")
        #expect(job["progress"] == ["percent": 100, "current": 1_000_000, "total": 1_000_000])
        await harness.stop()
    }

    @Test("supervisor worker runs the jobs an API-only serve accepts, through the shared store")
    func separateWorker() async throws {
        let setup = try DaemonSetup(runner: "concurrency = 0\nartifacts_root = \"./data/artifacts\"")
        let daemon = try await Daemon.start(config: setup.config)
        let workerConfig = setup.directory.appendingPathComponent("worker.toml")
        try """
            [store]
            url = "sqlite://./data/jobs.sqlite"
            [log]
            format = "json"
            [runner]
            concurrency = 1
            work_root = "./data/work"
            artifacts_root = "./data/artifacts"
            [job_types.echo]
            command = ["/bin/cat"]
            """.write(to: workerConfig, atomically: true, encoding: .utf8)
        let worker = Process()
        worker.executableURL = SupervisorBinary.url
        worker.arguments = ["worker", "--config", workerConfig.path]
        worker.standardError = FileHandle.nullDevice
        worker.standardOutput = FileHandle.nullDevice
        async let workerStatus = SupervisorBinary.runToExit(worker)

        let harness = RunnerHarness(setup: setup, daemon: daemon)
        let id = try await harness.submit("echo", payload: ["n": 7])
        let done = try await harness.poll(id) { $0["status"] == "completed" }
        #expect(done["attempt"] == 1)
        let logs = try await harness.request(.GET, "/api/jobs/\(id)/logs")
        #expect(logs.text == "{\"n\":7}\n", "the worker's log of /bin/cat echoing its stdin payload")
        worker.terminate()
        #expect(try await workerStatus == 0)
        await harness.stop()

        let refused = try await SupervisorBinary.run(["worker", "--config", setup.config.path])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("runner.concurrency is 0"))
    }

    @Test("SIGTERM: an attempt that ends within shutdown_grace completes")
    func drainLetsAttemptsFinish() async throws {
        let harness = try await RunnerHarness.start(runner: "shutdown_grace = \"30s\"")
        let gate = harness.gate()
        let id = try await harness.submit("hold", payload: .string(gate))
        try await harness.waitUntilRunning(id)
        harness.daemon.signal(SIGTERM)
        _ = await harness.daemon.log.first { $0["message"] == "draining" }
        harness.open(gate)
        let ended = await harness.daemon.waitForExit()
        #expect(ended.status == 0)
        let store = try SQLiteJobStore(path: harness.setup.directory.appendingPathComponent("data/jobs.sqlite").path)
        let jobID = try #require(JobID(id))
        let job = try #require(try await store.job(id: jobID, owner: nil))
        try await store.close()
        #expect(job.status == .completed)
    }

    @Test("SIGTERM: an attempt still running after shutdown_grace is interrupted, back to pending, not spent")
    func drainInterrupts() async throws {
        let harness = try await RunnerHarness.start(runner: "shutdown_grace = \"200ms\"")
        let id = try await harness.submit("linger")
        try await harness.waitUntilRunning(id)
        harness.daemon.signal(SIGTERM)
        let ended = await harness.daemon.waitForExit()
        #expect(ended.status == 0)
        let store = try SQLiteJobStore(path: harness.setup.directory.appendingPathComponent("data/jobs.sqlite").path)
        let jobID = try #require(JobID(id))
        let job = try #require(try await store.job(id: jobID, owner: nil))
        try await store.close()
        #expect(job.status == .pending)
        #expect(job.attempt == 1)
        #expect(job.maxAttempts == 4, "the interrupted attempt is not spent")
        #expect(job.attempts.first?.outcome == .interrupted)
        for name in ["setsid.pid", "stubborn.pid"] {
            let pid = try pid(in: harness.artifacts(id).appendingPathComponent(name))
            #expect(!processExists(pid), "\(name): \(pid) outlived the shutdown")
        }
        #expect(try harness.leftoverWorkDirectories().isEmpty)
    }
}

extension JSONValue {
    var arrayCount: Int? {
        if case .array(let elements) = self { return elements.count }
        return nil
    }
}
