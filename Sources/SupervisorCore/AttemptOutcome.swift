/// How an attempt ended; a failed job's `error.class` is the outcome of its last attempt
/// (SPEC section 5).
public enum AttemptOutcome: String, Sendable, CaseIterable, Codable {
    case completed
    case exitCode = "exit_code"
    case signal
    case timeout
    case idleTimeout = "idle_timeout"
    case oom
    case failPermanent = "fail_permanent"
    case failTransient = "fail_transient"
    case resultTooLarge = "result_too_large"
    case workDirFull = "work_dir_full"
    case browserCrashed = "browser_crashed"
    case leaseExpired = "lease_expired"
    case expired
    case cancelled
    /// Stopped by a graceful shutdown; does not spend an attempt.
    case interrupted
}
