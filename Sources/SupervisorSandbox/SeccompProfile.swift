public import Foundation
import SupervisorCore

/// A seccomp profile in the OCI / Docker format (SPEC section 7), read and checked but not
/// yet compiled: `SeccompProgram` turns it into the BPF program the launcher loads.
///
/// Keys this format has and `supervisor` does not use (`archMap`, `flags`, `comment`, …)
/// are ignored, so Docker's and well-known Chrome profiles load unmodified.
public struct SeccompProfile: Sendable, Equatable {
    public enum Action: Sendable, Equatable, CustomStringConvertible {
        case allow
        /// The call fails with this errno.
        case errno(Int32)
        case killThread
        case killProcess
        case trap
        case log
        case trace(Int32)

        public var description: String {
            switch self {
            case .allow: "allow"
            case .errno(let number): "errno \(number)\(number == EPERM ? " (EPERM)" : "")"
            case .killThread: "kill thread"
            case .killProcess: "kill process"
            case .trap: "trap (SIGSYS)"
            case .log: "allow and log"
            case .trace(let number): "trace \(number)"
            }
        }
    }

    /// One comparison of a syscall argument; every comparison of a rule must hold.
    public struct Comparison: Sendable, Equatable {
        public enum Operator: String, Sendable, CaseIterable {
            case notEqual = "SCMP_CMP_NE"
            case lessThan = "SCMP_CMP_LT"
            case lessOrEqual = "SCMP_CMP_LE"
            case equal = "SCMP_CMP_EQ"
            case greaterOrEqual = "SCMP_CMP_GE"
            case greaterThan = "SCMP_CMP_GT"
            /// `(argument & value) == valueTwo`.
            case maskedEqual = "SCMP_CMP_MASKED_EQ"
        }

        public var index: Int
        public var value: UInt64
        public var valueTwo: UInt64
        public var op: Operator
    }

    /// `includes` / `excludes` of a rule: which hosts and jobs it is meant for.
    public struct Condition: Sendable, Equatable {
        public var caps: [String] = []
        public var arches: [String] = []
        public var minKernel: String?

        var isEmpty: Bool { caps.isEmpty && arches.isEmpty && minKernel == nil }
    }

    public struct Rule: Sendable, Equatable {
        /// Where it is in the file, for messages: `syscalls[3]`.
        public var position: Int
        public var names: [String]
        public var action: Action
        public var args: [Comparison]
        public var includes: Condition
        public var excludes: Condition

        public var label: String { "syscalls[\(position)] (\(names.prefix(3).joined(separator: ", "))\(names.count > 3 ? ", …" : ""))" }
    }

    /// The name it was loaded by: a profile name or a path.
    public var name: String
    public var defaultAction: Action
    /// libseccomp architecture names (`x86_64`, `x86`, `x32`); the host's own is always in.
    public var architectures: [String]
    public var rules: [Rule]

    /// Reads a profile from its JSON text; errors name the profile and the rule.
    public init(name: String, json: Data) throws {
        self.name = name
        let document: JSONValue
        do {
            document = try JSONValue(parsing: json)
        } catch {
            throw SeccompProfileError(profile: name, message: "is not valid JSON: \(error)")
        }
        guard case .object(let members) = document else {
            throw SeccompProfileError(profile: name, message: "must be a JSON object")
        }
        let reader = Reader(profile: name, place: nil)
        let defaultErrno = try reader.errno(members["defaultErrnoRet"], key: "defaultErrnoRet") ?? EPERM
        guard let defaultText = try reader.string(members["defaultAction"], key: "defaultAction") else {
            throw SeccompProfileError(profile: name, message: "defaultAction is required")
        }
        defaultAction = try reader.action(defaultText, errno: defaultErrno)
        architectures = try (reader.strings(members["architectures"], key: "architectures") ?? []).map { architecture in
            guard architecture.hasPrefix("SCMP_ARCH_") else {
                throw SeccompProfileError(profile: name, message: "architectures: \(architecture) is not an SCMP_ARCH_ name")
            }
            return architecture.dropFirst("SCMP_ARCH_".count).lowercased()
        }
        guard case .array(let entries) = members["syscalls"] ?? .array([]) else {
            throw SeccompProfileError(profile: name, message: "syscalls must be an array")
        }
        var rules: [Rule] = []
        for (position, entry) in entries.enumerated() {
            rules.append(try Self.rule(entry, position: position, profile: name))
        }
        self.rules = rules
    }

    private static func rule(_ entry: JSONValue, position: Int, profile: String) throws
        -> Rule
    {
        var reader = Reader(profile: profile, place: "syscalls[\(position)]")
        guard case .object(let members) = entry else { throw reader.error("must be an object") }
        var names = try reader.strings(members["names"], key: "names") ?? []
        if let single = try reader.string(members["name"], key: "name") { names.append(single) }
        guard !names.isEmpty else { throw reader.error("needs names") }
        reader.place = "syscalls[\(position)] (\(names.prefix(3).joined(separator: ", ")))"
        guard let actionText = try reader.string(members["action"], key: "action") else { throw reader.error("needs an action") }
        // OCI: a rule without errnoRet fails with EPERM; defaultErrnoRet is the default action's.
        let errno = try reader.errno(members["errnoRet"], key: "errnoRet") ?? EPERM
        let action = try reader.action(actionText, errno: errno)
        guard case .array(let argEntries) = members["args"] ?? .array([]) else { throw reader.error("args must be an array") }
        let args = try argEntries.map { argument throws in try reader.comparison(argument) }
        var indices = Set<Int>()
        for argument in args where !indices.insert(argument.index).inserted {
            throw reader.error("compares argument \(argument.index) twice; use one rule per comparison of the same argument")
        }
        return Rule(
            position: position, names: names, action: action, args: args,
            includes: try reader.condition(members["includes"], key: "includes"),
            excludes: try reader.condition(members["excludes"], key: "excludes"))
    }

    /// Reads typed values out of the JSON, naming where a bad one is.
    private struct Reader {
        let profile: String
        var place: String?

        func error(_ message: String) -> SeccompProfileError {
            SeccompProfileError(profile: profile, rule: place, message: message)
        }

        func string(_ value: JSONValue?, key: String) throws -> String? {
            switch value {
            case nil, .null?: return nil
            case .string(let text)?: return text
            default: throw error("\(key) must be a string")
            }
        }

        func strings(_ value: JSONValue?, key: String) throws -> [String]? {
            switch value {
            case nil, .null?: return nil
            case .array(let elements)?:
                return try elements.map { element throws in
                    guard case .string(let text) = element else { throw error("\(key) must be an array of strings") }
                    return text
                }
            default: throw error("\(key) must be an array of strings")
            }
        }

        func number(_ value: JSONValue?, key: String) throws -> UInt64? {
            switch value {
            case nil, .null?: return nil
            case .int(let number)? where number >= 0: return UInt64(number)
            case .double(let number)? where number >= 0 && number < 0x1p64 && number.rounded() == number:
                return UInt64(number)
            default: throw error("\(key) must be a whole number from 0 to 2^64-1")
            }
        }

        func errno(_ value: JSONValue?, key: String) throws -> Int32? {
            guard let number = try number(value, key: key) else { return nil }
            guard (1...4095).contains(number) else { throw error("\(key) must be an errno from 1 to 4095, not \(number)") }
            return Int32(number)
        }

        func action(_ text: String, errno: Int32) throws -> Action {
            switch text {
            case "SCMP_ACT_ALLOW": return .allow
            case "SCMP_ACT_ERRNO": return .errno(errno)
            case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": return .killThread
            case "SCMP_ACT_KILL_PROCESS": return .killProcess
            case "SCMP_ACT_TRAP": return .trap
            case "SCMP_ACT_LOG": return .log
            case "SCMP_ACT_TRACE": return .trace(errno)
            case "SCMP_ACT_NOTIFY": throw error("SCMP_ACT_NOTIFY needs a listener, which supervisor does not run")
            default: throw error("unknown action \"\(text)\"")
            }
        }

        func comparison(_ value: JSONValue) throws -> Comparison {
            guard case .object(let members) = value else { throw error("each of args must be an object") }
            guard let index = try number(members["index"], key: "args.index"), index <= 5 else {
                throw error("args.index must be 0 to 5")
            }
            guard let opText = try string(members["op"], key: "args.op"), let op = Comparison.Operator(rawValue: opText) else {
                throw error("args.op must be one of \(Comparison.Operator.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return Comparison(
                index: Int(index), value: try number(members["value"], key: "args.value") ?? 0,
                valueTwo: try number(members["valueTwo"], key: "args.valueTwo") ?? 0, op: op)
        }

        func condition(_ value: JSONValue?, key: String) throws -> Condition {
            switch value {
            case nil, .null?: return Condition()
            case .object(let members)?:
                return Condition(
                    caps: try strings(members["caps"], key: "\(key).caps") ?? [],
                    arches: try strings(members["arches"], key: "\(key).arches") ?? [],
                    minKernel: try string(members["minKernel"], key: "\(key).minKernel"))
            default: throw error("\(key) must be an object")
            }
        }
    }
}

public struct SeccompProfileError: Error, Equatable, CustomStringConvertible {
    public var profile: String
    /// The rule at fault, as `syscalls[3] (mount)`; nil for the profile as a whole.
    public var rule: String?
    public var message: String

    public init(profile: String, rule: String? = nil, message: String) {
        self.profile = profile
        self.rule = rule
        self.message = message
    }

    public var description: String { "seccomp profile \(profile): \(rule.map { "\($0): " } ?? "")\(message)" }
}
