import Foundation
import JobStoreContract
import SupervisorCore
import SupervisorSQLite
import SupervisorStore
import Testing

@Suite("SQLite store")
struct SQLiteContractTests {
    /// A store file in a directory of its own that no other test uses.
    static func temporaryStorePath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("supervisor-sqlite-\(UUID().uuidString)")
            .appendingPathComponent("jobs.sqlite").path
    }

    static func freshStore() async throws -> any JobStore {
        let store = try SQLiteJobStore(path: temporaryStorePath())
        try await store.migrate()
        return store
    }

    @Test("passes the JobStore contract", arguments: JobStoreContract.Scenario.allCases)
    func contract(_ scenario: JobStoreContract.Scenario) async throws {
        try await scenario.run(JobStoreContract(makeStore: { try await Self.freshStore() }))
    }

    @Test("a store reopened from its file holds every committed job")
    func reopen() async throws {
        let path = Self.temporaryStorePath()
        let store = try SQLiteJobStore(path: path)
        try await store.migrate()
        let now = Date().truncatedToMilliseconds
        let ids = UUIDv7Generator()
        let submitted = (0..<50).map { _ in
            JobSubmission(id: ids.next(at: now), owner: "alice", type: "echo", runAt: now, createdAt: now, maxAttempts: 1)
        }
        for submission in submitted { _ = try await store.submit(submission, limits: .unlimited) }
        try await store.close()
        await #expect(throws: JobStoreError.closed) { try await store.ping() }
        // A clean close leaves every job in the main file.
        let wal = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
        #expect(wal == 0)

        let reopened = try SQLiteJobStore(path: path)
        try await reopened.migrate()
        for submission in submitted { #expect(try await reopened.job(id: submission.id, owner: nil) == submission.pendingJob) }
        try await reopened.close()
    }

    @Test("a store written by a newer schema is refused")
    func newerSchemaRefused() async throws {
        let path = Self.temporaryStorePath()
        let store = try SQLiteJobStore(path: path)
        try await store.migrate()
        try await store.close()
        let sqlite = Process()
        sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        sqlite.arguments = ["python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('INSERT INTO schema_version VALUES (999)'); c.commit()", path]
        try sqlite.run()
        sqlite.waitUntilExit()
        #expect(sqlite.terminationStatus == 0)
        let reopened = try SQLiteJobStore(path: path)
        await #expect(throws: (any Error).self) { try await reopened.migrate() }
        try await reopened.close()
    }
}
