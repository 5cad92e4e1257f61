/// What happened in one attempt, as the runner saw it, and the rules of SPEC section 6
/// that turn it into what becomes of the job.
public struct AttemptReport: Sendable, Equatable {
    /// How the job's main process ended.
    public enum Termination: Sendable, Equatable {
        case exited(Int32)
        case signaled(Int32)
    }

    /// Why the supervisor ended the attempt, when it did.
    public enum Stop: Sendable, Equatable {
        case timeout
        case idleTimeout
        case oom
        case workDirFull
        case browserCrashed
        case leaseExpired
        case cancelled
        /// A graceful shutdown: the attempt is not spent.
        case interrupted
    }

    public var termination: Termination
    public var stoppedBy: Stop?
    /// The last `::fail` marker, if any.
    public var failure: (kind: ProgressMarker.FailureKind, message: String)?
    /// The last `::result`, if any.
    public var result: JSONValue?
    /// A `::result` was over `StdoutLine.maxResultBytes`.
    public var resultTooLarge: Bool

    public init(
        termination: Termination, stoppedBy: Stop? = nil,
        failure: (kind: ProgressMarker.FailureKind, message: String)? = nil, result: JSONValue? = nil,
        resultTooLarge: Bool = false
    ) {
        self.termination = termination
        self.stoppedBy = stoppedBy
        self.failure = failure
        self.result = result
        self.resultTooLarge = resultTooLarge
    }

    public static func == (lhs: AttemptReport, rhs: AttemptReport) -> Bool {
        lhs.termination == rhs.termination && lhs.stoppedBy == rhs.stoppedBy && lhs.failure?.kind == rhs.failure?.kind
            && lhs.failure?.message == rhs.failure?.message && lhs.result == rhs.result
            && lhs.resultTooLarge == rhs.resultTooLarge
    }

    /// The outcome of this attempt (SPEC sections 5 and 6). What the supervisor stopped
    /// comes first, then an oversized result, then the job's own `::fail`, then its exit.
    public func outcome(permanentExitCodes: Set<Int32>) -> (outcome: AttemptOutcome, message: String) {
        switch stoppedBy {
        case .cancelled?: return (.cancelled, "cancelled by request")
        case .interrupted?: return (.interrupted, "stopped by a shutdown of the supervisor")
        case .timeout?: return (.timeout, "ran past its timeout")
        case .idleTimeout?: return (.idleTimeout, "wrote nothing for longer than its idle timeout")
        case .oom?: return (.oom, "ran out of memory (memory_max)")
        case .workDirFull?: return (.workDirFull, "wrote more than max_work_dir_bytes")
        case .browserCrashed?: return (.browserCrashed, "the browser crashed")
        case .leaseExpired?: return (.leaseExpired, "its worker could not renew the lease")
        case nil: break
        }
        if resultTooLarge { return (.resultTooLarge, "its ::result was over \(StdoutLine.maxResultBytes) bytes") }
        if let failure {
            let message = failure.message.isEmpty ? "the job reported a \(failure.kind.rawValue) failure" : failure.message
            return (failure.kind == .permanent ? .failPermanent : .failTransient, message)
        }
        switch termination {
        case .exited(0): return (.completed, "")
        case .exited(let code) where permanentExitCodes.contains(code):
            return (.failPermanent, "exited with status \(code), one of permanent_exit_codes")
        case .exited(let code): return (.exitCode, "exited with status \(code)")
        case .signaled(let signal): return (.signal, "killed by signal \(signal)")
        }
    }

    /// What becomes of the job after this attempt, its `attempt`-th, of `maxAttempts`.
    public func verdict(attempt: Int, maxAttempts: Int, permanentExitCodes: Set<Int32>) -> AttemptVerdict {
        let (outcome, message) = outcome(permanentExitCodes: permanentExitCodes)
        switch outcome {
        case .completed: return .completed(result: result)
        case .cancelled: return .cancelled
        case .interrupted: return .requeued
        case .failPermanent, .resultTooLarge, .expired: return .failed(outcome, message: message)
        case .exitCode, .signal, .timeout, .idleTimeout, .oom, .failTransient, .workDirFull, .browserCrashed,
            .leaseExpired:
            return attempt < maxAttempts ? .retry(outcome, message: message) : .failed(outcome, message: message)
        }
    }
}

/// What becomes of a job after an attempt.
public enum AttemptVerdict: Sendable, Equatable {
    case completed(result: JSONValue?)
    /// Back to pending after the backoff; attempts remain.
    case retry(AttemptOutcome, message: String)
    /// Failed for good: no retry, or no attempts left.
    case failed(AttemptOutcome, message: String)
    case cancelled
    /// Back to pending at once, the attempt not spent.
    case requeued
}
