import Foundation
import HTTPTypes
import SupervisorConfig
import SupervisorCore
import SupervisorHTTP
import SupervisorStore
import Testing

/// Every status code of SPEC section 4, each with the JSON error shape.
@Suite("error answers over a real socket")
struct ErrorStatusTests {
    @Test("400: the body is not JSON, or not an object", arguments: ["{\"type\": ", "not json", "[1, 2]", "\"echo\"", ""])
    func badRequest(_ body: String) async throws {
        try await APITestHarness().run { api, _ in
            let answer = try await api.send(.post, "/api/jobs", raw: body)
            #expect(answer.status == .badRequest)
            #expect(["invalid_json", "not_an_object"].contains(answer.errorCode ?? ""))
            if case .string(let message)? = answer.body["error"]?["message"] { #expect(!message.isEmpty) }
        }
    }

    @Test("401: missing or unknown token, on every authenticated route")
    func unauthorized() async throws {
        try await APITestHarness().run { api, _ in
            for route in APIRoute.all where route.path.hasPrefix("/api/") {
                let path = route.path.replacingOccurrences(of: "{id}", with: "01a2086c-3f9f-7191-bad9-a9e3aa8496ee")
                    .replacingOccurrences(of: "{name}", with: "out.png")
                for token in [nil, "wrong-token-0123456789"] as [String?] {
                    let answer = try await api.send(route.method, path, token: token)
                    #expect(answer.status == .unauthorized, "\(route)")
                    #expect(answer.errorCode == "unauthorized")
                    #expect(answer.headers[.wwwAuthenticate] == "Bearer")
                }
            }
            let wrongScheme = try await api.send(.get, "/api/queue", token: nil, headers: [.authorization: "Basic YWxpY2U6eA=="])
            #expect(wrongScheme.status == .unauthorized)
            let lowercase = try await api.send(.get, "/api/queue", token: nil, headers: [.authorization: "bearer \(APITestHarness.aliceToken)"])
            #expect(lowercase.status == .ok)
        }
    }

    @Test("403: a user's token on an admin route")
    func forbidden() async throws {
        try await APITestHarness().run { api, _ in
            for path in ["/api/workers", "/metrics"] {
                let answer = try await api.send(.get, path)
                #expect(answer.status == .forbidden, "\(path)")
                #expect(answer.errorCode == "forbidden")
            }
            let drain = try await api.send(.post, "/api/workers/w1/drain")
            #expect(drain.status == .forbidden)
        }
    }

    @Test("404: unknown job, malformed id, another owner's job, unknown route")
    func notFound() async throws {
        try await APITestHarness().run { api, _ in
            let alices = try await api.submit(["type": "echo"])
            let unknown = UUIDv7Generator().next(at: Date()).rawValue
            for (method, suffix) in [(HTTPRequest.Method.get, ""), (.get, "/status"), (.get, "/result"), (.post, "/cancel"), (.post, "/retry")] {
                for id in [unknown, "not-an-id", "..%2F..%2Fetc"] {
                    let answer = try await api.send(method, "/api/jobs/\(id)\(suffix)")
                    #expect(answer.status == .notFound, "\(method) \(id)\(suffix)")
                    #expect(answer.errorCode == "not_found")
                }
                // Bob may not learn that alice's job exists: a 404, never a 403.
                let bobs = try await api.send(method, "/api/jobs/\(alices)\(suffix)", token: APITestHarness.bobToken)
                #expect(bobs.status == .notFound, "\(method) \(suffix)")
                #expect(bobs.errorCode == "not_found")
                let admins = try await api.send(method, "/api/jobs/\(alices)\(suffix)", token: APITestHarness.adminToken)
                #expect(admins.status != .notFound)
            }
            let route = try await api.send(.get, "/api/nothing-here")
            #expect(route.status == .notFound)
            #expect(route.errorCode == "not_found")
            let untokened = try await api.send(.get, "/no/such/thing", token: nil)
            #expect(untokened.status == .notFound)
        }
    }

    @Test("405: a known path with the wrong method names the allowed ones")
    func methodNotAllowed() async throws {
        try await APITestHarness().run { api, _ in
            let answer = try await api.send(.put, "/api/jobs")
            #expect(answer.status == .methodNotAllowed)
            #expect(answer.errorCode == "method_not_allowed")
            #expect(answer.headers[.allow]?.contains("POST") == true)
            #expect(answer.headers[.allow]?.contains("GET") == true)
            let status = try await api.send(.post, "/api/jobs/01a2086c-3f9f-7191-bad9-a9e3aa8496ee/status")
            #expect(status.status == .methodNotAllowed)
            #expect(status.headers[.allow] == "GET")
        }
    }

    @Test("413: a body over max_payload_bytes, declared or not")
    func tooLarge() async throws {
        try await APITestHarness(maxPayloadBytes: 1024).run { api, _ in
            let big: JSONValue = ["type": "echo", "payload": .string(String(repeating: "x", count: 2000))]
            let answer = try await api.send(.post, "/api/jobs", json: big)
            #expect(answer.status == .contentTooLarge)
            #expect(answer.errorCode == "payload_too_large")
            let fits: JSONValue = ["type": "echo", "payload": .string(String(repeating: "x", count: 900))]
            #expect(try await api.send(.post, "/api/jobs", json: fits).status == .accepted)
        }
    }

    @Test("422: unknown type, bad or unknown fields", arguments: [
        (#"{"type": "nope"}"#, "unknown_job_type"),
        (#"{}"#, "invalid_field"),
        (#"{"type": 7}"#, "invalid_field"),
        (#"{"type": "echo", "priority": 7}"#, "invalid_field"),
        (#"{"type": "echo", "priority": -1}"#, "invalid_field"),
        (#"{"type": "echo", "priority": "high"}"#, "invalid_field"),
        (#"{"type": "echo", "priority": 1.5}"#, "invalid_field"),
        (#"{"type": "echo", "delaySeconds": -5}"#, "invalid_field"),
        (#"{"type": "echo", "delaySeconds": "5"}"#, "invalid_field"),
        (#"{"type": "echo", "runAt": "tomorrow"}"#, "invalid_field"),
        (#"{"type": "echo", "runAt": "2027-01-15 10:00"}"#, "invalid_field"),
        (#"{"type": "echo", "runAt": "2027-01-15T10:00:00Z", "delaySeconds": 5}"#, "invalid_field"),
        (#"{"type": "echo", "maxAttempts": 0}"#, "invalid_field"),
        (#"{"type": "echo", "timeoutSeconds": 0}"#, "invalid_field"),
        (#"{"type": "echo", "tags": {"a b": "x"}}"#, "invalid_field"),
        (#"{"type": "echo", "tags": {"k": 1}}"#, "invalid_field"),
        (#"{"type": "echo", "tags": ["x"]}"#, "invalid_field"),
        (#"{"type": "echo", "colour": "red"}"#, "unknown_field"),
        (#"{"type": "echo", "secrets": "hunter2"}"#, "invalid_field"),
        (#"{"type": "echo", "webhookUrl": "https://x"}"#, "not_supported"),
        (#"{"type": "echo", "startWithinSeconds": 0}"#, "invalid_field"),
    ])
    func unprocessable(_ body: String, _ code: String) async throws {
        try await APITestHarness().run { api, _ in
            let answer = try await api.send(.post, "/api/jobs", raw: body)
            #expect(answer.status == .unprocessableContent, "\(answer.text)")
            #expect(answer.errorCode == code, "\(answer.text)")
        }
    }

    @Test("429: queue full, or one owner over its limit, with Retry-After")
    func tooManyRequests() async throws {
        try await APITestHarness(limits: LimitSettings(maxPending: 3, maxPendingPerOwner: 2)).run { api, _ in
            _ = try await api.submit(["type": "echo"])
            _ = try await api.submit(["type": "echo"])
            let owner = try await api.send(.post, "/api/jobs", json: ["type": "echo"])
            #expect(owner.status == .tooManyRequests)
            #expect(owner.errorCode == "owner_over_limit")
            #expect(owner.headers[.retryAfter] != nil)
            _ = try await api.submit(["type": "echo"], token: APITestHarness.bobToken)
            let full = try await api.send(.post, "/api/jobs", token: APITestHarness.adminToken, json: ["type": "echo"])
            #expect(full.status == .tooManyRequests)
            #expect(full.errorCode == "queue_full")
            #expect(full.headers[.retryAfter] != nil)
        }
    }

    @Test("501: routes SPEC.md names that this version does not serve yet")
    func notImplemented() async throws {
        try await APITestHarness().run { api, _ in
            for route in APIRoute.all where !route.isImplemented {
                let path = route.path.replacingOccurrences(of: "{id}", with: "01a2086c-3f9f-7191-bad9-a9e3aa8496ee")
                    .replacingOccurrences(of: "{name}", with: "out.png")
                let answer = try await api.send(route.method, path, token: APITestHarness.adminToken)
                #expect(answer.status == .notImplemented, "\(route)")
                #expect(answer.errorCode == "not_supported")
            }
        }
    }

    @Test("503: the store is unavailable; /readyz says so and /healthz stays up")
    func unavailable() async throws {
        let harness = try APITestHarness()
        try await harness.run { api, store in
            #expect(try await api.send(.get, "/readyz", token: nil).status == .ok)
            try await store.close()
            let ready = try await api.send(.get, "/readyz", token: nil)
            #expect(ready.status == .serviceUnavailable)
            #expect(ready.errorCode == "store_unavailable")
            let submit = try await api.send(.post, "/api/jobs", json: ["type": "echo"])
            #expect(submit.status == .serviceUnavailable)
            #expect(try await api.send(.get, "/healthz", token: nil).status == .ok)
        }
    }
}

@Suite("OpenAPI document")
struct OpenAPITests {
    @Test("is served as is and describes every route, and nothing else")
    func describesEveryRoute() async throws {
        try await APITestHarness().run { api, _ in
            let answer = try await api.send(.get, "/openapi.json", token: nil)
            #expect(answer.status == .ok)
            let served = try JSONValue(parsing: OpenAPIDocument.data)
            #expect(answer.body == served)
            #expect(answer["openapi"] == "3.1.0")
            guard case .object(let paths)? = answer["paths"] else {
                Issue.record("no paths")
                return
            }
            var described: Set<String> = []
            for (path, item) in paths {
                guard case .object(let operations) = item else { continue }
                for method in operations.keys where ["get", "post", "put", "delete", "patch"].contains(method) {
                    described.insert("\(method.uppercased()) \(path)")
                }
            }
            #expect(described == Set(APIRoute.all.map(\.description)))
        }
    }

    @Test("unauthenticated routes answer without a token")
    func publicRoutes() async throws {
        try await APITestHarness().run { api, _ in
            let health = try await api.send(.get, "/healthz", token: nil)
            let ready = try await api.send(.get, "/readyz", token: nil)
            #expect(health["status"] == "ok")
            #expect(ready["status"] == "ready")
        }
    }
}
