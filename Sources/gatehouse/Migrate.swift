import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseServer
import GatehouseStorage

/// `gatehouse migrate`: the schema step of a rollout, run once before the new servers start
/// (`serve --no-migrate`), e.g. as a Kubernetes Job or a Compose one-shot service.
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending schema migrations to the store `serve` would open, then exit.",
        discussion: """
            Reads the store location like `backup` does (--data-dir, --database-url, --config, GATEHOUSE_DATA_DIR, \
            GATEHOUSE_DATABASE_URL): no admin token or encryption key is needed. Safe to run while servers use the \
            store and several times at once: one run applies the migrations under a lock (a PostgreSQL advisory \
            lock, SQLite's write lock); the others say they are waiting, wait for it and find the schema current. \
            Progress goes to standard error as log lines (GATEHOUSE_LOG_FORMAT, GATEHOUSE_LOG_LEVEL): each \
            migration as it starts, and the end. On PostgreSQL there is no deadline unless --timeout-seconds gives one: a \
            big store's migration may take long (SQLite keeps a 600 s bound and waits 5 s for another process's \
            write lock). Exit status 0 when the schema is current afterwards, 1 when it could not be brought \
            there (a store newer than this binary included).
            """)

    @OptionGroup var store: StoreOptions
    @Option(help: ArgumentHelp("Give up after this many seconds, the wait for another migration included (PostgreSQL); the version underway rolls back. Default: no limit.",
                               valueName: "seconds"))
    var timeoutSeconds: Int?
    @Flag(help: "Print the result as JSON: {\"from\": …, \"to\": …, \"applied\": […]}.") var json = false

    struct Result: Encodable {
        var from: Int64
        var to: Int64
        var applied: [Int]
    }

    func validate() throws {
        if let timeoutSeconds, timeoutSeconds < 1 { throw ValidationError("--timeout-seconds must be at least 1") }
    }

    func run() async throws {
        let databaseURL: String
        do {
            databaseURL = try store.location()
        } catch {
            throw CLIError("refusing to migrate: \(error)")
        }
        // The migration's progress lines (waiting for another run, each version, the end) go to
        // standard error; the drivers' chatter does not.
        let env = ProcessInfo.processInfo.environment
        LoggingSetup.bootstrap(format: env["GATEHOUSE_LOG_FORMAT"].flatMap(GatehouseConfig.LogFormat.init(rawValue:)) ?? .auto,
                               level: env["GATEHOUSE_LOG_LEVEL"].flatMap(GatehouseConfig.LogLevel.init(rawValue:)) ?? .info)
        let run: MigrationRun
        do {
            run = try await StoreFactory.migrate(databaseURL: databaseURL, logger: BackupCommands.logger, timeout: timeoutSeconds.map { .seconds($0) })
        } catch let error as SchemaNotCurrent {
            throw CLIError("refusing to migrate \(Redactor.redactURL(databaseURL)): \(error)")
        } catch {
            throw CLIError("the migration of \(Redactor.redactURL(databaseURL)) failed: \(Redactor.scrubText(Redactor.maskURLCredentials(String(describing: error))))")
        }
        if json {
            printJSON(Result(from: run.from, to: run.to, applied: run.applied))
        } else if run.applied.isEmpty {
            print("schema is current at version \(run.to); nothing to apply")
        } else {
            print("schema migrated from version \(run.from) to \(run.to) (applied \(run.applied.map(String.init).joined(separator: ", ")))")
        }
    }
}
