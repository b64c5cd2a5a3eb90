import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseStorage
import Logging

/// `gatehouse backup`, `restore` and `verify-backup`: the store's files, without a server.
enum BackupCommands {
    /// Nothing from the drivers reaches the output: it is a report, or JSON.
    static let logger = Logger(label: "gatehouse.backup", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Prints `report` as a table or JSON; a report that did not pass ends the command with status 1.
    static func finish(_ report: StoreReport, json: Bool, heading: String) throws {
        if json {
            Keys.printJSON(report)
        } else {
            print(heading)
            print(text(report))
        }
        guard report.ok else {
            if !json { FileHandle.standardError.write(Data("error: the check failed: \(report.problems.joined(separator: "; "))\n".utf8)) }
            throw ExitCode(1)
        }
    }

    static func text(_ report: StoreReport) -> String {
        var lines: [String] = []
        if let integrity = report.integrityCheck { lines.append("integrity_check  \(integrity)") }
        lines.append("schema version   \(report.schemaVersion) (this binary knows up to \(report.knownSchemaVersion))")
        lines.append("newest record    \(report.newestRecordMicros.map(TimeExpressions.format(micros:)) ?? "none")")
        if !report.kinds.isEmpty {
            var table = TextTable(columns: [.init(header: "KIND"), .init(header: "TABLE"), .init(header: "ROWS", alignment: .right), .init(header: "NEWEST")])
            for kind in report.kinds {
                table.rows.append([.init(text: kind.kind), .init(text: kind.table), .init(text: String(kind.rows)),
                                   .init(text: kind.newestMicros.map(TimeExpressions.format(micros:)) ?? "")])
            }
            lines.append("")
            lines += table.render().map { $0.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }
        }
        for problem in report.problems { lines.append("problem: \(problem)") }
        lines.append(report.ok ? "check passed" : "check FAILED")
        return lines.joined(separator: "\n")
    }

    /// Store errors in words, without a URL's password.
    static func failure(_ error: any Error, doing what: String) -> any Error {
        if let error = error as? BackupError { return CLIError(error.description) }
        return CLIError("\(what) failed: \(Redactor.scrubText(Redactor.maskURLCredentials(String(describing: error))))")
    }
}

struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a consistent, gzip-compressed copy of the SQLite store while it serves (PostgreSQL: use pg_dump).",
        discussion: """
            The copy is one read transaction of the database (SQLite's VACUUM INTO): a running server goes on \
            writing meanwhile. It is checked (integrity_check, row counts) before FILE appears, whole, under its \
            name. The store is the one `serve` would open with the same options.
            """)

    @OptionGroup var options: ConfigOptions
    @Option(name: .customLong("output"), help: "The backup file to write (e.g. gatehouse-2026-12-02.sqlite.gz).") var output: String
    @Flag(help: "Replace the output file if it exists.") var force = false
    @Flag(help: "Print the backup's report as JSON.") var json = false

    func run() async throws {
        let config: GatehouseConfig
        do {
            config = try options.load()
        } catch let errors as ConfigErrors {
            FileHandle.standardError.write(Data("gatehouse: refusing to back up: \(errors)\n".utf8))
            throw ExitCode(2)
        }
        let report: StoreReport
        do {
            report = try await StoreBackup.backup(databaseURL: config.resolvedDatabaseURL, to: output, overwrite: force, logger: BackupCommands.logger)
        } catch {
            throw BackupCommands.failure(error, doing: "the backup")
        }
        try BackupCommands.finish(report, json: json, heading: "Backed up to \(output):")
    }
}

struct Restore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore a backup into an empty or new data directory, and check it.",
        discussion: "A directory that holds anything is refused. The database takes its name only once it has passed its check.")

    @Option(name: .customLong("input"), help: "A file written by `gatehouse backup`.") var input: String
    @Option(name: .customLong("data-dir"), help: "The data directory to create (or an empty one); `serve --data-dir` it afterwards.")
    var dataDirectory: String
    @Flag(help: "Print the restored database's report as JSON.") var json = false

    func run() async throws {
        // The file `serve --data-dir DIR` opens, named where the configuration names it.
        let config = try ConfigurationLoader.load(yaml: nil, environment: [:], overrides: ConfigOverrides(dataDirectory: dataDirectory))
        guard case .sqlite(let path) = DatabaseURL(config.resolvedDatabaseURL) else { throw CLIError("\(dataDirectory) is not a usable data directory") }
        let report: StoreReport
        do {
            report = try await StoreBackup.restore(from: input, toDatabaseAt: path, logger: BackupCommands.logger)
        } catch {
            throw BackupCommands.failure(error, doing: "the restore")
        }
        try BackupCommands.finish(report, json: json, heading: "Restored \(input) into \(dataDirectory):")
    }
}

struct VerifyBackup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-backup",
        abstract: "Check a backup file, or a restored database, and print its row counts per kind.",
        discussion: """
            Runs PRAGMA integrity_check (SQLite), reads the schema version and counts the rows of every kind. \
            Exit status 1 when the check fails or the schema is newer than this binary knows. With --database-url \
            it checks a database in place, read-only (a PostgreSQL database restored with pg_restore, or a SQLite file).
            """)

    @Argument(help: "A file written by `gatehouse backup`.") var file: String?
    @Option(name: .customLong("database-url"), help: "Check this database instead: postgres://… or sqlite:///path.") var databaseURL: String?
    @Flag(help: "Print the report as JSON.") var json = false

    func validate() throws {
        if (file == nil) == (databaseURL == nil) { throw ValidationError("give either a backup FILE or --database-url, not both") }
    }

    func run() async throws {
        let report: StoreReport
        do {
            if let file {
                report = try await StoreBackup.verify(backupFile: file, logger: BackupCommands.logger)
            } else {
                report = try await StoreBackup.verify(databaseURL: databaseURL ?? "", logger: BackupCommands.logger)
            }
        } catch {
            throw BackupCommands.failure(error, doing: "the check")
        }
        let subject = file ?? Redactor.redactURL(databaseURL ?? "")
        try BackupCommands.finish(report, json: json, heading: "\(subject):")
    }
}
