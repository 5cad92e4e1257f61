import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SupervisorCore

/// `--url` and `--token`, shared by every command that talks to a running daemon.
struct ClientOptions: ParsableArguments {
    @Option(name: .long, help: "Base URL of the supervisor API (default: $SUPERVISOR_URL, else http://127.0.0.1:8080).")
    var url: String?

    @Option(name: .long, help: "Bearer token (default: $SUPERVISOR_TOKEN).")
    var token: String?

    func client() -> APIClient {
        let environment = ProcessInfo.processInfo.environment
        let base = url ?? environment["SUPERVISOR_URL"] ?? "http://127.0.0.1:8080"
        return APIClient(
            baseURL: base.hasSuffix("/") ? String(base.dropLast()) : base,
            token: token ?? environment["SUPERVISOR_TOKEN"]
        )
    }
}

/// Calls the HTTP API and turns its JSON errors into command failures.
struct APIClient {
    let baseURL: String
    let token: String?

    struct Answer {
        let status: Int
        let headers: HTTPHeaders
        let document: JSONValue
        let body: Data
    }

    func send(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil, headers extra: [(String, String)] = [])
        async throws -> Answer
    {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body.serialized()))
        }
        let response: HTTPClientResponse
        do {
            response = try await Self.http.execute(request, timeout: .seconds(30))
        } catch {
            throw CommandFailure("cannot reach the supervisor at \(baseURL): \(error)")
        }
        let bytes = try await response.body.collect(upTo: 64 << 20)
        let document = (try? JSONValue(parsing: Data(bytes.readableBytesView))) ?? .null
        guard (200..<300).contains(Int(response.status.code)) else {
            if case .object(let error)? = document["error"], case .string(let message)? = error["message"] {
                throw CommandFailure("\(message) (HTTP \(response.status.code))")
            }
            throw CommandFailure("the supervisor answered HTTP \(response.status.code)")
        }
        return Answer(
            status: Int(response.status.code), headers: response.headers, document: document,
            body: Data(bytes.readableBytesView))
    }

    /// Fails at once when nothing listens, instead of retrying the connection until the
    /// request times out: a command line should say so straight away.
    private static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(5)
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// A path segment from user input, percent-encoded.
    static func segment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }
}

/// Prints answers as one JSON document (`--json`) or a few readable lines.
enum Printing {
    static func json(_ value: some Encodable) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("null".utf8)
        print(String(decoding: data, as: UTF8.self))
    }

    static func text(_ value: JSONValue?) -> String {
        switch value {
        case nil, .null?: "-"
        case .string(let text)?: text
        case .int(let number)?: "\(number)"
        case .double(let number)?: number == number.rounded() ? "\(Int64(number))" : String(format: "%.1f", number)
        case .bool(let flag)?: "\(flag)"
        case let other?: other.serializedString()
        }
    }

    static func progress(_ value: JSONValue?) -> String {
        guard case .object? = value else { return "-" }
        var text = "\(self.text(value?["percent"]))%"
        if let current = value?["current"], let total = value?["total"] { text += " (\(self.text(current))/\(self.text(total)))" }
        if case .string(let message)? = value?["message"] { text += " \(message)" }
        return text
    }

    static func statusLines(_ document: JSONValue) {
        let fields: [(String, String)] = [
            ("job", text(document["jobId"])), ("type", text(document["type"])), ("status", text(document["status"])),
            ("progress", progress(document["progress"])),
            ("attempt", "\(text(document["attempt"])) of \(text(document["maxAttempts"]))"),
            ("queue position", text(document["queuePosition"])), ("created", text(document["createdAt"])),
            ("started", text(document["startedAt"])), ("updated", text(document["updatedAt"])),
        ]
        for (name, value) in fields { print("\(name.padding(toLength: 15, withPad: " ", startingAt: 0)) \(value)") }
        if case .object(let error)? = document["error"] {
            print("\("error".padding(toLength: 15, withPad: " ", startingAt: 0)) \(text(error["class"])): \(text(error["message"]))")
        }
    }
}
