public import SupervisorCore
import Synchronization

/// State changes and progress of jobs as the runner sees them, for whoever listens in
/// this process (the real-time API subscribes here).
public final class JobEvents: Sendable {
    public enum Event: Sendable, Equatable {
        /// The job after a change of state.
        case status(Job)
        case progress(JobID, owner: String, JobProgress)
    }

    private let subscribers = Mutex<[Int: AsyncStream<Event>.Continuation]>([:])
    private let nextID = Atomic<Int>(0)

    public init() {}

    /// Events from now on; the stream ends when the caller stops iterating.
    public func subscribe() -> AsyncStream<Event> {
        let id = nextID.add(1, ordering: .relaxed).newValue
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(1024))
        continuation.onTermination = { [weak self] _ in _ = self?.subscribers.withLock { $0.removeValue(forKey: id) } }
        subscribers.withLock { $0[id] = continuation }
        return stream
    }

    public func publish(_ event: Event) {
        for continuation in subscribers.withLock({ Array($0.values) }) { continuation.yield(event) }
    }
}
