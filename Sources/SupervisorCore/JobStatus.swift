/// Where a job is in its life (SPEC section 5).
public enum JobStatus: String, Sendable, CaseIterable, Codable {
    /// Waiting to be claimed: new, scheduled for later, or waiting out a retry backoff.
    case pending
    case running
    case completed
    case failed
    case cancelled

    /// A terminal job never runs again unless it is retried.
    public var isTerminal: Bool {
        switch self {
        case .pending, .running: false
        case .completed, .failed, .cancelled: true
        }
    }
}
