import Foundation
import Synchronization

/// Hands each attempt a TCP port from `runner.port_range` that no running attempt of this
/// process holds and that nothing else on the host is bound to when checked (SPEC section 6).
public final class DebugPortPool: Sendable {
    public struct Exhausted: Error, CustomStringConvertible {
        public let range: ClosedRange<Int>
        public var description: String { "no free port in port_range \(range.lowerBound)-\(range.upperBound)" }
    }

    public let range: ClosedRange<Int>
    private let state: Mutex<(held: Set<Int>, next: Int)>

    public init(range: ClosedRange<Int>) {
        self.range = range
        state = Mutex((held: [], next: range.lowerBound))
    }

    /// A free port, held until `release(_:)`. Ports are tried round-robin, so a port just
    /// released (perhaps still in TIME_WAIT) is the last to be handed out again.
    public func reserve() throws -> Int {
        try state.withLock { state in
            for _ in range {
                let candidate = state.next
                state.next = candidate == range.upperBound ? range.lowerBound : candidate + 1
                guard !state.held.contains(candidate), Self.isFree(candidate) else { continue }
                state.held.insert(candidate)
                return candidate
            }
            throw Exhausted(range: range)
        }
    }

    public func release(_ port: Int) {
        _ = state.withLock { $0.held.remove(port) }
    }

    /// Whether a listener could bind the port on 127.0.0.1 right now.
    static func isFree(_ port: Int) -> Bool {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { return false }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr = in_addr(s_addr: inet_addr("127.0.0.1"))
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
