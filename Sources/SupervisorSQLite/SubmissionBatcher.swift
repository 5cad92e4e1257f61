import Foundation
import GRDB
import SupervisorCore
import SupervisorStore

/// Group commit: submissions that arrive while a transaction is being written wait and
/// go together in the next one, so a burst of submits costs one fsync per batch instead
/// of one per job. Each caller is answered only after its batch committed.
actor SubmissionBatcher {
    private struct Waiter {
        let submission: JobRow.EncodedSubmission
        let limits: QueueLimits
        let continuation: CheckedContinuation<SubmitOutcome, any Error>
    }

    private let pool: DatabasePool
    private var waiting: [Waiter] = []
    private var flushing: Task<Void, Never>?

    init(pool: DatabasePool) {
        self.pool = pool
    }

    func submit(_ submission: JobRow.EncodedSubmission, limits: QueueLimits) async throws -> SubmitOutcome {
        try await withCheckedThrowingContinuation { continuation in
            waiting.append(Waiter(submission: submission, limits: limits, continuation: continuation))
            if flushing == nil {
                flushing = Task { await self.flushUntilEmpty() }
            }
        }
    }

    /// Waits for every submission already handed in to be answered.
    func drain() async {
        await flushing?.value
    }

    private func flushUntilEmpty() async {
        while !waiting.isEmpty {
            let batch = waiting
            waiting = []
            let requests = batch.map { ($0.submission, $0.limits) }
            do {
                let outcomes = try await pool.writeWithoutTransaction { db in
                    var outcomes: [Result<SubmitOutcome, JobStoreError>] = []
                    try db.inTransaction(.immediate) {
                        outcomes = try Self.write(requests, db)
                        return .commit
                    }
                    return outcomes
                }
                for (waiter, outcome) in zip(batch, outcomes) { waiter.continuation.resume(with: outcome) }
            } catch {
                for waiter in batch { waiter.continuation.resume(throwing: error) }
            }
        }
        flushing = nil
    }

    /// Inserts one batch in the transaction `db` is in, checking idempotency keys and
    /// admission limits row by row, and works out each new job's queue position.
    private static func write(
        _ requests: [(JobRow.EncodedSubmission, QueueLimits)], _ db: Database
    ) throws -> [Result<SubmitOutcome, JobStoreError>] {
        var pendingTotal = try SQLiteQueuePosition.pendingTotal(db)
        var pendingByOwner: [String: Int] = [:]
        var aheadByPriority: [JobPriority: Int] = [:]
        for (encoded, _) in requests where encoded.submission.runAt <= encoded.submission.createdAt {
            let submission = encoded.submission
            if aheadByPriority[submission.priority] == nil {
                aheadByPriority[submission.priority] = try SQLiteQueuePosition.countAhead(
                    db, priority: submission.priority, now: submission.createdAt
                )
            }
        }
        var outcomes: [Result<SubmitOutcome, JobStoreError>] = []
        var accepted: [(index: Int, job: Job)] = []

        for (encoded, limits) in requests {
            let submission = encoded.submission
            if let key = submission.idempotencyKey,
                let existing = try JobRow.fetchOne(db, owner: submission.owner, idempotencyKey: key)
            {
                outcomes.append(.success(.duplicate(existing)))
                continue
            }
            if pendingTotal >= limits.maxPending {
                outcomes.append(.failure(.queueFull(limit: limits.maxPending)))
                continue
            }
            let ownerPending = try pendingByOwner[submission.owner]
                ?? Int.fetchOne(
                    db, sql: "SELECT COALESCE(SUM(n), 0) FROM job_counts WHERE owner = ? AND status = 'pending'",
                    arguments: [submission.owner]
                ) ?? 0
            if ownerPending >= limits.maxPendingPerOwner {
                pendingByOwner[submission.owner] = ownerPending
                outcomes.append(.failure(.ownerOverLimit(owner: submission.owner, limit: limits.maxPendingPerOwner)))
                continue
            }
            let job = submission.pendingJob
            try JobRow.insert(encoded, into: db)
            pendingTotal += 1
            pendingByOwner[submission.owner] = ownerPending + 1
            accepted.append((outcomes.count, job))
            outcomes.append(.success(.accepted(job, queuePosition: nil)))
        }

        // Positions once the whole batch is in: the jobs queued before it, plus those of
        // the batch that claim order puts first.
        let claimable = accepted.filter { $0.job.isClaimable(at: $0.job.createdAt) }
        for entry in claimable {
            guard let before = aheadByPriority[entry.job.priority] else { continue }
            let inBatch = claimable.filter { ClaimOrder.precedes($0.job, entry.job) }.count
            outcomes[entry.index] = .success(.accepted(entry.job, queuePosition: before + inBatch + 1))
        }
        return outcomes
    }
}

enum SQLiteQueuePosition {
    /// Pending jobs of every owner and priority, from the counts the triggers keep.
    static func pendingTotal(_ db: Database) throws -> Int {
        try Int.fetchOne(db.cachedStatement(sql: "SELECT COALESCE(SUM(n), 0) FROM job_counts WHERE status = 'pending'")) ?? 0
    }

    /// Claimable jobs of at least this priority: every pending one (from the counts the
    /// triggers keep) less those not due yet. A new job goes behind all of them, since it
    /// is the latest created and due now. The not-yet-due jobs are counted by one index
    /// seek per priority up to `QueuePosition.exactLimit`; with more scheduled than that,
    /// the due ones are counted directly instead, exactly up to the same limit.
    static func countAhead(_ db: Database, priority: JobPriority, now: Date) throws -> Int {
        let pending = try Int.fetchOne(
            db.cachedStatement(sql: "SELECT COALESCE(SUM(n), 0) FROM job_counts WHERE status = 'pending' AND priority >= ?"),
            arguments: [priority.rawValue]
        ) ?? 0
        let notDue = try Int.fetchOne(
            db.cachedStatement(sql: notDueSQL[priority.rawValue]),
            arguments: [now.millisecondsSince1970, QueuePosition.exactLimit]
        ) ?? 0
        guard notDue >= QueuePosition.exactLimit else { return max(0, pending - notDue) }
        let due = try Int.fetchOne(
            db.cachedStatement(
                sql: """
                    SELECT COUNT(*) FROM (SELECT 1 FROM jobs INDEXED BY jobs_claim_order
                        WHERE status = 'pending' AND priority >= ? AND run_at <= ? LIMIT ?)
                    """),
            arguments: [priority.rawValue, now.millisecondsSince1970, QueuePosition.exactLimit]
        ) ?? 0
        return due < QueuePosition.exactLimit ? due : max(due, pending - notDue)
    }

    /// For each priority p: pending jobs of priority >= p with `run_at` after ?1, at most ?2.
    private static let notDueSQL: [String] = JobPriority.allowedValues.map { lowest in
        let seeks = (lowest...JobPriority.allowedValues.upperBound).map { priority in
            "SELECT 1 FROM jobs WHERE status = 'pending' AND priority = \(priority) AND run_at > ?1"
        }
        return "SELECT COUNT(*) FROM (\(seeks.joined(separator: " UNION ALL ")) LIMIT ?2)"
    }
}
