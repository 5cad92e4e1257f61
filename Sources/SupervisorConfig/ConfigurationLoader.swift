public import Foundation
import Crypto
import SupervisorCore
import TOMLKit

/// Finds, reads and validates the config (SPEC section 3).
public enum ConfigurationLoader {
    /// `explicitPath`, else `$SUPERVISOR_CONFIG`, else `./supervisor.toml` if it exists,
    /// else the defaults; then `SUPERVISOR_DATABASE_URL` and `SUPERVISOR_LISTEN` override.
    public static func load(
        explicitPath: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
        workingDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    ) throws -> SupervisorConfiguration {
        var configuration: SupervisorConfiguration
        if let path = explicitPath ?? environment["SUPERVISOR_CONFIG"] {
            let url = URL(fileURLWithPath: path, relativeTo: workingDirectory).standardizedFileURL
            guard let text = try? String(contentsOf: url, encoding: .utf8) else {
                throw ConfigurationError(key: "", message: "cannot read config file \(url.path)")
            }
            configuration = try parse(text, file: url.path)
        } else {
            let defaultFile = workingDirectory.appendingPathComponent("supervisor.toml")
            if FileManager.default.fileExists(atPath: defaultFile.path) {
                // A config that is there but unreadable must stop start-up, not be skipped.
                guard let text = try? String(contentsOf: defaultFile, encoding: .utf8) else {
                    throw ConfigurationError(key: "", message: "cannot read config file \(defaultFile.path)")
                }
                configuration = try parse(text, file: defaultFile.path)
            } else {
                configuration = SupervisorConfiguration(baseDirectory: workingDirectory)
            }
        }
        if let url = environment["SUPERVISOR_DATABASE_URL"], !url.isEmpty {
            configuration.store.url = url
        }
        if let listen = environment["SUPERVISOR_LISTEN"], !listen.isEmpty {
            guard let address = ListenAddress(listen) else {
                throw ConfigurationError(key: "SUPERVISOR_LISTEN", message: "\"\(listen)\" is not host:port")
            }
            configuration.server.listen = address
        }
        try validate(configuration)
        return configuration
    }

    /// Parses config text; relative paths resolve from the directory of `file`.
    public static func parse(_ text: String, file: String?) throws -> SupervisorConfiguration {
        let base = file.map { URL(fileURLWithPath: $0).deletingLastPathComponent() }
            ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        do {
            let table: TOMLTable
            do {
                table = try TOMLTable(string: text)
            } catch let error as TOMLParseError {
                throw ConfigurationError(key: "", message: "not valid TOML at \(error.source.begin): \(error.description)")
            }
            var configuration = try read(table, baseDirectory: base)
            configuration.sourcePath = file
            return configuration
        } catch var error as ConfigurationError {
            error.file = file
            throw error
        }
    }

    /// Checks that hold across sections and after environment overrides.
    public static func validate(_ configuration: SupervisorConfiguration) throws {
        if !configuration.server.listen.isLoopback && configuration.tokens.isEmpty {
            throw ConfigurationError(
                key: "server.listen",
                message: "\(configuration.server.listen) is not a loopback address and no [[auth.tokens]] are configured; refusing to serve the queue to the network without authentication",
                file: configuration.sourcePath
            )
        }
        let url = configuration.store.url
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            throw ConfigurationError(
                key: "store.url", message: "the PostgreSQL store is not supported yet; use sqlite://PATH",
                file: configuration.sourcePath)
        }
        guard url.hasPrefix("sqlite://"), url.count > "sqlite://".count else {
            throw ConfigurationError(
                key: "store.url", message: "\"\(url)\" is not a store URL (sqlite://PATH)", file: configuration.sourcePath)
        }
    }

    private static func read(_ table: TOMLTable, baseDirectory: URL) throws -> SupervisorConfiguration {
        let root = try TOMLSection(
            table, path: "",
            known: ["server", "store", "runner", "limits", "retention", "log", "auth", "job_types"],
            notYetSupported: ["webhooks"]
        )
        var configuration = SupervisorConfiguration(baseDirectory: baseDirectory)

        if let server = try root.section(
            "server", known: ["listen", "max_payload_bytes", "public_url", "metrics_public"])
        {
            if let flag = try server.boolean("metrics_public") { configuration.server.metricsPublic = flag }
            if let listen = try server.string("listen") {
                guard let address = ListenAddress(listen) else {
                    throw ConfigurationError(key: "server.listen", message: "\"\(listen)\" is not host:port")
                }
                configuration.server.listen = address
            }
            if let size = try server.size("max_payload_bytes") {
                guard (1...(1 << 30)).contains(size) else {
                    throw ConfigurationError(key: "server.max_payload_bytes", message: "must be between 1 byte and 1G")
                }
                configuration.server.maxPayloadBytes = Int(size)
            }
            if let publicURL = try server.string("public_url") {
                guard publicURL.isEmpty || publicURL.hasPrefix("http://") || publicURL.hasPrefix("https://") else {
                    throw ConfigurationError(key: "server.public_url", message: "must be empty or start with http:// or https://")
                }
                configuration.server.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
            }
        }

        if let store = try root.section("store", known: ["url"]), let url = try store.string("url") {
            configuration.store.url = url
        }

        if let runner = try root.section(
            "runner",
            known: [
                "concurrency", "work_root", "artifacts_root", "port_range", "kill_grace", "lease", "max_log_bytes",
                "shutdown_grace", "chromium_path",
            ],
            notYetSupported: ["max_work_dir_bytes"])
        {
            try readRunner(runner, into: &configuration.runner, baseDirectory: baseDirectory)
        }

        if let limits = try root.section(
            "limits", known: ["max_pending", "max_pending_per_owner", "max_running_per_owner"])
        {
            if let value = try limits.integer("max_pending", in: 1...Int.max) { configuration.limits.maxPending = value }
            if let value = try limits.integer("max_pending_per_owner", in: 1...Int.max) {
                configuration.limits.maxPendingPerOwner = value
            }
            if let value = try limits.integer("max_running_per_owner", in: 0...Int.max) {
                configuration.limits.maxRunningPerOwner = value == 0 ? nil : value
            }
        }

        if let retention = try root.section("retention", known: ["completed", "failed", "cancelled"]) {
            if let value = try retention.duration("completed") { configuration.retention.completed = value }
            if let value = try retention.duration("failed") { configuration.retention.failed = value }
            if let value = try retention.duration("cancelled") { configuration.retention.cancelled = value }
        }

        if let log = try root.section("log", known: ["format", "level"]) {
            if let format = try log.oneOf("format", LogSettings.Format.self) { configuration.log.format = format }
            if let level = try log.oneOf("level", LogSettings.Level.self) { configuration.log.level = level }
        }

        if let auth = try root.section("auth", known: ["tokens"]), let entries = try auth.tableArray("tokens") {
            configuration.tokens = try entries.enumerated().map { index, entry in
                try readToken(TOMLSection(entry, path: "auth.tokens[\(index)]", known: ["token", "token_sha256", "owner", "role"]))
            }
            for (index, token) in configuration.tokens.enumerated()
            where configuration.tokens[..<index].contains(where: { $0.sha256 == token.sha256 }) {
                throw ConfigurationError(key: "auth.tokens[\(index)]", message: "the same token is configured twice")
            }
        }

        if let types = try root.section("job_types", known: Set(table["job_types"]?.table?.keys ?? [])) {
            for name in types.table.keys.sorted() {
                guard let section = try types.section(
                    name,
                    known: [
                        "command", "timeout", "idle_timeout", "max_attempts", "backoff", "backoff_max", "nofile",
                        "permanent_exit_codes", "env", "concurrency", "profile", "memory_max", "pids_max", "read_paths",
                        "write_paths", "run_as", "browser",
                    ]
                ) else { continue }
                configuration.jobTypes[name] = try readJobType(name: name, section, baseDirectory: baseDirectory)
            }
        }
        return configuration
    }

    private static func readToken(_ section: TOMLSection) throws -> AccessToken {
        guard let owner = try section.string("owner"), !owner.isEmpty else {
            throw ConfigurationError(key: section.keyPath("owner"), message: "is required")
        }
        let role = try section.oneOf("role", AccessToken.Role.self) ?? .user
        switch (try section.string("token"), try section.string("token_sha256")) {
        case (let token?, nil):
            guard token.count >= 16 else {
                throw ConfigurationError(key: section.keyPath("token"), message: "must be at least 16 characters")
            }
            return AccessToken(sha256: Array(SHA256.hash(data: Data(token.utf8))), owner: owner, role: role)
        case (nil, let hex?):
            guard let digest = hexBytes(hex), digest.count == 32 else {
                throw ConfigurationError(key: section.keyPath("token_sha256"), message: "must be 64 hexadecimal digits")
            }
            return AccessToken(sha256: digest, owner: owner, role: role)
        case (.some, .some):
            throw ConfigurationError(key: section.path, message: "give either token or token_sha256, not both")
        case (nil, nil):
            throw ConfigurationError(key: section.path, message: "needs token or token_sha256")
        }
    }

    private static func readJobType(name: String, _ section: TOMLSection, baseDirectory: URL) throws -> JobTypeSettings {
        guard name.range(of: #"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"#, options: .regularExpression) != nil else {
            throw ConfigurationError(key: section.path, message: "a job type name is 1-64 letters, digits, '_', '.' or '-'")
        }
        guard let command = try section.stringArray("command"), let program = command.first, !program.isEmpty else {
            throw ConfigurationError(key: section.keyPath("command"), message: "is required: the argv to run, e.g. [\"/bin/sh\", \"job.sh\"]")
        }
        var settings = JobTypeSettings(name: name, command: command.map { resolve($0, from: baseDirectory) })
        if let timeout = try section.duration("timeout") {
            guard timeout >= .seconds(1) else {
                throw ConfigurationError(key: section.keyPath("timeout"), message: "must be at least 1s")
            }
            settings.timeout = timeout
        }
        if let attempts = try section.integer("max_attempts", in: 1...100) { settings.maxAttempts = attempts }
        if let idle = try section.duration("idle_timeout") { settings.idleTimeout = idle }
        if let backoff = try section.duration("backoff") { settings.backoff.base = backoff }
        if let maximum = try section.duration("backoff_max") { settings.backoff.maximum = maximum }
        guard settings.backoff.maximum >= settings.backoff.base else {
            throw ConfigurationError(key: section.keyPath("backoff_max"), message: "must not be shorter than backoff")
        }
        if let nofile = try section.integer("nofile", in: 16...(1 << 20)) { settings.nofile = nofile }
        if let concurrency = try section.integer("concurrency", in: 1...1024) { settings.concurrency = concurrency }
        if let profile = try section.string("profile") {
            guard !profile.isEmpty else {
                throw ConfigurationError(key: section.keyPath("profile"), message: "must name a profile or a path")
            }
            settings.profile = profile
        }
        if let bytes = try section.size("memory_max") {
            guard bytes >= 4 << 20 else { throw ConfigurationError(key: section.keyPath("memory_max"), message: "must be at least 4M") }
            settings.memoryMax = bytes
        }
        if let pids = try section.integer("pids_max", in: 8...4_194_304) { settings.pidsMax = pids }
        if let user = try section.string("run_as"), !user.isEmpty { settings.runAs = user }
        if let browser = try section.oneOf("browser", JobTypeSettings.Browser.self) { settings.browser = browser }
        for key in ["read_paths", "write_paths"] {
            guard let paths = try section.stringArray(key) else { continue }
            if paths.contains(where: \.isEmpty) {
                throw ConfigurationError(key: section.keyPath(key), message: "must not hold an empty path")
            }
            let resolved = paths.map { $0.hasPrefix("/") ? $0 : baseDirectory.appendingPathComponent($0).standardizedFileURL.path }
            if key == "read_paths" { settings.readPaths = resolved } else { settings.writePaths = resolved }
        }
        if let codes = try section.integerArray("permanent_exit_codes", in: 1...255) {
            settings.permanentExitCodes = Set(codes.map(Int32.init))
        }
        if let environment = try section.stringTable("env") {
            for name in environment.keys where name.isEmpty || name.contains("=") || name.hasPrefix("SUPERVISOR_") {
                throw ConfigurationError(
                    key: section.keyPath("env.\(name)"),
                    message: "is not a variable a job type may set (no '=', no SUPERVISOR_ prefix)")
            }
            settings.environment = environment
        }
        return settings
    }

    private static func readRunner(_ section: TOMLSection, into runner: inout RunnerSettings, baseDirectory: URL) throws {
        if let concurrency = try section.integer("concurrency", in: 0...1024) { runner.concurrency = concurrency }
        if let path = try section.string("work_root") { runner.workRoot = try directory(path, section, "work_root", baseDirectory) }
        if let path = try section.string("artifacts_root") {
            runner.artifactsRoot = try directory(path, section, "artifacts_root", baseDirectory)
        }
        if let text = try section.string("port_range") {
            let bounds = text.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard bounds.count == 2, let low = bounds[0], let high = bounds[1], 1024 <= low, low <= high, high <= 65535 else {
                throw ConfigurationError(key: section.keyPath("port_range"), message: "must be \"LOW-HIGH\" within 1024-65535, not \"\(text)\"")
            }
            runner.portRange = low...high
        }
        if let grace = try section.duration("kill_grace") { runner.killGrace = grace }
        if let lease = try section.duration("lease") {
            guard lease >= .seconds(3) else { throw ConfigurationError(key: section.keyPath("lease"), message: "must be at least 3s") }
            runner.lease = lease
        }
        if let size = try section.size("max_log_bytes") {
            guard size >= 1024 else { throw ConfigurationError(key: section.keyPath("max_log_bytes"), message: "must be at least 1K") }
            runner.maxLogBytes = size
        }
        if let grace = try section.duration("shutdown_grace") { runner.shutdownGrace = grace }
        if let path = try section.string("chromium_path") {
            guard !path.isEmpty else {
                throw ConfigurationError(key: section.keyPath("chromium_path"), message: "must name the browser's program or its path")
            }
            runner.chromiumPath = path.contains("/") ? resolve(path.hasPrefix("/") ? path : "./" + path, from: baseDirectory) : path
        }
    }

    private static func directory(_ path: String, _ section: TOMLSection, _ key: String, _ base: URL) throws -> URL {
        guard !path.isEmpty else { throw ConfigurationError(key: section.keyPath(key), message: "must not be empty") }
        return path.hasPrefix("/") ? URL(fileURLWithPath: path) : base.appendingPathComponent(path).standardizedFileURL
    }

    /// A command element that starts with `./`, or names a file that exists in the config's
    /// directory, resolves from there (SPEC section 3).
    private static func resolve(_ element: String, from base: URL) -> String {
        guard !element.hasPrefix("/") else { return element }
        let candidate = base.appendingPathComponent(element).standardizedFileURL.path
        if element.hasPrefix("./") || FileManager.default.fileExists(atPath: candidate) { return candidate }
        return element
    }

    private static func hexBytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.lowercased().utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index...index + 1], as: UTF8.self), radix: 16) else {
                return nil
            }
            bytes.append(byte)
        }
        return bytes
    }
}
