import Foundation
import SupervisorSandbox
import Testing

@Suite("seccomp profiles")
struct SeccompProfileTests {
    func profile(_ json: String, name: String = "test") throws -> SeccompProfile {
        try SeccompProfile(name: name, json: Data(json.utf8))
    }

    @Test("every shipped profile loads and compiles, with no name unknown to this libseccomp", arguments: ["default", "chromium", "strict"])
    func shipped(_ name: String) throws {
        let profile = try SeccompProfiles.load(name, relativeTo: URL(fileURLWithPath: "/nonexistent"))
        let program = try SeccompProgram(compiling: profile, strict: true)
        #expect(program.unknownNames.isEmpty)
        #expect(program.instructions.count % 8 == 0 && program.instructions.count > 8)
    }

    @Test("a profile in Docker's shape: includes and excludes judged on this host, unknown names skipped")
    func dockerShape() throws {
        let text = """
            {
              "defaultAction": "SCMP_ACT_ERRNO",
              "defaultErrnoRet": 1,
              "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
              "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
              "syscalls": [
                {"names": ["read", "write", "exit_group", "future_syscall_one", "future_syscall_two"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
                {"names": ["s390_pci_mmio_read"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}},
                {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.0"}},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]},
                 "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
                {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97, "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_EQ"}]}
              ]
            }
            """
        let profile = try profile(text, name: "docker-like")
        #expect(profile.defaultAction == .errno(EPERM))
        #expect(profile.architectures == ["x86_64", "x86", "x32"])
        #expect(profile.rules.last?.action == .errno(97))
        let host = SandboxHost(architecture: "amd64", kernel: [6, 1])
        let program = try SeccompProgram(compiling: profile, host: host)
        #expect(program.unknownNames == ["future_syscall_one", "future_syscall_two"])
        #expect(program.rulesNotForThisHost.map(\.names) == [["mount"], ["s390_pci_mmio_read"], ["ptrace"], ["personality"]])
        #expect(throws: SeccompProfileError.self) { try SeccompProgram(compiling: profile, host: host, strict: true) }
        let armHost = SandboxHost(architecture: "arm64", kernel: [6, 1])
        let onArm = try SeccompProgram(compiling: profile, host: armHost)
        #expect(onArm.rulesNotForThisHost.map(\.names) == [["mount"], ["arch_prctl"], ["s390_pci_mmio_read"], ["ptrace"]])
    }

    @Test("defaultErrnoRet is the default action's errno; a rule without errnoRet fails with EPERM, as in OCI")
    func errnoDefaults() throws {
        let loaded = try profile(#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]}"#)
        #expect(loaded.defaultAction == .errno(38))
        #expect(loaded.rules.first?.action == .errno(EPERM))
    }

    @Test("a bad profile is refused with the profile and the rule named", arguments: [
        ("{", "is not valid JSON"),
        ("[]", "must be a JSON object"),
        (#"{"syscalls": []}"#, "defaultAction is required"),
        (#"{"defaultAction": "SCMP_ACT_MAYBE"}"#, #"unknown action "SCMP_ACT_MAYBE""#),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86_64"]}"#, "not an SCMP_ARCH_ name"),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_DENY"}]}"#,
         #"syscalls[0] (mount): unknown action "SCMP_ACT_DENY""#),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO"}]}"#, "syscalls[0]: needs names"),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO", "errnoRet": 0}]}"#,
         "syscalls[0] (a): errnoRet must be an errno from 1 to 4095"),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_NOTIFY"}]}"#,
         "syscalls[0] (kill): SCMP_ACT_NOTIFY needs a listener"),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
         "syscalls[0] (kill): args.index must be 0 to 5"),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "EQ"}]}]}"#,
         "syscalls[0] (kill): args.op must be one of"),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}]}"#,
         "syscalls[0] (kill): compares argument 0 twice"),
    ])
    func refused(_ text: String, _ fragment: String) {
        do {
            _ = try SeccompProgram(compiling: try profile(text, name: "broken"))
            Issue.record("accepted: \(text)")
        } catch let error as SeccompProfileError {
            #expect(error.description.hasPrefix("seccomp profile broken: "))
            #expect(error.description.contains(fragment), "\(error)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("an architecture this libseccomp does not know is refused when compiling")
    func unknownArchitecture() throws {
        let profile = try profile(#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}"#)
        #expect { try SeccompProgram(compiling: profile) } throws: { error in
            (error as? SeccompProfileError)?.message.contains("does not know vax") == true
        }
    }

    @Test("a name is looked up next to the config first, then among the shipped; a path is a file")
    func lookup() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("profiles-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base.appendingPathComponent("profiles"), withIntermediateDirectories: true)
        let mine = #"{"defaultAction": "SCMP_ACT_LOG"}"#
        try mine.write(to: base.appendingPathComponent("profiles/default.json"), atomically: true, encoding: .utf8)
        try mine.write(to: base.appendingPathComponent("custom.json"), atomically: true, encoding: .utf8)
        #expect(try SeccompProfiles.load("default", relativeTo: base).defaultAction == .log)
        #expect(try SeccompProfiles.load("strict", relativeTo: base).defaultAction == .errno(EPERM))
        #expect(try SeccompProfiles.load("custom.json", relativeTo: base).defaultAction == .log)
        #expect(try SeccompProfiles.load(base.appendingPathComponent("custom.json").path, relativeTo: base).defaultAction == .log)
        #expect { try SeccompProfiles.load("nonexistent", relativeTo: base) } throws: { error in
            "\(error)".contains("not found") && "\(error)".contains("shipped: chromium, default, strict")
        }
        #expect(throws: SeccompProfileError.self) { try SeccompProfiles.load("../etc", relativeTo: base) }
    }
}
