import Foundation
import Synchronization
import Testing

/// The real `supervisor` executable, as `swift build` left it.
enum SupervisorBinary {
    static let url: URL = {
        if let path = ProcessInfo.processInfo.environment["SUPERVISOR_BINARY"] { return URL(fileURLWithPath: path) }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/supervisor")
    }()

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs one command to its end.
    static func run(_ arguments: [String], environment: [String: String] = [:], in directory: URL? = nil) async throws -> Result {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("out")
        let err = scratch.appendingPathComponent("err")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        let process = Process()
        process.executableURL = url
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.currentDirectoryURL = directory
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        process.standardInput = FileHandle.nullDevice
        let status = try await Self.runToExit(process)
        return Result(
            status: status, stdout: try String(contentsOf: out, encoding: .utf8), stderr: try String(contentsOf: err, encoding: .utf8))
    }

    static func runToExit(_ process: Process) async throws -> Int32 {
        try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }
}

/// The JSON log lines a daemon wrote so far, and waits for one to appear.
actor LogLines {
    private var lines: [[String: String]] = []
    private var waiters: [(matches: @Sendable ([String: String]) -> Bool, continuation: CheckedContinuation<[String: String]?, Never>)] = []
    private var ended = false

    func append(_ line: [String: String]) {
        lines.append(line)
        let (ready, waiting) = waiters.reduce(into: ([(CheckedContinuation<[String: String]?, Never>)](), [(matches: @Sendable ([String: String]) -> Bool, continuation: CheckedContinuation<[String: String]?, Never>)]())) { result, waiter in
            if waiter.matches(line) { result.0.append(waiter.continuation) } else { result.1.append(waiter) }
        }
        waiters = waiting
        for continuation in ready { continuation.resume(returning: line) }
    }

    func end() {
        ended = true
        for waiter in waiters { waiter.continuation.resume(returning: nil) }
        waiters = []
    }

    /// The first line whose message contains `fragment`; nil if the log ended without one.
    func first(messageContaining fragment: String) async -> [String: String]? {
        await first { $0["message"]?.contains(fragment) == true }
    }

    /// The first line that `matches`; nil if the log ended without one.
    func first(where matches: @escaping @Sendable ([String: String]) -> Bool) async -> [String: String]? {
        if let line = lines.first(where: matches) { return line }
        if ended { return nil }
        return await withCheckedContinuation { waiters.append((matches, $0)) }
    }
}

/// A `supervisor serve` running in the background, on a port of its own choosing.
final class Daemon: Sendable {
    let process: Process
    let port: Int
    let log: LogLines
    private let exit: Task<Process.TerminationReason, Never>

    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Starts the daemon and returns once it logged the address it listens on; its config
    /// must use `[log] format = "json"` and port 0.
    static func start(config: URL, environment: [String: String] = [:]) async throws -> Daemon {
        let process = Process()
        process.executableURL = SupervisorBinary.url
        process.arguments = ["serve", "--config", config.path]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.currentDirectoryURL = config.deletingLastPathComponent()
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        let (exited, exitContinuation) = AsyncStream<Process.TerminationReason>.makeStream()
        process.terminationHandler = { process in
            exitContinuation.yield(process.terminationReason)
            exitContinuation.finish()
        }
        try process.run()
        let log = LogLines()
        Self.drain(errors.fileHandleForReading, into: log)
        guard let listening = await log.first(messageContaining: "supervisor listening"),
            let port = listening["address"]?.split(separator: ":").last.flatMap({ Int($0) })
        else { throw DaemonFailure() }
        let exit = Task { await exited.first { _ in true } ?? .exit }
        return Daemon(process: process, port: port, log: log, exit: exit)
    }

    private init(process: Process, port: Int, log: LogLines, exit: Task<Process.TerminationReason, Never>) {
        self.process = process
        self.port = port
        self.log = log
        self.exit = exit
    }

    func signal(_ number: Int32) {
        kill(process.processIdentifier, number)
    }

    /// Waits for the process to end and tells how.
    func waitForExit() async -> (reason: Process.TerminationReason, status: Int32) {
        let reason = await exit.value
        return (reason, process.terminationStatus)
    }

    /// Reads the daemon's stderr on a thread of its own until it closes, so the daemon
    /// never blocks on a full pipe, handing each JSON line to `log`.
    private static func drain(_ handle: FileHandle, into log: LogLines) {
        let (lines, continuation) = AsyncStream<[String: String]>.makeStream()
        Task {
            for await line in lines { await log.append(line) }
            await log.end()
        }
        let thread = Thread {
            var buffer = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = buffer[buffer.startIndex..<newline]
                    buffer.removeSubrange(buffer.startIndex...newline)
                    if let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] {
                        continuation.yield(object.compactMapValues { $0 as? String })
                    }
                }
            }
            continuation.finish()
        }
        thread.start()
    }

    struct DaemonFailure: Error, CustomStringConvertible {
        var description: String { "the daemon exited before listening" }
    }
}

/// A directory with a config for one daemon.
struct DaemonSetup {
    let directory: URL
    let config: URL

    /// `runner` is the `[runner]` table; by default the daemon answers the API and runs
    /// no jobs, so that submitted jobs stay pending.
    init(runner: String = "concurrency = 0", extraConfig: String = "") throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("supervisor-daemon-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        config = directory.appendingPathComponent("supervisor.toml")
        try """
            [server]
            listen = "127.0.0.1:0"
            [store]
            url = "sqlite://./data/jobs.sqlite"
            [log]
            format = "json"
            [runner]
            \(runner)
            [job_types.echo]
            command = ["/bin/cat"]
            \(extraConfig)
            """.write(to: config, atomically: true, encoding: .utf8)
    }
}
