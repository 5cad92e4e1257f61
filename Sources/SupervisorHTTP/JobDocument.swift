import Foundation
import SupervisorCore
import SupervisorRunner

/// The JSON documents the API answers with for a job (SPEC section 4).
struct JobDocument {
    let urls: JobURLs
    /// Seconds until a job at this queue position starts, when a runner in this process
    /// has measured how long attempts take; nil otherwise.
    let estimatedWait: @Sendable (_ queuePosition: Int) -> Double?

    /// The cheap poll: `GET /api/jobs/{id}/status`.
    func status(_ job: Job, queuePosition: Int?) -> [String: JSONValue] {
        [
            "jobId": .string(job.id.rawValue),
            "type": .string(job.type),
            "status": .string(job.status.rawValue),
            "progress": job.progress.map(\.jsonValue) ?? .null,
            "attempt": .int(Int64(job.attempt)),
            "maxAttempts": .int(Int64(job.maxAttempts)),
            "queuePosition": queuePosition.map { .int(Int64($0)) } ?? .null,
            "estimatedWaitSeconds": estimate(queuePosition),
            "createdAt": Self.timestamp(job.createdAt),
            "startedAt": job.startedAt.map(Self.timestamp) ?? .null,
            "updatedAt": Self.timestamp(job.updatedAt),
        ]
    }

    private func estimate(_ queuePosition: Int?) -> JSONValue {
        queuePosition.flatMap(estimatedWait).map(JSONValue.double) ?? .null
    }

    /// Everything: `GET /api/jobs/{id}`; never the secrets.
    func full(_ job: Job, queuePosition: Int?, artifacts: [JobFiles.Artifact]) -> JSONValue {
        var document = status(job, queuePosition: queuePosition)
        document["owner"] = .string(job.owner)
        document["priority"] = .int(Int64(job.priority.rawValue))
        document["runAt"] = Self.timestamp(job.runAt)
        document["payload"] = job.payload
        document["result"] = job.result ?? .null
        document["error"] = job.error.map { .object(["message": .string($0.message), "class": .string($0.errorClass.rawValue)]) } ?? .null
        document["tags"] = .object(job.tags.mapValues(JSONValue.string))
        document["cancelRequested"] = .bool(job.cancelRequested)
        document["finishedAt"] = job.finishedAt.map(Self.timestamp) ?? .null
        if let started = job.startedAt, let finished = job.finishedAt {
            document["durationMs"] = .int(finished.millisecondsSince1970 - started.millisecondsSince1970)
        } else {
            document["durationMs"] = .null
        }
        document["attempts"] = .array(job.attempts.map(Self.attempt))
        document["artifacts"] = .array(artifacts.map { artifact in
            [
                "name": .string(artifact.name), "size": .int(artifact.size),
                "url": .string(urls.artifact(job.id, name: artifact.name)),
            ]
        })
        return .object(document)
    }

    /// The answer to a submit: 202 for a new job, 200 for an idempotent repeat.
    func submitted(_ job: Job, queuePosition: Int?) -> JSONValue {
        [
            "jobId": .string(job.id.rawValue),
            "status": .string(job.status.rawValue),
            "queuePosition": queuePosition.map { .int(Int64($0)) } ?? .null,
            "estimatedWaitSeconds": estimate(queuePosition),
            "statusUrl": .string(urls.status(job.id)),
            "resultUrl": .string(urls.result(job.id)),
            "eventsUrl": .string(urls.events(job.id)),
        ]
    }

    static func attempt(_ attempt: AttemptRecord) -> JSONValue {
        var document: [String: JSONValue] = [
            "attempt": .int(Int64(attempt.attempt)),
            "host": .string(attempt.host),
            "workerId": .string(attempt.workerID),
            "startedAt": timestamp(attempt.startedAt),
            "finishedAt": attempt.finishedAt.map(timestamp) ?? .null,
            "exitCode": attempt.exitCode.map { .int(Int64($0)) } ?? .null,
            "signal": attempt.signal.map { .int(Int64($0)) } ?? .null,
            "outcome": attempt.outcome.map { .string($0.rawValue) } ?? .null,
        ]
        if let peak = attempt.peakMemoryBytes { document["peakMemoryBytes"] = .int(peak) }
        if let startup = attempt.browserStartupMilliseconds { document["browserStartupMs"] = .int(Int64(startup)) }
        return .object(document)
    }

    static func timestamp(_ date: Date) -> JSONValue {
        .string(date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
    }
}

/// Where a job's resources live, under `server.public_url` when one is set.
struct JobURLs {
    let base: String

    func job(_ id: JobID) -> String { "\(base)/api/jobs/\(id.rawValue)" }
    func status(_ id: JobID) -> String { job(id) + "/status" }
    func result(_ id: JobID) -> String { job(id) + "/result" }
    func events(_ id: JobID) -> String { job(id) + "/events" }
    func artifact(_ id: JobID, name: String) -> String {
        job(id) + "/artifacts/" + (name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? name)
    }
}
