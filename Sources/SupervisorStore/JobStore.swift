import Foundation
public import SupervisorCore

/// The only way the rest of `supervisor` touches the queue. Each backend (SQLite,
/// PostgreSQL) implements it and passes the `JobStoreContract` suite.
///
/// Every method that changes a job takes `now` from the caller, so time is injected and
/// the stores never read a clock of their own.
public protocol JobStore: Sendable {
    /// Creates or upgrades the schema; safe to call on every start.
    func migrate() async throws

    /// Stores a job durably; returns only after the job's transaction committed.
    ///
    /// Concurrent calls may share one transaction (group commit). A submission whose
    /// owner already has a job with the same idempotency key returns that job instead.
    /// - Throws: `JobStoreError.queueFull` or `.ownerOverLimit` when `limits` say so.
    func submit(_ submission: JobSubmission, limits: QueueLimits) async throws -> SubmitOutcome

    /// The job, or nil when it does not exist or belongs to another owner.
    /// - Parameter owner: nil to see every owner's jobs (admin).
    func job(id: JobID, owner: String?) async throws -> Job?

    /// The owner's job submitted with this idempotency key, if any.
    func job(owner: String, idempotencyKey: String) async throws -> Job?

    /// A page of jobs, newest first.
    func list(_ query: JobQuery) async throws -> JobPage

    /// Cancels a pending job at once, or asks the worker running it to stop.
    func cancel(id: JobID, owner: String?, now: Date) async throws -> CancelOutcome

    /// Puts a failed or cancelled job back to pending with a fresh attempt budget.
    func retry(id: JobID, owner: String?, now: Date) async throws -> RetryOutcome

    /// Deletes a finished job and its attempts (its files are the caller's to remove).
    func delete(id: JobID, owner: String?) async throws -> DeleteOutcome

    /// Deletes up to `limit` finished jobs that ended before the cutoff for their status
    /// (`[retention]`); answers the ones deleted, whose files are the caller's to remove.
    func pruneFinished(endedBefore cutoffs: [JobStatus: Date], limit: Int) async throws -> [JobID]

    /// The jobs `pruneFinished` would delete now, deleting nothing.
    func finishedJobs(endedBefore cutoffs: [JobStatus: Date], limit: Int) async throws -> [JobID]

    /// Atomically moves up to `limit` claimable jobs, in claim order, to `running` under
    /// a lease held by `worker`. A job is claimed by one caller only.
    ///
    /// A job that `caps` hold back is passed over, and the next one in claim order taken.
    func claim(limit: Int, caps: ClaimCaps, worker: WorkerIdentity, leaseDuration: Duration, now: Date) async throws
        -> [Job]

    /// Stores the latest progress of a running attempt. False when the lease no longer
    /// holds (the job was finished, requeued or claimed again): the write is dropped.
    func recordProgress(_ progress: JobProgress, for lease: AttemptLease, now: Date) async throws -> Bool

    /// Extends the leases still held to `now + duration`; answers the ones that are lost.
    func renewLeases(_ leases: [AttemptLease], duration: Duration, now: Date) async throws -> Set<AttemptLease>

    /// Of these attempts, the ones whose job a cancel request reached.
    func cancelRequests(among leases: [AttemptLease]) async throws -> Set<AttemptLease>

    /// Records how an attempt ended and what becomes of its job, in one transaction,
    /// fenced by the lease: an attempt whose lease was lost records nothing.
    func finish(_ lease: AttemptLease, _ ending: AttemptEnding, now: Date) async throws -> FinishOutcome

    /// Every running job whose lease ran out, or is held by one of `deadWorkers`, goes
    /// back to pending (or to failed when its attempts are spent, or to cancelled when a
    /// cancel was asked); its attempt ends as `lease_expired`. Answers the jobs it moved.
    func requeueExpiredLeases(now: Date, heldBy deadWorkers: Set<String>) async throws -> [JobID]

    /// Every running job's attempt and lease.
    func runningAttempts() async throws -> [RunningAttempt]

    /// Records a worker at its start, replacing a record with the same id.
    func registerWorker(_ worker: WorkerRecord) async throws

    /// Renews the worker's heartbeat; answers whether it was asked to drain, or nil when
    /// the worker has no record (a cleanup removed it): it should register again.
    @discardableResult
    func heartbeat(workerID: String, now: Date) async throws -> Bool?

    /// Asks a worker to stop claiming; false when there is no such worker.
    func drainWorker(id: String) async throws -> Bool

    /// Every registered worker, by id.
    func workers() async throws -> [WorkerRecord]

    /// Forgets a worker: at its clean exit, or once cleanup removed what a dead one left.
    func removeWorker(id: String) async throws

    /// The earliest `runAt` of a pending job that is not due at `now`, to wake the runner then.
    func nextRunAt(after now: Date) async throws -> Date?

    /// 1-based position among claimable jobs in claim order; nil when the job is not
    /// pending or not yet due. Exact up to `QueuePosition.exactLimit` ahead, estimated beyond.
    func queuePosition(of job: Job, now: Date) async throws -> Int?

    /// Jobs by state and the age of the oldest claimable job.
    func queueCounts(now: Date) async throws -> QueueCounts

    /// Throws when the store cannot be reached (`/readyz`).
    func ping() async throws

    /// Finishes pending writes and releases the store; later calls fail.
    func close() async throws
}

extension JobStore {
    /// Requeues the jobs whose lease ran out.
    public func requeueExpiredLeases(now: Date) async throws -> [JobID] {
        try await requeueExpiredLeases(now: now, heldBy: [])
    }

    /// A claim held back by nothing but `limit`.
    public func claim(limit: Int, worker: WorkerIdentity, leaseDuration: Duration, now: Date) async throws -> [Job] {
        try await claim(limit: limit, caps: .none, worker: worker, leaseDuration: leaseDuration, now: now)
    }
}

/// Who claims jobs: one supervisor process.
public struct WorkerIdentity: Sendable, Equatable {
    public var id: String
    public var host: String

    public init(id: String, host: String) {
        self.id = id
        self.host = host
    }
}

/// One attempt as a worker holds it: the fencing token of every write about it.
public struct AttemptLease: Sendable, Hashable, CustomStringConvertible {
    public var jobID: JobID
    public var attempt: Int
    public var workerID: String

    public init(jobID: JobID, attempt: Int, workerID: String) {
        self.jobID = jobID
        self.attempt = attempt
        self.workerID = workerID
    }

    /// The lease a fresh claim of `job` by `worker` holds.
    public init(claimed job: Job, by worker: WorkerIdentity) {
        self.init(jobID: job.id, attempt: job.attempt, workerID: worker.id)
    }

    public var description: String { "\(jobID) attempt \(attempt)" }
}

/// How an attempt ended, as `JobStore.finish` records it.
public struct AttemptEnding: Sendable, Equatable {
    public var verdict: AttemptVerdict
    /// The attempt's own outcome (for history); `verdict` says what becomes of the job.
    public var outcome: AttemptOutcome
    public var exitCode: Int?
    public var signal: Int?
    /// The last progress of the attempt, written with the ending so it is never lost.
    public var progress: JobProgress?
    /// For `.retry`: when the job becomes claimable again.
    public var retryAt: Date?
    public var peakMemoryBytes: Int64?
    /// For `browser = "chromium"` types: from the attempt's start to its browser answering.
    public var browserStartupMilliseconds: Int?

    public init(
        verdict: AttemptVerdict, outcome: AttemptOutcome, exitCode: Int? = nil, signal: Int? = nil,
        progress: JobProgress? = nil, retryAt: Date? = nil, peakMemoryBytes: Int64? = nil,
        browserStartupMilliseconds: Int? = nil
    ) {
        self.verdict = verdict
        self.outcome = outcome
        self.exitCode = exitCode
        self.signal = signal
        self.progress = progress
        self.retryAt = retryAt
        self.peakMemoryBytes = peakMemoryBytes
        self.browserStartupMilliseconds = browserStartupMilliseconds
    }
}

public enum FinishOutcome: Sendable, Equatable {
    /// The job as it is after the ending.
    case recorded(Job)
    /// The lease was lost: another attempt or a cleanup owns the job now.
    case fenced
}

/// Admission limits checked inside the submit transaction (`[limits]`).
public struct QueueLimits: Sendable, Equatable {
    public var maxPending: Int
    public var maxPendingPerOwner: Int

    public init(maxPending: Int, maxPendingPerOwner: Int) {
        self.maxPending = maxPending
        self.maxPendingPerOwner = maxPendingPerOwner
    }

    public static let unlimited = QueueLimits(maxPending: .max, maxPendingPerOwner: .max)
}

public enum SubmitOutcome: Sendable, Equatable {
    /// A new job; `queuePosition` as `JobStore.queuePosition(of:now:)` would answer.
    case accepted(Job, queuePosition: Int?)
    /// The owner's earlier job with the same idempotency key, as it is now.
    case duplicate(Job)
}

public enum CancelOutcome: Sendable, Equatable {
    case cancelled(Job)
    /// Running: the worker that holds it has been asked to stop.
    case requested(Job)
    case notFound
    case alreadyFinished(Job)
}

public enum RetryOutcome: Sendable, Equatable {
    case retried(Job)
    case notFound
    case notRetryable(Job)
}

public enum DeleteOutcome: Sendable, Equatable {
    case deleted(Job)
    case notFound
    /// Pending or running: only a finished job can be deleted.
    case notFinished(Job)
}

public enum JobStoreError: Error, Equatable, CustomStringConvertible {
    case queueFull(limit: Int)
    case ownerOverLimit(owner: String, limit: Int)
    case closed

    public var description: String {
        switch self {
        case .queueFull(let limit): "the queue is full (\(limit) pending jobs)"
        case .ownerOverLimit(let owner, let limit): "owner \(owner) has \(limit) pending jobs, its limit"
        case .closed: "the store is closed"
        }
    }
}

public enum QueuePosition {
    /// Positions are counted exactly up to this many jobs ahead.
    public static let exactLimit = 10_000
}

/// Filters and paging for `JobStore.list(_:)`.
public struct JobQuery: Sendable, Equatable {
    /// nil: every owner (admin).
    public var owner: String?
    public var status: JobStatus?
    public var type: String?
    /// All must match.
    public var tags: [String: String]
    public var limit: Int
    /// Jobs older than this one (the last id of the previous page).
    public var after: JobID?

    public init(
        owner: String?, status: JobStatus? = nil, type: String? = nil, tags: [String: String] = [:],
        limit: Int = 50, after: JobID? = nil
    ) {
        self.owner = owner
        self.status = status
        self.type = type
        self.tags = tags
        self.limit = limit
        self.after = after
    }
}

public struct JobPage: Sendable, Equatable {
    public var jobs: [Job]
    /// Pass as `JobQuery.after` for the next page; nil on the last page.
    public var nextCursor: JobID?

    public init(jobs: [Job], nextCursor: JobID?) {
        self.jobs = jobs
        self.nextCursor = nextCursor
    }
}

public struct QueueCounts: Sendable, Equatable {
    public var byStatus: [JobStatus: Int]
    public var oldestPendingSeconds: Double?

    public init(byStatus: [JobStatus: Int], oldestPendingSeconds: Double?) {
        self.byStatus = byStatus
        self.oldestPendingSeconds = oldestPendingSeconds
    }

    public subscript(status: JobStatus) -> Int { byStatus[status] ?? 0 }
}
