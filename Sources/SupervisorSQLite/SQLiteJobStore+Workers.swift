import Foundation
import GRDB
import SupervisorCore
import SupervisorStore

extension SQLiteJobStore {
    public func runningAttempts() async throws -> [RunningAttempt] {
        try checkOpen()
        return try await pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT id, attempt, lease_owner, lease_expires_at FROM jobs WHERE status = 'running'"
            ).compactMap { row in
                guard let id = JobID(row["id"] as String), let owner = row["lease_owner"] as String?,
                    let expiry = row["lease_expires_at"] as Int64?
                else { return nil }
                return RunningAttempt(
                    lease: AttemptLease(jobID: id, attempt: row["attempt"], workerID: owner),
                    leaseExpiresAt: Date(millisecondsSince1970: expiry))
            }
        }
    }

    public func registerWorker(_ worker: WorkerRecord) async throws {
        try checkOpen()
        try await writeImmediate { db in
            try db.execute(
                sql: """
                    INSERT OR REPLACE INTO workers (id, host, pid, process_start, started_at, heartbeat_at, capacity,
                        draining, work_directory, cgroup_directories)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    worker.id, worker.host, worker.pid, worker.processStart, worker.startedAt.millisecondsSince1970,
                    worker.heartbeatAt.millisecondsSince1970, worker.capacity, worker.draining, worker.workDirectory,
                    Self.jsonArray(worker.cgroupDirectories),
                ])
        }
    }

    @discardableResult
    public func heartbeat(workerID: String, now: Date) async throws -> Bool? {
        try checkOpen()
        return try await writeImmediate { db in
            try Bool.fetchOne(
                db.cachedStatement(sql: "UPDATE workers SET heartbeat_at = ? WHERE id = ? RETURNING draining"),
                arguments: [now.millisecondsSince1970, workerID])
        }
    }

    public func drainWorker(id: String) async throws -> Bool {
        try checkOpen()
        return try await writeImmediate { db in
            try db.execute(sql: "UPDATE workers SET draining = 1 WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    public func workers() async throws -> [WorkerRecord] {
        try checkOpen()
        return try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM workers ORDER BY id").map { row in
                let cgroups = try? JSONDecoder().decode([String].self, from: Data((row["cgroup_directories"] as String).utf8))
                return WorkerRecord(
                    id: row["id"], host: row["host"], pid: row["pid"], processStart: row["process_start"],
                    startedAt: Date(millisecondsSince1970: row["started_at"]),
                    heartbeatAt: Date(millisecondsSince1970: row["heartbeat_at"]), capacity: row["capacity"],
                    draining: row["draining"],
                    workDirectory: row["work_directory"],
                    cgroupDirectories: cgroups ?? [])
            }
        }
    }

    public func removeWorker(id: String) async throws {
        try checkOpen()
        try await writeImmediate { db in
            try db.execute(sql: "DELETE FROM workers WHERE id = ?", arguments: [id])
        }
    }
}
