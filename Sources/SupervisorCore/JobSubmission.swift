import Foundation

/// A validated request to enqueue a job, with its id and times already assigned.
public struct JobSubmission: Sendable, Equatable {
    public var id: JobID
    public var owner: String
    public var type: String
    public var payload: JSONValue
    public var priority: JobPriority
    public var runAt: Date
    public var createdAt: Date
    public var maxAttempts: Int
    public var timeoutSeconds: Int?
    public var tags: [String: String]
    /// Same key and same owner: the first job is answered again instead of a new one.
    public var idempotencyKey: String?
    /// A job not started by then fails as `expired` (`startWithinSeconds`).
    public var startBy: Date?
    /// Handed to the job only as `SUPERVISOR_SECRETS_FILE`; erased when the job ends.
    public var secrets: JSONValue?

    public init(
        id: JobID, owner: String, type: String, payload: JSONValue = [:], priority: JobPriority = .normal,
        runAt: Date, createdAt: Date, maxAttempts: Int, timeoutSeconds: Int? = nil,
        tags: [String: String] = [:], idempotencyKey: String? = nil, startBy: Date? = nil, secrets: JSONValue? = nil
    ) {
        self.id = id
        self.owner = owner
        self.type = type
        self.payload = payload
        self.priority = priority
        self.runAt = runAt
        self.createdAt = createdAt
        self.maxAttempts = maxAttempts
        self.timeoutSeconds = timeoutSeconds
        self.tags = tags
        self.idempotencyKey = idempotencyKey
        self.startBy = startBy
        self.secrets = secrets
    }

    /// The job this submission becomes once stored.
    public var pendingJob: Job {
        Job(
            id: id, owner: owner, type: type, status: .pending, priority: priority, payload: payload,
            runAt: runAt, createdAt: createdAt, updatedAt: createdAt, maxAttempts: maxAttempts,
            timeoutSeconds: timeoutSeconds, tags: tags, idempotencyKey: idempotencyKey, startBy: startBy,
            secrets: secrets
        )
    }
}
