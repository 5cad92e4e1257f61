import Synchronization

/// What SIGHUP replaces without a restart (SPEC section 3): `[[auth.tokens]]` and
/// `[job_types]`. Readers take the current values for each request or claim; what already
/// runs keeps the settings it started with.
public final class ReloadableSettings: Sendable {
    public struct Snapshot: Sendable, Equatable {
        public var tokens: [AccessToken]
        public var jobTypes: [String: JobTypeSettings]
    }

    private let state: Mutex<Snapshot>

    public init(_ configuration: SupervisorConfiguration) {
        state = Mutex(Snapshot(tokens: configuration.tokens, jobTypes: configuration.jobTypes))
    }

    public var current: Snapshot { state.withLock { $0 } }

    /// Takes the tokens and job types of a newly loaded configuration.
    public func replace(with configuration: SupervisorConfiguration) {
        state.withLock { $0 = Snapshot(tokens: configuration.tokens, jobTypes: configuration.jobTypes) }
    }
}
