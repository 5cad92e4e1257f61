import GRDB

/// The store's schema, one entry per version. `schema_version` records the last applied;
/// `SQLiteJobStore.migrate()` applies the rest in one transaction.
enum SQLiteSchema {
    static let migrations: [String] = [
        // 1: jobs, their attempts, and counts by owner, state and priority kept by
        // triggers, so that admission limits, queue positions at submit and
        // `/api/queue` never scan the queue.
        """
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY NOT NULL,
            owner TEXT NOT NULL,
            type TEXT NOT NULL,
            status TEXT NOT NULL,
            priority INTEGER NOT NULL,
            payload TEXT NOT NULL,
            run_at INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            started_at INTEGER,
            finished_at INTEGER,
            attempt INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL,
            attempt_budget INTEGER NOT NULL,
            timeout_seconds INTEGER,
            tags TEXT NOT NULL,
            idempotency_key TEXT,
            result TEXT,
            error_message TEXT,
            error_class TEXT,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            progress TEXT,
            lease_owner TEXT,
            lease_expires_at INTEGER
        ) WITHOUT ROWID;
        CREATE UNIQUE INDEX jobs_idempotency ON jobs(owner, idempotency_key) WHERE idempotency_key IS NOT NULL;
        CREATE INDEX jobs_claim_order ON jobs(priority DESC, run_at, id) WHERE status = 'pending';
        CREATE INDEX jobs_owner_newest ON jobs(owner, id);
        CREATE INDEX jobs_status ON jobs(status, id);
        CREATE TABLE attempts (
            job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            attempt INTEGER NOT NULL,
            host TEXT NOT NULL,
            worker_id TEXT NOT NULL,
            started_at INTEGER NOT NULL,
            finished_at INTEGER,
            exit_code INTEGER,
            signal INTEGER,
            outcome TEXT,
            peak_memory_bytes INTEGER,
            PRIMARY KEY (job_id, attempt)
        ) WITHOUT ROWID;
        CREATE TABLE job_counts (
            owner TEXT NOT NULL,
            status TEXT NOT NULL,
            priority INTEGER NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (owner, status, priority)
        ) WITHOUT ROWID;
        CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN
            INSERT INTO job_counts (owner, status, priority, n) VALUES (NEW.owner, NEW.status, NEW.priority, 1)
            ON CONFLICT (owner, status, priority) DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER jobs_count_update AFTER UPDATE OF status ON jobs WHEN OLD.status <> NEW.status BEGIN
            UPDATE job_counts SET n = n - 1 WHERE owner = OLD.owner AND status = OLD.status AND priority = OLD.priority;
            INSERT INTO job_counts (owner, status, priority, n) VALUES (NEW.owner, NEW.status, NEW.priority, 1)
            ON CONFLICT (owner, status, priority) DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN
            UPDATE job_counts SET n = n - 1 WHERE owner = OLD.owner AND status = OLD.status AND priority = OLD.priority;
        END;
        """,
        // 2: `startWithinSeconds` and `secrets` (erased when the job ends).
        """
        ALTER TABLE jobs ADD COLUMN start_by INTEGER;
        ALTER TABLE jobs ADD COLUMN secrets TEXT;
        CREATE INDEX jobs_start_by ON jobs(start_by) WHERE status = 'pending' AND start_by IS NOT NULL;
        """,
        // 3: the workers sharing the store, for `/api/workers` and for cleaning up after
        // one that died.
        """
        CREATE TABLE workers (
            id TEXT PRIMARY KEY NOT NULL,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            process_start TEXT NOT NULL,
            started_at INTEGER NOT NULL,
            heartbeat_at INTEGER NOT NULL,
            capacity INTEGER NOT NULL,
            work_directory TEXT NOT NULL,
            cgroup_directories TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX jobs_lease_owner ON jobs(lease_owner) WHERE status = 'running';
        """,
        // 4: retention finds the jobs that ended before a cutoff without reading the rest.
        """
        CREATE INDEX jobs_finished ON jobs(status, finished_at) WHERE finished_at IS NOT NULL;
        """,
        // 5: `supervisor drain`.
        """
        ALTER TABLE workers ADD COLUMN draining INTEGER NOT NULL DEFAULT 0;
        """,
        // 6: how long a supervisor-launched browser took to come up, per attempt.
        """
        ALTER TABLE attempts ADD COLUMN browser_startup_ms INTEGER;
        """,
    ]

    static var latestVersion: Int { migrations.count }

    /// Applies every migration newer than the stored version. A store written by a newer
    /// supervisor is refused rather than guessed at.
    static func migrate(_ db: Database) throws {
        try db.execute(sql: "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        let current = try Int.fetchOne(db, sql: "SELECT MAX(version) FROM schema_version") ?? 0
        guard current <= latestVersion else {
            throw SQLiteStoreError.schemaTooNew(found: current, supported: latestVersion)
        }
        for version in (current + 1)...max(current + 1, latestVersion) where version <= latestVersion {
            try db.execute(sql: migrations[version - 1])
            try db.execute(sql: "INSERT INTO schema_version (version) VALUES (?)", arguments: [version])
        }
    }
}

public enum SQLiteStoreError: Error, CustomStringConvertible {
    case schemaTooNew(found: Int, supported: Int)
    case invalidURL(String)
    case missing(String)

    public var description: String {
        switch self {
        case .schemaTooNew(let found, let supported):
            "the store has schema version \(found); this supervisor knows up to \(supported): upgrade supervisor"
        case .invalidURL(let url):
            "\(url) is not a sqlite:// store URL"
        case .missing(let path):
            "there is no store at \(path)"
        }
    }
}
