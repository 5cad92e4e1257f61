import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SupervisorCore
import Testing

@Suite("the daemon", .serialized)
struct DurabilityTests {
    func submit(_ base: String, index: Int) async throws -> (status: UInt, id: String?) {
        var request = HTTPClientRequest(url: base + "/api/jobs")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: #"{"type": "echo", "payload": {"n": \#(index)}}"#))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        let document = try JSONValue(parsing: Data(body.readableBytesView))
        if case .string(let id)? = document["jobId"] { return (response.status.code, id) }
        return (response.status.code, nil)
    }

    func get(_ url: String) async throws -> JSONValue {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 16 << 20)
        return try JSONValue(parsing: Data(body.readableBytesView))
    }

    @Test("every job answered 202 survives SIGKILL of the daemon right after")
    func survivesKill() async throws {
        let setup = try DaemonSetup()
        let daemon = try await Daemon.start(config: setup.config)
        let base = daemon.baseURL
        let answers = try await withThrowingTaskGroup(of: (status: UInt, id: String?).self) { group in
            for index in 0..<200 { group.addTask { try await self.submit(base, index: index) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        daemon.signal(SIGKILL)
        let ended = await daemon.waitForExit()
        #expect(ended.reason == .uncaughtSignal)
        #expect(ended.status == SIGKILL)

        #expect(answers.allSatisfy { $0.status == 202 })
        let accepted = Set(answers.compactMap(\.id))
        #expect(accepted.count == 200)

        let restarted = try await Daemon.start(config: setup.config)
        let listed = try await get(restarted.baseURL + "/api/jobs?limit=500")
        guard case .array(let jobs)? = listed["jobs"] else {
            Issue.record("no job list: \(listed)")
            return
        }
        let found = Set(jobs.compactMap { job -> String? in if case .string(let id)? = job["jobId"] { id } else { nil } })
        #expect(found == accepted)
        let queue = try await get(restarted.baseURL + "/api/queue")
        #expect(queue["pending"] == 200)

        restarted.signal(SIGTERM)
        let stopped = await restarted.waitForExit()
        #expect(stopped.reason == .exit)
        #expect(stopped.status == 0)
    }

    @Test("SIGTERM: in-flight submits finish and the daemon exits 0; their jobs are kept")
    func gracefulShutdown() async throws {
        let setup = try DaemonSetup()
        let daemon = try await Daemon.start(config: setup.config)
        let base = daemon.baseURL
        let first = try await submit(base, index: 0)
        #expect(first.status == 202)
        daemon.signal(SIGTERM)
        let stopped = await daemon.waitForExit()
        #expect(stopped.reason == .exit)
        #expect(stopped.status == 0)

        let restarted = try await Daemon.start(config: setup.config)
        let job = try await get(restarted.baseURL + "/api/jobs/\(try #require(first.id))")
        #expect(job["status"] == "pending")
        restarted.signal(SIGTERM)
        _ = await restarted.waitForExit()
    }

    @Test("a non-loopback listen without tokens refuses to start, naming the key")
    func refusesOpenNetwork() async throws {
        let setup = try DaemonSetup()
        let result = try await SupervisorBinary.run(
            ["serve", "--config", setup.config.path], environment: ["SUPERVISOR_LISTEN": "0.0.0.0:0"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("server.listen"))
        #expect(result.stderr.contains("loopback"))
    }

    @Test("a job type's bad seccomp profile stops start-up, naming the type, the profile and the rule")
    func refusesBadProfile() async throws {
        let setup = try DaemonSetup(runner: "concurrency = 1", extraConfig: "profile = \"./broken.json\"")
        try #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_MAYBE"}]}"#
            .write(to: setup.directory.appendingPathComponent("broken.json"), atomically: true, encoding: .utf8)
        let result = try await SupervisorBinary.run(["serve", "--config", setup.config.path])
        #expect(result.status != 0)
        #expect(
            result.stderr.contains(#"job_types.echo.profile: seccomp profile ./broken.json: syscalls[0] (mount): unknown action "SCMP_ACT_MAYBE""#),
            "\(result.stderr)")
    }

    @Test("a run_as user that does not exist stops start-up, naming the type")
    func refusesUnknownUser() async throws {
        let setup = try DaemonSetup(runner: "concurrency = 1", extraConfig: "run_as = \"no-such-user-here\"")
        let result = try await SupervisorBinary.run(["serve", "--config", setup.config.path])
        #expect(result.status != 0)
        #expect(result.stderr.contains("job_types.echo.run_as: there is no user named no-such-user-here"), "\(result.stderr)")
    }

    @Test("an unknown config key stops start-up with a message naming it")
    func refusesUnknownKey() async throws {
        let setup = try DaemonSetup(extraConfig: "colour = \"red\"")
        let result = try await SupervisorBinary.run(["serve", "--config", setup.config.path])
        #expect(result.status != 0)
        #expect(result.stderr.contains("job_types.echo.colour: unknown key"))
    }
}
