import CSeccomp
import CSupervisorLinux
import Foundation

/// A profile compiled by libseccomp into the BPF program `supervisor-launch` loads as its
/// last step before `execve`. Compiling costs more than a fork (HOST-NOTES), so each
/// profile is compiled once at start-up and every attempt gets the ready program.
public struct SeccompProgram: Sendable {
    public let profile: SeccompProfile
    /// `struct sock_filter` instructions, as the kernel takes them.
    public let instructions: [UInt8]
    /// Names this libseccomp or this architecture does not know: skipped, as runc does.
    public let unknownNames: [String]
    /// Rules left out on this host by their `includes` / `excludes`.
    public let rulesNotForThisHost: [SeccompProfile.Rule]

    /// - Parameter strict: unknown syscall names are errors instead of being skipped.
    public init(compiling profile: SeccompProfile, host: SandboxHost = .current, strict: Bool = false) throws {
        self.profile = profile
        guard let context = seccomp_init(Self.code(profile.defaultAction)) else {
            throw SeccompProfileError(profile: profile.name, message: "libseccomp cannot start a filter")
        }
        defer { seccomp_release(context) }
        // A call of an architecture the profile does not list is refused like a denied
        // one (libseccomp would kill the thread): with the default allowing, it must not
        // pass unexamined either.
        let badArchitecture: SeccompProfile.Action = switch profile.defaultAction {
        case .allow, .log: .errno(EPERM)
        default: profile.defaultAction
        }
        guard seccomp_attr_set(context, SCMP_FLTATR_ACT_BADARCH, Self.code(badArchitecture)) == 0 else {
            throw SeccompProfileError(profile: profile.name, message: "libseccomp cannot set the bad-architecture action")
        }
        for architecture in profile.architectures {
            let token = seccomp_arch_resolve_name(architecture)
            guard token != 0 else {
                throw SeccompProfileError(profile: profile.name, message: "architectures: this libseccomp does not know \(architecture)")
            }
            let added = seccomp_arch_add(context, token)
            guard added == 0 || added == -EEXIST else {
                throw SeccompProfileError(profile: profile.name, message: "architectures: cannot add \(architecture): \(Self.text(added))")
            }
        }
        var unknown: [String] = []
        var notForHost: [SeccompProfile.Rule] = []
        for rule in profile.rules {
            guard host.admits(rule) else {
                notForHost.append(rule)
                continue
            }
            // libseccomp refuses a rule that repeats the default action; it changes nothing.
            guard rule.action != profile.defaultAction else { continue }
            var comparisons = rule.args.map { argument in
                scmp_arg_cmp(
                    arg: UInt32(argument.index), op: Self.code(argument.op), datum_a: argument.value,
                    datum_b: argument.valueTwo)
            }
            for name in rule.names {
                let number = seccomp_syscall_resolve_name(name)
                guard number != __NR_SCMP_ERROR else {
                    unknown.append(name)
                    continue
                }
                let added = seccomp_rule_add_array(
                    context, Self.code(rule.action), number, UInt32(comparisons.count), &comparisons)
                guard added == 0 else {
                    throw SeccompProfileError(profile: profile.name, rule: rule.label, message: "libseccomp refuses \(name): \(Self.text(added))")
                }
            }
        }
        if strict, !unknown.isEmpty {
            throw SeccompProfileError(
                profile: profile.name, message: "this libseccomp does not know \(unknown.joined(separator: ", "))")
        }
        unknownNames = unknown
        rulesNotForThisHost = notForHost
        instructions = try Self.export(context, profile: profile.name)
        // The kernel's limit (BPF_MAXINSNS); the launcher would refuse it at every attempt.
        guard instructions.count / 8 <= 4096 else {
            throw SeccompProfileError(
                profile: profile.name, message: "compiles to \(instructions.count / 8) BPF instructions, over the kernel's 4096")
        }
    }

    /// The program in a sealed memory file: one descriptor the launchers of every attempt
    /// read (`pread`, so they share no offset) and none can change.
    public func sealedDescriptor() throws -> Int32 {
        let descriptor = supervisor_memfd("supervisor-seccomp-\(profile.name)")
        guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let written = instructions.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        guard written == instructions.count,
            supervisor_seal_readonly(descriptor) == 0
        else {
            let error = errno
            close(descriptor)
            throw POSIXError(POSIXErrorCode(rawValue: error) ?? .EIO)
        }
        return descriptor
    }

    private static func export(_ context: scmp_filter_ctx, profile: String) throws -> [UInt8] {
        let descriptor = supervisor_memfd("seccomp-export")
        guard descriptor >= 0 else { throw SeccompProfileError(profile: profile, message: "cannot export: \(Self.text(-errno))") }
        defer { close(descriptor) }
        let exported = seccomp_export_bpf(context, descriptor)
        guard exported == 0 else { throw SeccompProfileError(profile: profile, message: "cannot export: \(Self.text(exported))") }
        let size = Int(lseek(descriptor, 0, SEEK_END))
        var bytes = [UInt8](repeating: 0, count: max(size, 0))
        let read = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, size, 0) }
        guard read == size, size > 0 else { throw SeccompProfileError(profile: profile, message: "cannot export: short read") }
        return bytes
    }

    private static func code(_ action: SeccompProfile.Action) -> UInt32 {
        switch action {
        case .allow: SCMP_ACT_ALLOW
        case .errno(let number): supervisor_scmp_act_errno(UInt16(number))
        case .killThread: SCMP_ACT_KILL_THREAD
        case .killProcess: SCMP_ACT_KILL_PROCESS
        case .trap: SCMP_ACT_TRAP
        case .log: SCMP_ACT_LOG
        case .trace(let number): supervisor_scmp_act_trace(UInt16(number))
        }
    }

    private static func code(_ op: SeccompProfile.Comparison.Operator) -> scmp_compare {
        switch op {
        case .notEqual: SCMP_CMP_NE
        case .lessThan: SCMP_CMP_LT
        case .lessOrEqual: SCMP_CMP_LE
        case .equal: SCMP_CMP_EQ
        case .greaterOrEqual: SCMP_CMP_GE
        case .greaterThan: SCMP_CMP_GT
        case .maskedEqual: SCMP_CMP_MASKED_EQ
        }
    }

    private static func text(_ negativeErrno: Int32) -> String { String(cString: strerror(-negativeErrno)) }
}

/// What `includes` / `excludes` of a profile's rules are evaluated against.
public struct SandboxHost: Sendable {
    /// Docker's architecture name: `amd64`, `arm64`, …
    public var architecture: String
    public var kernel: [Int]

    public init(architecture: String, kernel: [Int]) {
        self.architecture = architecture
        self.kernel = kernel
    }

    public static let current: SandboxHost = {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let machine = withUnsafeBytes(of: name.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let docker = ["x86_64": "amd64", "aarch64": "arm64", "i686": "386", "armv7l": "arm"][machine] ?? machine
        return SandboxHost(architecture: docker, kernel: version(release))
    }()

    /// Whether a rule is meant for this host and for a job that keeps no capabilities.
    func admits(_ rule: SeccompProfile.Rule) -> Bool {
        let includes = rule.includes
        if !includes.caps.isEmpty { return false }
        if !includes.arches.isEmpty && !includes.arches.contains(architecture) { return false }
        if let minimum = includes.minKernel, kernel.lexicographicallyPrecedes(Self.version(minimum)) { return false }
        let excludes = rule.excludes
        if excludes.arches.contains(architecture) { return false }
        if let minimum = excludes.minKernel, !kernel.lexicographicallyPrecedes(Self.version(minimum)) { return false }
        return true
    }

    static func version(_ text: String) -> [Int] {
        text.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
    }
}
