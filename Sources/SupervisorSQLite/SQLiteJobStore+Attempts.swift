public import Foundation
import GRDB
public import SupervisorCore
public import SupervisorStore

/// The runner's side of the store: progress, leases and endings of attempts. Every write
/// about an attempt is fenced by its lease (`AttemptLease`): it changes the job only while
/// the job is still running that attempt under that worker.
extension SQLiteJobStore {
    /// The condition a row must meet for a write by `lease` to count.
    static let fence = "id = ? AND status = 'running' AND attempt = ? AND lease_owner = ?"

    static func fenceArguments(_ lease: AttemptLease) -> StatementArguments {
        [lease.jobID.rawValue, lease.attempt, lease.workerID]
    }

    public func recordProgress(_ progress: JobProgress, for lease: AttemptLease, now: Date) async throws -> Bool {
        try checkOpen()
        let text = progress.jsonValue.serializedString()
        return try await writeImmediate { db in
            try db.executeCached(
                sql: "UPDATE jobs SET progress = ?, updated_at = ? WHERE \(Self.fence)",
                arguments: [text, now.millisecondsSince1970] + Self.fenceArguments(lease)
            )
            return db.changesCount > 0
        }
    }

    public func renewLeases(_ leases: [AttemptLease], duration: Duration, now: Date) async throws -> Set<AttemptLease> {
        try checkOpen()
        guard !leases.isEmpty else { return [] }
        let expiry = now.millisecondsSince1970 + duration.milliseconds
        return try await writeImmediate { db in
            var lost: Set<AttemptLease> = []
            for lease in leases {
                try db.executeCached(
                    sql: "UPDATE jobs SET lease_expires_at = ? WHERE \(Self.fence)",
                    arguments: [expiry] + Self.fenceArguments(lease)
                )
                if db.changesCount == 0 { lost.insert(lease) }
            }
            return lost
        }
    }

    public func cancelRequests(among leases: [AttemptLease]) async throws -> Set<AttemptLease> {
        try checkOpen()
        guard !leases.isEmpty else { return [] }
        return try await pool.read { db in
            try Set(leases.filter { lease in
                try Bool.fetchOne(
                    db.cachedStatement(sql: "SELECT cancel_requested FROM jobs WHERE \(Self.fence)"),
                    arguments: Self.fenceArguments(lease)
                ) == true
            })
        }
    }

    public func finish(_ lease: AttemptLease, _ ending: AttemptEnding, now: Date) async throws -> FinishOutcome {
        try checkOpen()
        let millis = now.millisecondsSince1970
        let progress = ending.progress.map { $0.jsonValue.serializedString() }
        return try await writeImmediate { db in
            guard let cancelRequested = try Bool.fetchOne(
                db.cachedStatement(sql: "SELECT cancel_requested FROM jobs WHERE \(Self.fence)"),
                arguments: Self.fenceArguments(lease))
            else { return .fenced }
            // A cancel asked while the attempt ran wins over running the job again.
            var verdict = ending.verdict
            switch verdict {
            case .retry, .requeued: if cancelRequested { verdict = .cancelled }
            case .completed, .failed, .cancelled: break
            }
            try db.executeCached(
                sql: """
                    UPDATE attempts SET finished_at = ?, exit_code = ?, signal = ?, outcome = ?, peak_memory_bytes = ?,
                        browser_startup_ms = ? WHERE job_id = ? AND attempt = ?
                    """,
                arguments: [
                    millis, ending.exitCode, ending.signal, ending.outcome.rawValue, ending.peakMemoryBytes,
                    ending.browserStartupMilliseconds, lease.jobID.rawValue, lease.attempt,
                ]
            )
            let common = "updated_at = ?, progress = COALESCE(?, progress), lease_owner = NULL, lease_expires_at = NULL"
            let id = lease.jobID.rawValue
            switch verdict {
            case .completed(let result):
                try db.executeCached(
                    sql: """
                        UPDATE jobs SET status = 'completed', result = ?, finished_at = ?, error_message = NULL,
                            error_class = NULL, secrets = NULL, \(common) WHERE id = ?
                        """,
                    arguments: [result.map { $0.serializedString() }, millis, millis, progress, id]
                )
            case .retry(let outcome, let message):
                let runAt = (ending.retryAt ?? now).millisecondsSince1970
                try db.executeCached(
                    sql: """
                        UPDATE jobs SET status = 'pending', run_at = ?, error_message = ?, error_class = ?,
                            cancel_requested = 0, \(common) WHERE id = ?
                        """,
                    arguments: [runAt, message, outcome.rawValue, millis, progress, id]
                )
            case .failed(let outcome, let message):
                try db.executeCached(
                    sql: """
                        UPDATE jobs SET status = 'failed', finished_at = ?, error_message = ?, error_class = ?,
                            secrets = NULL, \(common) WHERE id = ?
                        """,
                    arguments: [millis, message, outcome.rawValue, millis, progress, id]
                )
            case .cancelled:
                try db.executeCached(
                    sql: """
                        UPDATE jobs SET status = 'cancelled', finished_at = ?, error_message = 'cancelled by request',
                            error_class = 'cancelled', secrets = NULL, \(common) WHERE id = ?
                        """,
                    arguments: [millis, millis, progress, id]
                )
            case .requeued:
                // The attempt number moves on but the budget grows with it: not spent.
                try db.executeCached(
                    sql: """
                        UPDATE jobs SET status = 'pending', run_at = ?, max_attempts = max_attempts + 1,
                            \(common) WHERE id = ?
                        """,
                    arguments: [millis, millis, progress, id]
                )
            }
            return .recorded(try JobRow.fetchOne(db, id: lease.jobID, owner: nil)!)
        }
    }

    public func requeueExpiredLeases(now: Date, heldBy deadWorkers: Set<String>) async throws -> [JobID] {
        try checkOpen()
        let millis = now.millisecondsSince1970
        return try await writeImmediate { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT id, attempt, max_attempts, cancel_requested FROM jobs
                    WHERE status = 'running'
                        AND (lease_expires_at < ? OR lease_owner IN (SELECT value FROM json_each(?)))
                    """,
                arguments: [millis, Self.jsonArray(deadWorkers)]
            )
            for row in rows {
                let id: String = row["id"]
                let attempt: Int = row["attempt"]
                try db.executeCached(
                    sql: "UPDATE attempts SET finished_at = ?, outcome = 'lease_expired' WHERE job_id = ? AND attempt = ?",
                    arguments: [millis, id, attempt]
                )
                let status: String
                if row["cancel_requested"] as Bool {
                    status = "cancelled"
                } else {
                    status = attempt < (row["max_attempts"] as Int) ? "pending" : "failed"
                }
                let errorClass = status == "cancelled" ? "cancelled" : "lease_expired"
                let message = status == "cancelled" ? "cancelled by request" : "its worker stopped renewing the lease"
                try db.executeCached(
                    sql: """
                        UPDATE jobs SET status = ?3, run_at = ?2, updated_at = ?2,
                            finished_at = CASE WHEN ?3 = 'pending' THEN NULL ELSE ?2 END,
                            secrets = CASE WHEN ?3 = 'pending' THEN secrets ELSE NULL END,
                            error_message = ?4, error_class = ?5, lease_owner = NULL, lease_expires_at = NULL
                        WHERE id = ?1
                        """,
                    arguments: [id, millis, status, message, errorClass]
                )
            }
            return rows.compactMap { JobID($0["id"] as String) }
        }
    }

    public func nextRunAt(after now: Date) async throws -> Date? {
        try checkOpen()
        return try await pool.read { db in
            // One index seek per priority, as in `queueCounts`.
            try Int64.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT MIN(m) FROM (
                            SELECT MIN(run_at) AS m FROM jobs WHERE status = 'pending' AND priority = 2 AND run_at > ?1
                            UNION ALL
                            SELECT MIN(run_at) FROM jobs WHERE status = 'pending' AND priority = 1 AND run_at > ?1
                            UNION ALL
                            SELECT MIN(run_at) FROM jobs WHERE status = 'pending' AND priority = 0 AND run_at > ?1)
                        """),
                arguments: [now.millisecondsSince1970]
            ).map(Date.init(millisecondsSince1970:))
        }
    }
}
