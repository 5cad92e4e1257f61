import Foundation

/// A job as the store keeps it.
public struct Job: Sendable, Equatable {
    public var id: JobID
    public var owner: String
    public var type: String
    public var status: JobStatus
    public var priority: JobPriority
    public var payload: JSONValue
    public var runAt: Date
    public var createdAt: Date
    public var updatedAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    /// 0 before the first claim, then the number of the latest attempt.
    public var attempt: Int
    /// The attempt number after which a failure is final; a retry raises it.
    public var maxAttempts: Int
    public var timeoutSeconds: Int?
    public var tags: [String: String]
    public var idempotencyKey: String?
    /// A job not started by then fails as `expired`.
    public var startBy: Date?
    /// Only for the runner (`SUPERVISOR_SECRETS_FILE`); never in an API answer, and nil
    /// once the job has ended (the store erases them).
    public var secrets: JSONValue?
    public var result: JSONValue?
    public var error: JobError?
    public var cancelRequested: Bool
    public var progress: JobProgress?
    public var attempts: [AttemptRecord]

    public init(
        id: JobID, owner: String, type: String, status: JobStatus, priority: JobPriority, payload: JSONValue,
        runAt: Date, createdAt: Date, updatedAt: Date, startedAt: Date? = nil, finishedAt: Date? = nil,
        attempt: Int = 0, maxAttempts: Int, timeoutSeconds: Int? = nil, tags: [String: String] = [:],
        idempotencyKey: String? = nil, startBy: Date? = nil, secrets: JSONValue? = nil, result: JSONValue? = nil,
        error: JobError? = nil,
        cancelRequested: Bool = false, progress: JobProgress? = nil, attempts: [AttemptRecord] = []
    ) {
        self.id = id
        self.owner = owner
        self.type = type
        self.status = status
        self.priority = priority
        self.payload = payload
        self.runAt = runAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.timeoutSeconds = timeoutSeconds
        self.tags = tags
        self.idempotencyKey = idempotencyKey
        self.startBy = startBy
        self.secrets = secrets
        self.result = result
        self.error = error
        self.cancelRequested = cancelRequested
        self.progress = progress
        self.attempts = attempts
    }

    /// Pending and due: the runner may claim it now.
    public func isClaimable(at now: Date) -> Bool {
        status == .pending && runAt <= now
    }
}

/// Why a job failed.
public struct JobError: Sendable, Equatable {
    public var message: String
    public var errorClass: AttemptOutcome

    public init(message: String, errorClass: AttemptOutcome) {
        self.message = message
        self.errorClass = errorClass
    }
}

/// The latest progress marker of the current attempt.
public struct JobProgress: Sendable, Equatable {
    public var percent: Double
    public var current: Int?
    public var total: Int?
    public var message: String?

    public init(percent: Double, current: Int? = nil, total: Int? = nil, message: String? = nil) {
        self.percent = percent
        self.current = current
        self.total = total
        self.message = message
    }

    /// The JSON form of the API's `progress` field, which the stores keep as is.
    public var jsonValue: JSONValue {
        var document: [String: JSONValue] = ["percent": .double(percent)]
        if let current { document["current"] = .int(Int64(current)) }
        if let total { document["total"] = .int(Int64(total)) }
        if let message { document["message"] = .string(message) }
        return .object(document)
    }

    /// Reads `jsonValue` back; nil for anything else.
    public init?(json value: JSONValue) {
        guard case .object(let members) = value else { return nil }
        switch members["percent"] {
        case .int(let number): percent = Double(number)
        case .double(let number): percent = number
        default: return nil
        }
        func integer(_ key: String) -> Int? {
            if case .int(let number) = members[key] { return Int(number) }
            return nil
        }
        current = integer("current")
        total = integer("total")
        if case .string(let text) = members["message"] { message = text } else { message = nil }
    }
}

/// One run of a job's command.
public struct AttemptRecord: Sendable, Equatable {
    public var attempt: Int
    public var host: String
    public var workerID: String
    public var startedAt: Date
    public var finishedAt: Date?
    public var exitCode: Int?
    public var signal: Int?
    public var outcome: AttemptOutcome?
    public var peakMemoryBytes: Int64?
    /// For `browser = "chromium"` types: from the attempt's start to its browser's DevTools
    /// endpoint answering.
    public var browserStartupMilliseconds: Int?

    public init(
        attempt: Int, host: String, workerID: String, startedAt: Date, finishedAt: Date? = nil,
        exitCode: Int? = nil, signal: Int? = nil, outcome: AttemptOutcome? = nil, peakMemoryBytes: Int64? = nil,
        browserStartupMilliseconds: Int? = nil
    ) {
        self.attempt = attempt
        self.host = host
        self.workerID = workerID
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.exitCode = exitCode
        self.signal = signal
        self.outcome = outcome
        self.peakMemoryBytes = peakMemoryBytes
        self.browserStartupMilliseconds = browserStartupMilliseconds
    }
}
