public import HTTPTypes

/// Every route of SPEC section 4: the router registers from this table, the 405 check
/// matches against it, and a test checks each is described in `openapi.json`.
public struct APIRoute: Sendable, Hashable, CustomStringConvertible {
    public var method: HTTPRequest.Method
    /// OpenAPI-style template, e.g. `/api/jobs/{id}/status`.
    public var path: String
    /// False for routes SPEC.md names that this version answers with 501.
    public var isImplemented: Bool

    public var description: String { "\(method.rawValue) \(path)" }

    /// The same template in Hummingbird's `:name` syntax.
    var routerPath: String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { segment in
            segment.hasPrefix("{") && segment.hasSuffix("}") ? ":" + segment.dropFirst().dropLast() : segment
        }.joined(separator: "/")
    }

    /// Whether a request path fits this template, whatever the method.
    func matches(path requestPath: String) -> Bool {
        let template = path.split(separator: "/", omittingEmptySubsequences: false)
        let actual = requestPath.split(separator: "/", omittingEmptySubsequences: false)
        guard template.count == actual.count else { return false }
        return zip(template, actual).allSatisfy { expected, given in
            (expected.hasPrefix("{") && !given.isEmpty) || expected == given
        }
    }

    public static let all: [APIRoute] = [
        .init(method: .post, path: "/api/jobs", isImplemented: true),
        .init(method: .get, path: "/api/jobs", isImplemented: true),
        .init(method: .get, path: "/api/jobs/{id}", isImplemented: true),
        .init(method: .delete, path: "/api/jobs/{id}", isImplemented: true),
        .init(method: .get, path: "/api/jobs/{id}/status", isImplemented: true),
        .init(method: .get, path: "/api/jobs/{id}/result", isImplemented: true),
        .init(method: .post, path: "/api/jobs/{id}/cancel", isImplemented: true),
        .init(method: .post, path: "/api/jobs/{id}/retry", isImplemented: true),
        .init(method: .get, path: "/api/jobs/{id}/events", isImplemented: false),
        .init(method: .get, path: "/api/jobs/{id}/logs", isImplemented: true),
        .init(method: .get, path: "/api/jobs/{id}/artifacts/{name}", isImplemented: true),
        .init(method: .get, path: "/api/events", isImplemented: false),
        .init(method: .get, path: "/api/queue", isImplemented: true),
        .init(method: .get, path: "/api/workers", isImplemented: true),
        .init(method: .post, path: "/api/workers/{id}/drain", isImplemented: true),
        .init(method: .post, path: "/api/admin/cleanup", isImplemented: true),
        .init(method: .get, path: "/healthz", isImplemented: true),
        .init(method: .get, path: "/readyz", isImplemented: true),
        .init(method: .get, path: "/metrics", isImplemented: true),
        .init(method: .get, path: "/openapi.json", isImplemented: true),
        .init(method: .get, path: "/", isImplemented: false),
    ]
}
