import ArgumentParser
import SupervisorCLI

@main
struct Entry {
    static func main() async {
        // Spelled out so the async entry point is chosen, not ParsableCommand's sync one.
        let run: () async -> Void = SupervisorCommand.main
        await run()
    }
}
