import ArgumentParser

/// The command tree; `main.swift` starts it.
struct Gatehouse: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse",
        abstract: "The operations hub for AI apps: an LLM gateway that meters every call, in one binary.",
        version: "0.1.0",
        subcommands: [Serve.self, Usage.self, Logs.self, Monitor.self, Smoke.self, SilenceCommand.self, Keys.self, CheckConfig.self, EncryptSecret.self],
        defaultSubcommand: nil)
}
