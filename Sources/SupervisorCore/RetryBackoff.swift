/// How long a failed attempt waits before the next (SPEC section 3: `backoff` doubling,
/// ±10% jitter, capped by `backoff_max`).
public struct RetryBackoff: Sendable, Equatable {
    public var base: Duration
    public var maximum: Duration
    /// The jitter, as a fraction of the delay either way.
    public static let jitter = 0.1

    public init(base: Duration, maximum: Duration) {
        self.base = base
        self.maximum = maximum
    }

    /// The wait after failed attempt number `attempt` (from 1): `base`, then twice that,
    /// and so on, at most `maximum`, then moved by `jitterFraction` (in -0.1...0.1).
    public func delay(afterAttempt attempt: Int, jitterFraction: Double) -> Duration {
        let doublings = max(0, min(attempt - 1, 62))
        let baseMilliseconds = Double(base.milliseconds)
        let grown = baseMilliseconds * Double(sign: .plus, exponent: doublings, significand: 1)
        let capped = min(grown, Double(maximum.milliseconds))
        let jittered = capped * (1 + max(-Self.jitter, min(Self.jitter, jitterFraction)))
        return .milliseconds(Int64(jittered.rounded()))
    }

    /// The same, with a random jitter.
    public func delay(afterAttempt attempt: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        delay(afterAttempt: attempt, jitterFraction: Double.random(in: -Self.jitter...Self.jitter, using: &generator))
    }
}
