import Foundation

/// The order in which pending jobs are claimed (SPEC section 5): higher priority first,
/// then earlier `runAt`, then earlier creation (ids sort by creation).
public enum ClaimOrder {
    public static func precedes(_ lhs: Job, _ rhs: Job) -> Bool {
        if lhs.priority != rhs.priority { return lhs.priority > rhs.priority }
        if lhs.runAt != rhs.runAt { return lhs.runAt < rhs.runAt }
        return lhs.id < rhs.id
    }
}

/// How long a client should wait before polling a job's status again: 2 s while the job
/// is younger than 30 s, 5 s up to 2 min, 10 s after (SPEC section 4).
public enum StatusPollInterval {
    public static func seconds(jobAge: TimeInterval) -> Int {
        switch jobAge {
        case ..<30: 2
        case ..<120: 5
        default: 10
        }
    }
}

extension Date {
    /// Milliseconds since 1970, the precision the stores keep.
    public var millisecondsSince1970: Int64 { Int64((timeIntervalSince1970 * 1000).rounded(.down)) }

    public init(millisecondsSince1970 milliseconds: Int64) {
        self.init(timeIntervalSince1970: Double(milliseconds) / 1000)
    }

    /// This date cut to the stores' millisecond precision.
    public var truncatedToMilliseconds: Date { Date(millisecondsSince1970: millisecondsSince1970) }
}
