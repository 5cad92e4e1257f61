import Foundation

/// What one attempt may use, from its job type (SPEC section 3: `memory_max`, `pids_max`).
public struct AttemptLimits: Sendable, Equatable {
    public var memoryMax: Int64?
    public var pidsMax: Int?

    public init(memoryMax: Int64? = nil, pidsMax: Int? = nil) {
        self.memoryMax = memoryMax
        self.pidsMax = pidsMax
    }
}

/// The cgroups of this process's attempts (SPEC section 7, HOST-NOTES): directories named
/// `supervisor-<pid>-<start time>` below the supervisor's own cgroup in each hierarchy it uses, never
/// written elsewhere, with one directory per attempt inside.
///
/// The unified (v2) hierarchy tracks and kills each attempt's tree. Limits go where a
/// controller can be written: the unified hierarchy if it has the controller, else the
/// v1 hierarchy of that controller (hybrid hosts mount `memory` and `pids` as v1), else
/// nowhere, and the launcher falls back to rlimits.
public struct AttemptCgroups: Sendable {
    public enum Controller: String, Sendable, CaseIterable {
        case memory
        case pids
    }

    /// Where attempt cgroups are made in one hierarchy.
    public struct Hierarchy: Sendable, Equatable, CustomStringConvertible {
        public enum Version: Sendable { case v1, v2 }

        public var version: Version
        /// `supervisor-<pid>-<start time>` below this process's own cgroup in that hierarchy.
        public var parent: String

        public var description: String { version == .v2 ? "cgroup v2" : "cgroup v1" }
    }

    /// The unified hierarchy, when it can be written: tracking and killing.
    public let unified: Hierarchy?
    public let memory: Hierarchy?
    public let pids: Hierarchy?
    /// The leaf this process moved itself into so that its own cgroup could pass v2
    /// controllers down (see `delegate`), if it had to.
    public let daemonLeaf: String?

    public init(unified: Hierarchy?, memory: Hierarchy?, pids: Hierarchy?, daemonLeaf: String? = nil) {
        self.unified = unified
        self.memory = memory
        self.pids = pids
        self.daemonLeaf = daemonLeaf
    }

    /// Looks at this host's hierarchies and makes the parent directories it can use.
    public static func detect() -> AttemptCgroups {
        guard let mountInfo = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8),
            let membership = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)
        else { return AttemptCgroups(unified: nil, memory: nil, pids: nil) }
        // mountinfo: "id parent major:minor root mountpoint options … - fstype source superoptions"
        let mounts: [(point: String, type: String, options: [Substring])] = mountInfo.split(separator: "\n").compactMap { line in
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { return nil }
            let fields = halves[0].split(separator: " "), tail = halves[1].split(separator: " ")
            guard fields.count > 4, tail.count > 2 else { return nil }
            return (String(fields[4]), String(tail[0]), tail[2].split(separator: ","))
        }
        // /proc/self/cgroup: "N:controllers:path"; v2 is "0::path".
        let ownPaths: [(controllers: [Substring], path: String)] = membership.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { return nil }
            return (parts[1].split(separator: ","), String(parts[2]))
        }
        // With the start time: a daemon restarted in a container often gets the same pid,
        // and a dead one's directories must not be mistaken for its successor's.
        let started = ProcessIdentity.of(getpid())?.split(separator: ":").last.map(String.init) ?? "0"
        let parentName = "supervisor-\(getpid())-\(started)"

        var unified: Hierarchy?
        var delegation = Delegation(controllers: [], daemonLeaf: nil)
        if let mount = mounts.first(where: { $0.type == "cgroup2" }), let own = ownPaths.first(where: { $0.controllers.isEmpty }) {
            let ownDirectory = mount.point + (own.path == "/" ? "" : own.path)
            if let parent = makeParent(ownDirectory + "/" + parentName) {
                unified = Hierarchy(version: .v2, parent: parent)
                delegation = delegate(
                    Controller.allCases.map(\.rawValue), own: ownDirectory, parent: parent, process: getpid())
            }
        }
        func hierarchy(for controller: Controller) -> Hierarchy? {
            if let unified, delegation.controllers.contains(controller.rawValue) { return unified }
            guard let mount = mounts.first(where: { $0.type == "cgroup" && $0.options.contains(Substring(controller.rawValue)) }),
                let own = ownPaths.first(where: { $0.controllers.contains(Substring(controller.rawValue)) }),
                let parent = makeParent(mount.point + (own.path == "/" ? "" : own.path) + "/" + parentName)
            else { return nil }
            return Hierarchy(version: .v1, parent: parent)
        }
        return AttemptCgroups(
            unified: unified, memory: hierarchy(for: .memory), pids: hierarchy(for: .pids), daemonLeaf: delegation.daemonLeaf)
    }

    private static func makeParent(_ path: String) -> String? {
        guard mkdir(path, 0o755) == 0 || errno == EEXIST, access(path + "/cgroup.procs", W_OK) == 0 else { return nil }
        return path
    }

    /// The v2 controllers the attempts below `parent` got, and where the process moved.
    public struct Delegation: Sendable, Equatable {
        public var controllers: Set<String>
        public var daemonLeaf: String?
    }

    /// Turns v2 controllers on for the attempts below `parent` (a child of `own`, the
    /// cgroup `process` sits in), where `own` has them.
    ///
    /// A cgroup other than the root that holds processes cannot pass controllers down
    /// ("no internal processes"), which is where a systemd service with `Delegate=yes`
    /// starts. When `process` is the only one in `own`, it moves itself into the leaf
    /// `parent/daemon`, a sibling of the attempts' cgroups, and enables them again. When
    /// other processes share `own`, nothing moves: they are not ours to move, and limits
    /// go to v1 or rlimits. The real root never refuses, but the root of a container's
    /// cgroup namespace ("/" from inside) is a cgroup like any other and may.
    public static func delegate(_ wanted: [String], own: String, parent: String, process: pid_t) -> Delegation {
        let available = words(in: own + "/cgroup.controllers")
        let controllers = wanted.filter { available.contains($0) }
        guard !controllers.isEmpty else { return Delegation(controllers: [], daemonLeaf: nil) }

        /// Enables each controller in `directory`; the ones enabled, and whether any was
        /// refused because the directory holds processes.
        func enable(_ controllers: [String], in directory: String) -> (enabled: [String], busy: Bool) {
            let present = words(in: directory + "/cgroup.subtree_control")
            var enabled: [String] = [], busy = false
            for controller in controllers {
                if present.contains(controller) || write("+" + controller, to: directory + "/cgroup.subtree_control") {
                    enabled.append(controller)
                } else if errno == EBUSY {
                    busy = true
                }
            }
            return (enabled, busy)
        }

        var daemonLeaf: String?
        var inOwn = enable(controllers, in: own)
        if inOwn.busy, words(in: own + "/cgroup.procs") == [String(process)] {
            let leaf = parent + "/daemon"
            if mkdir(leaf, 0o755) == 0 || errno == EEXIST, write(String(process), to: leaf + "/cgroup.procs") {
                daemonLeaf = leaf
                inOwn = enable(controllers, in: own)
            }
        }
        return Delegation(controllers: Set(enable(inOwn.enabled, in: parent).enabled), daemonLeaf: daemonLeaf)
    }

    private static func words(in file: String) -> [String] {
        ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(whereSeparator: \.isWhitespace).map(String.init)
    }

    /// Makes the attempt's cgroups and writes its limits. A directory that cannot be
    /// made is left out: the tree is then tracked without it, and a limit it would have
    /// held falls back to an rlimit.
    public func make(name: String, limits: AttemptLimits) -> AttemptCgroup {
        var cgroup = AttemptCgroup()
        func directory(in hierarchy: Hierarchy) -> String? {
            let path = hierarchy.parent + "/" + name
            if cgroup.directories.contains(path) { return path }
            guard mkdir(path, 0o755) == 0 || errno == EEXIST else { return nil }
            cgroup.directories.append(path)
            if hierarchy.version == .v1 { cgroup.joins.append(path) }
            return path
        }
        if let unified { cgroup.unified = directory(in: unified) }
        // A directory whose limit cannot be written is not joined: the move would cost
        // the launch time and hold nothing.
        func discard(_ path: String) {
            guard path != cgroup.unified else { return }
            rmdir(path)
            cgroup.directories.removeAll { $0 == path }
            cgroup.joins.removeAll { $0 == path }
        }
        if let memoryMax = limits.memoryMax {
            if let memory, let path = directory(in: memory) {
                if Self.writeMemoryLimit(memoryMax, to: path, version: memory.version) {
                    cgroup.memory = (path, memory.version)
                } else {
                    discard(path)
                    cgroup.fallbackMemoryMax = memoryMax
                }
            } else {
                cgroup.fallbackMemoryMax = memoryMax
            }
        } else if let memory, memory.version == .v2, let path = cgroup.unified {
            // Measured for free where the unified hierarchy counts memory. A v1 cgroup just
            // to measure would cost every attempt a migration (~13 ms, see the launcher).
            cgroup.memory = (path, .v2)
        }
        if let pidsMax = limits.pidsMax {
            // `pids.max` in both versions.
            if let pids, let path = directory(in: pids) {
                if !Self.write(String(pidsMax), to: path + "/pids.max") {
                    discard(path)
                    cgroup.fallbackPidsMax = pidsMax
                }
            } else {
                cgroup.fallbackPidsMax = pidsMax
            }
        }
        return cgroup
    }

    private static func writeMemoryLimit(_ bytes: Int64, to path: String, version: Hierarchy.Version) -> Bool {
        switch version {
        case .v2:
            // No swap either, where the kernel accounts it.
            guard write(String(bytes), to: path + "/memory.max") else { return false }
            _ = write("0", to: path + "/memory.swap.max")
            return true
        case .v1:
            guard write(String(bytes), to: path + "/memory.limit_in_bytes") else { return false }
            _ = write(String(bytes), to: path + "/memory.memsw.limit_in_bytes")
            return true
        }
    }

    /// Writes one cgroup control file in a single `write(2)`, as the kernel wants them;
    /// false (with `errno`) when it refuses.
    public static func write(_ text: String, to file: String) -> Bool {
        let descriptor = open(file, O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        return text.utf8CString.withUnsafeBufferPointer { Glibc.write(descriptor, $0.baseAddress, $0.count - 1) } == text.utf8.count
    }

    /// Removes the parent directories (at shutdown, once every attempt's are gone). A
    /// parent holding `daemonLeaf` stays until this process has exited; cleanup removes it.
    public func removeParents() {
        for parent in Set([unified, memory, pids].compactMap { $0?.parent }) { rmdir(parent) }
    }
}

/// One attempt's cgroup directories.
public struct AttemptCgroup: Sendable {
    /// In the unified hierarchy: where the job's process is created, tracked and killed.
    public var unified: String?
    /// v1 directories the launcher moves the job into before it runs anything.
    public var joins: [String] = []
    /// Where the attempt's memory is counted.
    var memory: (path: String, version: AttemptCgroups.Hierarchy.Version)?
    /// Limits no cgroup could hold here, for the launcher's rlimits.
    public var fallbackMemoryMax: Int64?
    public var fallbackPidsMax: Int?
    var directories: [String] = []

    /// The most memory the attempt used at once, where the kernel tells.
    public func peakMemoryBytes() -> Int64? {
        guard let memory else { return nil }
        let file = memory.version == .v2 ? "/memory.peak" : "/memory.max_usage_in_bytes"
        return (try? String(contentsOfFile: memory.path + file, encoding: .utf8))
            .flatMap { Int64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// How many processes of the attempt the OOM killer ended.
    public func oomKills() -> Int {
        guard let memory else { return 0 }
        let file = memory.version == .v2 ? "/memory.events" : "/memory.oom_control"
        guard let text = try? String(contentsOfFile: memory.path + file, encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("oom_kill ") {
            return Int(line.dropFirst("oom_kill ".count)) ?? 0
        }
        return 0
    }

    /// Removes the directories of an emptied attempt.
    public func remove() {
        for directory in directories { rmdir(directory) }
    }
}
