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

/// A `supervisor serve` running in the background, on a port of its own choosing.
final class Daemon: Sendable {
    let process: Process
    let port: Int
    private let exit: Task<Process.TerminationReason, Never>

    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Starts the daemon and returns once it logged the address it listens on; its config
    /// must use `[log] format = "json"` and port 0.
    static func start(config: URL) async throws -> Daemon {
        let process = Process()
        process.executableURL = SupervisorBinary.url
        process.arguments = ["serve", "--config", config.path]
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
        let port = try await listeningPort(errors.fileHandleForReading)
        let exit = Task { await exited.first { _ in true } ?? .exit }
        return Daemon(process: process, port: port, exit: exit)
    }

    private init(process: Process, port: Int, exit: Task<Process.TerminationReason, Never>) {
        self.process = process
        self.port = port
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

    /// Reads the daemon's JSON log lines until the "listening" one, then keeps draining the
    /// pipe on a thread of its own so the daemon never blocks on a full pipe.
    private static func listeningPort(_ handle: FileHandle) async throws -> Int {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int, any Error>) in
            let thread = Thread {
                var buffer = Data()
                var answered = false
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    buffer.append(chunk)
                    while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = buffer[buffer.startIndex..<newline]
                        buffer.removeSubrange(buffer.startIndex...newline)
                        guard !answered,
                            let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                            object["message"] as? String == "supervisor listening",
                            let address = object["address"] as? String,
                            let port = address.split(separator: ":").last.flatMap({ Int($0) })
                        else { continue }
                        answered = true
                        continuation.resume(returning: port)
                    }
                }
                if !answered {
                    continuation.resume(throwing: DaemonFailure(log: String(decoding: buffer, as: UTF8.self)))
                }
            }
            thread.start()
        }
    }

    struct DaemonFailure: Error, CustomStringConvertible {
        let log: String
        var description: String { "the daemon exited before listening:\n\(log)" }
    }
}

/// A directory with a config for one daemon.
struct DaemonSetup {
    let directory: URL
    let config: URL

    init(extraConfig: String = "") throws {
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
            [job_types.echo]
            command = ["/bin/cat"]
            \(extraConfig)
            """.write(to: config, atomically: true, encoding: .utf8)
    }
}
