import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseServer
import Logging

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway, API and metrics on one port (SQLite under ./gatehouse-data by default).")

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let config: GatehouseConfig
        do {
            config = try options.load()
        } catch let errors as ConfigErrors {
            FileHandle.standardError.write(Data("gatehouse: refusing to start: \(errors)\n".utf8))
            throw ExitCode(2)
        }
        LoggingSetup.bootstrap(format: config.logFormat, level: config.logLevel)
        let logger = Logger(label: "gatehouse")
        let started = ContinuousClock.now
        let server: GatehouseServer
        do {
            server = try await GatehouseServer.build(config: config, logger: logger) { port in
                let elapsed = ContinuousClock.now - started
                logger.notice("gatehouse is listening", metadata: [
                    "address": "http://\(config.host):\(port)", "store": "\(Redactor.redactURL(config.resolvedDatabaseURL))",
                    "providers": "\(config.providers.map(\.name).joined(separator: ","))",
                    "startup_ms": "\(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)",
                ])
            }
        } catch {
            logger.critical("gatehouse could not start", metadata: ["error": "\(Redactor.scrubText(String(describing: error)))"])
            throw ExitCode(1)
        }
        do {
            try await server.run()
        } catch let error as ListenError {
            // Said plainly on standard error (whatever the log format), and exit 1.
            logger.critical("gatehouse could not listen", metadata: ["error": "\(error)"])
            FileHandle.standardError.write(Data("gatehouse: \(error)\n".utf8))
            throw ExitCode(1)
        }
        logger.notice("gatehouse stopped")
    }
}
