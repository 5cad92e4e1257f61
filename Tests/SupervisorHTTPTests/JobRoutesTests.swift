import SupervisorConfig
import Foundation
import HTTPTypes
import SupervisorCore
import SupervisorHTTP
import SupervisorStore
import Testing

@Suite("jobs API over a real socket")
struct JobRoutesTests {
    @Test("submit answers 202 with Location, queue position and the three URLs")
    func submit() async throws {
        let harness = try APITestHarness()
        try await harness.run { api, _ in
            let first = try await api.send(.post, "/api/jobs", json: ["type": "echo", "payload": ["url": "https://example.com"]])
            #expect(first.status == .accepted)
            let id = try #require(first.string("jobId"))
            #expect(JobID(id) != nil)
            #expect(first.headers[.location] == "/api/jobs/\(id)")
            #expect(first["status"] == "pending")
            #expect(first["queuePosition"] == 1)
            #expect(first["estimatedWaitSeconds"] == .null)
            #expect(first["statusUrl"] == .string("/api/jobs/\(id)/status"))
            #expect(first["resultUrl"] == .string("/api/jobs/\(id)/result"))
            #expect(first["eventsUrl"] == .string("/api/jobs/\(id)/events"))

            let second = try await api.send(.post, "/api/jobs", json: ["type": "echo"])
            #expect(second["queuePosition"] == 2)
            let urgent = try await api.send(.post, "/api/jobs", json: ["type": "echo", "priority": 2])
            #expect(urgent["queuePosition"] == 1)
            let later = try await api.send(.post, "/api/jobs", json: ["type": "echo", "delaySeconds": 60])
            #expect(later["queuePosition"] == .null)

            let job = try await api.send(.get, "/api/jobs/\(id)")
            #expect(job.status == .ok)
            #expect(job["payload"] == ["url": "https://example.com"])
            #expect(job["owner"] == "alice")
            #expect(job["maxAttempts"] == 3)
            #expect(job["attempt"] == 0)
            #expect(job["priority"] == 0)
            #expect(job["progress"] == .null)
            #expect(job["queuePosition"] == 2)
            #expect(job["attempts"] == [])
            #expect(job["artifacts"] == [])
            #expect(job["result"] == .null)
            #expect(job["error"] == .null)
            #expect(job["secrets"] == nil)
            #expect(job["createdAt"] == "2027-01-15T08:00:00.000Z")
        }
    }

    @Test("public_url prefixes Location and the URLs")
    func publicURL() async throws {
        var harness = try APITestHarness()
        harness.configuration.server.publicURL = "https://jobs.example.com"
        try await harness.run { api, _ in
            let answer = try await api.send(.post, "/api/jobs", json: ["type": "echo"])
            let id = try #require(answer.string("jobId"))
            #expect(answer.headers[.location] == "https://jobs.example.com/api/jobs/\(id)")
            #expect(answer["statusUrl"] == .string("https://jobs.example.com/api/jobs/\(id)/status"))
        }
    }

    @Test("runAt schedules a job; in the past it is due at once")
    func runAt() async throws {
        let harness = try APITestHarness()
        try await harness.run { api, _ in
            let scheduled = try await api.submit(["type": "echo", "runAt": "2027-01-15T10:00:00+02:00"])
            let job = try await api.send(.get, "/api/jobs/\(scheduled)")
            #expect(job["runAt"] == "2027-01-15T08:00:00.000Z")
            let future = try await api.submit(["type": "echo", "runAt": "2027-01-15T09:30:00.250Z"])
            #expect(try await api.send(.get, "/api/jobs/\(future)")["runAt"] == "2027-01-15T09:30:00.250Z")
            #expect(try await api.send(.get, "/api/jobs/\(future)/status")["queuePosition"] == .null)
            let past = try await api.submit(["type": "echo", "runAt": "2020-01-01T00:00:00Z"])
            #expect(try await api.send(.get, "/api/jobs/\(past)")["runAt"] == "2027-01-15T08:00:00.000Z")
        }
    }

    @Test("Idempotency-Key: the same owner and key answer the first job with 200")
    func idempotency() async throws {
        let harness = try APITestHarness()
        try await harness.run { api, _ in
            let first = try await api.send(.post, "/api/jobs", json: ["type": "echo"], headers: [.init("Idempotency-Key")!: "order-7"])
            #expect(first.status == .accepted)
            let again = try await api.send(
                .post, "/api/jobs", json: ["type": "shot", "payload": [1, 2]], headers: [.init("Idempotency-Key")!: "order-7"])
            #expect(again.status == .ok)
            #expect(again["jobId"] == first["jobId"])
            #expect(again["queuePosition"] == 1)
            let id = try #require(first.string("jobId"))
            _ = try await api.send(.post, "/api/jobs/\(id)/cancel")
            let afterCancel = try await api.send(.post, "/api/jobs", json: ["type": "echo"], headers: [.init("Idempotency-Key")!: "order-7"])
            #expect(afterCancel.status == .ok)
            #expect(afterCancel["status"] == "cancelled")
            let bobs = try await api.send(
                .post, "/api/jobs", token: APITestHarness.bobToken, json: ["type": "echo"], headers: [.init("Idempotency-Key")!: "order-7"])
            #expect(bobs.status == .accepted)
            #expect(bobs["jobId"] != first["jobId"])
            // Whatever the new body says: even one that would be refused on its own.
            for body in [#"{"type": "no-such-type"}"#, "not json"] {
                let repeated = try await api.send(.post, "/api/jobs", raw: body, headers: [.init("Idempotency-Key")!: "order-7"])
                #expect(repeated.status == .ok)
                #expect(repeated["jobId"] == first["jobId"])
            }
            let bad = try await api.send(.post, "/api/jobs", json: ["type": "echo"], headers: [.init("Idempotency-Key")!: "has space"])
            #expect(bad.status == .unprocessableContent)
        }
    }

    @Test("status is the cheap poll, with Retry-After 2, 5 then 10 seconds")
    func status() async throws {
        let harness = try APITestHarness()
        try await harness.run { api, _ in
            let id = try await api.submit(["type": "echo"])
            let fresh = try await api.send(.get, "/api/jobs/\(id)/status")
            #expect(fresh.status == .ok)
            #expect(fresh.headers[.retryAfter] == "2")
            guard case .object(let fields) = fresh.body else {
                Issue.record("status is an object")
                return
            }
            #expect(Set(fields.keys) == [
                "jobId", "type", "status", "progress", "attempt", "maxAttempts", "queuePosition", "estimatedWaitSeconds",
                "createdAt", "startedAt", "updatedAt",
            ])
            #expect(fresh["startedAt"] == .null)
            harness.clock.advance(by: 45)
            #expect(try await api.send(.get, "/api/jobs/\(id)/status").headers[.retryAfter] == "5")
            harness.clock.advance(by: 120)
            #expect(try await api.send(.get, "/api/jobs/\(id)/status").headers[.retryAfter] == "10")
        }
    }

    @Test("cancel a pending job (200), then 409; retry it (200), then 409")
    func cancelAndRetry() async throws {
        let harness = try APITestHarness()
        try await harness.run { api, _ in
            let id = try await api.submit(["type": "echo"])
            let cancelled = try await api.send(.post, "/api/jobs/\(id)/cancel")
            #expect(cancelled.status == .ok)
            #expect(cancelled["status"] == "cancelled")
            let full = try await api.send(.get, "/api/jobs/\(id)")
            #expect(full["error"] == ["message": "cancelled by request", "class": "cancelled"])
            #expect(full["finishedAt"] != .null)

            let twice = try await api.send(.post, "/api/jobs/\(id)/cancel")
            #expect(twice.status == .conflict)
            #expect(twice.errorCode == "invalid_state")

            let retried = try await api.send(.post, "/api/jobs/\(id)/retry")
            #expect(retried.status == .ok)
            #expect(retried["status"] == "pending")
            #expect(retried["queuePosition"] == 1)
            let again = try await api.send(.post, "/api/jobs/\(id)/retry")
            #expect(again.status == .conflict)
            #expect(again.text.contains("pending"))
        }
    }

    @Test("a running job's cancel is 202 with cancelRequested")
    func cancelRunning() async throws {
        let harness = try APITestHarness()
        try await harness.run { api, store in
            let id = try await api.submit(["type": "echo"])
            let claimed = try await store.claim(
                limit: 1, worker: WorkerIdentity(id: "w", host: "h"), leaseDuration: .seconds(30), now: harness.clock.now())
            #expect(claimed.count == 1)
            let answer = try await api.send(.post, "/api/jobs/\(id)/cancel")
            #expect(answer.status == .accepted)
            #expect(answer["cancelRequested"] == true)
            #expect(answer["status"] == "running")
            let full = try await api.send(.get, "/api/jobs/\(id)")
            #expect(full["attempt"] == 1)
            guard case .array(let attempts)? = full["attempts"], let attempt = attempts.first else {
                Issue.record("the claim recorded an attempt")
                return
            }
            #expect(attempt["workerId"] == "w")
            #expect(attempt["host"] == "h")
            #expect(attempt["outcome"] == .null)
        }
    }

    @Test("result: 409 naming the status until the job completed")
    func result() async throws {
        let harness = try APITestHarness()
        try await harness.run { api, _ in
            let id = try await api.submit(["type": "echo"])
            let answer = try await api.send(.get, "/api/jobs/\(id)/result")
            #expect(answer.status == .conflict)
            #expect(answer.text.contains("pending"))
        }
    }

    @Test("list: newest first, filters, cursor paging, owner-scoped")
    func list() async throws {
        let harness = try APITestHarness()
        try await harness.run { api, _ in
            var mine: [String] = []
            for index in 0..<7 {
                harness.clock.advance(by: 1)
                mine.append(try await api.submit(["type": index % 2 == 0 ? "echo" : "shot", "tags": ["n": .string("\(index % 3)"), "team": "web"]]))
            }
            let bobs = try await api.submit(["type": "echo"], token: APITestHarness.bobToken)

            var seen: [String] = []
            var uri = "/api/jobs?limit=3"
            while true {
                let page = try await api.send(.get, uri)
                #expect(page.status == .ok)
                guard case .array(let jobs)? = page["jobs"] else { break }
                seen += jobs.compactMap { if case .string(let id)? = $0["jobId"] { id } else { nil } }
                guard case .string(let cursor)? = page["nextCursor"] else { break }
                uri = "/api/jobs?limit=3&cursor=\(cursor)"
            }
            #expect(seen == mine.reversed())

            func ids(_ uri: String, token: String = APITestHarness.aliceToken) async throws -> [String] {
                guard case .array(let jobs)? = try await api.send(.get, uri, token: token)["jobs"] else { return [] }
                return jobs.compactMap { if case .string(let id)? = $0["jobId"] { id } else { nil } }
            }
            #expect(try await ids("/api/jobs?type=shot") == [mine[5], mine[3], mine[1]])
            #expect(try await ids("/api/jobs?tag=n:0") == [mine[6], mine[3], mine[0]])
            #expect(try await ids("/api/jobs?tag=n:0&tag=team:web&type=echo") == [mine[6], mine[0]])
            #expect(try await ids("/api/jobs?status=cancelled").isEmpty)
            #expect(try await ids("/api/jobs?status=&type=&limit=500") == mine.reversed())
            #expect(try await ids("/api/jobs?tag=n:0&tag=n:1").isEmpty)
            #expect(try await ids("/api/jobs", token: APITestHarness.bobToken) == [bobs])
            #expect(try await ids("/api/jobs?limit=500", token: APITestHarness.adminToken) == [bobs] + mine.reversed())

            for bad in ["status=done", "limit=0", "limit=501", "limit=x", "cursor=nope", "tag=novalue", "colour=red"] {
                let answer = try await api.send(.get, "/api/jobs?\(bad)")
                #expect(answer.status == .unprocessableContent, "\(bad)")
            }
        }
    }

    @Test("/api/queue counts jobs by state")
    func queue() async throws {
        let harness = try APITestHarness()
        try await harness.run { api, _ in
            let id = try await api.submit(["type": "echo"])
            _ = try await api.submit(["type": "echo"])
            _ = try await api.send(.post, "/api/jobs/\(id)/cancel")
            harness.clock.advance(by: 3)
            let queue = try await api.send(.get, "/api/queue")
            #expect(queue.status == .ok)
            #expect(queue["pending"] == 1)
            #expect(queue["cancelled"] == 1)
            #expect(queue["running"] == 0)
            #expect(queue["workers"] == 0)
            #expect(queue["oldestPendingSeconds"] == 3)
        }
    }
}
