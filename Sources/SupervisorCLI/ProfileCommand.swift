import ArgumentParser
import Foundation
import SupervisorCore
import SupervisorSandbox

/// `supervisor profile check`: what a job type's `profile` would do on this host.
struct ProfileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile", abstract: "Seccomp profiles.", subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Validate a seccomp profile, compile it for this host and print its rules.",
            discussion: """
                A name is profiles/NAME.json in the current directory, else the profile of that name
                shipped with supervisor; a value with a / or ending in .json is a path. System call
                names this libseccomp does not know are skipped with a warning, as at start-up.
                """)
        @Argument(help: "A profile name (profiles/NAME.json) or a path.") var profile: String
        @Flag(help: "Print the result as one JSON document.") var json = false
        @Flag(help: "Treat system call names this libseccomp does not know as errors.") var strict = false
        @Option(help: ArgumentHelp("Also write the compiled BPF program to this file (what the launcher loads).", valueName: "file"))
        var bpfOutput: String?

        func run() async throws {
            let program: SeccompProgram
            do {
                let loaded = try SeccompProfiles.load(
                    profile, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
                program = try SeccompProgram(compiling: loaded, strict: strict)
            } catch {
                throw CommandFailure("\(error)")
            }
            if let bpfOutput {
                do {
                    try Data(program.instructions).write(to: URL(fileURLWithPath: bpfOutput))
                } catch {
                    throw CommandFailure("cannot write \(bpfOutput): \(error)")
                }
            }
            if json {
                print(String(decoding: Self.document(program).serialized(), as: UTF8.self))
            } else {
                print(Self.text(program), terminator: "")
            }
        }

        static func document(_ program: SeccompProgram) -> JSONValue {
            let profile = program.profile
            func rule(_ rule: SeccompProfile.Rule) -> JSONValue {
                .object([
                    "rule": .string("syscalls[\(rule.position)]"), "names": .array(rule.names.map(JSONValue.string)),
                    "action": .string(rule.action.description),
                    "args": .array(rule.args.map { .string(argument($0)) }),
                ])
            }
            let notForHost = Set(program.rulesNotForThisHost.map(\.position))
            return .object([
                "profile": .string(profile.name), "defaultAction": .string(profile.defaultAction.description),
                "architectures": .array(profile.architectures.map(JSONValue.string)),
                "rules": .array(profile.rules.filter { !notForHost.contains($0.position) }.map(rule)),
                "notForThisHost": .array(program.rulesNotForThisHost.map(rule)),
                "unknownNames": .array(program.unknownNames.map(JSONValue.string)),
                "instructions": .int(Int64(program.instructions.count / 8)),
            ])
        }

        static func text(_ program: SeccompProgram) -> String {
            let profile = program.profile
            let notForHost = Set(program.rulesNotForThisHost.map(\.position))
            var lines = [
                "profile \(profile.name): valid, \(program.instructions.count / 8) BPF instructions on this host",
                "default action: \(profile.defaultAction)",
            ]
            if !profile.architectures.isEmpty { lines.append("architectures: \(profile.architectures.joined(separator: ", "))") }
            for rule in profile.rules where !notForHost.contains(rule.position) {
                let condition = rule.args.isEmpty ? "" : " when \(rule.args.map(argument).joined(separator: " and "))"
                lines.append("  \(rule.action)\(condition): \(rule.names.joined(separator: " "))")
            }
            for rule in program.rulesNotForThisHost { lines.append("not for this host: \(rule.label)") }
            if !program.unknownNames.isEmpty {
                lines.append("warning: skipped, unknown to this libseccomp: \(program.unknownNames.joined(separator: " "))")
            }
            return lines.joined(separator: "\n") + "\n"
        }

        static func argument(_ comparison: SeccompProfile.Comparison) -> String {
            let name = "arg\(comparison.index)"
            let value = "0x" + String(comparison.value, radix: 16)
            return switch comparison.op {
            case .notEqual: "\(name) != \(value)"
            case .lessThan: "\(name) < \(value)"
            case .lessOrEqual: "\(name) <= \(value)"
            case .equal: "\(name) == \(value)"
            case .greaterOrEqual: "\(name) >= \(value)"
            case .greaterThan: "\(name) > \(value)"
            case .maskedEqual: "\(name) & \(value) == 0x\(String(comparison.valueTwo, radix: 16))"
            }
        }
    }
}
