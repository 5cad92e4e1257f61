import Foundation
public import SupervisorCore

/// Every process of one attempt, found even when it escaped its process group (SPEC
/// section 7): through the attempt's own cgroup v2 directory where the unified hierarchy
/// is writable, else through the launcher's descendants and the `SUPERVISOR_JOB_ID`
/// marker in each process's environment.
public struct AttemptProcessTree: Sendable {
    public enum Tracking: Sendable, Equatable {
        /// `cgroup.procs` lists the tree; `cgroup.kill` ends it.
        case cgroup(path: String)
        /// Descendants of the launcher, and processes carrying the job's marker.
        case processTable
    }

    public let tracking: Tracking
    let jobID: JobID
    /// The launchers of the attempt (the job's, and its browser's): each becomes the
    /// main process of its own session, or, with a cgroup, stays as its parent (outside
    /// the cgroup) and ends the way it ends. Their process groups are the attempt's.
    let roots: [pid_t]

    public init(tracking: Tracking, jobID: JobID, roots: [pid_t]) {
        self.tracking = tracking
        self.jobID = jobID
        self.roots = roots
    }

    /// The pids of the tree that have not exited.
    public func members() -> [pid_t] {
        switch tracking {
        case .cgroup(let path):
            guard let text = try? String(contentsOfFile: path + "/cgroup.procs", encoding: .utf8) else { return [] }
            return text.split(separator: "\n").compactMap { pid_t($0) }
        case .processTable:
            return ProcessTable.snapshot().members(descendingFrom: Set(roots), marker: "SUPERVISOR_JOB_ID=\(jobID.rawValue)")
        }
    }

    /// Sends `signal` to every process of the tree.
    public func signalAll(_ signal: Int32) {
        if signal == SIGKILL, case .cgroup(let path) = tracking, AttemptCgroups.write("1", to: path + "/cgroup.kill") {
            return
        }
        // The process groups first: they catch children forked while the list was read.
        for root in roots { kill(-root, signal) }
        for pid in members() { kill(pid, signal) }
    }

    public var isEmpty: Bool {
        switch tracking {
        case .cgroup(let path):
            guard let events = try? String(contentsOfFile: path + "/cgroup.events", encoding: .utf8) else { return true }
            return events.contains("populated 0")
        case .processTable:
            return members().isEmpty
        }
    }
}

/// A snapshot of `/proc`: each process's parent, for tracking trees without cgroups.
struct ProcessTable {
    var parents: [pid_t: pid_t]

    static func snapshot() -> ProcessTable {
        var parents: [pid_t: pid_t] = [:]
        for pid in allPIDs() {
            guard let fields = statFields(of: pid), fields.count > 2, let parent = pid_t(fields[1]) else { continue }
            if fields[0] == "Z" { continue }
            parents[pid] = parent
        }
        return ProcessTable(parents: parents)
    }

    /// Every process's pid.
    static func allPIDs() -> [pid_t] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }
    }

    /// The fields of `/proc/PID/stat` after the command name, from the state on (field 3).
    static func statFields(of pid: pid_t) -> [Substring]? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // "pid (comm) state ppid …": comm may hold spaces and parentheses.
        return stat[stat.index(after: close)...].split(separator: " ")
    }

    /// Whether the process has ended (gone, or a zombie waiting for its parent).
    static func hasEnded(_ pid: pid_t) -> Bool {
        guard let fields = statFields(of: pid), let state = fields.first else { return true }
        return state == "Z" || state == "X"
    }

    /// `roots` and their live descendants, and every live process whose environment holds `marker`.
    func members(descendingFrom roots: Set<pid_t>, marker: String) -> [pid_t] {
        var members: Set<pid_t> = []
        for pid in parents.keys {
            var current = pid
            var depth = 0
            while current > 1, depth < 4096 {
                if roots.contains(current) {
                    members.insert(pid)
                    break
                }
                current = parents[current] ?? 0
                depth += 1
            }
        }
        let needle = Array(marker.utf8) + [0]
        for pid in parents.keys where !members.contains(pid) {
            guard let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { continue }
            let bytes = [0] + [UInt8](environment)
            if bytes.firstRange(of: [0] + needle) != nil { members.insert(pid) }
        }
        return members.sorted()
    }
}

/// Tells a process from a later one given the same pid: the boot it runs in, its pid
/// namespace, and the time it started, in clock ticks since boot.
public enum ProcessIdentity {
    static let bootID = ((try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? "")
        .trimmingCharacters(in: .whitespacesAndNewlines)

    /// "<boot id>:<pid namespace inode>:<start time>", or nil when /proc does not say (no
    /// such process, or one this process may not look at).
    public static func of(_ pid: pid_t) -> String? {
        // starttime is field 22 of stat; the fields given start at field 3.
        guard let fields = ProcessTable.statFields(of: pid), fields.count > 19, let namespace = namespace(of: pid) else {
            return nil
        }
        return "\(bootID):\(namespace):\(fields[19])"
    }

    /// The inode of the process's pid namespace, from the "pid:[N]" link.
    static func namespace(of pid: pid_t) -> String? {
        guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/pid") else { return nil }
        return String(link.filter(\.isNumber))
    }

    /// Whether the process recorded as `recorded` with this pid has certainly ended: the
    /// host has rebooted since, or, in this process's own pid namespace, the pid is free or
    /// held by a later process. A process in another pid namespace (a container) cannot
    /// be judged from here, and counts as alive.
    public static func isProvablyGone(_ pid: pid_t, recorded: String) -> Bool {
        let parts = recorded.split(separator: ":")
        guard parts.count == 3 else { return false }
        if parts[0] != bootID { return true }
        guard let own = namespace(of: getpid()), parts[1] == own else { return false }
        if kill(pid, 0) != 0 && errno == ESRCH { return true }
        guard let current = of(pid) else { return false }
        return current != recorded
    }
}
