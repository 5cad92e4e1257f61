public import ArgumentParser

/// `supervisor`: the command line of SPEC section 2. Each command is a thin shell over
/// the library targets; the HTTP commands talk to a running daemon.
public struct SupervisorCommand: AsyncParsableCommand {
    public static let version = "0.1.0"

    public static let configuration = CommandConfiguration(
        commandName: "supervisor",
        abstract: "Runs browser-automation jobs from a durable queue, each in its own contained process tree.",
        version: version,
        subcommands: [
            ServeCommand.self, WorkerCommand.self, SubmitCommand.self, StatusCommand.self, ListCommand.self,
            CancelCommand.self, RetryCommand.self, LogsCommand.self, InfoCommand.self, MigrateCommand.self,
            ConfigCommand.self, CleanupCommand.self, ProfileCommand.self, BackupCommand.self, DeleteCommand.self,
            DrainCommand.self,
        ]
    )

    public init() {}
}

/// A failure the command reports on stderr with exit status 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }

    static func notSupportedYet(_ command: String) -> CommandFailure {
        CommandFailure("`supervisor \(command)` is not supported yet by this version of supervisor")
    }
}

/// `--config F`, shared by the commands that read the config.
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "Config file (default: $SUPERVISOR_CONFIG, else ./supervisor.toml, else built-in defaults).")
    var config: String?
}
