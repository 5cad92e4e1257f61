import Foundation
import GRDB
import SupervisorCore

/// Reading and writing `jobs` rows. Times are integer milliseconds; JSON columns are text.
enum JobRow {
    static let columns = """
        id, owner, type, status, priority, payload, run_at, created_at, updated_at, started_at, finished_at,
        attempt, max_attempts, timeout_seconds, tags, idempotency_key, result, error_message, error_class,
        cancel_requested, progress, start_by, secrets
        """

    /// A submission with its JSON columns already serialised, so that work happens on the
    /// submitting request's task rather than inside the single writer's transaction.
    struct EncodedSubmission: Sendable {
        let submission: JobSubmission
        let payload: String
        let tags: String
        let secrets: String?

        init(_ submission: JobSubmission) {
            self.submission = submission
            payload = submission.payload.serializedString()
            secrets = submission.secrets?.serializedString()
            tags = JSONValue.object(submission.tags.mapValues(JSONValue.string)).serializedString()
        }
    }

    static func insert(_ encoded: EncodedSubmission, into db: Database) throws {
        let submission = encoded.submission
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO jobs (id, owner, type, status, priority, payload, run_at, created_at, updated_at,
                    max_attempts, attempt_budget, timeout_seconds, tags, idempotency_key, start_by, secrets)
                VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        )
        try statement.execute(arguments: [
            submission.id.rawValue, submission.owner, submission.type, submission.priority.rawValue,
            encoded.payload, submission.runAt.millisecondsSince1970,
            submission.createdAt.millisecondsSince1970, submission.createdAt.millisecondsSince1970,
            submission.maxAttempts, submission.maxAttempts, submission.timeoutSeconds, encoded.tags,
            submission.idempotencyKey, submission.startBy?.millisecondsSince1970, encoded.secrets,
        ])
    }

    /// Jobs by a `WHERE …` clause over `jobs`, with their attempts.
    static func fetch(_ db: Database, where clause: String, arguments: StatementArguments) throws -> [Job] {
        let statement = try db.cachedStatement(sql: "SELECT \(columns) FROM jobs WHERE \(clause)")
        let rows = try Row.fetchAll(statement, arguments: arguments)
        var jobs = try rows.map(job(from:))
        try attachAttempts(to: &jobs, db)
        return jobs
    }

    static func fetchOne(_ db: Database, id: JobID, owner: String?) throws -> Job? {
        if let owner {
            return try fetch(db, where: "id = ? AND owner = ?", arguments: [id.rawValue, owner]).first
        }
        return try fetch(db, where: "id = ?", arguments: [id.rawValue]).first
    }

    /// The owner's job submitted with this idempotency key.
    static func fetchOne(_ db: Database, owner: String, idempotencyKey: String) throws -> Job? {
        try fetch(db, where: "owner = ? AND idempotency_key = ?", arguments: [owner, idempotencyKey]).first
    }

    private static func attachAttempts(to jobs: inout [Job], _ db: Database) throws {
        guard !jobs.isEmpty else { return }
        // Most jobs listed have never run; only ask for the ones that have.
        let started = jobs.indices.filter { jobs[$0].attempt > 0 }
        guard !started.isEmpty else { return }
        let placeholders = Array(repeating: "?", count: started.count).joined(separator: ",")
        let rows = try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT job_id, attempt, host, worker_id, started_at, finished_at, exit_code, signal, outcome,
                        peak_memory_bytes, browser_startup_ms FROM attempts WHERE job_id IN (\(placeholders)) ORDER BY job_id, attempt
                    """),
            arguments: StatementArguments(started.map { jobs[$0].id.rawValue })
        )
        var byJob: [String: [AttemptRecord]] = [:]
        for row in rows {
            let outcome: String? = row["outcome"]
            let finished: Int64? = row["finished_at"]
            byJob[row["job_id"], default: []].append(
                AttemptRecord(
                    attempt: row["attempt"], host: row["host"], workerID: row["worker_id"],
                    startedAt: Date(millisecondsSince1970: row["started_at"]),
                    finishedAt: finished.map(Date.init(millisecondsSince1970:)),
                    exitCode: row["exit_code"], signal: row["signal"],
                    outcome: outcome.flatMap(AttemptOutcome.init(rawValue:)),
                    peakMemoryBytes: row["peak_memory_bytes"], browserStartupMilliseconds: row["browser_startup_ms"]
                )
            )
        }
        for index in started { jobs[index].attempts = byJob[jobs[index].id.rawValue] ?? [] }
    }

    static func job(from row: Row) throws -> Job {
        let idText: String = row["id"]
        let statusText: String = row["status"]
        let priorityValue: Int = row["priority"]
        guard let id = JobID(idText), let status = JobStatus(rawValue: statusText),
            let priority = JobPriority(rawValue: priorityValue)
        else { throw CorruptRow(id: idText) }
        let startedAt: Int64? = row["started_at"]
        let finishedAt: Int64? = row["finished_at"]
        let resultText: String? = row["result"]
        let progressText: String? = row["progress"]
        let errorMessage: String? = row["error_message"]
        let errorClass: String? = row["error_class"]
        let startBy: Int64? = row["start_by"]
        let secretsText: String? = row["secrets"]
        var tags: [String: String] = [:]
        if case .object(let members) = try JSONValue(parsing: Data((row["tags"] as String).utf8)) {
            for case (let key, .string(let value)) in members { tags[key] = value }
        }
        return Job(
            id: id, owner: row["owner"], type: row["type"], status: status, priority: priority,
            payload: try JSONValue(parsing: Data((row["payload"] as String).utf8)),
            runAt: Date(millisecondsSince1970: row["run_at"]),
            createdAt: Date(millisecondsSince1970: row["created_at"]),
            updatedAt: Date(millisecondsSince1970: row["updated_at"]),
            startedAt: startedAt.map(Date.init(millisecondsSince1970:)),
            finishedAt: finishedAt.map(Date.init(millisecondsSince1970:)),
            attempt: row["attempt"], maxAttempts: row["max_attempts"], timeoutSeconds: row["timeout_seconds"],
            tags: tags, idempotencyKey: row["idempotency_key"], startBy: startBy.map(Date.init(millisecondsSince1970:)),
            secrets: try secretsText.map { try JSONValue(parsing: Data($0.utf8)) },
            result: try resultText.map { try JSONValue(parsing: Data($0.utf8)) },
            error: errorMessage.map {
                JobError(message: $0, errorClass: errorClass.flatMap(AttemptOutcome.init(rawValue:)) ?? .exitCode)
            },
            cancelRequested: row["cancel_requested"],
            progress: try progressText.flatMap { JobProgress(json: try JSONValue(parsing: Data($0.utf8))) }
        )
    }

    struct CorruptRow: Error, CustomStringConvertible {
        let id: String
        var description: String { "job \(id) has a row this supervisor cannot read" }
    }
}
