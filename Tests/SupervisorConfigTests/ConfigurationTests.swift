import Foundation
import SupervisorConfig
import SupervisorCore
import Testing

@Suite("configuration")
struct ConfigurationTests {
    func parse(_ text: String) throws -> SupervisorConfiguration {
        let configuration = try ConfigurationLoader.parse(text, file: "/etc/supervisor/supervisor.toml")
        try ConfigurationLoader.validate(configuration)
        return configuration
    }

    func configError(_ text: String) -> ConfigurationError? {
        do {
            _ = try parse(text)
            return nil
        } catch let error as ConfigurationError {
            return error
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    @Test("no file at all: the defaults of SPEC section 3")
    func defaults() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let configuration = try ConfigurationLoader.load(explicitPath: nil, environment: [:], workingDirectory: empty)
        #expect(configuration.sourcePath == nil)
        #expect(configuration.server.listen == ListenAddress(host: "127.0.0.1", port: 8080))
        #expect(configuration.server.maxPayloadBytes == 1_048_576)
        #expect(!configuration.server.metricsPublic)
        #expect(configuration.store.url == "sqlite://./supervisor-data/jobs.sqlite")
        #expect(configuration.limits == LimitSettings(maxPending: 1_000_000, maxPendingPerOwner: 100_000))
        #expect(configuration.retention == RetentionSettings(completed: .seconds(86_400), failed: .seconds(604_800), cancelled: .seconds(86_400)))
        #expect(configuration.log == LogSettings(format: .text, level: .info))
        #expect(configuration.jobTypes.isEmpty)
        #expect(configuration.baseDirectory == empty)
        let runner = configuration.runner
        #expect(runner.concurrency == 2)
        #expect(runner.workRoot == empty.appendingPathComponent("supervisor-data/work"))
        #expect(runner.artifactsRoot == empty.appendingPathComponent("supervisor-data/artifacts"))
        #expect(runner.portRange == 9300...9499)
        #expect(runner.killGrace == .seconds(10))
        #expect(runner.lease == .seconds(30))
        #expect(runner.maxLogBytes == 10 << 20)
        #expect(runner.shutdownGrace == .seconds(30))
    }

    @Test("the example config the README starts the daemon with is valid and sets the runner keys")
    func exampleConfig() throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("supervisor.example.toml")
        let configuration = try ConfigurationLoader.load(explicitPath: example.path, environment: [:])
        #expect(configuration.runner.workRoot.path.hasSuffix("/supervisor-data/work"))
        let countdown = try #require(configuration.jobTypes["countdown"])
        #expect(countdown.idleTimeout == .seconds(30))
        #expect(countdown.backoff.base == .seconds(5))
        #expect(countdown.backoff.maximum == .seconds(60))
        #expect(countdown.permanentExitCodes == [2])
        #expect(countdown.environment == ["LANG": "C.UTF-8"])
        #expect(configuration.jobTypes["hello"]?.command.last?.hasSuffix("scripts/jobs/hello.sh") == true)
    }

    @Test("a full config of every supported key")
    func full() throws {
        let configuration = try parse(
            """
            [server]
            listen = "0.0.0.0:9000"
            max_payload_bytes = "2M"
            public_url = "https://jobs.example.com/"
            metrics_public = true
            [store]
            url = "sqlite:///var/lib/supervisor/jobs.sqlite"
            [limits]
            max_pending = 10
            max_pending_per_owner = 5
            max_running_per_owner = 2
            [retention]
            completed = "1h"
            failed = "30d"
            cancelled = "10m"
            [log]
            format = "json"
            level = "debug"
            [[auth.tokens]]
            token = "0123456789abcdef-dev"
            owner = "alice"
            [[auth.tokens]]
            token_sha256 = "\(String(repeating: "ab", count: 32))"
            owner = "ops"
            role = "admin"
            [job_types.shot]
            command = ["/usr/bin/python3", "./jobs/shot.py", "--fast"]
            timeout = "90s"
            max_attempts = 5
            concurrency = 1
            profile = "strict"
            memory_max = "512M"
            pids_max = 128
            read_paths = ["/srv/models", "./shared"]
            write_paths = ["/var/spool/shots"]
            run_as = "shots"
            browser = "chromium"
            [runner]
            chromium_path = "./bin/chromium"
            """
        )
        #expect(configuration.server.listen == ListenAddress(host: "0.0.0.0", port: 9000))
        #expect(configuration.server.maxPayloadBytes == 2 << 20)
        #expect(configuration.server.metricsPublic)
        #expect(configuration.server.publicURL == "https://jobs.example.com")
        #expect(configuration.limits == LimitSettings(maxPending: 10, maxPendingPerOwner: 5, maxRunningPerOwner: 2))
        #expect(configuration.retention == RetentionSettings(completed: .seconds(3600), failed: .seconds(30 * 86_400), cancelled: .seconds(600)))
        #expect(configuration.log == LogSettings(format: .json, level: .debug))
        #expect(configuration.tokens.map(\.owner) == ["alice", "ops"])
        #expect(configuration.tokens.map(\.role) == [.user, .admin])
        #expect(configuration.tokens[1].sha256 == Array(repeating: 0xAB, count: 32))
        let shot = try #require(configuration.jobTypes["shot"])
        #expect(shot.command == ["/usr/bin/python3", "/etc/supervisor/jobs/shot.py", "--fast"])
        #expect(shot.timeout == .seconds(90))
        #expect(shot.maxAttempts == 5)
        #expect(shot.concurrency == 1)
        #expect(shot.profile == "strict")
        #expect(shot.memoryMax == 512 << 20)
        #expect(shot.pidsMax == 128)
        #expect(shot.readPaths == ["/srv/models", "/etc/supervisor/shared"])
        #expect(shot.writePaths == ["/var/spool/shots"])
        #expect(shot.runAs == "shots")
        #expect(shot.browser == .chromium)
        #expect(configuration.runner.chromiumPath == "/etc/supervisor/bin/chromium")
    }

    @Test("errors name the key", arguments: [
        ("[server]\nlisten = 8080", "server.listen", "must be a string"),
        ("[server]\nlisten = \"nowhere\"", "server.listen", "is not host:port"),
        ("[server]\nlistne = \"127.0.0.1:1\"", "server.listne", "unknown key"),
        ("[serve]\nlisten = \"127.0.0.1:1\"", "serve", "unknown key"),
        ("[server]\nmax_payload_bytes = \"lots\"", "server.max_payload_bytes", "is not a size"),
        ("[limits]\nmax_pending = 0", "limits.max_pending", "must be between"),
        ("[log]\nformat = \"xml\"", "log.format", "must be one of"),
        ("[job_types.a]\ncommand = []", "job_types.a.command", "is required"),
        ("[job_types.a]\ncommand = \"/bin/sh x.sh\"", "job_types.a.command", "array of strings"),
        ("[job_types.a]\ncommand = [\"/bin/true\"]\ntimeout = \"soon\"", "job_types.a.timeout", "is not a duration"),
        ("[job_types.a]\ncommand = [\"/bin/true\"]\nmax_attempts = 0", "job_types.a.max_attempts", "must be between"),
        ("[job_types.a]\ncommand = [\"/bin/true\"]\ntimeout = \"500ms\"", "job_types.a.timeout", "at least 1s"),
        ("[[auth.tokens]]\ntoken = \"0123456789abcdef\"\nowner = \"a\"\n[[auth.tokens]]\ntoken = \"0123456789abcdef\"\nowner = \"b\"", "auth.tokens[1]", "configured twice"),
        ("[job_types.a]\ncommand = [\"/bin/true\"]\ncolour = \"red\"", "job_types.a.colour", "unknown key"),
        ("[job_types.\"a b\"]\ncommand = [\"/bin/true\"]", "job_types.a b", "job type name"),
        ("[[auth.tokens]]\ntoken = \"short\"\nowner = \"a\"", "auth.tokens[0].token", "at least 16"),
        ("[[auth.tokens]]\ntoken = \"0123456789abcdef\"", "auth.tokens[0].owner", "is required"),
        ("[[auth.tokens]]\nowner = \"a\"", "auth.tokens[0]", "needs token"),
        ("[[auth.tokens]]\ntoken_sha256 = \"abc\"\nowner = \"a\"", "auth.tokens[0].token_sha256", "64 hexadecimal"),
        ("[[auth.tokens]]\ntoken = \"0123456789abcdef\"\nowner = \"a\"\nrole = \"root\"", "auth.tokens[0].role", "must be one of"),
        ("[server]\nlisten = \"0.0.0.0:8080\"", "server.listen", "not a loopback address"),
        ("[store]\nurl = \"mysql://x\"", "store.url", "is not a store URL"),
        ("[store]\nurl = \"postgres://u@h/db\"", "store.url", "not supported yet"),
        ("[runner]\nchromium_path = \"\"", "runner.chromium_path", "must name the browser"),
        ("[runner]\nport_range = \"9500-9400\"", "runner.port_range", "LOW-HIGH"),
        ("[runner]\nconcurrency = -1", "runner.concurrency", "between 0"),
        ("[job_types.a]\ncommand = [\"/bin/true\"]\nbackoff = \"10s\"\nbackoff_max = \"1s\"", "job_types.a.backoff_max", "shorter"),
        ("[job_types.a]\ncommand = [\"/bin/true\"]\nenv = { SUPERVISOR_JOB_ID = \"x\" }", "job_types.a.env.SUPERVISOR_JOB_ID", "SUPERVISOR_"),
        ("[job_types.a]\ncommand = [\"/bin/true\"]\npermanent_exit_codes = [0]", "job_types.a.permanent_exit_codes", "between 1"),
        ("[webhooks]\nurl = \"https://x\"", "webhooks", "not supported yet"),
        ("[retention]\ncompleted = \"soon\"", "retention.completed", "is not a duration"),
        ("[retention]\nforever = \"1h\"", "retention.forever", "unknown key"),
        ("[server]\nmetrics_public = \"yes\"", "server.metrics_public", "true or false"),
        ("[limits]\nmax_running_per_owner = -1", "limits.max_running_per_owner", "must be between"),
        ("[job_types.a]\ncommand = [\"/bin/true\"]\nconcurrency = 0", "job_types.a.concurrency", "must be between"),
        ("[job_types.a]\ncommand = [\"/bin/true\"]\nmemory_max = \"1M\"", "job_types.a.memory_max", "at least 4M"),
        ("[job_types.a]\ncommand = [\"/bin/true\"]\npids_max = 2", "job_types.a.pids_max", "must be between"),
        ("[job_types.a]\ncommand = [\"/bin/true\"]\nprofile = \"\"", "job_types.a.profile", "must name a profile"),
        ("[job_types.a]\ncommand = [\"/bin/true\"]\nbrowser = \"firefox\"", "job_types.a.browser", "must be one of \"chromium\""),
        ("[job_types.a]\ncommand = [\"/bin/true\"]\nread_paths = [\"\"]", "job_types.a.read_paths", "empty path"),
        ("this is = not toml =", "", "not valid TOML"),
    ])
    func namedErrors(_ text: String, _ key: String, _ fragment: String) throws {
        let error = try #require(configError(text))
        #expect(error.key == key)
        #expect(error.message.contains(fragment), "\(error)")
        #expect(error.description.hasPrefix("/etc/supervisor/supervisor.toml: "))
    }

    @Test("SUPERVISOR_CONFIG, SUPERVISOR_DATABASE_URL and SUPERVISOR_LISTEN")
    func environment() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("custom.toml")
        try "[server]\nlisten = \"127.0.0.1:7000\"\n[job_types.a]\ncommand = [\"./run.sh\"]\n".write(to: file, atomically: true, encoding: .utf8)
        let configuration = try ConfigurationLoader.load(
            explicitPath: nil,
            environment: [
                "SUPERVISOR_CONFIG": file.path, "SUPERVISOR_DATABASE_URL": "sqlite:///tmp/other.sqlite",
                "SUPERVISOR_LISTEN": "127.0.0.2:7100",
            ],
            workingDirectory: URL(fileURLWithPath: "/")
        )
        #expect(configuration.sourcePath == file.path)
        #expect(configuration.store.url == "sqlite:///tmp/other.sqlite")
        #expect(configuration.server.listen == ListenAddress(host: "127.0.0.2", port: 7100))
        #expect(configuration.jobTypes["a"]?.command == [directory.appendingPathComponent("run.sh").path])

        #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(explicitPath: file.path, environment: ["SUPERVISOR_LISTEN": "0.0.0.0:1"])
        }
        #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(explicitPath: directory.appendingPathComponent("missing.toml").path, environment: [:])
        }
    }

    @Test("a ./supervisor.toml that cannot be read stops start-up instead of being skipped")
    func unreadableDefault() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data([0xFF, 0xFE, 0x00, 0x5B]).write(to: directory.appendingPathComponent("supervisor.toml"))
        #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(explicitPath: nil, environment: [:], workingDirectory: directory)
        }
    }

    @Test("listen addresses", arguments: [
        ("127.0.0.1:8080", true), ("localhost:1", true), ("[::1]:8080", true), ("0.0.0.0:80", false),
        ("10.1.2.3:8080", false), ("[::]:8080", false), ("127.example.com:80", false), ("127.0.0.1.nip.io:80", false),
        ("127.1.2.3:80", true),
    ])
    func loopback(_ text: String, _ isLoopback: Bool) throws {
        let address = try #require(ListenAddress(text))
        #expect(address.isLoopback == isLoopback)
    }
}
