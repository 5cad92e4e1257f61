import Foundation
import SupervisorCore
import Testing

@Suite("the command line", .serialized)
struct CommandTests {
    static let commands: [[String]] = [
        [], ["serve"], ["worker"], ["submit"], ["status"], ["list"], ["cancel"], ["retry"], ["logs"], ["info"],
        ["migrate"], ["config"], ["config", "check"], ["cleanup"], ["profile"], ["profile", "check"], ["backup"],
        ["delete"], ["drain"],
    ]

    @Test("every command has --help", arguments: commands)
    func help(_ command: [String]) async throws {
        let result = try await SupervisorBinary.run(command + ["--help"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("USAGE: supervisor"))
    }

    @Test("--version")
    func version() async throws {
        let result = try await SupervisorBinary.run(["--version"])
        #expect(result.status == 0)
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0.1.0")
    }

    @Test("commands whose behaviour has not landed refuse clearly", arguments: [
        ["logs", "x", "--follow"],
    ])
    func notYet(_ command: [String]) async throws {
        let result = try await SupervisorBinary.run(command)
        #expect(result.status == 1)
        #expect(result.stderr.contains("not supported yet"))
    }

    @Test(
        "the systemd unit is valid to systemd-analyze and leaves shutdown to the daemon",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze"), "needs systemd-analyze (Debian package systemd)")
    )
    func systemdUnit() async throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let unit = try String(contentsOf: repository.appendingPathComponent("scripts/supervisor.service"), encoding: .utf8)
        let lines = Set(unit.split(separator: "\n").map(String.init))
        for setting in ["KillMode=mixed", "KillSignal=SIGTERM", "Restart=on-failure", "Delegate=yes"] {
            #expect(lines.contains(setting), "\(setting)")
        }
        // Verified with the binary this test runs, where the unit expects the installed one.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("unit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let copy = directory.appendingPathComponent("supervisor.service")
        try unit.replacingOccurrences(of: "/usr/local/bin/supervisor", with: SupervisorBinary.url.path)
            .write(to: copy, atomically: true, encoding: .utf8)
        let verify = Process()
        verify.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-analyze")
        verify.arguments = ["verify", copy.path]
        let errors = Pipe()
        verify.standardError = errors
        verify.standardOutput = errors
        try verify.run()
        let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        verify.waitUntilExit()
        #expect(verify.terminationStatus == 0 && output.isEmpty, "\(output)")
    }

    @Test("profile check accepts the shipped profiles and refuses a bad one, naming the rule")
    func profileCheck() async throws {
        for name in ["default", "chromium", "strict"] {
            let result = try await SupervisorBinary.run(["profile", "check", name, "--strict"])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.hasPrefix("profile \(name): valid"))
        }
        let json = try await SupervisorBinary.run(["profile", "check", "default", "--json"])
        let document = try JSONValue(parsing: Data(json.stdout.utf8))
        #expect(document["defaultAction"] == "allow")
        #expect(document["unknownNames"] == [])

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("profile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let bad = directory.appendingPathComponent("bad.json")
        try #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_NOPE"}]}"#
            .write(to: bad, atomically: true, encoding: .utf8)
        let refused = try await SupervisorBinary.run(["profile", "check", bad.path])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("syscalls[0] (mount): unknown action \"SCMP_ACT_NOPE\""), "\(refused.stderr)")

        let future = directory.appendingPathComponent("future.json")
        try #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount", "future_call"], "action": "SCMP_ACT_ERRNO"}]}"#
            .write(to: future, atomically: true, encoding: .utf8)
        let skipped = try await SupervisorBinary.run(["profile", "check", future.path])
        #expect(skipped.status == 0)
        #expect(skipped.stdout.contains("warning: skipped, unknown to this libseccomp: future_call"))
        let strict = try await SupervisorBinary.run(["profile", "check", future.path, "--strict"])
        #expect(strict.status == 1)
        #expect(strict.stderr.contains("does not know future_call"))
    }

    @Test("submit, status, list, cancel, retry and info against a running daemon")
    func roundTrip() async throws {
        let setup = try DaemonSetup()
        let daemon = try await Daemon.start(config: setup.config)
        defer { daemon.signal(SIGTERM) }
        let environment = ["SUPERVISOR_URL": daemon.baseURL]

        let submitted = try await SupervisorBinary.run(["submit", "echo", "--payload", #"{"a": 1}"#, "--priority", "1"], environment: environment)
        #expect(submitted.status == 0, "\(submitted.stderr)")
        let id = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(JobID(id) != nil)

        let payloadFile = setup.directory.appendingPathComponent("payload.json")
        try #"{"from": "file"}"#.write(to: payloadFile, atomically: true, encoding: .utf8)
        let fromFile = try await SupervisorBinary.run(["submit", "echo", "--payload", "@\(payloadFile.path)", "--json"], environment: environment)
        #expect(fromFile.status == 0)
        let fileAnswer = try JSONValue(parsing: Data(fromFile.stdout.utf8))
        #expect(fileAnswer["status"] == "pending")

        let status = try await SupervisorBinary.run(["status", id, "--json"], environment: environment)
        let document = try JSONValue(parsing: Data(status.stdout.utf8))
        #expect(document["payload"] == ["a": 1])
        #expect(document["priority"] == 1)
        let readable = try await SupervisorBinary.run(["status", id], environment: environment)
        #expect(readable.stdout.contains("pending"))

        let list = try await SupervisorBinary.run(["list", "--json"], environment: environment)
        guard case .array(let jobs)? = try JSONValue(parsing: Data(list.stdout.utf8))["jobs"] else {
            Issue.record("list --json has jobs")
            return
        }
        #expect(jobs.count == 2)
        let table = try await SupervisorBinary.run(["list", "--status", "pending"], environment: environment)
        #expect(table.stdout.contains(id))

        let cancel = try await SupervisorBinary.run(["cancel", id], environment: environment)
        #expect(cancel.status == 0)
        #expect(cancel.stdout.contains("cancelled"))
        let cancelAgain = try await SupervisorBinary.run(["cancel", id], environment: environment)
        #expect(cancelAgain.status == 1)
        #expect(cancelAgain.stderr.contains("already cancelled"))
        let retry = try await SupervisorBinary.run(["retry", id], environment: environment)
        #expect(retry.status == 0)

        let info = try await SupervisorBinary.run(["info", "--json"], environment: environment)
        #expect(try JSONValue(parsing: Data(info.stdout.utf8))["pending"] == 2)

        let unknownType = try await SupervisorBinary.run(["submit", "nope"], environment: environment)
        #expect(unknownType.status == 1)
        #expect(unknownType.stderr.contains("no job type \"nope\""))
        let badPayload = try await SupervisorBinary.run(["submit", "echo", "--payload", "{nope"], environment: environment)
        #expect(badPayload.status == 1)
        #expect(badPayload.stderr.contains("not valid JSON"))
        let badPriority = try await SupervisorBinary.run(["submit", "echo", "--priority", "7"], environment: environment)
        #expect(badPriority.status != 0)
        #expect(badPriority.stderr.contains("--priority"))
        let missing = try await SupervisorBinary.run(["status", UUIDv7Generator().next(at: Date()).rawValue], environment: environment)
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("HTTP 404"))
    }

    @Test("submit --wait follows the job to its end and exits 1 when it did not complete")
    func waitForEnd() async throws {
        let setup = try DaemonSetup()
        let daemon = try await Daemon.start(config: setup.config)
        defer { daemon.signal(SIGTERM) }
        let environment = ["SUPERVISOR_URL": daemon.baseURL]
        async let waited = SupervisorBinary.run(
            ["submit", "echo", "--idempotency-key", "wait-1", "--wait", "--json"], environment: environment)

        // Whichever of the two submits with this key comes first makes the job; the other
        // is answered with it. Cancelling it ends the wait, whenever the wait began.
        let again = try await SupervisorBinary.run(["submit", "echo", "--idempotency-key", "wait-1"], environment: environment)
        let id = again.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(JobID(id) != nil)
        let cancel = try await SupervisorBinary.run(["cancel", id], environment: environment)
        #expect(cancel.status == 0)
        let result = try await waited
        #expect(result.status == 1)
        #expect(try JSONValue(parsing: Data(result.stdout.utf8))["status"] == "cancelled")
    }

    @Test("a daemon that is not there is a clear error, not a crash")
    func unreachable() async throws {
        let result = try await SupervisorBinary.run(["info"], environment: ["SUPERVISOR_URL": "http://127.0.0.1:9"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("cannot reach the supervisor"))
    }

    @Test("migrate creates the store; config check lists the job types")
    func operatorCommands() async throws {
        let setup = try DaemonSetup()
        let migrate = try await SupervisorBinary.run(["migrate", "--config", setup.config.path])
        #expect(migrate.status == 0, "\(migrate.stderr)")
        #expect(FileManager.default.fileExists(atPath: setup.directory.appendingPathComponent("data/jobs.sqlite").path))
        let check = try await SupervisorBinary.run(["config", "check", "--config", setup.config.path])
        #expect(check.status == 0)
        #expect(check.stdout.contains("echo: /bin/cat"))
    }
}
