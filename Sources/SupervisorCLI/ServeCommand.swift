import UnixSignals
import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import SupervisorConfig
import SupervisorHTTP
import SupervisorRunner
import SupervisorSandbox
import SupervisorSQLite
import SupervisorStore
import Synchronization

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP API and the runner in one process."
    )

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let (configuration, logger, store) = try await StoreOpening.start(options)
        // Everything the process records through swift-metrics lands in the registry that
        // `/metrics` prints.
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[SupervisorMetrics.attemptDuration] = SupervisorMetrics.attemptDurationBuckets
        factory.durationHistogramBuckets[SupervisorMetrics.browserStartup] = SupervisorMetrics.browserStartupBuckets
        MetricsSystem.bootstrap(factory)
        let runner = configuration.runner.concurrency > 0
            ? try RunnerAssembly.make(configuration: configuration, store: store, logger: logger) : nil
        let api = SupervisorAPI(store: store, configuration: configuration, runner: runner, metrics: registry)
        let application = api.makeApplication(logger: logger) { port in
            logger.notice(
                "supervisor listening",
                metadata: [
                    "address": "\(configuration.server.listen.host):\(port)",
                    "store": "\(configuration.store.url)",
                    "jobTypes": "\(configuration.jobTypes.keys.sorted().joined(separator: ","))",
                ]
            )
        }
        // Shutdown runs in reverse order: the runner drains while the API still answers
        // polls, then the server finishes the requests in flight, then the store commits
        // what is pending and closes.
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: StoreService(store: store)),
                    .init(
                        service: ReloadSignalService(
                            options: options, running: configuration, api: api, runner: runner, logger: logger)),
                    .init(service: application),
                ] + (runner.map { [.init(service: $0)] } ?? []),
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}

/// `supervisor worker`: the runner alone, joining the store other processes serve.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run the runner only, without HTTP, on the store the config names."
    )

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let (configuration, logger, store) = try await StoreOpening.start(options) { configuration in
            guard configuration.runner.concurrency > 0 else {
                throw CommandFailure("runner.concurrency is 0: a worker would never run a job")
            }
        }
        let runner = try RunnerAssembly.make(configuration: configuration, store: store, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: StoreService(store: store)),
                    .init(
                        service: ReloadSignalService(
                            options: options, running: configuration, api: nil, runner: runner, logger: logger)),
                    .init(service: runner),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}

/// The runner of this process, with its worker identity and the launcher beside the
/// `supervisor` executable.
enum RunnerAssembly {
    static func make(configuration: SupervisorConfiguration, store: any JobStore, logger: Logger) throws -> Runner {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let launcher = executable.deletingLastPathComponent().appendingPathComponent("supervisor-launch").path
        guard FileManager.default.isExecutableFile(atPath: launcher) else {
            throw CommandFailure("the exec launcher \(launcher) is missing; it is built and installed beside supervisor")
        }
        let host = ProcessInfo.processInfo.hostName
        // The start time tells this process from an earlier one that had the same pid.
        let started = ProcessIdentity.of(getpid())?.split(separator: ":").last.map(String.init) ?? "0"
        let worker = WorkerIdentity(id: "\(host)-\(getpid())-\(started)", host: host)
        return Runner(
            store: store, configuration: configuration, worker: worker, launcher: launcher,
            seccompPrograms: try seccompPrograms(configuration, logger: logger), users: try users(configuration),
            chromium: try browserProgram(configuration), logger: logger)
    }

    /// The program of `browser = "chromium"` types: `runner.chromium_path`, looked up on
    /// `PATH` when it is a bare name. Nil when no type has a browser; when one does and
    /// there is no such program, start-up stops.
    static func browserProgram(_ configuration: SupervisorConfiguration) throws -> String? {
        guard let type = configuration.jobTypes.values.sorted(by: { $0.name < $1.name }).first(where: { $0.browser != nil })
        else { return nil }
        let name = configuration.runner.chromiumPath
        let candidates = name.contains("/")
            ? [name]
            : (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map { "\($0)/\(name)" }
        guard let program = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw CommandFailure(
                "job_types.\(type.name).browser: runner.chromium_path \"\(name)\" is not an executable"
                    + (name.contains("/") ? "" : " on PATH") + "; install Debian's chromium, or set runner.chromium_path")
        }
        return program
    }

    /// Each job type's `run_as` user. A user that does not exist, or a supervisor that
    /// cannot change users, stops start-up.
    static func users(_ configuration: SupervisorConfiguration) throws -> [String: RunAsUser] {
        var users: [String: RunAsUser] = [:]
        for (name, type) in configuration.jobTypes.sorted(by: { $0.key < $1.key }) {
            guard let user = type.runAs else { continue }
            guard geteuid() == 0 else {
                throw CommandFailure("job_types.\(name).run_as: changing to user \(user) needs the supervisor to run as root")
            }
            guard let resolved = RunAsUser.resolve(user) else {
                throw CommandFailure("job_types.\(name).run_as: there is no user named \(user)")
            }
            users[name] = resolved
        }
        return users
    }

    /// Each job type's seccomp program, compiled once per profile and sealed in a memory
    /// file the launchers read. Names the profile does not know are warned about once.
    static func seccompPrograms(_ configuration: SupervisorConfiguration, logger: Logger) throws -> [String: Int32] {
        var byType: [String: Int32] = [:]
        var warned: Set<String> = []
        for (name, program) in try compileProfiles(configuration).sorted(by: { $0.key < $1.key }) {
            let reference = program.profile.name
            if !program.unknownNames.isEmpty && warned.insert(reference).inserted {
                logger.warning(
                    "seccomp profile names system calls this libseccomp does not know; they are skipped",
                    metadata: ["profile": "\(reference)", "names": "\(program.unknownNames.joined(separator: ","))"])
            }
            byType[name] = try sealed(program)
        }
        return byType
    }

    /// Sealed memory files by program, for the life of the process: a SIGHUP reload whose
    /// profiles compile to the same program reuses the file instead of opening another.
    /// (One that changes leaves the old file open: attempts started before may still be
    /// handing it to their launcher.)
    private static let sealedFiles = Mutex<[[UInt8]: Int32]>([:])

    private static func sealed(_ program: SeccompProgram) throws -> Int32 {
        try sealedFiles.withLock { files in
            if let descriptor = files[program.instructions] { return descriptor }
            let descriptor = try program.sealedDescriptor()
            files[program.instructions] = descriptor
            return descriptor
        }
    }

    /// Each job type's profile, compiled once per profile. A profile that is missing or
    /// wrong stops start-up, naming the type, the profile and the rule.
    static func compileProfiles(_ configuration: SupervisorConfiguration) throws -> [String: SeccompProgram] {
        var byProfile: [String: SeccompProgram] = [:]
        var byType: [String: SeccompProgram] = [:]
        for (name, type) in configuration.jobTypes.sorted(by: { $0.key < $1.key }) {
            if byProfile[type.profile] == nil {
                do {
                    let profile = try SeccompProfiles.load(type.profile, relativeTo: configuration.baseDirectory)
                    byProfile[type.profile] = try SeccompProgram(compiling: profile)
                } catch {
                    throw CommandFailure("job_types.\(name).profile: \(error)")
                }
            }
            byType[name] = byProfile[type.profile]
        }
        return byType
    }
}

/// Keeps the store open for the life of the daemon and closes it cleanly on shutdown.
struct StoreService: Service {
    let store: any JobStore

    func run() async throws {
        try? await gracefulShutdown()
        try await store.close()
    }
}

/// SIGHUP: the config file is read again and its tokens and job types replace the running
/// ones (SPEC section 3); running jobs go on as they started.
struct ReloadSignalService: Service {
    let options: ConfigOption
    /// The config the process started with: the sections SIGHUP does not replace.
    let running: SupervisorConfiguration
    let api: SupervisorAPI?
    let runner: Runner?
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            await reload()
        }
    }

    /// Reads the config again and applies its tokens and job types, or keeps the running
    /// ones and says why: a file that does not load, a profile that does not compile, a
    /// user that does not exist, or no tokens left on a non-loopback listener. Other
    /// sections take effect at the next start.
    func reload() async {
        do {
            let fresh = try ConfigurationLoader.load(explicitPath: options.config)
            if !running.server.listen.isLoopback && fresh.tokens.isEmpty {
                throw CommandFailure("it has no [[auth.tokens]], and the API listens on \(running.server.listen)")
            }
            if let runner {
                let programs = try RunnerAssembly.seccompPrograms(fresh, logger: logger)
                await runner.reload(
                    jobTypes: fresh.jobTypes, seccompPrograms: programs, users: try RunnerAssembly.users(fresh),
                    chromium: try RunnerAssembly.browserProgram(fresh))
            }
            api?.settings.replace(with: fresh)
            var unchanged = fresh
            unchanged.tokens = running.tokens
            unchanged.jobTypes = running.jobTypes
            logger.notice(
                "config reloaded: tokens and job types replaced",
                metadata: [
                    "tokens": "\(fresh.tokens.count)", "jobTypes": "\(fresh.jobTypes.keys.sorted().joined(separator: ","))",
                ])
            if unchanged != running {
                logger.warning("the config's other sections changed too; they take effect at the next start")
            }
        } catch {
            logger.error("config reload refused; the running tokens and job types stay", metadata: ["error": "\(error)"])
        }
    }
}

/// Opens the store the config names.
enum StoreOpening {
    /// What a long-running command starts with: the config (checked by `check` before
    /// anything else happens), logging as it says, and the store, migrated.
    static func start(
        _ options: ConfigOption, check: (SupervisorConfiguration) throws -> Void = { _ in }
    ) async throws -> (SupervisorConfiguration, Logger, any JobStore) {
        let configuration = try ConfigurationLoader.load(explicitPath: options.config)
        try check(configuration)
        LogOutput.bootstrap(configuration.log)
        let store = try open(configuration)
        try await store.migrate()
        return (configuration, Logger(label: "supervisor"), store)
    }

    static func open(_ configuration: SupervisorConfiguration) throws -> any JobStore {
        try SQLiteJobStore(url: configuration.store.url, relativeTo: configuration.baseDirectory)
    }
}

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create or upgrade the store schema (serve also does this at start)."
    )

    @OptionGroup var options: ConfigOption

    func run() async throws {
        let configuration = try ConfigurationLoader.load(explicitPath: options.config)
        let store = try StoreOpening.open(configuration)
        try await store.migrate()
        try await store.close()
        print("store \(configuration.store.url) is at the current schema")
    }
}

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Inspect the configuration.",
        subcommands: [Check.self]
    )

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Validate the config and every seccomp profile it names, and print its job types."
        )

        @OptionGroup var options: ConfigOption

        func run() async throws {
            let configuration = try ConfigurationLoader.load(explicitPath: options.config)
            let programs = try RunnerAssembly.compileProfiles(configuration)
            _ = try RunnerAssembly.users(configuration)
            let browser = try RunnerAssembly.browserProgram(configuration)
            print("config: \(configuration.sourcePath ?? "(none: built-in defaults)") is valid")
            print("listen: \(configuration.server.listen)")
            print("store:  \(configuration.store.url)")
            print("tokens: \(configuration.tokens.count)")
            print("job types:")
            if configuration.jobTypes.isEmpty { print("  (none)") }
            for type in configuration.jobTypes.values.sorted(by: { $0.name < $1.name }) {
                let unknown = programs[type.name]?.unknownNames ?? []
                print(
                    "  \(type.name): \(type.command.joined(separator: " ")) (timeout \(type.timeout), "
                        + "max_attempts \(type.maxAttempts), profile \(type.profile)"
                        + (type.runAs.map { ", run_as \($0)" } ?? "")
                        + (type.browser.map { ", browser \($0.rawValue) (\(browser ?? "?"))" } ?? "")
                        + (unknown.isEmpty ? "" : "; skipped, unknown to this libseccomp: \(unknown.joined(separator: " "))") + ")")
            }
        }
    }
}
