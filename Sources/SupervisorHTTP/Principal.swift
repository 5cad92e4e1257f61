public import SupervisorConfig

/// An authenticated caller.
public struct Principal: Sendable, Equatable {
    public var owner: String
    public var role: AccessToken.Role

    public init(owner: String, role: AccessToken.Role) {
        self.owner = owner
        self.role = role
    }

    /// The owner filter for store queries: an admin sees every owner's jobs.
    var visibleOwner: String? { role == .admin ? nil : owner }
}
