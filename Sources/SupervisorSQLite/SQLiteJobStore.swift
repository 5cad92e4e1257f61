public import Foundation
import GRDB
public import SupervisorCore
public import SupervisorStore
import Synchronization

/// The embedded store: one SQLite file in WAL mode, one writer, readers in parallel.
///
/// Every commit is durable (`synchronous = FULL`): once `submit` returns, the job survives
/// a crash of the process or the host. Submits are group-committed by `SubmissionBatcher`;
/// claims and other changes take `BEGIN IMMEDIATE` so that several processes sharing the
/// file (a `serve` and a `worker`) serialise their writes instead of failing.
public final class SQLiteJobStore: JobStore {
    let pool: DatabasePool
    private let batcher: SubmissionBatcher
    private let isClosed = Atomic<Bool>(false)

    /// Opens (creating if needed) the store file and its directory.
    public init(path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            // The commit that crosses the threshold copies the WAL into the database inside
            // the single writer, stalling every submit waiting behind it. A quarter of the
            // default (256 pages, ~1 MiB) keeps each stall small: ~1 ms less p99 under
            // load (scripts/bench submit).
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 256")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        batcher = SubmissionBatcher(pool: pool)
    }

    /// Opens the store a `sqlite://PATH` URL names; a relative PATH resolves from `base`.
    public convenience init(url: String, relativeTo base: URL) throws {
        try self.init(path: Self.path(url: url, relativeTo: base))
    }

    /// The file a `sqlite://PATH` URL names; a relative PATH resolves from `base`.
    public static func path(url: String, relativeTo base: URL) throws -> String {
        guard url.hasPrefix("sqlite://"), url.count > "sqlite://".count else {
            throw SQLiteStoreError.invalidURL(url)
        }
        let path = String(url.dropFirst("sqlite://".count))
        return path.hasPrefix("/") ? path : base.appendingPathComponent(path).standardizedFileURL.path
    }

    public func migrate() async throws {
        try checkOpen()
        try await writeImmediate { db in try SQLiteSchema.migrate(db) }
    }

    public func submit(_ submission: JobSubmission, limits: QueueLimits) async throws -> SubmitOutcome {
        try checkOpen()
        return try await batcher.submit(JobRow.EncodedSubmission(submission), limits: limits)
    }

    public func job(id: JobID, owner: String?) async throws -> Job? {
        try checkOpen()
        return try await pool.read { db in try JobRow.fetchOne(db, id: id, owner: owner) }
    }

    public func job(owner: String, idempotencyKey: String) async throws -> Job? {
        try checkOpen()
        return try await pool.read { db in try JobRow.fetchOne(db, owner: owner, idempotencyKey: idempotencyKey) }
    }

    public func list(_ query: JobQuery) async throws -> JobPage {
        try checkOpen()
        var conditions: [String] = []
        var arguments: [DatabaseValue] = []
        if let owner = query.owner {
            conditions.append("owner = ?")
            arguments.append(owner.databaseValue)
        }
        if let status = query.status {
            conditions.append("status = ?")
            arguments.append(status.rawValue.databaseValue)
        }
        if let type = query.type {
            conditions.append("type = ?")
            arguments.append(type.databaseValue)
        }
        for (key, value) in query.tags.sorted(by: { $0.key < $1.key }) {
            conditions.append("json_extract(tags, ?) = ?")
            arguments.append("$.\"\(key)\"".databaseValue)
            arguments.append(value.databaseValue)
        }
        if let after = query.after {
            conditions.append("id < ?")
            arguments.append(after.rawValue.databaseValue)
        }
        let clause = (conditions.isEmpty ? "1" : conditions.joined(separator: " AND ")) + " ORDER BY id DESC LIMIT ?"
        arguments.append((query.limit + 1).databaseValue)
        let fetched = try await pool.read { [arguments] db in
            try JobRow.fetch(db, where: clause, arguments: StatementArguments(arguments))
        }
        let jobs = Array(fetched.prefix(query.limit))
        return JobPage(jobs: jobs, nextCursor: fetched.count > query.limit ? jobs.last?.id : nil)
    }

    public func cancel(id: JobID, owner: String?, now: Date) async throws -> CancelOutcome {
        try checkOpen()
        return try await writeImmediate { db in
            guard let job = try JobRow.fetchOne(db, id: id, owner: owner) else { return .notFound }
            let millis = now.millisecondsSince1970
            switch job.status {
            case .pending:
                try db.execute(
                    sql: """
                        UPDATE jobs SET status = 'cancelled', finished_at = ?, updated_at = ?, secrets = NULL,
                            error_message = 'cancelled by request', error_class = 'cancelled' WHERE id = ?
                        """,
                    arguments: [millis, millis, id.rawValue]
                )
                return .cancelled(try JobRow.fetchOne(db, id: id, owner: nil)!)
            case .running:
                try db.execute(
                    sql: "UPDATE jobs SET cancel_requested = 1, updated_at = ? WHERE id = ?",
                    arguments: [millis, id.rawValue]
                )
                return .requested(try JobRow.fetchOne(db, id: id, owner: nil)!)
            case .completed, .failed, .cancelled:
                return .alreadyFinished(job)
            }
        }
    }

    public func retry(id: JobID, owner: String?, now: Date) async throws -> RetryOutcome {
        try checkOpen()
        return try await writeImmediate { db in
            guard let job = try JobRow.fetchOne(db, id: id, owner: owner) else { return .notFound }
            guard job.status == .failed || job.status == .cancelled else { return .notRetryable(job) }
            let millis = now.millisecondsSince1970
            // Attempt numbers continue; the budget the job was submitted with starts afresh.
            try db.execute(
                sql: """
                    UPDATE jobs SET status = 'pending', run_at = ?, updated_at = ?, finished_at = NULL,
                        max_attempts = attempt + attempt_budget, result = NULL, error_message = NULL,
                        error_class = NULL, cancel_requested = 0, progress = NULL WHERE id = ?
                    """,
                arguments: [millis, millis, id.rawValue]
            )
            return .retried(try JobRow.fetchOne(db, id: id, owner: nil)!)
        }
    }

    public func delete(id: JobID, owner: String?) async throws -> DeleteOutcome {
        try checkOpen()
        return try await writeImmediate { db in
            guard let job = try JobRow.fetchOne(db, id: id, owner: owner) else { return .notFound }
            guard job.status.isTerminal else { return .notFinished(job) }
            try db.execute(sql: "DELETE FROM jobs WHERE id = ?", arguments: [id.rawValue])
            return .deleted(job)
        }
    }

    public func pruneFinished(endedBefore cutoffs: [JobStatus: Date], limit: Int) async throws -> [JobID] {
        try checkOpen()
        return try await writeImmediate { db in
            let ids = try Self.finishedJobs(db, endedBefore: cutoffs, limit: limit)
            for id in ids { try db.executeCached(sql: "DELETE FROM jobs WHERE id = ?", arguments: [id.rawValue]) }
            return ids
        }
    }

    public func finishedJobs(endedBefore cutoffs: [JobStatus: Date], limit: Int) async throws -> [JobID] {
        try checkOpen()
        return try await pool.read { db in try Self.finishedJobs(db, endedBefore: cutoffs, limit: limit) }
    }

    private static func finishedJobs(_ db: Database, endedBefore cutoffs: [JobStatus: Date], limit: Int) throws -> [JobID] {
        var ids: [String] = []
        for (status, cutoff) in cutoffs.sorted(by: { $0.key.rawValue < $1.key.rawValue }) where status.isTerminal {
            guard ids.count < limit else { break }
            ids += try String.fetchAll(
                db.cachedStatement(
                    sql: "SELECT id FROM jobs INDEXED BY jobs_finished WHERE status = ? AND finished_at < ? LIMIT ?"),
                arguments: [status.rawValue, cutoff.millisecondsSince1970, limit - ids.count])
        }
        return ids.compactMap(JobID.init)
    }

    public func claim(limit: Int, caps: ClaimCaps, worker: WorkerIdentity, leaseDuration: Duration, now: Date)
        async throws -> [Job]
    {
        try checkOpen()
        guard limit > 0 else { return [] }
        let millis = now.millisecondsSince1970
        let leaseExpiry = millis + leaseDuration.milliseconds
        return try await writeImmediate { db in
            // A job not started by its start_by never will be.
            try db.executeCached(
                sql: """
                    UPDATE jobs INDEXED BY jobs_start_by SET status = 'failed', finished_at = ?1, updated_at = ?1,
                        secrets = NULL, error_message = 'not started within its startWithinSeconds',
                        error_class = 'expired'
                    WHERE status = 'pending' AND start_by IS NOT NULL AND start_by < ?1 AND attempt = 0
                    """,
                arguments: [millis]
            )
            var running: [String: Int] = [:]
            if caps.maxRunningPerOwner != nil {
                let counts = try db.cachedStatement(
                    sql: "SELECT owner, SUM(n) AS n FROM job_counts WHERE status = 'running' GROUP BY owner")
                for row in try Row.fetchAll(counts) { running[row["owner"]] = row["n"] }
            }
            var admission = ClaimAdmission(caps: caps, runningByOwner: running)
            var ids: [String] = []
            // The first candidate of a round is always admitted (held-back types and owners
            // are not asked for), so there are at most `limit` rounds. A job passed over
            // leaves its place to the next one in claim order.
            while ids.count < limit {
                let candidates = try Row.fetchAll(
                    db.cachedStatement(
                        sql: """
                            SELECT id, owner, type FROM jobs INDEXED BY jobs_claim_order
                            WHERE status = 'pending' AND run_at <= ?
                                AND type NOT IN (SELECT value FROM json_each(?))
                                AND owner NOT IN (SELECT value FROM json_each(?))
                            ORDER BY priority DESC, run_at, id LIMIT ?
                            """),
                    arguments: [
                        millis, Self.jsonArray(admission.heldBackTypes), Self.jsonArray(admission.heldBackOwners),
                        limit - ids.count,
                    ]
                )
                if candidates.isEmpty { break }
                for candidate in candidates where admission.admit(type: candidate["type"], owner: candidate["owner"]) {
                    let id: String = candidate["id"]
                    try db.executeCached(
                        sql: """
                            UPDATE jobs SET status = 'running', attempt = attempt + 1, started_at = ?, updated_at = ?,
                                lease_owner = ?, lease_expires_at = ?, progress = NULL WHERE id = ?
                            """,
                        arguments: [millis, millis, worker.id, leaseExpiry, id]
                    )
                    try db.executeCached(
                        sql: """
                            INSERT INTO attempts (job_id, attempt, host, worker_id, started_at)
                            SELECT id, attempt, ?, ?, ? FROM jobs WHERE id = ?
                            """,
                        arguments: [worker.host, worker.id, millis, id]
                    )
                    ids.append(id)
                }
            }
            let claimed = try ids.compactMap { id in try JobID(id).flatMap { try JobRow.fetchOne(db, id: $0, owner: nil) } }
            return claimed.sorted(by: ClaimOrder.precedes)
        }
    }

    public func queuePosition(of job: Job, now: Date) async throws -> Int? {
        try checkOpen()
        guard job.isClaimable(at: now) else { return nil }
        return try await pool.read { db in
            // Two index ranges, each ending where the jobs ahead end: higher priorities
            // that are due, and the job's own priority up to the job itself.
            let ahead = try Int.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM jobs INDEXED BY jobs_claim_order
                                WHERE status = 'pending' AND priority > ?1 AND run_at <= ?2 LIMIT ?5))
                            + (SELECT COUNT(*) FROM (SELECT 1 FROM jobs INDEXED BY jobs_claim_order
                                WHERE status = 'pending' AND priority = ?1 AND (run_at, id) < (?3, ?4) LIMIT ?5))
                        """),
                arguments: [
                    job.priority.rawValue, now.millisecondsSince1970, job.runAt.millisecondsSince1970,
                    job.id.rawValue, QueuePosition.exactLimit,
                ]
            ) ?? 0
            guard ahead >= QueuePosition.exactLimit else { return ahead + 1 }
            return max(ahead + 1, try SQLiteQueuePosition.pendingTotal(db))
        }
    }

    public func queueCounts(now: Date) async throws -> QueueCounts {
        try checkOpen()
        return try await pool.read { db in
            var byStatus: [JobStatus: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT status, SUM(n) AS n FROM job_counts GROUP BY status") {
                if let status = JobStatus(rawValue: row["status"]) { byStatus[status] = row["n"] }
            }
            // One index seek per priority instead of a scan of the pending jobs.
            let oldestRunAt = try Int64.fetchOne(
                db,
                sql: """
                    SELECT MIN(m) FROM (
                        SELECT MIN(run_at) AS m FROM jobs WHERE status = 'pending' AND priority = 2 AND run_at <= ?1
                        UNION ALL
                        SELECT MIN(run_at) FROM jobs WHERE status = 'pending' AND priority = 1 AND run_at <= ?1
                        UNION ALL
                        SELECT MIN(run_at) FROM jobs WHERE status = 'pending' AND priority = 0 AND run_at <= ?1)
                    """,
                arguments: [now.millisecondsSince1970]
            )
            return QueueCounts(
                byStatus: byStatus,
                oldestPendingSeconds: oldestRunAt.map { Double(now.millisecondsSince1970 - $0) / 1000 }
            )
        }
    }

    public func ping() async throws {
        try checkOpen()
        try await pool.read { db in try db.execute(sql: "SELECT 1") }
    }

    public func close() async throws {
        guard !isClosed.exchange(true, ordering: .sequentiallyConsistent) else { return }
        await batcher.drain()
        // GRDB closes its writer before its read-only readers, and the last connection
        // to close cannot checkpoint; so move everything into the main file now.
        try await pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
        try pool.close()
    }

    /// A set as the JSON array that `json_each` reads back in a query.
    static func jsonArray(_ strings: Set<String>) -> String {
        jsonArray(strings.sorted())
    }

    static func jsonArray(_ strings: [String]) -> String {
        JSONValue.array(strings.map(JSONValue.string)).serializedString()
    }

    func checkOpen() throws {
        if isClosed.load(ordering: .sequentiallyConsistent) { throw JobStoreError.closed }
    }

    func writeImmediate<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await pool.writeWithoutTransaction { db in
            var value: T?
            try db.inTransaction(.immediate) {
                value = try body(db)
                return .commit
            }
            return value!
        }
    }
}

extension Database {
    /// `execute(sql:arguments:)` through the statement cache: statements on the runner's
    /// hot path (claim, progress, endings) compile once per connection, not once per call.
    func executeCached(sql: String, arguments: StatementArguments = []) throws {
        try cachedStatement(sql: sql).execute(arguments: arguments)
    }
}
