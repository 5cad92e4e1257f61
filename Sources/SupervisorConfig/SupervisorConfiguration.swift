public import Foundation
public import SupervisorCore

/// Everything `supervisor.toml` says (SPEC section 3), validated, with relative paths
/// already resolved.
public struct SupervisorConfiguration: Sendable {
    public var server: ServerSettings
    public var store: StoreSettings
    public var limits: LimitSettings
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
        limits: LimitSettings = LimitSettings(), log: LogSettings = LogSettings(), tokens: [AccessToken] = [],
        jobTypes: [String: JobTypeSettings] = [:], baseDirectory: URL, sourcePath: String? = nil
    ) {
        self.server = server
        self.store = store
        self.limits = limits
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

    public init(
        listen: ListenAddress = ListenAddress(host: "127.0.0.1", port: 8080), maxPayloadBytes: Int = 1_048_576,
        publicURL: String = ""
    ) {
        self.listen = listen
        self.maxPayloadBytes = maxPayloadBytes
        self.publicURL = publicURL
    }
}

public struct StoreSettings: Sendable, Equatable {
    public var url: String

    public init(url: String = "sqlite://./supervisor-data/jobs.sqlite") {
        self.url = url
    }
}

public struct LimitSettings: Sendable, Equatable {
    public var maxPending: Int
    public var maxPendingPerOwner: Int

    public init(maxPending: Int = 1_000_000, maxPendingPerOwner: Int = 100_000) {
        self.maxPending = maxPending
        self.maxPendingPerOwner = maxPendingPerOwner
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
    public var maxAttempts: Int

    public init(name: String, command: [String], timeout: Duration = .seconds(300), maxAttempts: Int = 3) {
        self.name = name
        self.command = command
        self.timeout = timeout
        self.maxAttempts = maxAttempts
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
