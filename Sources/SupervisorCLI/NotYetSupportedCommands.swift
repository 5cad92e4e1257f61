import ArgumentParser

// Commands SPEC.md names whose behaviour has not landed yet. Each refuses clearly
// instead of pretending; its `--help` says what it will do.

struct DrainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drain", abstract: "Stop a worker claiming new jobs (admin; not supported yet).")
    @Argument(help: "The worker id.") var workerID: String
    @OptionGroup var client: ClientOptions
    func run() async throws { throw CommandFailure.notSupportedYet("drain") }
}
