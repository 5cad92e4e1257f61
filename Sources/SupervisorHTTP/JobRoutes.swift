import SupervisorConfig
import NIOCore
import Foundation
import HTTPTypes
import Hummingbird
import SupervisorCore
import SupervisorRunner
import SupervisorStore

/// `/api/jobs…`: submit, read, list, cancel, retry. Another owner's job is always a 404.
struct JobRoutes: Sendable {
    let api: SupervisorAPI

    static let maxListLimit = 500
    static let defaultListLimit = 50
    static let listParameters: Set<String> = ["status", "type", "tag", "limit", "cursor"]

    @Sendable func submit(_ request: Request, context: SupervisorRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        // A repeat of a submit is answered with the first job whatever the new body says,
        // so the key is looked up before the body is read or checked.
        let idempotencyKey = try request.headers[.idempotencyKey].map(Self.checkIdempotencyKey)
        if let idempotencyKey, let existing = try await api.store.job(owner: principal.owner, idempotencyKey: idempotencyKey) {
            return try await repeated(existing)
        }
        let limit = api.configuration.server.maxPayloadBytes
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limit {
            throw Self.tooLarge(limit)
        }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw Self.tooLarge(limit)
        }
        let value: JSONValue
        do {
            value = try JSONValue(parsing: Data(body.readableBytesView))
        } catch {
            throw APIError(.badRequest, code: "invalid_json", message: "the body is not valid JSON")
        }
        let submit = try SubmitRequest(value, jobTypes: api.settings.current.jobTypes)

        let now = api.clock.now().truncatedToMilliseconds
        let submission = JobSubmission(
            id: api.ids.next(at: now), owner: principal.owner, type: submit.jobType.name, payload: submit.payload,
            priority: submit.priority, runAt: submit.runAt(submittedAt: now), createdAt: now,
            maxAttempts: submit.maxAttempts ?? submit.jobType.maxAttempts,
            timeoutSeconds: submit.timeoutSeconds ?? Int(submit.jobType.timeout.components.seconds),
            tags: submit.tags, idempotencyKey: idempotencyKey,
            startBy: submit.startWithinSeconds.map { now.addingTimeInterval(Double($0)) }, secrets: submit.secrets
        )
        let limits = QueueLimits(
            maxPending: api.configuration.limits.maxPending,
            maxPendingPerOwner: api.configuration.limits.maxPendingPerOwner
        )
        switch try await api.store.submit(submission, limits: limits) {
        case .accepted(let job, let position):
            api.runner?.wake(at: job.runAt)
            SupervisorMetrics.submitted(type: job.type)
            return JSONResponse.make(
                status: .accepted, api.documents.submitted(job, queuePosition: position),
                headers: [.location: api.documents.urls.job(job.id)]
            )
        case .duplicate(let job):
            return try await repeated(job)
        }
    }

    /// The answer to a submit whose idempotency key the owner used before: that job, now.
    private func repeated(_ job: Job) async throws -> Response {
        let position = try await api.store.queuePosition(of: job, now: api.clock.now())
        return JSONResponse.make(status: .ok, api.documents.submitted(job, queuePosition: position))
    }

    @Sendable func show(_ request: Request, context: SupervisorRequestContext) async throws -> Response {
        let job = try await visibleJob(context)
        let position = try await api.store.queuePosition(of: job, now: api.clock.now())
        return JSONResponse.make(api.documents.full(job, queuePosition: position, artifacts: artifacts(of: job)))
    }

    @Sendable func status(_ request: Request, context: SupervisorRequestContext) async throws -> Response {
        let job = try await visibleJob(context)
        let now = api.clock.now()
        let position = try await api.store.queuePosition(of: job, now: now)
        let retryAfter = StatusPollInterval.seconds(jobAge: now.timeIntervalSince(job.createdAt))
        return JSONResponse.make(
            .object(api.documents.status(job, queuePosition: position)), headers: [.retryAfter: "\(retryAfter)"])
    }

    @Sendable func result(_ request: Request, context: SupervisorRequestContext) async throws -> Response {
        let job = try await visibleJob(context)
        guard job.status == .completed else {
            throw APIError.invalidState("job \(job.id) is \(job.status.rawValue), not completed: it has no result")
        }
        return JSONResponse.make(job.result ?? .null)
    }

    @Sendable func cancel(_ request: Request, context: SupervisorRequestContext) async throws -> Response {
        let (id, owner) = try identify(context)
        switch try await api.store.cancel(id: id, owner: owner, now: api.clock.now()) {
        case .cancelled(let job):
            return JSONResponse.make(.object(api.documents.status(job, queuePosition: nil)))
        case .requested(let job):
            // Running here: killed at once and reaped, and answered as cancelled.
            if let runner = api.runner, await runner.cancel(job.id),
                let ended = try await api.store.job(id: job.id, owner: nil), ended.status != .running
            {
                return JSONResponse.make(.object(api.documents.status(ended, queuePosition: nil)))
            }
            var document = api.documents.status(job, queuePosition: nil)
            document["cancelRequested"] = true
            return JSONResponse.make(status: .accepted, .object(document))
        case .alreadyFinished(let job):
            throw APIError.invalidState("job \(job.id) is already \(job.status.rawValue)")
        case .notFound:
            throw APIError.jobNotFound(id.rawValue)
        }
    }

    /// Every attempt's captured output, as text.
    @Sendable func logs(_ request: Request, context: SupervisorRequestContext) async throws -> Response {
        let job = try await visibleJob(context)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: files(of: job).combinedLogs(attempts: job.attempt))))
    }

    /// A file the job left in its artifacts directory, by plain name only.
    @Sendable func artifact(_ request: Request, context: SupervisorRequestContext) async throws -> Response {
        let job = try await visibleJob(context)
        let name = context.parameters.get("name") ?? ""
        guard let (descriptor, size) = files(of: job).openArtifact(named: name) else {
            throw APIError(.notFound, code: "artifact_not_found", message: "job \(job.id) has no artifact named \(name)")
        }
        let file = OpenFile(descriptor)
        return Response(
            status: .ok,
            headers: [.contentType: "application/octet-stream", .contentLength: String(size)],
            body: ResponseBody(contentLength: Int(size)) { writer in
                var buffer = ByteBufferAllocator().buffer(capacity: 64 << 10)
                while true {
                    buffer.clear()
                    let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 64 << 10) { raw in
                        max(0, read(file.descriptor, raw.baseAddress, raw.count))
                    }
                    if count == 0 { break }
                    try await writer.write(buffer)
                }
                try await writer.finish(nil)
            })
    }

    private func files(of job: Job) -> JobFiles {
        JobFiles(artifactsRoot: api.configuration.runner.artifactsRoot, job: job.id)
    }

    /// Only jobs that have run can have left files.
    private func artifacts(of job: Job) -> [JobFiles.Artifact] {
        job.attempt > 0 ? files(of: job).artifactList() : []
    }

    /// A finished job goes with its logs and artifacts: the row first, so that a failure
    /// to remove the files leaves no job pointing at missing ones.
    @Sendable func delete(_ request: Request, context: SupervisorRequestContext) async throws -> Response {
        let (id, owner) = try identify(context)
        switch try await api.store.delete(id: id, owner: owner) {
        case .deleted(let job):
            try? files(of: job).remove()
            return Response(status: .noContent)
        case .notFinished(let job):
            throw APIError.invalidState("job \(job.id) is \(job.status.rawValue): only a finished job can be deleted")
        case .notFound:
            throw APIError.jobNotFound(id.rawValue)
        }
    }

    @Sendable func retry(_ request: Request, context: SupervisorRequestContext) async throws -> Response {
        let (id, owner) = try identify(context)
        let now = api.clock.now()
        switch try await api.store.retry(id: id, owner: owner, now: now) {
        case .retried(let job):
            let position = try await api.store.queuePosition(of: job, now: now)
            return JSONResponse.make(.object(api.documents.status(job, queuePosition: position)))
        case .notRetryable(let job):
            throw APIError.invalidState("job \(job.id) is \(job.status.rawValue); only failed or cancelled jobs can be retried")
        case .notFound:
            throw APIError.jobNotFound(id.rawValue)
        }
    }

    @Sendable func list(_ request: Request, context: SupervisorRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let parameters = request.uri.queryParameters
        if let unknown = parameters.map({ String($0.key) }).first(where: { !Self.listParameters.contains($0) }) {
            throw APIError(.unprocessableContent, code: "unknown_field", message: "\(unknown): unknown query parameter")
        }
        var query = JobQuery(owner: principal.visibleOwner, limit: Self.defaultListLimit)
        // `?status=&type=` as SPEC writes it: an empty value is no filter.
        func value(_ name: String) -> String? { parameters.get(name).flatMap { $0.isEmpty ? nil : $0 } }
        if let text = value("status") {
            guard let status = JobStatus(rawValue: text) else {
                let allowed = JobStatus.allCases.map(\.rawValue).joined(separator: ", ")
                throw APIError.invalidField("status", "must be one of \(allowed)")
            }
            query.status = status
        }
        query.type = value("type")
        var contradictory = false
        for filter in parameters.getAll("tag") where !filter.isEmpty {
            guard let colon = filter.firstIndex(of: ":"), SubmitRequest.isValidTagKey(String(filter[..<colon])) else {
                throw APIError.invalidField("tag", "must be key:value with a key of letters, digits, '_', '.' or '-'")
            }
            let key = String(filter[..<colon])
            let wanted = String(filter[filter.index(after: colon)...])
            if let other = query.tags[key], other != wanted { contradictory = true }
            query.tags[key] = wanted
        }
        if let text = value("limit") {
            guard let limit = Int(text), (1...Self.maxListLimit).contains(limit) else {
                throw APIError.invalidField("limit", "must be an integer from 1 to \(Self.maxListLimit)")
            }
            query.limit = limit
        }
        if let text = value("cursor") {
            guard let cursor = JobID(text) else { throw APIError.invalidField("cursor", "is not a cursor this API gave out") }
            query.after = cursor
        }
        // All tag filters must match, and no job has two values for one tag.
        let page = contradictory ? JobPage(jobs: [], nextCursor: nil) : try await api.store.list(query)
        let now = api.clock.now()
        var jobs: [JSONValue] = []
        for job in page.jobs {
            let position = try await api.store.queuePosition(of: job, now: now)
            jobs.append(api.documents.full(job, queuePosition: position, artifacts: artifacts(of: job)))
        }
        return JSONResponse.make([
            "jobs": .array(jobs),
            "nextCursor": page.nextCursor.map { .string($0.rawValue) } ?? .null,
        ])
    }

    /// The job named in the path, if the caller may see it.
    private func visibleJob(_ context: SupervisorRequestContext) async throws -> Job {
        let (id, owner) = try identify(context)
        guard let job = try await api.store.job(id: id, owner: owner) else { throw APIError.jobNotFound(id.rawValue) }
        return job
    }

    private func identify(_ context: SupervisorRequestContext) throws -> (JobID, owner: String?) {
        let principal = try context.requirePrincipal()
        let text = context.parameters.get("id") ?? ""
        guard let id = JobID(text) else { throw APIError.jobNotFound(text) }
        return (id, principal.visibleOwner)
    }

    private static func tooLarge(_ limit: Int) -> APIError {
        APIError(.contentTooLarge, code: "payload_too_large", message: "the body is over max_payload_bytes (\(limit) bytes)")
    }

    private static func checkIdempotencyKey(_ key: String) throws -> String {
        guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw APIError.invalidField("Idempotency-Key", "must be 1-255 printable ASCII characters without spaces")
        }
        return key
    }
}

extension HTTPField.Name {
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
}

/// An open file that a response body reads: closed when the response lets go of it, also
/// when its body is never written (the client went away first).
private final class OpenFile: Sendable {
    let descriptor: Int32

    init(_ descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit {
        close(descriptor)
    }
}
