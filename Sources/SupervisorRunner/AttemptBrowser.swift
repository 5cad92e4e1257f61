import Foundation
public import SupervisorConfig

/// The browser a `browser = "chromium"` type gets (SPEC sections 3 and 6): the supervisor
/// starts it for each attempt, inside the attempt's containment and with the attempt's
/// user-data directory and debugging port, and hands the job its DevTools WebSocket URL.
public enum AttemptBrowser {
    /// How long a browser may take to answer before the attempt fails (transiently).
    public static let startupLimit: Duration = .seconds(30)

    /// The browser's argv: headless, on the attempt's port and user data, and quiet (no
    /// first run, component updates, crash uploads or background traffic).
    /// `--disable-dev-shm-usage` keeps its shared memory in the work directory's `tmp/`
    /// rather than `/dev/shm`, which is small in containers and shared by every attempt.
    /// `--no-sandbox` only when the browser runs as root, where Chromium's own sandbox
    /// refuses to start; the supervisor's filter, Landlock and limits stand in for it.
    public static func command(
        _ browser: JobTypeSettings.Browser, program: String, userDataDirectory: String, port: Int, runsAsRoot: Bool
    ) -> [String] {
        switch browser {
        case .chromium:
            var command = [
                program, "--headless=new", "--user-data-dir=\(userDataDirectory)", "--remote-debugging-port=\(port)",
                "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--disable-component-update",
                "--disable-breakpad", "--disable-crash-reporter", "--disable-background-networking", "--disable-sync",
                "--disable-default-apps", "--metrics-recording-only", "--password-store=basic", "--use-mock-keychain",
            ]
            if runsAsRoot { command.append("--no-sandbox") }
            command.append("about:blank")
            return command
        }
    }

    /// The DevTools WebSocket URL in a line of the browser's stderr, which Chromium writes
    /// once its endpoint accepts connections: "DevTools listening on ws://…".
    public static func devToolsURL(inLine line: some Collection<UInt8>) -> String? {
        let prefix = Array("DevTools listening on ".utf8)
        guard line.count > prefix.count, line.starts(with: prefix) else { return nil }
        let url = String(decoding: line.dropFirst(prefix.count), as: UTF8.self)
            .trimmingCharacters(in: .whitespaces)
        guard url.hasPrefix("ws://"), !url.contains(" ") else { return nil }
        return url
    }
}
