import Foundation
import HTTPTypes
import SupervisorCore
import SupervisorStore
import Testing

@Suite("workers")
struct WorkerRoutesTests {
    @Test("GET /api/workers lists each worker with its running jobs; /api/queue counts the live ones; POST /api/admin/cleanup sweeps this host")
    func workers() async throws {
        let harness = try APITestHarness()
        try await harness.run { api, store in
            let now = harness.clock.now()
            func record(_ id: String, heartbeat: Date, capacity: Int) -> WorkerRecord {
                WorkerRecord(
                    id: id, host: "host-a", pid: 42, processStart: "boot:1", startedAt: now.addingTimeInterval(-600),
                    heartbeatAt: heartbeat, capacity: capacity, workDirectory: "/work/\(id)", cgroupDirectories: [])
            }
            try await store.registerWorker(record("live", heartbeat: now.addingTimeInterval(-5), capacity: 4))
            try await store.registerWorker(record("silent", heartbeat: now.addingTimeInterval(-600), capacity: 2))
            let submitted = try await api.submit(["type": "echo"])
            let claimed = try await store.claim(
                limit: 1, worker: WorkerIdentity(id: "live", host: "host-a"), leaseDuration: .seconds(30), now: now)
            #expect(claimed.map(\.id.rawValue) == [submitted])

            let answer = try await api.send(.get, "/api/workers", token: APITestHarness.adminToken)
            #expect(answer.status == .ok)
            let live = answer["workers"]?[0]
            #expect(live?["id"] == "live" && live?["alive"] == true && live?["capacity"] == 4 && live?["pid"] == 42)
            #expect(live?["runningJobIds"] == .array([.string(claimed[0].id.rawValue)]))
            #expect(live?["draining"] == false)
            #expect(answer["workers"]?[1]?["id"] == "silent" && answer["workers"]?[1]?["alive"] == false)

            let queue = try await api.send(.get, "/api/queue")
            #expect(queue["workers"] == 1 && queue["capacity"] == 4 && queue["running"] == 1)

            #expect(try await api.send(.get, "/api/workers").status == .forbidden)

            // The sweep of this host: the workers above are another host's, and the lease
            // still holds, so it finds nothing to do.
            let swept = try await api.send(.post, "/api/admin/cleanup", token: APITestHarness.adminToken)
            #expect(swept.status == .ok)
            #expect(swept["dryRun"] == false && swept["requeuedJobs"] == [] && swept["killedProcesses"] == [])
            #expect(try await api.send(.post, "/api/admin/cleanup").status == .forbidden)
        }
    }
}
