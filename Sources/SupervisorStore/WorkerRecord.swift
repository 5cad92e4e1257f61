import Foundation

/// One `serve` or `worker` process sharing the store (SPEC section 4, `GET /api/workers`):
/// what it registered at start and renews with each heartbeat.
public struct WorkerRecord: Sendable, Equatable {
    public var id: String
    public var host: String
    public var pid: Int32
    /// Tells the process from a later one given the same pid: the boot and the start time
    /// the kernel gives it (`ProcessIdentity`).
    public var processStart: String
    public var startedAt: Date
    public var heartbeatAt: Date
    public var capacity: Int
    /// Asked to stop claiming (`supervisor drain`); its running jobs finish.
    public var draining: Bool
    /// Where its attempts' directories live (`work_root/<workerId>`) and the cgroup
    /// directories it made, for the cleanup of a worker that died.
    public var workDirectory: String
    public var cgroupDirectories: [String]

    public init(
        id: String, host: String, pid: Int32, processStart: String, startedAt: Date, heartbeatAt: Date, capacity: Int,
        draining: Bool = false, workDirectory: String, cgroupDirectories: [String]
    ) {
        self.id = id
        self.host = host
        self.pid = pid
        self.processStart = processStart
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
        self.capacity = capacity
        self.draining = draining
        self.workDirectory = workDirectory
        self.cgroupDirectories = cgroupDirectories
    }
}

/// A running job's attempt as the store has it: who holds it, and until when.
public struct RunningAttempt: Sendable, Equatable {
    public var lease: AttemptLease
    public var leaseExpiresAt: Date

    public init(lease: AttemptLease, leaseExpiresAt: Date) {
        self.lease = lease
        self.leaseExpiresAt = leaseExpiresAt
    }
}
