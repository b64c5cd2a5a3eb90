import Foundation
import GatehouseCore
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
    var rollupWriteLock: SQLStatement? { nil }
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
        var opened: [SQLiteConnection] = []
        do {
            let writer = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
            opened.append(writer)
            // busy_timeout first: SQLiteNIO's own busy handler retries for ever, so until this
            // replaces it a file another process holds locked spins the open at full CPU.
            // WAL lets readers run beside the writer; NORMAL sync is durable across process crashes
            // (an OS crash may lose the last commits), the usual trade for a log-like workload.
            // A batch insert keeps a statement journal (it may stop half-way on a conflict); in a
            // temp file, writing it and deleting it at each commit was a sixth of a proxied call's
            // CPU (docs/benchmarks.md). In memory it is a few pages per batch.
            for pragma in ["PRAGMA busy_timeout=5000", "PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON",
                           "PRAGMA temp_store=MEMORY"] {
                _ = try await writer.query(pragma, [])
            }
            for _ in 0..<readerCount {
                let reader = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
                opened.append(reader)
                _ = try await reader.query("PRAGMA busy_timeout=5000", [])
                // Readers only read: a write sent to one fails at once instead of racing the writer.
                _ = try await reader.query("PRAGMA query_only=ON", [])
            }
        } catch {
            // A connection dropped unclosed leaks its file (and asserts in debug builds).
            for connection in opened { await connection.closeEvenIfCancelled() }
            throw error
        }
        let writer = opened[0], readers = Array(opened.dropFirst())
        return SQLiteDriver(writer: writer, readers: readers)
    }

    /// Deadlines: a call that waits this long (behind other writers, or on a file lock held by
    /// another process past `busy_timeout`) fails as unavailable, and its caller tries again.
    static let queryTimeout: Duration = .seconds(30)
    static let transactionTimeout: Duration = .seconds(30)
    static let migrationTimeout: Duration = .seconds(600)

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        // `WITH` starts reads too (window and CTE queries: incidents, tag counts); were one ever a
        // write, the reader's query_only would refuse it rather than let it bypass the writer.
        let head = sql.drop(while: \.isWhitespace).prefix(6).uppercased()
        let isRead = head == "SELECT" || (head.hasPrefix("WITH") && head.dropFirst(4).first?.isWhitespace == true)
        if isRead, !readers.isEmpty {
            let index = nextReader.add(1, ordering: .relaxed).oldValue % readers.count
            let reader = readers[index]
            return try await within(Self.queryTimeout) {
                try await reader.lock.withLock {
                    try Task.checkCancellation()
                    return try await Self.run(sql, binds, on: reader.connection)
                }
            }
        }
        // A write whose caller was already told it timed out must not run later behind its back.
        return try await within(Self.queryTimeout) { [writer, writerLock] in
            try await writerLock.withLock {
                try Task.checkCancellation()
                return try await Self.run(sql, binds, on: writer)
            }
        }
    }

    func transaction(_ statements: [SQLStatement]) async throws {
        // A call whose deadline passed while it waited for the writer gives up before it begins,
        // so a batch its caller will write again is not written twice.
        try await within(Self.transactionTimeout) { [self] in
            try await writerLock.withLock {
                try Task.checkCancellation()
                try await self.inTransaction(statements)
            }
        }
    }

    /// Runs `body` within `timeout`; errors come out as `StoreError.unavailable` (busy, locked,
    /// I/O, no answer in time), a `DatabaseError` refusal (constraint, too big) or as SQLite said.
    private func within<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        do {
            return try await Deadline.run(timeout, timeoutError: { StoreError.unavailable("SQLite did not answer within \(timeout)") }) { _ in
                try await body()
            }
        } catch {
            throw Self.describe(error)
        }
    }

    static func describe(_ error: any Error) -> any Error {
        guard let sqlite = error as? SQLiteError else { return error }
        let reason = "\(sqlite.reason)"
        if ["busy", "locked", "ioError", "full", "readOnly", "readonly", "cantOpen", "noMemory", "interrupt"].contains(where: { reason.hasPrefix($0) }) {
            return StoreError.unavailable("SQLite \(reason): \(sqlite.message)")
        }
        if ["constraint", "tooBig", "mismatch", "range"].contains(where: { reason.hasPrefix($0) }) {
            return DatabaseError(message: "SQLite \(reason): \(sqlite.message)", refusal: true)
        }
        return error
    }

    private func inTransaction(_ statements: [SQLStatement]) async throws {
        _ = try await writer.query("BEGIN IMMEDIATE", [])
        do {
            for statement in statements { _ = try await Self.run(statement.sql, statement.binds, on: writer) }
            // The caller's deadline passed while the statements ran: it was told the batch failed
            // and will write it again, so this copy must not commit.
            try Task.checkCancellation()
            _ = try await writer.query("COMMIT", [])
        } catch {
            await Self.rollback(writer)
            throw error
        }
    }

    /// ROLLBACK even when the caller was cancelled (its deadline passed): NIOThreadPool skips
    /// work whose task is cancelled, which would leave the writer inside the transaction and
    /// fail every later BEGIN ("cannot start a transaction within a transaction"). A task of
    /// its own does not inherit the cancellation.
    private static func rollback(_ connection: SQLiteConnection) async {
        await Task { _ = try? await connection.query("ROLLBACK", []) }.value
    }

    /// Runs `body` inside one `BEGIN IMMEDIATE` transaction: SQLite's write lock serializes
    /// every connection and process opening the same file, so only one applies a migration.
    func withMigrationLock(_ body: @escaping @Sendable (any SQLDriver) async throws -> Void) async throws {
        try await within(Self.migrationTimeout) { [writer, writerLock] in
            try await writerLock.withLock {
                try await Self.beginWaitingForTheWriteLock(writer)
                do {
                    try await body(LockedWriter(connection: writer))
                    _ = try await writer.query("COMMIT", [])
                } catch {
                    await Self.rollback(writer)
                    throw error
                }
            }
        }
    }

    /// BEGIN IMMEDIATE gives up after busy_timeout (5 s), but another process's migration holds
    /// the write lock for as long as it runs (seconds in a debug build under load, minutes on a
    /// large store): a busy answer is tried again until the migration's own deadline.
    private static func beginWaitingForTheWriteLock(_ connection: SQLiteConnection) async throws {
        while true {
            do {
                _ = try await connection.query("BEGIN IMMEDIATE", [])
                return
            } catch let error as SQLiteError where error.reason == .busy {
                try await Task.sleep(for: .milliseconds(100))
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
        func withMigrationLock(_ body: @escaping @Sendable (any SQLDriver) async throws -> Void) async throws { try await body(self) }
        func close() async throws {}
    }

    func close() async throws {
        for reader in readers { try await reader.connection.close() }
        try await writerLock.withLock { try await writer.close() }
    }

    /// Also `StoreBackup`'s, whose checks run on a connection of their own without deadlines.
    static func run(_ sql: String, _ binds: [SQLValue], on connection: SQLiteConnection) async throws -> [SQLRow] {
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

extension SQLiteConnection {
    /// Closes the connection even when the task was cancelled: NIOThreadPool skips a cancelled
    /// task's work, and an open connection would be leaked (and trap in debug builds).
    func closeEvenIfCancelled() async {
        await Task { try? await self.close() }.value
    }
}
