import Crypto
import Foundation
public import SupervisorConfig

/// Resolves bearer tokens against `[[auth.tokens]]`.
///
/// The presented token is hashed and its digest compared with every configured digest in
/// constant time, without stopping at the first match, so timing says nothing about
/// which tokens exist.
public struct TokenAuthenticator: Sendable {
    private let tokens: [AccessToken]

    public init(tokens: [AccessToken]) {
        self.tokens = tokens
    }

    /// With no tokens configured (allowed only on a loopback address) every local caller
    /// is this admin.
    public static let openAccess = Principal(owner: "local", role: .admin)

    public var requiresToken: Bool { !tokens.isEmpty }

    public func principal(forBearer token: String) -> Principal? {
        let digest = Array(SHA256.hash(data: Data(token.utf8)))
        var match: AccessToken?
        for candidate in tokens where Self.constantTimeEqual(candidate.sha256, digest) {
            match = candidate
        }
        return match.map { Principal(owner: $0.owner, role: $0.role) }
    }

    static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }
}
