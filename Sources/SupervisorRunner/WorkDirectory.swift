public import Foundation
public import SupervisorCore

/// The private directory of one attempt (SPEC section 6): made fresh with `home/`, `tmp/`
/// and an empty user-data directory inside, removed after the attempt whatever its outcome.
///
/// Attempts live under `work_root/<workerId>/` (SPEC section 9), named by job and attempt
/// so that cleanup can tell whose a directory is.
public struct WorkDirectory: Sendable, Equatable {
    /// Paths are strings, not `URL`s: they are built for every attempt, and `URL`'s path
    /// handling was the largest cost of the supervisor's own work per attempt.
    public let root: String

    public var home: String { root + "/home" }
    public var tmp: String { root + "/tmp" }
    public var userData: String { root + "/user-data" }

    /// What the job gets as `TMPDIR` and `XDG_RUNTIME_DIR`: `tmp/`, or, when that path is
    /// too long for the Unix sockets programs make below it, a short link to it in `/tmp`.
    /// A socket's path holds at most 107 bytes, and Chromium's `SingletonSocket` takes 47
    /// of them below `TMPDIR`: under a typical `work_root` it could not start at all.
    public var temporary: String {
        tmp.utf8.count <= Self.longestTemporaryPath ? tmp : temporaryLink
    }

    static let longestTemporaryPath = 40

    /// Named by a hash of the work directory, so whoever removes the directory (the
    /// attempt, or cleanup after a crash) finds the link without a record of it.
    private var temporaryLink: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in root.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return "/tmp/supervisor-" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    public init(root: String) {
        self.root = root
    }

    /// Where this attempt's directory lives.
    public static func location(workRoot: URL, workerID: String, job: JobID, attempt: Int) -> WorkDirectory {
        WorkDirectory(root: "\(workRoot.path)/\(workerID)/\(job.rawValue)-\(attempt)")
    }

    /// Makes the directory and its subdirectories, mode 0700. A leftover of an earlier run
    /// with the same name is removed first: an attempt never starts on someone's files.
    public func create() throws {
        var info = stat()
        if lstat(root, &info) == 0 { try remove() }
        try Self.make(String(root[..<(root.lastIndex(of: "/") ?? root.endIndex)]))
        for directory in [root, home, tmp, userData] {
            guard mkdir(directory, 0o700) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        }
        guard temporary != tmp else { return }
        // Whatever holds the name (a leftover, or someone's squatting) is replaced: the
        // job's TMPDIR must lead to its own directory and nowhere else.
        for _ in 0..<2 {
            if symlink(tmp, temporary) == 0 { return }
            guard errno == EEXIST, unlink(temporary) == 0 || errno == ENOENT else { break }
        }
        throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
    }

    /// Makes a directory and any missing parents, with one `mkdir` per missing level
    /// (`FileManager` looks at every component first: a cost paid several times per attempt).
    static func make(_ path: String, mode: mode_t = 0o755) throws {
        if mkdir(path, mode) == 0 || errno == EEXIST { return }
        guard errno == ENOENT, let slash = path.lastIndex(of: "/"), slash > path.startIndex else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        try make(String(path[..<slash]), mode: mode)
        guard mkdir(path, mode) == 0 || errno == EEXIST else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    /// Removes the directory and everything in it. Symbolic links are removed, never
    /// followed, and directories the job made unreadable are opened up first. Names go
    /// from `readdir` to `unlinkat` as bytes, so a name that is not UTF-8 is removed too.
    public func remove() throws {
        if temporary != tmp, Self.linkTarget(temporary) == tmp { unlink(temporary) }
        try Self.remove(root, in: AT_FDCWD)
    }

    /// The `TMPDIR` links in `/tmp` into directories below `workRoot` that are gone:
    /// removed by hand, or lost with a tmpfs `work_root` at a reboot that `/tmp` outlived.
    /// Only a link the directory itself would have made counts, and a live attempt's never
    /// does: its directory is made before its link and removed after it.
    public static func danglingTemporaryLinks(workRoot: String) -> [(link: String, directory: WorkDirectory)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? []
        return names.filter { $0.hasPrefix("supervisor-") }.sorted().compactMap { name in
            let link = "/tmp/" + name
            guard let target = linkTarget(link), target.hasPrefix(workRoot + "/"), target.hasSuffix("/tmp") else { return nil }
            let directory = WorkDirectory(root: String(target.dropLast("/tmp".count)))
            var info = stat()
            guard directory.temporary == link, lstat(directory.root, &info) != 0, errno == ENOENT else { return nil }
            return (link, directory)
        }
    }

    private static func linkTarget(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func remove(_ name: UnsafePointer<CChar>, in parent: Int32) throws {
        var info = stat()
        guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
            if errno == ENOENT { return }
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            guard unlinkat(parent, name, 0) == 0 || errno == ENOENT else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            return
        }
        fchmodat(parent, name, 0o700, 0)
        let descriptor = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0, let directory = fdopendir(descriptor) else {
            if descriptor >= 0 { close(descriptor) }
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        defer { closedir(directory) }
        // Every name first, then the removals: entries removed while reading may or may
        // not be listed again.
        var children: [[CChar]] = []
        while let entry = readdir(directory) {
            let child = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                Array(bytes.prefix { $0 != 0 }.map { CChar(bitPattern: $0) }) + [0]
            }
            if child != [46, 0] && child != [46, 46, 0] { children.append(child) }
        }
        for child in children { try remove(child, in: descriptor) }
        guard unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
    }
}
