public import Foundation
public import SupervisorCore

/// The private directory of one attempt (SPEC section 6): made fresh with `home/`, `tmp/`
/// and an empty user-data directory inside, removed after the attempt whatever its outcome.
///
/// Attempts live under `work_root/<workerId>/` (SPEC section 9), named by job and attempt
/// so that cleanup can tell whose a directory is.
public struct WorkDirectory: Sendable, Equatable {
    public let root: URL

    public var home: URL { root.appendingPathComponent("home") }
    public var tmp: URL { root.appendingPathComponent("tmp") }
    public var userData: URL { root.appendingPathComponent("user-data") }

    public init(root: URL) {
        self.root = root
    }

    /// Where this attempt's directory lives.
    public static func location(workRoot: URL, workerID: String, job: JobID, attempt: Int) -> WorkDirectory {
        WorkDirectory(root: workRoot.appendingPathComponent(workerID).appendingPathComponent("\(job.rawValue)-\(attempt)"))
    }

    /// Makes the directory and its subdirectories, mode 0700. A leftover of an earlier run
    /// with the same name is removed first: an attempt never starts on someone's files.
    public func create() throws {
        let files = FileManager.default
        if files.fileExists(atPath: root.path) { try remove() }
        try files.createDirectory(at: root.deletingLastPathComponent(), withIntermediateDirectories: true)
        let privateOnly: [FileAttributeKey: Any] = [.posixPermissions: 0o700]
        try files.createDirectory(at: root, withIntermediateDirectories: false, attributes: privateOnly)
        for directory in [home, tmp, userData] {
            try files.createDirectory(at: directory, withIntermediateDirectories: false, attributes: privateOnly)
        }
    }

    /// Removes the directory and everything in it. Symbolic links are removed, never
    /// followed, and directories the job made unreadable are opened up first.
    public func remove() throws {
        try Self.removeTree(root.path)
    }

    private static func removeTree(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        if info.st_mode & S_IFMT == S_IFDIR {
            chmod(path, 0o700)
            for entry in try FileManager.default.contentsOfDirectory(atPath: path) {
                try removeTree(path + "/" + entry)
            }
            guard rmdir(path) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        } else {
            guard unlink(path) == 0 || errno == ENOENT else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        }
    }
}
