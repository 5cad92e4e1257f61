import NIOHTTP1
import ArgumentParser
import Foundation
import SupervisorCore

struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit a job through the HTTP API and print its id."
    )

    @Argument(help: "The job type, as configured under [job_types].")
    var type: String

    @Option(help: "The payload: JSON text, @FILE to read a file, or @- for standard input.")
    var payload: String?

    @Option(help: "0 normal, 1 high, 2 urgent.")
    var priority: Int?

    @Option(name: .customLong("idempotency-key"), help: "Submitting again with the same key answers the first job.")
    var idempotencyKey: String?

    @Flag(help: "Wait until the job ends, showing its progress; exit 0 only if it completed.")
    var wait = false

    @Flag(help: "Print the answer as one JSON document.")
    var json = false

    @OptionGroup var client: ClientOptions

    func validate() throws {
        if let priority, !JobPriority.allowedValues.contains(priority) {
            throw ValidationError("--priority must be 0, 1 or 2")
        }
    }

    func run() async throws {
        var body: [String: JSONValue] = ["type": .string(type)]
        if let payload { body["payload"] = try Self.readPayload(payload) }
        if let priority { body["priority"] = .int(Int64(priority)) }
        let api = client.client()
        let answer = try await api.send(
            .POST, "/api/jobs", body: .object(body), headers: idempotencyKey.map { [("Idempotency-Key", $0)] } ?? [])
        guard case .string(let id)? = answer.document["jobId"] else { throw CommandFailure("the answer has no jobId") }
        guard wait else {
            if json { Printing.json(answer.document) } else { print(id) }
            return
        }
        let final = try await JobWaiting.waitForEnd(of: id, api: api)
        if json { Printing.json(final) } else { Printing.statusLines(final) }
        guard case .string("completed")? = final["status"] else { throw ExitCode(1) }
    }

    static func readPayload(_ argument: String) throws -> JSONValue {
        let data: Data
        if argument == "@-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else if argument.hasPrefix("@") {
            let path = String(argument.dropFirst())
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw CommandFailure("cannot read payload file \(path)")
            }
            data = contents
        } else {
            data = Data(argument.utf8)
        }
        do {
            return try JSONValue(parsing: data)
        } catch {
            throw CommandFailure("--payload is not valid JSON")
        }
    }
}

/// `submit --wait`: polls the status route at the interval the server suggests, drawing a
/// progress bar on a terminal.
enum JobWaiting {
    static func waitForEnd(of id: String, api: APIClient) async throws -> JSONValue {
        let bar = ProgressBar()
        while true {
            let answer = try await api.send(.GET, "/api/jobs/\(APIClient.segment(id))/status")
            let status = Printing.text(answer.document["status"])
            bar.draw(status: status, progress: answer.document["progress"])
            if ["completed", "failed", "cancelled"].contains(status) {
                bar.finish()
                return try await api.send(.GET, "/api/jobs/\(APIClient.segment(id))").document
            }
            let seconds = answer.headers.first(name: "Retry-After").flatMap(Int.init) ?? 2
            try await Task.sleep(for: .seconds(min(seconds, 2)))
        }
    }
}

/// A one-line progress bar on stderr, drawn only when stderr is a terminal.
final class ProgressBar: Sendable {
    private let enabled = isatty(STDERR_FILENO) == 1

    func draw(status: String, progress: JSONValue?) {
        guard enabled else { return }
        var percent = 0.0
        switch progress?["percent"] {
        case .int(let value)?: percent = Double(value)
        case .double(let value)?: percent = value
        default: break
        }
        let width = 30
        let filled = Int((min(max(percent, 0), 100) / 100 * Double(width)).rounded())
        var message = ""
        if case .string(let text)? = progress?["message"] { message = " " + text }
        let line = "\r[\(String(repeating: "#", count: filled))\(String(repeating: "-", count: width - filled))] \(String(format: "%5.1f", percent))% \(status)\(message)"
        FileHandle.standardError.write(Data((line + "\u{1B}[K").utf8))
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show a job's status.")

    @Argument(help: "The job id.") var id: String
    @Flag(help: "Print the whole job as one JSON document.") var json = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let document = try await client.client().send(.GET, "/api/jobs/\(APIClient.segment(id))").document
        if json { Printing.json(document) } else { Printing.statusLines(document) }
    }
}

struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs", abstract: "Print a job's captured output (non-marker stdout and stderr).")

    @Argument(help: "The job id.") var id: String
    @Flag(help: "Keep printing as the job writes (not supported yet).") var follow = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        if follow { throw CommandFailure.notSupportedYet("logs --follow") }
        let answer = try await client.client().send(.GET, "/api/jobs/\(APIClient.segment(id))/logs")
        FileHandle.standardOutput.write(answer.body)
    }
}

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List jobs, newest first.")

    @Option(help: "Only jobs in this state: pending, running, completed, failed or cancelled.") var status: String?
    @Option(help: "Only jobs of this type.") var type: String?
    @Option(help: "Only jobs with this tag, as key:value (repeat for several; all must match).") var tag: [String] = []
    @Option(help: "At most this many jobs (1-500).") var limit: Int = 50
    @Flag(help: "Print the answer as one JSON document.") var json = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        var query: [String] = ["limit=\(limit)"]
        if let status { query.append("status=\(APIClient.segment(status))") }
        if let type { query.append("type=\(APIClient.segment(type))") }
        query += tag.map { "tag=\(APIClient.segment($0))" }
        let document = try await client.client().send(.GET, "/api/jobs?" + query.joined(separator: "&")).document
        if json {
            Printing.json(document)
            return
        }
        guard case .array(let jobs)? = document["jobs"] else { return }
        print("ID                                    TYPE             STATUS     PROGRESS  CREATED")
        for job in jobs {
            let columns = [
                Printing.text(job["jobId"]).padding(toLength: 37, withPad: " ", startingAt: 0),
                Printing.text(job["type"]).padding(toLength: 16, withPad: " ", startingAt: 0),
                Printing.text(job["status"]).padding(toLength: 10, withPad: " ", startingAt: 0),
                Printing.progress(job["progress"]).padding(toLength: 9, withPad: " ", startingAt: 0),
                Printing.text(job["createdAt"]),
            ]
            print(columns.joined(separator: " "))
        }
        if case .string(let cursor)? = document["nextCursor"] { print("(more: the next page starts after \(cursor))") }
    }
}

struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a pending or running job.")

    @Argument(help: "The job id.") var id: String
    @Flag(help: "Print the answer as one JSON document.") var json = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let answer = try await client.client().send(.POST, "/api/jobs/\(APIClient.segment(id))/cancel")
        if json {
            Printing.json(answer.document)
        } else {
            print(answer.status == 202 ? "cancel requested: the worker running \(id) will stop it" : "cancelled \(id)")
        }
    }
}

struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a finished job with its logs and artifacts.")

    @Argument(help: "The job id.") var id: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        _ = try await client.client().send(.DELETE, "/api/jobs/\(APIClient.segment(id))")
        print("deleted \(id)")
    }
}

struct DrainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drain", abstract: "Stop a worker claiming jobs; its running jobs finish (admin).",
        discussion: "Worker ids are listed by `supervisor info` with an admin token.")

    @Argument(help: "The worker id.") var workerID: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        _ = try await client.client().send(.POST, "/api/workers/\(APIClient.segment(workerID))/drain")
        print("worker \(workerID) is draining: it claims nothing more, and its running jobs finish")
    }
}

struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry", abstract: "Put a failed or cancelled job back in the queue with a fresh attempt budget.")

    @Argument(help: "The job id.") var id: String
    @Flag(help: "Print the answer as one JSON document.") var json = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let answer = try await client.client().send(.POST, "/api/jobs/\(APIClient.segment(id))/retry")
        if json { Printing.json(answer.document) } else { print("requeued \(id)") }
    }
}

struct InfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Show queue counts, workers and capacity (and, with an admin token, each worker).")

    @Flag(help: "Print the answer as one JSON document.") var json = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let api = try client.client()
        var document = try await api.send(.GET, "/api/queue").document
        // The workers table is for admins; a user's token sees the counts alone.
        let workers = try? await api.send(.GET, "/api/workers").document["workers"]
        if json {
            if case .object(var fields) = document, let workers {
                fields["workerList"] = workers
                document = .object(fields)
            }
            Printing.json(document)
            return
        }
        for key in ["pending", "running", "completed", "failed", "cancelled", "workers", "capacity", "oldestPendingSeconds"] {
            print("\(key.padding(toLength: 21, withPad: " ", startingAt: 0)) \(Printing.text(document[key]))")
        }
        guard case .array(let list)? = workers, !list.isEmpty else { return }
        print("")
        for worker in list {
            let running = Printing.text(worker["runningJobIds"])
            print(
                "\(Printing.text(worker["id"]))  \(worker["alive"] == true ? "alive" : "silent")  capacity \(Printing.text(worker["capacity"]))"
                    + "  heartbeat \(Printing.text(worker["heartbeatAt"]))  running \(running)")
        }
    }
}
