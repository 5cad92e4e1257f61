public import Hummingbird

/// Per-request state: who is asking, once `AuthenticationMiddleware` has decided.
public struct SupervisorRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var principal: Principal?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }

    /// The authenticated caller; routes behind the middleware can rely on it.
    func requirePrincipal() throws -> Principal {
        guard let principal else { throw APIError.unauthorized }
        return principal
    }
}
