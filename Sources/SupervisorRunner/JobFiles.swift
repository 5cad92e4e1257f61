public import Foundation
public import SupervisorCore

/// What a job keeps after its attempts, under `artifacts_root/<jobId>/`: the files it left
/// in `SUPERVISOR_ARTIFACTS_DIR` (`artifacts/`) and one log per attempt (`logs/N.log`).
public struct JobFiles: Sendable, Equatable {
    /// A string, as `WorkDirectory.root` is, for the same reason.
    public let root: String

    public init(artifactsRoot: URL, job: JobID) {
        root = "\(artifactsRoot.path)/\(job.rawValue)"
    }

    public var artifacts: String { root + "/artifacts" }

    public func log(attempt: Int) -> String {
        "\(root)/logs/\(attempt).log"
    }

    /// A file the job left in its artifacts directory.
    public struct Artifact: Sendable, Equatable {
        public var name: String
        public var size: Int64
    }

    /// The regular files directly in the artifacts directory, by name. Symbolic links and
    /// directories are not artifacts: only plain names are ever served.
    public func artifactList() -> [Artifact] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: artifacts)) ?? []
        return names.sorted().compactMap { name in
            var info = stat()
            guard lstat(artifacts + "/" + name, &info) == 0, info.st_mode & S_IFMT == S_IFREG
            else { return nil }
            return Artifact(name: name, size: Int64(info.st_size))
        }
    }

    /// Opens an artifact for reading by its plain name; nil for anything else: a name
    /// with a slash, `.` or `..`, a symbolic link (never followed), a directory, a
    /// missing file. The caller closes the descriptor.
    public func openArtifact(named name: String) -> (descriptor: Int32, size: Int64)? {
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/"), !name.contains("\0") else { return nil }
        let descriptor = open(artifacts + "/" + name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else { return nil }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            close(descriptor)
            return nil
        }
        return (descriptor, Int64(info.st_size))
    }

    /// Removes everything the job kept (deleted or past retention).
    public func remove() throws {
        try WorkDirectory(root: root).remove()
    }

    /// Every attempt's log in attempt order, each under a header line.
    public func combinedLogs(attempts: Int) -> Data {
        var combined = Data()
        for attempt in 1...max(1, attempts) {
            guard let data = FileManager.default.contents(atPath: log(attempt: attempt)) else { continue }
            if attempts > 1 { combined.append(contentsOf: Array("=== attempt \(attempt) ===\n".utf8)) }
            combined.append(data)
        }
        return combined
    }
}
