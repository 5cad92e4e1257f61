import Foundation
import NIOHTTP1
import SupervisorCore
import Testing

/// Real Chromium and Playwright for Python (installed by `scripts/install-deps`), driven
/// by the daemon against a page the test serves. One test at a time: each runs up to four
/// browsers, which is what two cores hold.
@Suite("browsers: Chromium and Playwright jobs end to end", .serialized)
struct BrowserTests {
    static let repository = RunnerHarness.jobs.deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let python = repository.appendingPathComponent(".venv/bin/python").path

    /// The job types of these tests: the shipped examples, and test jobs.
    static func harness(runner: String = "") async throws -> RunnerHarness {
        try #require(
            FileManager.default.isExecutableFile(atPath: python),
            "Playwright's virtualenv is missing: scripts/install-deps makes .venv")
        func browserType(_ name: String, _ script: String, _ extra: String = "") -> String {
            """
            [job_types.\(name)]
            command = ["\(python)", "\(script)"]
            browser = "chromium"
            profile = "chromium"
            timeout = "90s"
            pids_max = 1024
            \(extra)
            """
        }
        let examples = repository.appendingPathComponent("scripts/jobs")
        return try await RunnerHarness.start(
            runner: runner,
            config: """
                \(browserType("scrape", examples.appendingPathComponent("scrape.py").path))
                \(browserType("screenshot", examples.appendingPathComponent("screenshot.py").path))
                \(browserType("pdf", examples.appendingPathComponent("pdf.py").path))
                \(browserType("browserhold", RunnerHarness.jobs.appendingPathComponent("browser_hold.py").path))
                \(browserType("browsercrash", RunnerHarness.jobs.appendingPathComponent("browser_crash.py").path,
                    "max_attempts = 2\nbackoff = \"200ms\"\nbackoff_max = \"1s\""))
                [job_types.sandboxed]
                command = ["/usr/bin/python3", "\(RunnerHarness.jobs.appendingPathComponent("browser_sandbox.py").path)"]
                browser = "chromium"
                profile = "chromium"
                run_as = "nobody"
                timeout = "60s"
                pids_max = 1024
                max_attempts = 1
                [job_types.selfchrome]
                command = ["/bin/sh", "\(RunnerHarness.jobs.appendingPathComponent("selfchrome.sh").path)"]
                profile = "chromium"
                timeout = "10s"
                max_attempts = 1
                """)
    }

    @Test("a Playwright job loads the fixture and returns its title and a count of elements")
    func scrape() async throws {
        let pages = try FixturePages()
        defer { pages.stop() }
        let harness = try await Self.harness()
        let id = try await harness.submit(
            "scrape", payload: ["urls": [.string(pages.url("index.html")), .string(pages.url("second.html"))], "selector": "li.item"])
        let job = try await harness.ended(id)
        #expect(job["status"] == "completed", "\(job)")
        #expect(job["result"]?["pages"]?[0]?["title"] == "Supervisor fixture")
        #expect(job["result"]?["pages"]?[0]?["count"] == 7)
        #expect(job["result"]?["pages"]?[1]?["title"] == "Second fixture")
        #expect(job["result"]?["pages"]?[1]?["count"] == 2)
        #expect(job["progress"]?["current"] == 2 && job["progress"]?["total"] == 2)
        guard case .int(let startup)? = job["attempts"]?[0]?["browserStartupMs"] else {
            Issue.record("no browser start-up time in \(job)")
            return
        }
        #expect(startup > 0 && startup < 30_000)
        let log = try await harness.request(.GET, "/api/jobs/\(id)/logs").text
        #expect(log.contains("browser: DevTools listening on ws://127.0.0.1:"), "the browser's output is in the log")
        await harness.stop()
        try Self.expectNothingLeft(harness)
    }

    @Test("the screenshot and PDF examples leave downloadable artifacts")
    func artifacts() async throws {
        let pages = try FixturePages()
        defer { pages.stop() }
        let harness = try await Self.harness()
        let shot = try await harness.submit("screenshot", payload: ["url": .string(pages.url("index.html"))])
        let pdf = try await harness.submit("pdf", payload: ["url": .string(pages.url("index.html"))])
        for (id, name, magic) in [(shot, "screenshot.png", Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A])), (pdf, "page.pdf", Data("%PDF-".utf8))] {
            let job = try await harness.ended(id)
            #expect(job["status"] == "completed", "\(job)")
            #expect(job["result"]?["title"] == "Supervisor fixture")
            #expect(job["artifacts"]?[0]?["name"] == .string(name))
            let download = try await harness.request(.GET, "/api/jobs/\(id)/artifacts/\(name)")
            #expect(download.status == 200)
            #expect(download.data.starts(with: magic), "\(name) is what its name says")
            #expect(job["artifacts"]?[0]?["size"] == .int(Int64(download.data.count)))
        }
        // A bad payload fails at once, without a retry: no attempt could do better.
        let bad = try await harness.submit("screenshot", payload: ["url": "file:///etc/passwd"])
        let failed = try await harness.ended(bad)
        #expect(failed["status"] == "failed")
        #expect(failed["error"]?["class"] == "fail_permanent")
        await harness.stop()
        try Self.expectNothingLeft(harness)
    }

    @Test("four browser jobs at once each get a browser of their own, and all complete")
    func fourBrowsers() async throws {
        let pages = try FixturePages()
        defer { pages.stop() }
        let harness = try await Self.harness()
        let gate = harness.gate()
        var ids: [String] = []
        for _ in 0..<4 {
            ids.append(try await harness.submit("browserhold", payload: ["url": .string(pages.url("index.html")), "gate": .string(gate)]))
        }
        for id in ids { _ = try await harness.poll(id) { $0["progress"]?["percent"] == 50 } }
        // Four browsers running at once: their main processes (not their launchers, helpers
        // or crash handlers) are the ones named chromium with a debugging port.
        let browsers = Self.chromiumProcesses(harness).filter { pid in
            let arguments = Self.commandLine(of: pid).split(separator: " ")
            return arguments.first?.hasSuffix("/chromium") == true
                && arguments.contains { $0.hasPrefix("--remote-debugging-port=") }
        }
        #expect(browsers.count == 4, "\(browsers.map(Self.commandLine))")
        harness.open(gate)
        var seen: [JSONValue] = []
        for id in ids {
            let job = try await harness.ended(id)
            #expect(job["status"] == "completed", "\(job)")
            #expect(job["result"]?["title"] == "Supervisor fixture")
            seen.append(job["result"] ?? .null)
        }
        for key in ["cdp", "port", "userData"] {
            #expect(Set(seen.map { $0[key] }).count == 4, "distinct \(key): \(seen)")
        }
        for result in seen {
            // The browser listens on the attempt's own port, with the attempt's user data.
            guard case .string(let cdp)? = result["cdp"], case .string(let port)? = result["port"],
                case .string(let userData)? = result["userData"]
            else {
                Issue.record("incomplete \(result)")
                continue
            }
            #expect(cdp.hasPrefix("ws://127.0.0.1:\(port)/devtools/browser/"))
            #expect(userData.hasPrefix(harness.workRoot.path))
        }
        await harness.stop()
        try Self.expectNothingLeft(harness)
    }

    @Test("a script that starts Chromium itself and hangs is killed at its timeout, every Chromium process with it")
    func selfStartedChromium() async throws {
        let harness = try await Self.harness()
        let id = try await harness.submit("selfchrome")
        _ = try await harness.poll(id) { $0["progress"]?["percent"] == 50 }
        let running = Self.chromiumProcesses(harness)
        #expect(running.count >= 2, "the browser and its helpers run: \(running)")
        let job = try await harness.ended(id)
        #expect(job["status"] == "failed")
        #expect(job["error"]?["class"] == "timeout")
        #expect(Self.chromiumProcesses(harness).isEmpty)
        #expect(running.allSatisfy(processEnded))
        await harness.stop()
        try Self.expectNothingLeft(harness)
    }

    @Test("a browser that crashes mid-job fails the attempt, and the job is retried with a new browser")
    func crashedBrowser() async throws {
        let harness = try await Self.harness()
        let id = try await harness.submit("browsercrash")
        let job = try await harness.ended(id, attempt: 2)
        #expect(job["status"] == "completed", "\(job)")
        #expect(job["attempts"]?[0]?["outcome"] == "browser_crashed")
        #expect(job["attempts"]?[1]?["outcome"] == "completed")
        #expect(job["result"]?["attempt"] == 2)
        await harness.stop()
        try Self.expectNothingLeft(harness)
    }

    @Test(
        "run_as: the supervisor's Chromium runs as that user and keeps its own sandbox",
        .enabled(
            if: geteuid() == 0 && getpwnam("nobody") != nil && FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"),
            "needs a root supervisor, a user named nobody and /usr/bin/python3"),
        .enabled(
            if: unprivilegedUserNamespaces(),
            "needs unprivileged user namespaces, which Chromium's own sandbox is made of")
    )
    func runAsKeepsChromiumSandbox() async throws {
        let harness = try await Self.harness()
        let nobody = Int64(try #require(getpwnam("nobody")).pointee.pw_uid)
        let job = try await harness.ended(try await harness.submit("sandboxed"))
        #expect(job["status"] == "completed", "\(job)")
        #expect(job["result"]?["uid"] == .int(nobody))
        #expect(job["result"]?["answered"] == true)
        #expect(job["result"]?["browserUids"] == [.int(nobody)], "every process of its browser is the user's")
        #expect(job["result"]?["noSandbox"] == false)
        #expect(job["result"]?["jobWritesProc"] == false, "the job itself still cannot write below /proc")
        guard case .int(let renderers)? = job["result"]?["renderers"], renderers > 0 else {
            Issue.record("no renderer was seen: \(job)")
            await harness.stop()
            return
        }
        #expect(job["result"]?["renderersInOwnPidNamespace"] == .int(renderers), "\(job)")
        await harness.stop()
        try Self.expectNothingLeft(harness)
    }

    @Test("a browser that never comes up fails the attempt transiently, with its stderr in the log")
    func browserThatNeverStarts() async throws {
        let fake = RunnerHarness.jobs.appendingPathComponent("nobrowser.sh").path
        let harness = try await Self.harness(runner: "chromium_path = \"\(fake)\"")
        let id = try await harness.submit("browsercrash")
        let job = try await harness.ended(id, attempt: 2)
        #expect(job["status"] == "failed")
        #expect(job["error"]?["class"] == "browser_crashed")
        #expect(job["attempts"]?[0]?["outcome"] == "browser_crashed")
        #expect(job["attempts"]?[0]?["exitCode"] == 21)
        let log = try await harness.request(.GET, "/api/jobs/\(id)/logs").text
        #expect(log.contains("browser: fake chromium: cannot open the profile in"), "\(log)")
        #expect(log.contains("supervisor: the browser ended before its DevTools endpoint answered"))
        await harness.stop()
        try Self.expectNothingLeft(harness)
    }

    /// Whether a user without capabilities may make a user namespace: the kernel's limit,
    /// Debian's switch and Ubuntu's AppArmor restriction all allow it.
    static func unprivilegedUserNamespaces() -> Bool {
        func setting(_ name: String) -> Int? {
            (try? String(contentsOfFile: "/proc/sys/" + name, encoding: .utf8))
                .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        return (setting("user/max_user_namespaces") ?? 0) > 0 && (setting("kernel/unprivileged_userns_clone") ?? 1) == 1
            && (setting("kernel/apparmor_restrict_unprivileged_userns") ?? 0) == 0
    }

    /// No Chromium of the harness's attempts runs, no attempt directory is left, and no
    /// short TMPDIR link leads into its work root.
    static func expectNothingLeft(_ harness: RunnerHarness) throws {
        #expect(chromiumProcesses(harness).isEmpty)
        #expect(try harness.leftoverWorkDirectories().isEmpty)
        let links = try FileManager.default.contentsOfDirectory(atPath: "/tmp").filter { $0.hasPrefix("supervisor-") }
            .compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/tmp/" + $0) }
        #expect(!links.contains { $0.hasPrefix(harness.workRoot.path) })
    }

    /// Live Chromium processes of the harness's attempts: their environment names a work
    /// directory under its work root.
    static func chromiumProcesses(_ harness: RunnerHarness) -> [pid_t] {
        let marker = Array("SUPERVISOR_WORK_DIR=\(harness.workRoot.path)/".utf8)
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }
        return pids.filter { pid in
            guard !processEnded(pid), commandLine(of: pid).contains("chromium"),
                let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ")
            else { return false }
            return [UInt8](environment).split(separator: 0).contains { $0.starts(with: marker) }
        }
    }

    static func commandLine(of pid: pid_t) -> String {
        let bytes = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
        return String(decoding: bytes.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
    }
}

/// Two fixture pages served on 127.0.0.1 by Python's http.server, on a port of its choosing.
final class FixturePages: Sendable {
    let directory: URL
    let port: Int
    private let server: Process

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("supervisor-pages-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let items = (1...7).map { "<li class=\"item\">Item \($0)</li>" }.joined()
        try "<!doctype html><html><head><title>Supervisor fixture</title></head><body><h1>Fixture</h1><ul>\(items)</ul></body></html>"
            .write(to: directory.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
        try "<!doctype html><html><head><title>Second fixture</title></head><body><ul><li class=\"item\">a</li><li class=\"item\">b</li></ul></body></html>"
            .write(to: directory.appendingPathComponent("second.html"), atomically: true, encoding: .utf8)
        server = Process()
        server.executableURL = URL(fileURLWithPath: BrowserTests.python)
        server.arguments = [
            "-c",
            """
            import functools, http.server, sys
            class Quiet(http.server.SimpleHTTPRequestHandler):
                def log_message(self, *args): pass
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=sys.argv[1]))
            print(server.server_address[1], flush=True)
            server.serve_forever()
            """,
            directory.path,
        ]
        let output = Pipe()
        server.standardOutput = output
        try server.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw HarnessFailure("the fixture server ended before it listened") }
            line.append(chunk)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw HarnessFailure("the fixture server printed no port")
        }
        self.port = port
    }

    func url(_ page: String) -> String { "http://127.0.0.1:\(port)/\(page)" }

    func stop() {
        // SIGKILL: the test process blocks SIGTERM, and its children inherit the mask.
        kill(server.processIdentifier, SIGKILL)
        server.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
    }
}
