public import Foundation
public import SupervisorCore

/// What a job keeps after its attempts, under `artifacts_root/<jobId>/`: the files it left
/// in `SUPERVISOR_ARTIFACTS_DIR` (`artifacts/`) and one log per attempt (`logs/N.log`).
public struct JobFiles: Sendable, Equatable {
    public let root: URL

    public init(artifactsRoot: URL, job: JobID) {
        root = artifactsRoot.appendingPathComponent(job.rawValue)
    }

    public var artifacts: URL { root.appendingPathComponent("artifacts") }

    public func log(attempt: Int) -> URL {
        root.appendingPathComponent("logs").appendingPathComponent("\(attempt).log")
    }

    /// Every attempt's log in attempt order, each under a header line.
    public func combinedLogs(attempts: Int) -> Data {
        var combined = Data()
        for attempt in 1...max(1, attempts) {
            guard let data = FileManager.default.contents(atPath: log(attempt: attempt).path) else { continue }
            if attempts > 1 { combined.append(contentsOf: Array("=== attempt \(attempt) ===\n".utf8)) }
            combined.append(data)
        }
        return combined
    }
}
