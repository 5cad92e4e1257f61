import SupervisorConfig
import HTTPTypes
import Hummingbird

/// Requires `Authorization: Bearer <token>` on the routes it guards; tokens never travel in URLs.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = SupervisorRequestContext

    /// Read for each request: SIGHUP may have replaced the tokens.
    let settings: ReloadableSettings

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let authenticator = TokenAuthenticator(tokens: settings.current.tokens)
        if authenticator.requiresToken {
            // The scheme name is case-insensitive (RFC 9110); the token is not.
            guard let header = request.headers[.authorization], header.prefix(7).lowercased() == "bearer ",
                let principal = authenticator.principal(forBearer: String(header.dropFirst(7)))
            else { throw APIError.unauthorized }
            context.principal = principal
        } else {
            context.principal = TokenAuthenticator.openAccess
        }
        return try await next(request, context)
    }
}

/// Admin-only routes: a user's token is a 403 there.
struct AdminOnlyMiddleware: RouterMiddleware {
    typealias Context = SupervisorRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard try context.requirePrincipal().role == .admin else {
            throw APIError(.forbidden, code: "forbidden", message: "this route needs an admin token")
        }
        return try await next(request, context)
    }
}
