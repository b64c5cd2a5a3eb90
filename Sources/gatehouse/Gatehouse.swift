import ArgumentParser
import Foundation
import GatehouseAPI

/// The command tree; `main.swift` starts it.
struct Gatehouse: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse",
        abstract: "The operations hub for AI apps: an LLM gateway that meters every call, in one binary.",
        version: GatehouseVersion.current,
        subcommands: [Serve.self, Usage.self, Requests.self, Issues.self, Traces.self, Logs.self, Monitor.self, Smoke.self, SilenceCommand.self, Keys.self, Users.self, CheckConfig.self, EncryptSecret.self, Backup.self, Restore.self, VerifyBackup.self, Migrate.self, Healthcheck.self],
        defaultSubcommand: nil)

    /// ArgumentParser's `main`, except that a `CLIError` (the server is not reachable, the API
    /// refused the call, …) is one line on standard error, `error: …`, and exit status 1.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let error as CLIError {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            Foundation.exit(1)
        } catch {
            exit(withError: error)
        }
    }
}
