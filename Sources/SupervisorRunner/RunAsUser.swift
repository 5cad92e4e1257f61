import Foundation

/// The user a job type's attempts run as (`run_as`, SPEC section 7), resolved once at
/// start-up from the user database: the launcher becomes it before exec, and the
/// attempt's directories are handed to it.
public struct RunAsUser: Sendable, Equatable {
    public var name: String
    public var uid: uid_t
    public var gid: gid_t
    /// Its supplementary groups.
    public var groups: [gid_t]

    public init(name: String, uid: uid_t, gid: gid_t, groups: [gid_t]) {
        self.name = name
        self.uid = uid
        self.gid = gid
        self.groups = groups
    }

    /// Looks the user up; nil when there is no such user.
    public static func resolve(_ name: String) -> RunAsUser? {
        guard let entry = getpwnam(name) else { return nil }
        let uid = entry.pointee.pw_uid, gid = entry.pointee.pw_gid
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(name, gid, &groups, &count)
        }
        return RunAsUser(name: name, uid: uid, gid: gid, groups: Array(groups.prefix(Int(max(count, 0)))))
    }

    /// The launcher's options that make the job this user.
    var launcherArguments: [String] {
        ["--uid", String(uid), "--gid", String(gid)]
            + (groups.isEmpty ? [] : ["--groups", groups.prefix(64).map { String($0) }.joined(separator: ",")])
    }

    /// Hands a path the supervisor made for the attempt to this user; links are not followed.
    func own(_ path: String) throws {
        guard lchown(path, uid, gid) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }
}
