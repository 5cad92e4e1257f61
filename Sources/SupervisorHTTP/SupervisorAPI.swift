public import Logging
import NIOCore
public import Foundation
import HTTPTypes
public import Hummingbird
public import SupervisorConfig
public import SupervisorCore
public import SupervisorRunner
public import SupervisorStore
public import Prometheus

/// The HTTP API of SPEC section 4 over a `JobStore`.
public struct SupervisorAPI: Sendable {
    let store: any JobStore
    let configuration: SupervisorConfiguration
    /// The runner of this process (`serve`), which a submit wakes and a cancel reaches at
    /// once; nil when jobs run elsewhere.
    let runner: Runner?
    let clock: any WallClock
    let ids: any JobIDGenerator
    let documents: JobDocument
    /// What `/metrics` prints: the registry swift-metrics was bootstrapped with, if any,
    /// and the queue depths read at each scrape.
    let metrics: PrometheusCollectorRegistry
    /// Tokens and job types as SIGHUP last loaded them (`configuration` keeps the rest).
    public let settings: ReloadableSettings

    public init(
        store: any JobStore, configuration: SupervisorConfiguration, runner: Runner? = nil,
        clock: any WallClock = SystemWallClock(), ids: any JobIDGenerator = UUIDv7Generator(),
        metrics: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
    ) {
        self.metrics = metrics
        self.settings = ReloadableSettings(configuration)
        self.store = store
        self.configuration = configuration
        self.runner = runner
        self.clock = clock
        self.ids = ids
        self.documents = JobDocument(
            urls: JobURLs(base: configuration.server.publicURL),
            estimatedWait: { position in runner?.estimatedWaitSeconds(queuePosition: position) })
    }

    public func makeRouter() -> Router<SupervisorRequestContext> {
        let router = Router(context: SupervisorRequestContext.self)
        router.add(middleware: ErrorMiddleware())
        let authenticated = router.group().add(middleware: AuthenticationMiddleware(settings: settings))
        let admin = authenticated.group().add(middleware: AdminOnlyMiddleware())
        let jobs = JobRoutes(api: self)
        let workers = WorkerRoutes(api: self)

        for route in APIRoute.all {
            let path = RouterPath(stringLiteral: route.routerPath)
            switch (route.method, route.path) {
            case (.post, "/api/jobs"): authenticated.post(path, use: jobs.submit)
            case (.get, "/api/jobs"): authenticated.get(path, use: jobs.list)
            case (.get, "/api/jobs/{id}"): authenticated.get(path, use: jobs.show)
            case (.delete, "/api/jobs/{id}"): authenticated.delete(path, use: jobs.delete)
            case (.get, "/api/jobs/{id}/status"): authenticated.get(path, use: jobs.status)
            case (.get, "/api/jobs/{id}/result"): authenticated.get(path, use: jobs.result)
            case (.post, "/api/jobs/{id}/cancel"): authenticated.post(path, use: jobs.cancel)
            case (.post, "/api/jobs/{id}/retry"): authenticated.post(path, use: jobs.retry)
            case (.get, "/api/jobs/{id}/logs"): authenticated.get(path, use: jobs.logs)
            case (.get, "/api/jobs/{id}/artifacts/{name}"): authenticated.get(path, use: jobs.artifact)
            case (.get, "/api/queue"): authenticated.get(path, use: queue)
            case (.get, "/api/workers"): admin.get(path, use: workers.list)
            case (.post, "/api/admin/cleanup"): admin.post(path, use: workers.cleanup)
            case (.post, "/api/workers/{id}/drain"): admin.post(path, use: workers.drain)
            case (.get, "/healthz"): router.get(path) { _, _ in JSONResponse.make(["status": "ok"]) }
            case (.get, "/readyz"): router.get(path, use: ready)
            case (.get, "/openapi.json"): router.get(path, use: openAPI)
            case (.get, "/metrics"): (configuration.server.metricsPublic ? router.group() : admin).get(path, use: prometheusText)
            default:
                precondition(!route.isImplemented, "\(route) is marked implemented but has no handler")
                let needsAdmin = ["/api/workers", "/api/admin", "/metrics"].contains { route.path.hasPrefix($0) }
                let group = needsAdmin ? admin
                    : route.path.hasPrefix("/api/") ? authenticated : router.group()
                group.on(path, method: route.method) { _, _ -> Response in
                    throw APIError(.notImplemented, code: "not_supported", message: "\(route) is not supported yet by this version of supervisor")
                }
            }
        }
        return router
    }

    /// The application on the configured listen address, ready to run as a `Service`.
    public func makeApplication(logger: Logger, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        -> some ApplicationProtocol
    {
        Application(
            router: makeRouter(),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.server.listen.host, port: configuration.server.listen.port),
                serverName: "supervisor"
            ),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: logger
        )
    }

    @Sendable func queue(_ request: Request, context: SupervisorRequestContext) async throws -> Response {
        let counts = try await store.queueCounts(now: clock.now())
        var document: [String: JSONValue] = [:]
        for status in JobStatus.allCases { document[status.rawValue] = .int(Int64(counts[status])) }
        let alive = try await store.workers().filter(isAlive)
        document["workers"] = .int(Int64(alive.count))
        document["capacity"] = .int(Int64(alive.reduce(0) { $0 + $1.capacity }))
        document["oldestPendingSeconds"] = counts.oldestPendingSeconds.map(JSONValue.double) ?? .null
        return JSONResponse.make(.object(document))
    }

    /// A worker that heartbeat within a lease: heartbeats come every third of one.
    func isAlive(_ worker: WorkerRecord) -> Bool {
        clock.now().timeIntervalSince(worker.heartbeatAt) < Double(configuration.runner.lease.components.seconds)
    }

    /// The Prometheus text format; queue depth by state is read from the store now.
    @Sendable func prometheusText(_ request: Request, context: SupervisorRequestContext) async throws -> Response {
        let counts: QueueCounts
        do {
            counts = try await store.queueCounts(now: clock.now())
        } catch {
            throw APIError.storeUnavailable
        }
        for status in JobStatus.allCases {
            metrics.makeGauge(name: "supervisor_queue_jobs", labels: [("status", status.rawValue)]).set(Double(counts[status]))
        }
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.emitToBuffer())))
    }

    @Sendable func ready(_ request: Request, context: SupervisorRequestContext) async throws -> Response {
        do {
            try await store.ping()
        } catch {
            throw APIError.storeUnavailable
        }
        return JSONResponse.make(["status": "ready"])
    }

    @Sendable func openAPI(_ request: Request, context: SupervisorRequestContext) async throws -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: OpenAPIDocument.data))
        )
    }
}

/// The OpenAPI 3.1 description of the API, kept in the repository and served as is.
public enum OpenAPIDocument {
    public static let data: Data = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"),
            let data = try? Data(contentsOf: url)
        else { return Data(#"{"error": "openapi.json is missing from this build"}"#.utf8) }
        return data
    }()
}
