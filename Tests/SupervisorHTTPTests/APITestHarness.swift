import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SupervisorConfig
import SupervisorCore
import SupervisorHTTP
import SupervisorSQLite
import SupervisorStore
import Synchronization
import Testing

/// A clock the test moves by hand.
final class ManualClock: WallClock {
    private let current: Mutex<Date>

    init(_ start: Date = Date(millisecondsSince1970: 1_800_000_000_000)) {
        current = Mutex(start)
    }

    func now() -> Date { current.withLock { $0 } }

    func advance(by seconds: TimeInterval) {
        current.withLock { $0 = $0.addingTimeInterval(seconds) }
    }
}

/// Runs the real API on a real socket over a fresh SQLite store.
struct APITestHarness {
    static let aliceToken = "alice-token-0123456789"
    static let bobToken = "bob-token-0123456789ab"
    static let adminToken = "admin-token-0123456789"

    var configuration: SupervisorConfiguration
    let clock = ManualClock()

    init(maxPayloadBytes: Int = 4096, limits: LimitSettings = LimitSettings()) throws {
        let text = """
            [server]
            listen = "127.0.0.1:0"
            max_payload_bytes = \(maxPayloadBytes)
            [limits]
            max_pending = \(limits.maxPending)
            max_pending_per_owner = \(limits.maxPendingPerOwner)
            [[auth.tokens]]
            token = "\(Self.aliceToken)"
            owner = "alice"
            [[auth.tokens]]
            token = "\(Self.bobToken)"
            owner = "bob"
            [[auth.tokens]]
            token = "\(Self.adminToken)"
            owner = "ops"
            role = "admin"
            [job_types.echo]
            command = ["/bin/cat"]
            timeout = "1m"
            max_attempts = 3
            [job_types.shot]
            command = ["/bin/true"]
            max_attempts = 1
            """
        configuration = try ConfigurationLoader.parse(text, file: nil)
    }

    /// Starts the server, runs `body` against it, then shuts it down.
    func run(
        store: (any JobStore)? = nil, _ body: @Sendable (APIClient, any JobStore) async throws -> Void
    ) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("supervisor-http-\(UUID().uuidString)")
        let jobStore = try store ?? SQLiteJobStore(path: directory.appendingPathComponent("jobs.sqlite").path)
        try await jobStore.migrate()
        let api = SupervisorAPI(store: jobStore, configuration: configuration, clock: clock)
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        try await api.makeApplication(logger: logger).test(.live) { client in
            try await body(APIClient(client: client), jobStore)
        }
        try? await jobStore.close()
    }
}

/// A thin client for the tests: JSON in, status + headers + JSON out.
struct APIClient: Sendable {
    let client: any TestClientProtocol

    struct Answer {
        let status: HTTPResponse.Status
        let headers: HTTPFields
        let body: JSONValue
        let text: String

        var errorCode: String? {
            if case .string(let code)? = body["error"]?["code"] { return code }
            return nil
        }

        subscript(key: String) -> JSONValue? { body[key] }

        var string: (String) -> String? {
            { key in if case .string(let text)? = body[key] { return text } else { return nil } }
        }
    }

    func send(
        _ method: HTTPRequest.Method, _ uri: String, token: String? = APITestHarness.aliceToken,
        json: JSONValue? = nil, raw: String? = nil, headers extra: HTTPFields = [:]
    ) async throws -> Answer {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        var body: ByteBuffer?
        if let json { body = ByteBuffer(bytes: json.serialized()) }
        if let raw { body = ByteBuffer(string: raw) }
        if body != nil { headers[.contentType] = "application/json" }
        let response = try await client.execute(uri: uri, method: method, headers: headers, body: body)
        let text = String(buffer: response.body)
        return Answer(
            status: response.status, headers: response.headers,
            body: (try? JSONValue(parsing: Data(text.utf8))) ?? .null, text: text)
    }

    /// Submits and returns the new job's id, expecting a 202.
    func submit(_ body: JSONValue, token: String = APITestHarness.aliceToken, sourceLocation: SourceLocation = #_sourceLocation)
        async throws -> String
    {
        let answer = try await send(.post, "/api/jobs", token: token, json: body)
        #expect(answer.status == .accepted, "\(answer.text)", sourceLocation: sourceLocation)
        return try #require(answer.string("jobId"), sourceLocation: sourceLocation)
    }
}
