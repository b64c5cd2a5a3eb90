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
            printJSON(report)
        } else {
            print(heading)
            print(text(report))
        }
        guard report.ok else {
            if !json { FileHandle.standardError.write(Data("error: the check failed: \(escaped(report.problems.joined(separator: "; ")))\n".utf8)) }
            throw ExitCode(1)
        }
    }

    /// A command that could not do its job (unusable input, refused target, usage): exit 2, and
    /// with --json a JSON object too, so a script reads one shape whatever happened. A copy that
    /// failed its check is a report, exit 1.
    static func fail(_ error: any Error, doing what: String, json: Bool, heading: String) throws -> Never {
        if let error = error as? BackupError, let report = error.report {
            try finish(report, json: json, heading: heading)
        }
        let message: String
        if let error = error as? BackupError {
            message = error.description
        } else {
            message = "\(what) failed: \(Redactor.scrubText(Redactor.maskURLCredentials(String(describing: error))))"
        }
        if json { printJSON(["ok": JSONScalar.bool(false), "error": .text(message)]) }
        FileHandle.standardError.write(Data("error: \(escaped(message))\n".utf8))
        throw ExitCode(2)
    }

    enum JSONScalar: Encodable {
        case bool(Bool), text(String)
        func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .bool(let v): try c.encode(v)
            case .text(let v): try c.encode(v)
            }
        }
    }

    /// Names and messages from the checked file, made safe for a terminal: control characters
    /// (escape sequences) are shown as \u{…}, never sent.
    static func escaped(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func text(_ report: StoreReport) -> String {
        var lines: [String] = []
        if let integrity = report.integrityCheck { lines.append("integrity_check  \(escaped(integrity))") }
        lines.append("schema version   \(report.schemaVersion) (this binary knows up to \(report.knownSchemaVersion))")
        lines.append("newest record    \(report.newestRecordMicros.map(TimeExpressions.format(micros:)) ?? "none")")
        if !report.kinds.isEmpty {
            var table = TextTable(columns: [.init(header: "KIND"), .init(header: "TABLE"), .init(header: "ROWS", alignment: .right), .init(header: "NEWEST")])
            for kind in report.kinds {
                table.rows.append([.init(text: escaped(kind.kind)), .init(text: escaped(kind.table)), .init(text: String(kind.rows)),
                                   .init(text: kind.newestMicros.map(TimeExpressions.format(micros:)) ?? "")])
            }
            lines.append("")
            lines += table.render().map { $0.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }
        }
        if !report.virtualTables.isEmpty {
            lines.append("not counted      virtual tables \(report.virtualTables.map(escaped).joined(separator: ", ")) (their module's code is not run)")
        }
        for problem in report.problems { lines.append("problem: \(escaped(problem))") }
        lines.append(report.ok ? "check passed" : "check FAILED")
        return lines.joined(separator: "\n")
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

    @OptionGroup var store: StoreOptions
    @Option(name: .customLong("output"), help: "The backup file to write (e.g. gatehouse-2026-12-02.sqlite.gz).") var output: String
    @Flag(help: "Replace the output file if it exists.") var force = false
    @Flag(help: "Print the backup's report as JSON.") var json = false

    func run() async throws {
        let heading = "Backed up to \(output):"
        let databaseURL: String
        do {
            databaseURL = try store.location()
        } catch {
            try BackupCommands.fail(BackupError("refusing to back up: \(error)"), doing: "the backup", json: json, heading: heading)
        }
        let report: StoreReport
        do {
            report = try await StoreBackup.backup(databaseURL: databaseURL, to: output, overwrite: force, logger: BackupCommands.logger)
        } catch {
            try BackupCommands.fail(error, doing: "the backup", json: json, heading: heading)
        }
        try BackupCommands.finish(report, json: json, heading: heading)
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
        let heading = "Restored \(input) into \(dataDirectory):"
        let report: StoreReport
        do {
            let config = try ConfigurationLoader.load(yaml: nil, environment: [:], overrides: ConfigOverrides(dataDirectory: dataDirectory))
            guard case .sqlite(let path) = DatabaseURL(config.resolvedDatabaseURL) else { throw BackupError("\(dataDirectory) is not a usable data directory") }
            report = try await StoreBackup.restore(from: input, toDatabaseAt: path, logger: BackupCommands.logger)
        } catch {
            try BackupCommands.fail(error, doing: "the restore", json: json, heading: heading)
        }
        try BackupCommands.finish(report, json: json, heading: heading)
    }
}

struct VerifyBackup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-backup",
        abstract: "Check a backup file, or a restored database, and print its row counts per kind.",
        discussion: """
            Runs PRAGMA integrity_check (SQLite), reads the schema version and counts the rows of every kind. \
            Exit status 1 when the check fails or the schema is newer than this binary knows, 2 when the input \
            is unusable (not gzip, cut short, damaged, not a SQLite database) or the command is refused. With --database-url \
            it checks a database in place, read-only (a PostgreSQL database restored with pg_restore, or a SQLite file).
            """)

    @Argument(help: "A file written by `gatehouse backup`.") var file: String?
    @Option(name: .customLong("database-url"), help: "Check this database instead: postgres://… or sqlite:///path.") var databaseURL: String?
    @Flag(help: "Print the report as JSON.") var json = false

    func validate() throws {
        if (file == nil) == (databaseURL == nil) { throw ValidationError("give either a backup FILE or --database-url, not both") }
    }

    func run() async throws {
        let subject = file ?? Redactor.redactURL(databaseURL ?? "")
        let report: StoreReport
        do {
            if let file {
                report = try await StoreBackup.verify(backupFile: file, logger: BackupCommands.logger)
            } else {
                report = try await StoreBackup.verify(databaseURL: databaseURL ?? "", logger: BackupCommands.logger)
            }
        } catch {
            try BackupCommands.fail(error, doing: "the check", json: json, heading: "\(subject):")
        }
        try BackupCommands.finish(report, json: json, heading: "\(subject):")
    }
}
