import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseServer
import GatehouseStorage
import Logging

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway, API and metrics on one port (SQLite under ./gatehouse-data by default).")

    @OptionGroup var options: ConfigOptions

    @Flag(name: .customLong("no-migrate"),
          help: "Do not apply schema migrations; refuse to start unless `gatehouse migrate` has brought the schema up to date (GATEHOUSE_MIGRATE=false).")
    var noMigrate = false

    func run() async throws {
        let config: GatehouseConfig
        do {
            var loaded = try options.load()
            if noMigrate { loaded.migrateOnStart = false }
            config = loaded
            // The certificate and key are opened here too, so a bad pair is refused like a bad key.
            // An expired one is not refused: the server logs that warning when it loads the pair.
            if let problems = TLSFiles(config)?.check().problems, !problems.isEmpty { throw ConfigErrors(errors: problems) }
        } catch let errors as ConfigErrors {
            FileHandle.standardError.write(Data("gatehouse: refusing to start: \(errors)\n".utf8))
            throw ExitCode(2)
        }
        LoggingSetup.bootstrap(format: config.logFormat, level: config.logLevel)
        let logger = Logger(label: "gatehouse")
        if !ConcurrencyExecutor.onEventLoops && !ConcurrencyExecutor.turnedOff {
            logger.warning("Swift concurrency could not move onto NIO's event loops; every call will hop between threads and cost more CPU")
        }
        let started = ContinuousClock.now
        let server: GatehouseServer
        do {
            server = try await GatehouseServer.build(config: config, logger: logger) { port in
                let elapsed = ContinuousClock.now - started
                logger.notice("gatehouse is listening", metadata: [
                    "address": "\(config.servesHTTPS ? "https" : "http")://\(config.host):\(port)", "store": "\(Redactor.redactURL(config.resolvedDatabaseURL))",
                    "providers": "\(config.providers.map(\.name).joined(separator: ","))", "executor": "\(ConcurrencyExecutor.name)",
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
        } catch let error as SchemaNotCurrent {
            logger.critical("gatehouse refused to start", metadata: ["error": "\(error)"])
            FileHandle.standardError.write(Data("gatehouse: refusing to start: \(error)\n".utf8))
            throw ExitCode(1)
        }
        logger.notice("gatehouse stopped")
    }
}
