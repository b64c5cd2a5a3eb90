import Foundation
import Logging
import NIOCore
import SQLiteNIO
import Synchronization

struct SQLiteDialect: SQLDialect {
    var name: String { "sqlite" }
    func placeholder(_ index: Int) -> String { "?\(index)" }
    func jsonText(column: String, keyPlaceholder: String) -> String { "json_extract(\(column), \(keyPlaceholder))" }
    func jsonKeyBind(_ key: String) -> SQLValue {
        // A quoted path member, so keys with dots or spaces address one member.
        .text("$.\"" + key.replacingOccurrences(of: "\"", with: "\\\"") + "\"")
    }
    func jsonPathBind(_ path: [String]) -> SQLValue {
        .text("$" + path.map { ".\"" + $0.replacingOccurrences(of: "\"", with: "\\\"") + "\"" }.joined())
    }
    func jsonPathText(column: String, pathPlaceholder: String) -> String { "json_extract(\(column), \(pathPlaceholder))" }
    func jsonPathNumber(column: String, pathPlaceholder: String) -> String {
        "(CASE WHEN json_type(\(column), \(pathPlaceholder)) IN ('integer', 'real') THEN json_extract(\(column), \(pathPlaceholder)) END)"
    }
    func jsonValue(_ placeholder: String) -> String { placeholder }
    func jsonAsText(_ column: String) -> String { column }
    func greatest(_ a: String, _ b: String) -> String { "MAX(\(a), \(b))" }
    func least(_ a: String, _ b: String) -> String { "MIN(\(a), \(b))" }
    func sumInt(_ expression: String) -> String { "COALESCE(SUM(\(expression)), 0)" }
    var hasPercentiles: Bool { false }
}

/// SQLite in WAL mode: one writer connection (SQLite allows one writer at a time anyway) and a
/// few reader connections, so reads never queue behind a batch write.
final class SQLiteDriver: SQLDriver {
    let dialect: any SQLDialect = SQLiteDialect()
    private let writer: SQLiteConnection
    private let writerLock = AsyncLock()
    private let readers: [(connection: SQLiteConnection, lock: AsyncLock)]
    private let nextReader = Atomic<Int>(0)

    private init(writer: SQLiteConnection, readers: [SQLiteConnection]) {
        self.writer = writer
        self.readers = readers.map { ($0, AsyncLock()) }
    }

    static func open(path: String, readers readerCount: Int = 2, logger: Logger) async throws -> SQLiteDriver {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let writer = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        // WAL lets readers run beside the writer; NORMAL sync is durable across process crashes
        // (an OS crash may lose the last commits), the usual trade for a log-like workload.
        for pragma in ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=5000", "PRAGMA foreign_keys=ON"] {
            _ = try await writer.query(pragma, [])
        }
        var readers: [SQLiteConnection] = []
        for _ in 0..<readerCount {
            let reader = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
            _ = try await reader.query("PRAGMA busy_timeout=5000", [])
            readers.append(reader)
        }
        return SQLiteDriver(writer: writer, readers: readers)
    }

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        let isRead = sql.drop(while: \.isWhitespace).prefix(6).uppercased() == "SELECT"
        if isRead, !readers.isEmpty {
            let index = nextReader.add(1, ordering: .relaxed).oldValue % readers.count
            let reader = readers[index]
            return try await reader.lock.withLock { try await Self.run(sql, binds, on: reader.connection) }
        }
        return try await writerLock.withLock { try await Self.run(sql, binds, on: writer) }
    }

    func transaction(_ statements: [SQLStatement]) async throws {
        try await writerLock.withLock { try await self.inTransaction(statements) }
    }

    private func inTransaction(_ statements: [SQLStatement]) async throws {
        _ = try await writer.query("BEGIN IMMEDIATE", [])
        do {
            for statement in statements { _ = try await Self.run(statement.sql, statement.binds, on: writer) }
            _ = try await writer.query("COMMIT", [])
        } catch {
            _ = try? await writer.query("ROLLBACK", [])
            throw error
        }
    }

    /// Runs `body` inside one `BEGIN IMMEDIATE` transaction: SQLite's write lock serializes
    /// every connection and process opening the same file, so only one applies a migration.
    func withMigrationLock(_ body: @Sendable (any SQLDriver) async throws -> Void) async throws {
        try await writerLock.withLock {
            _ = try await writer.query("BEGIN IMMEDIATE", [])
            do {
                try await body(LockedWriter(connection: writer))
                _ = try await writer.query("COMMIT", [])
            } catch {
                _ = try? await writer.query("ROLLBACK", [])
                throw error
            }
        }
    }

    /// The writer connection inside the migration transaction: statements run as they come,
    /// the surrounding transaction makes them atomic.
    private struct LockedWriter: SQLDriver {
        let connection: SQLiteConnection
        var dialect: any SQLDialect { SQLiteDialect() }
        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] { try await SQLiteDriver.run(sql, binds, on: connection) }
        func transaction(_ statements: [SQLStatement]) async throws {
            for statement in statements { _ = try await SQLiteDriver.run(statement.sql, statement.binds, on: connection) }
        }
        func withMigrationLock(_ body: @Sendable (any SQLDriver) async throws -> Void) async throws { try await body(self) }
        func close() async throws {}
    }

    func close() async throws {
        for reader in readers { try await reader.connection.close() }
        try await writerLock.withLock { try await writer.close() }
    }

    fileprivate static func run(_ sql: String, _ binds: [SQLValue], on connection: SQLiteConnection) async throws -> [SQLRow] {
        let rows = try await connection.query(sql, binds.map(Self.encode))
        return rows.map { row in
            var values: [String: SQLValue] = [:]
            for column in row.columns { values[column.name] = decode(column.data) }
            return SQLRow(values: values)
        }
    }

    private static func encode(_ value: SQLValue) -> SQLiteData {
        switch value {
        case .int(let v): .integer(Int(v))
        case .double(let v): .float(v)
        case .text(let s): .text(s)
        case .null: .null
        }
    }

    private static func decode(_ data: SQLiteData) -> SQLValue {
        switch data {
        case .integer(let v): .int(Int64(v))
        case .float(let v): .double(v)
        case .text(let s): .text(s)
        case .blob(let buffer): .text(String(buffer: buffer))
        case .null: .null
        }
    }
}
