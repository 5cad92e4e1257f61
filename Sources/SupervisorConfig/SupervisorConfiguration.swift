public import Foundation
public import SupervisorCore

/// Everything `supervisor.toml` says (SPEC section 3), validated, with relative paths
/// already resolved.
public struct SupervisorConfiguration: Sendable, Equatable {
    public var server: ServerSettings
    public var store: StoreSettings
    public var runner: RunnerSettings
    public var limits: LimitSettings
    public var retention: RetentionSettings
    public var log: LogSettings
    public var tokens: [AccessToken]
    public var jobTypes: [String: JobTypeSettings]
    /// Where relative paths resolve from: the config file's directory, or the working
    /// directory when there is no file.
    public var baseDirectory: URL
    /// The file read, or nil when running on defaults.
    public var sourcePath: String?

    public init(
        server: ServerSettings = ServerSettings(), store: StoreSettings = StoreSettings(),
        runner: RunnerSettings? = nil, limits: LimitSettings = LimitSettings(), retention: RetentionSettings = RetentionSettings(),
        log: LogSettings = LogSettings(), tokens: [AccessToken] = [],
        jobTypes: [String: JobTypeSettings] = [:], baseDirectory: URL, sourcePath: String? = nil
    ) {
        self.server = server
        self.store = store
        self.runner = runner ?? RunnerSettings(baseDirectory: baseDirectory)
        self.limits = limits
        self.retention = retention
        self.log = log
        self.tokens = tokens
        self.jobTypes = jobTypes
        self.baseDirectory = baseDirectory
        self.sourcePath = sourcePath
    }
}

public struct ServerSettings: Sendable, Equatable {
    public var listen: ListenAddress
    public var maxPayloadBytes: Int
    /// Base for `Location` and the URLs in answers when behind a proxy; empty: relative URLs.
    public var publicURL: String
    /// `/metrics` without a token (for a scraper on loopback); else it needs an admin token.
    public var metricsPublic: Bool

    public init(
        listen: ListenAddress = ListenAddress(host: "127.0.0.1", port: 8080), maxPayloadBytes: Int = 1_048_576,
        publicURL: String = "", metricsPublic: Bool = false
    ) {
        self.listen = listen
        self.maxPayloadBytes = maxPayloadBytes
        self.publicURL = publicURL
        self.metricsPublic = metricsPublic
    }
}

public struct StoreSettings: Sendable, Equatable {
    public var url: String

    public init(url: String = "sqlite://./supervisor-data/jobs.sqlite") {
        self.url = url
    }
}

/// `[runner]`: how this host runs attempts.
public struct RunnerSettings: Sendable, Equatable {
    /// Attempts running at once in this process; 0: `serve` answers the API and runs no
    /// jobs (separate `supervisor worker` processes do).
    public var concurrency: Int
    public var workRoot: URL
    public var artifactsRoot: URL
    public var portRange: ClosedRange<Int>
    /// Between SIGTERM and SIGKILL.
    public var killGrace: Duration
    /// A running job's lease; renewed every third of it.
    public var lease: Duration
    /// Per attempt; the head and the tail are kept.
    public var maxLogBytes: Int64
    /// On SIGTERM: how long running attempts may finish before they are interrupted.
    public var shutdownGrace: Duration
    /// The browser of `browser = "chromium"` types: a name looked up on `PATH` when the
    /// runner starts, or a path.
    public var chromiumPath: String

    public init(baseDirectory: URL) {
        concurrency = 2
        workRoot = baseDirectory.appendingPathComponent("supervisor-data/work")
        artifactsRoot = baseDirectory.appendingPathComponent("supervisor-data/artifacts")
        portRange = 9300...9499
        killGrace = .seconds(10)
        lease = .seconds(30)
        maxLogBytes = 10 << 20
        shutdownGrace = .seconds(30)
        chromiumPath = "chromium"
    }
}

public struct LimitSettings: Sendable, Equatable {
    public var maxPending: Int
    public var maxPendingPerOwner: Int
    /// Jobs one owner may have running on all workers together; nil: no cap.
    public var maxRunningPerOwner: Int?

    public init(maxPending: Int = 1_000_000, maxPendingPerOwner: Int = 100_000, maxRunningPerOwner: Int? = nil) {
        self.maxPending = maxPending
        self.maxPendingPerOwner = maxPendingPerOwner
        self.maxRunningPerOwner = maxRunningPerOwner
    }
}

/// How long finished jobs are kept, by how they ended (`[retention]`); cleanup deletes
/// older ones with their logs and artifacts.
public struct RetentionSettings: Sendable, Equatable {
    public var completed: Duration
    public var failed: Duration
    public var cancelled: Duration

    public init(completed: Duration = .seconds(86_400), failed: Duration = .seconds(7 * 86_400), cancelled: Duration = .seconds(86_400)) {
        self.completed = completed
        self.failed = failed
        self.cancelled = cancelled
    }
}

public struct LogSettings: Sendable, Equatable {
    public enum Format: String, Sendable, CaseIterable {
        case text
        case json
    }

    public enum Level: String, Sendable, CaseIterable {
        case trace, debug, info, notice, warning, error, critical
    }

    public var format: Format
    public var level: Level

    public init(format: Format = .text, level: Level = .info) {
        self.format = format
        self.level = level
    }
}

/// One `[[auth.tokens]]` entry. Only the SHA-256 digest of the token is kept in memory.
public struct AccessToken: Sendable, Equatable {
    public enum Role: String, Sendable, CaseIterable {
        /// Sees only its own jobs.
        case user
        /// Sees every job and the admin routes.
        case admin
    }

    public var sha256: [UInt8]
    public var owner: String
    public var role: Role

    public init(sha256: [UInt8], owner: String, role: Role) {
        self.sha256 = sha256
        self.owner = owner
        self.role = role
    }
}

/// One `[job_types.NAME]` table.
public struct JobTypeSettings: Sendable, Equatable {
    public var name: String
    /// argv; never a shell string.
    public var command: [String]
    public var timeout: Duration
    /// Zero: no idle limit. Else no stdout line for this long counts as hung.
    public var idleTimeout: Duration
    public var maxAttempts: Int
    /// Waits between attempts: `backoff`, doubling, at most `backoffMax`.
    public var backoff: RetryBackoff
    /// RLIMIT_NOFILE of the job.
    public var nofile: Int
    /// Exit codes that fail the job without retry.
    public var permanentExitCodes: Set<Int32>
    /// The type's `env` table.
    public var environment: [String: String]
    /// Jobs of this type one worker runs at once, within `runner.concurrency`; nil: no cap.
    public var concurrency: Int?
    /// The seccomp profile: a name (`profiles/NAME.json`) or a path; SPEC section 7.
    public var profile: String
    /// The attempt's memory limit in bytes (its cgroup's); nil: none.
    public var memoryMax: Int64?
    /// The attempt's process limit (its cgroup's); nil: none.
    public var pidsMax: Int?
    /// The user the job runs as (`run_as`); nil: the supervisor's own.
    public var runAs: String?
    /// More paths the job may read, or read and write, where Landlock applies.
    public var readPaths: [String] = []
    public var writePaths: [String] = []
    /// A browser the supervisor starts for each attempt and hands over as
    /// `SUPERVISOR_CDP_URL`; nil: the job starts whatever it needs itself.
    public var browser: Browser?

    public enum Browser: String, Sendable, CaseIterable {
        case chromium
    }

    public init(
        name: String, command: [String], timeout: Duration = .seconds(300), idleTimeout: Duration = .zero,
        maxAttempts: Int = 3, backoff: RetryBackoff = RetryBackoff(base: .seconds(5), maximum: .seconds(600)),
        nofile: Int = 4096, permanentExitCodes: Set<Int32> = [], environment: [String: String] = [:],
        concurrency: Int? = nil, profile: String = "default"
    ) {
        self.name = name
        self.command = command
        self.timeout = timeout
        self.idleTimeout = idleTimeout
        self.maxAttempts = maxAttempts
        self.backoff = backoff
        self.nofile = nofile
        self.permanentExitCodes = permanentExitCodes
        self.environment = environment
        self.concurrency = concurrency
        self.profile = profile
    }
}

/// `host:port`, or `[v6]:port`.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init?(_ text: String) {
        let host: Substring
        let port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return nil
            }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let number = Int(port), (0...65535).contains(number) else { return nil }
        self.init(host: String(host), port: number)
    }

    /// Reachable only from this machine; the only kind of address allowed without tokens.
    public var isLoopback: Bool {
        if host == "localhost" || host == "::1" { return true }
        // Only an IPv4 literal in 127.0.0.0/8: a name such as 127.example.com may resolve anywhere.
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127"
            && octets.allSatisfy { octet in octet.count <= 3 && UInt8(octet) != nil }
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
