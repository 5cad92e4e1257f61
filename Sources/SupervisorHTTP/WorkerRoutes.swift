import Foundation
import Hummingbird
import SupervisorConfig
import SupervisorCore
import SupervisorRunner
import SupervisorStore

/// `/api/workers` and `/api/admin/cleanup` (admin): the processes sharing the store, and
/// the host sweep of SPEC section 8 run from the API.
struct WorkerRoutes: Sendable {
    let api: SupervisorAPI

    @Sendable func list(_ request: Request, context: SupervisorRequestContext) async throws -> Response {
        let workers = try await api.store.workers()
        var running: [String: [JSONValue]] = [:]
        for attempt in try await api.store.runningAttempts().sorted(by: { $0.lease.jobID < $1.lease.jobID }) {
            running[attempt.lease.workerID, default: []].append(.string(attempt.lease.jobID.rawValue))
        }
        let documents: [JSONValue] = workers.map { worker in
            [
                "id": .string(worker.id), "host": .string(worker.host), "pid": .int(Int64(worker.pid)),
                "startedAt": JobDocument.timestamp(worker.startedAt), "heartbeatAt": JobDocument.timestamp(worker.heartbeatAt),
                "capacity": .int(Int64(worker.capacity)), "draining": .bool(worker.draining), "alive": .bool(api.isAlive(worker)),
                "runningJobIds": .array(running[worker.id] ?? []),
            ]
        }
        return JSONResponse.make(["workers": .array(documents)])
    }

    /// The worker stops claiming: at once when it is this process's runner, else at its
    /// next heartbeat (every third of `runner.lease`).
    @Sendable func drain(_ request: Request, context: SupervisorRequestContext) async throws -> Response {
        let id = context.parameters.get("id") ?? ""
        guard try await api.store.drainWorker(id: id) else {
            throw APIError.notFound("no worker \(id) is registered")
        }
        if let runner = api.runner, runner.worker.id == id { runner.stopClaiming() }
        return JSONResponse.make(["workerId": .string(id), "draining": true])
    }

    @Sendable func cleanup(_ request: Request, context: SupervisorRequestContext) async throws -> Response {
        let sweep = HostCleanup(store: api.store, host: ProcessInfo.processInfo.hostName, configuration: api.configuration)
        let report = try await sweep.run(now: api.clock.now(), dryRun: false)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return JSONResponse.make(try JSONValue(parsing: encoder.encode(report)))
    }
}
