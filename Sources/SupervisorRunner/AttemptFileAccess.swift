import CSupervisorLinux
import Foundation

/// What a job may read and write where the kernel has Landlock (SPEC section 7): reads of
/// the system directories, the attempt's directories, the directories of its command's
/// files and the type's `read_paths`; writes only to the attempt's work and artifacts
/// directories, `/dev/shm`, character devices such as `/dev/null`, and `write_paths`.
/// Never the supervisor's config, store or other attempts' directories.
public struct AttemptFileAccess: Sendable, Equatable {
    public var read: [String]
    public var write: [String]
    /// Where it may only write files that exist (`--write-files`).
    public var writeFiles: [String]

    public static let systemDirectories = [
        "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc", "/opt", "/var/cache", "/proc", "/sys",
        "/dev",
    ]
    public static let writableDevices = [
        "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/ptmx", "/dev/pts",
        "/dev/shm",
    ]

    /// The Landlock ABI of this kernel, or nil where it has none.
    public static let kernelABI: Int? = {
        let version = supervisor_landlock_abi()
        return version > 0 ? Int(version) : nil
    }()

    /// Whose sandbox a supervisor-started Chromium runs in.
    public enum BrowserSandbox: Sendable {
        /// As root Chromium runs with `--no-sandbox`: the job's rules hold for it.
        case supervisorsOnly
        /// As any other user (`run_as`, or a supervisor that is not root) Chromium keeps
        /// its own sandbox (SPEC section 7), whose user namespace is set up by writing
        /// `/proc/self/{setgroups,uid_map,gid_map}`. Landlock rules name directories, not
        /// "self", and each Chromium process has its own: the browser may write the files
        /// below `/proc`, and make or remove nothing there. Other users' entries stay
        /// closed by permission and the entries that expose a process need ptrace access,
        /// which Landlock refuses outside the attempt; a few (`oom_score_adj`, say) of
        /// processes of the same user elsewhere do not, hence a `run_as` user of its own.
        case chromiums
    }

    /// - Parameters:
    ///   - command: the argv the rules are for; the directories of its files are readable.
    ///   - searchPath: the job's `PATH`, to find a command given by name.
    ///   - workDirectory: the attempt's directory.
    ///   - artifactsDirectory: the job's artifacts directory.
    ///   - readPaths: the type's `read_paths`.
    ///   - writePaths: the type's `write_paths`.
    ///   - browserSandbox: for the command of a supervisor-started browser, whose sandbox
    ///     it runs in; nil for a job's command.
    public init(
        command: [String], searchPath: String, workDirectory: String, artifactsDirectory: String, readPaths: [String],
        writePaths: [String], browserSandbox: BrowserSandbox? = nil
    ) {
        var read = Self.systemDirectories
        for (index, element) in command.enumerated() {
            guard let file = Self.existingFile(element, searchPath: index == 0 ? searchPath : nil) else { continue }
            let resolved = URL(fileURLWithPath: file).resolvingSymlinksInPath().path
            for path in Set([file, resolved]) { read += Self.directories(holding: path) }
        }
        read += readPaths
        self.read = Self.unique(read)
        write = Self.unique([workDirectory, artifactsDirectory] + Self.writableDevices + writePaths)
        writeFiles = browserSandbox == .chromiums ? ["/proc"] : []
    }

    /// The file an argv element names, if it is one: a path, or for the program a name
    /// found on the job's `PATH`.
    private static func existingFile(_ element: String, searchPath: String?) -> String? {
        var candidates: [String] = []
        if element.contains("/") {
            candidates = [element]
        } else if let searchPath, !element.isEmpty {
            candidates = searchPath.split(separator: ":").map { "\($0)/\(element)" }
        }
        // FileManager rather than stat(2): this file imports CSupervisorLinux, and with
        // member import visibility `stat` would then resolve to that module's copy of it.
        return candidates.first { candidate in
            var isDirectory: ObjCBool = false
            return candidate.hasPrefix("/") && FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory)
                && !isDirectory.boolValue
        }
    }

    /// A file's directory, and for one in a `bin/` directory the prefix above it too, where
    /// an interpreter keeps its libraries (a virtualenv's `pyvenv.cfg`, pyenv's `lib/`).
    private static func directories(holding file: String) -> [String] {
        let directory = (file as NSString).deletingLastPathComponent
        guard (directory as NSString).lastPathComponent == "bin" else { return [directory] }
        let prefix = (directory as NSString).deletingLastPathComponent
        return prefix == "/" || prefix.isEmpty ? [directory] : [directory, prefix]
    }

    private static func unique(_ paths: [String]) -> [String] {
        var seen = Set<String>()
        return paths.filter { seen.insert($0).inserted }
    }
}
