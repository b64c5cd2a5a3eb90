import Foundation
import GatehouseCore
import Logging
import NIOCore
import PostgresNIO
import Synchronization

struct PostgresDialect: SQLDialect {
    var name: String { "postgres" }
    func placeholder(_ index: Int) -> String { "$\(index)" }
    func jsonText(column: String, keyPlaceholder: String) -> String { "(\(column) ->> \(keyPlaceholder)::text)" }
    func jsonKeyBind(_ key: String) -> SQLValue { .text(key) }
    func jsonPathBind(_ path: [String]) -> SQLValue {
        // A text[] literal: every element quoted, so dots, commas and braces stay inside it.
        .text("{" + path.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
            .joined(separator: ",") + "}")
    }
    func jsonPathText(column: String, pathPlaceholder: String) -> String { "(\(column) #>> CAST(\(pathPlaceholder) AS text[]))" }
    func jsonPathNumber(column: String, pathPlaceholder: String) -> String {
        // CASE fixes the order of evaluation, so a text value is never cast.
        "(CASE WHEN jsonb_typeof(\(column) #> CAST(\(pathPlaceholder) AS text[])) = 'number' THEN (\(column) #>> CAST(\(pathPlaceholder) AS text[]))::float8 END)"
    }
    func jsonValue(_ placeholder: String) -> String { "\(placeholder)::jsonb" }
    func jsonAsText(_ column: String) -> String { "\(column)::text" }
    func greatest(_ a: String, _ b: String) -> String { "GREATEST(\(a), \(b))" }
    func least(_ a: String, _ b: String) -> String { "LEAST(\(a), \(b))" }
    func sumInt(_ expression: String) -> String { "COALESCE(SUM(\(expression)), 0)::bigint" }
    var hasPercentiles: Bool { true }
    /// Held to the end of the transaction; a different key from the migration lock's.
    var rollupWriteLock: SQLStatement? { SQLStatement("SELECT pg_advisory_xact_lock(7263591035)") }
}

/// PostgreSQL through PostgresNIO's pooled `PostgresClient`. The client's `run()` must be
/// running (it is a Service in the server's ServiceGroup, or run by `withRunningClient`).
///
/// Every call has a deadline: a connection within `Timeouts.lease` (the pool waits for one
/// while the server is down), then the statements within `Timeouts.query` or
/// `Timeouts.transaction`. On time-out the connection in use is closed, so the pool drops it
/// and makes a new one. A call whose connection the server closes under it (57P01 when it
/// shuts down) is given up within a quarter second: PostgresNIO does not always answer what
/// was waiting on such a connection (the recorder's transaction then waited forever, holding
/// every record behind it), and such a connection is never used again, not even for a
/// ROLLBACK, since a query written to a closed channel is never answered either.
final class PostgresDriver: SQLDriver {
    let dialect: any SQLDialect = PostgresDialect()
    let client: PostgresClient
    private let logger: Logger
    let timeouts: Timeouts

    struct Timeouts: Sendable {
        /// Waiting for a connection from the pool (all busy, or the server unreachable).
        var lease: Duration = .seconds(5)
        var query: Duration = .seconds(30)
        var transaction: Duration = .seconds(15)
        /// The whole migration run, the advisory lock wait included, after a connection that
        /// may take longer to come at startup. Nil: no deadline (`gatehouse migrate`, whose
        /// copy of a big store may take longer than any bound a server start should have).
        var migration: Duration? = .seconds(600)
        /// Waiting for the first connection at startup (migrating or checking the schema): the
        /// database may be failing over or starting alongside the servers.
        var migrationLease: Duration = .seconds(60)
    }

    /// The migration lock's key: instances and `gatehouse migrate` runs take it in turn.
    static let migrationLockKey: Int64 = 7263591034
    /// Says what a migration waits for even when the driver's own logger is silenced (the CLI).
    private static let progress = Logger(label: "gatehouse.storage")

    init(client: PostgresClient, logger: Logger, timeouts: Timeouts = Timeouts()) {
        self.client = client
        self.logger = logger
        self.timeouts = timeouts
    }

    /// Parses `postgres://user:password@host:port/database?sslmode=disable|prefer|require`.
    static func configuration(fromURL text: String) throws -> PostgresClient.Configuration {
        guard let components = URLComponents(string: text), let host = components.host, !host.isEmpty else {
            throw StoreError.unavailable("database_url is not a valid postgres:// URL")
        }
        let sslmode = components.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? (host == "127.0.0.1" || host == "localhost" ? "disable" : "prefer")
        let tls: PostgresClient.Configuration.TLS
        switch sslmode {
        case "disable": tls = .disable
        case "require", "verify-full", "verify-ca": tls = .require(.makeClientConfiguration())
        default: tls = .prefer(.makeClientConfiguration())
        }
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        var configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432,
            username: components.user?.removingPercentEncoding ?? "postgres",
            password: components.password?.removingPercentEncoding,
            database: database.isEmpty ? nil : database, tls: tls)
        configuration.options.maximumConnections = 16
        configuration.options.minimumConnections = 1
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        let logger = self.logger
        return try await withConnection(timeout: timeouts.query) { connection in
            try await Self.collect(try await connection.query(Self.makeQuery(sql, binds), logger: logger))
        }
    }

    func transaction(_ statements: [SQLStatement]) async throws {
        let logger = self.logger
        try await withConnection(timeout: timeouts.transaction) { connection in
            try await Self.inTransaction(statements, on: connection, logger: logger)
        }
    }

    func withMigrationLock(_ body: @escaping @Sendable (any SQLDriver) async throws -> Void) async throws {
        let logger = self.logger, key = Self.migrationLockKey
        let waiting = WaitingFlag()
        let seconds = timeouts.migration?.components.seconds ?? 0
        // The deadline closes the connection: what was underway rolls back with it.
        let timedOut: @Sendable () -> String = {
            waiting.isSet
                ? "the migration did not finish within \(seconds) seconds: it was still waiting for another migration to release the lock"
                : "the migration did not finish within \(seconds) seconds and was rolled back"
        }
        try await withConnection(timeout: timeouts.migration ?? Self.noDeadline, leaseTimeout: timeouts.migrationLease, timedOut: timedOut) { connection in
            // A session-level advisory lock: concurrent instances wait here, then see the
            // migrations the first one applied. Tried first, so a wait is said out loud.
            let free = try await Self.collect(try await connection.query(Self.makeQuery("SELECT pg_try_advisory_lock(\(key)) AS locked", []), logger: logger))
            if free.first?["locked"].int != 1 {
                waiting.set(true)
                Self.progress.notice("waiting for another migration to finish (it holds the migration lock)",
                                     metadata: ["advisory_lock": "\(key)"])
                try await Self.run("SELECT pg_advisory_lock(\(key))", [], on: connection, logger: logger)
                waiting.set(false)
                Self.progress.notice("the other migration finished; checking the schema")
            }
            do {
                try await body(ConnectionDriver(connection: connection, logger: logger))
                try await Self.run("SELECT pg_advisory_unlock(\(key))", [], on: connection, logger: logger)
            } catch {
                if !connection.isClosed { _ = try? await Self.run("SELECT pg_advisory_unlock(\(key))", [], on: connection, logger: logger) }
                throw error
            }
        }
    }

    /// A century: a deadline that never comes, for calls that must not have one.
    private static let noDeadline: Duration = .seconds(100 * 365 * 24 * 3600)

    /// Runs `body` on one connection, waiting for it as long as a migration does: the schema
    /// check of a server that does not migrate must outlast a failover as migrating does.
    func withStartupConnection<T: Sendable>(_ body: @escaping @Sendable (any SQLDriver) async throws -> T) async throws -> T {
        let logger = self.logger
        return try await withConnection(timeout: timeouts.query, leaseTimeout: timeouts.migrationLease) { connection in
            try await body(ConnectionDriver(connection: connection, logger: logger))
        }
    }

    func close() async throws {}

    /// Leases a connection and runs `body` on it, within the deadlines; errors come out as
    /// `StoreError.unavailable` (no connection, no answer, connection lost) or `DatabaseError`.
    private func withConnection<T: Sendable>(timeout: Duration, leaseTimeout: Duration? = nil, timedOut: (@Sendable () -> String)? = nil,
                                             _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let current = LeasedConnection()
        let client = self.client
        let lease = leaseTimeout ?? timeouts.lease
        do {
            return try await Deadline.run(lease, timeoutError: {
                current.everLeased
                    ? StoreError.unavailable(timedOut?() ?? "PostgreSQL did not answer within \(timeout); the connection was closed")
                    : StoreError.unavailable("no PostgreSQL connection within \(lease)")
            }, onTimeout: {
                current.close()
            }, abandonIf: {
                // The server closed the connection (57P01 when it shuts down): what waits on it
                // may never be answered, so do not wait for the deadline.
                current.isClosedUnderCall ? StoreError.unavailable("the PostgreSQL connection was closed during the call") : nil
            }) { race in
                try await client.withConnection { connection in
                    current.set(connection)
                    defer { current.set(nil) }
                    // Given up while waiting for the connection: do not start on it.
                    try Task.checkCancellation()
                    race.restart(timeout)
                    return try await body(connection)
                }
            }
        } catch {
            throw Self.describe(error, leased: current.everLeased)
        }
    }

    /// BEGIN, the statements, COMMIT. After a failure, ROLLBACK only on a connection that is
    /// still open and healthy; otherwise it is closed, so the pool never hands out a connection
    /// left inside a failed transaction.
    static func inTransaction(_ statements: [SQLStatement], on connection: PostgresConnection, logger: Logger) async throws {
        try await run("BEGIN", [], on: connection, logger: logger)
        do {
            for statement in statements { try await run(statement.sql, statement.binds, on: connection, logger: logger) }
            try await run("COMMIT", [], on: connection, logger: logger)
        } catch {
            if let psql = error as? PSQLError, psql.code == .server, psql.serverInfo?[.severity] == "ERROR", !connection.isClosed {
                do {
                    try await run("ROLLBACK", [], on: connection, logger: logger)
                } catch {
                    closeSoon(connection)
                }
            } else if !connection.isClosed {
                closeSoon(connection)
            }
            throw error
        }
    }

    /// Starts closing `connection` (the pool sees it close and replaces it); does not wait.
    static func closeSoon(_ connection: PostgresConnection) {
        let close: () -> EventLoopFuture<Void> = connection.close
        _ = close()
    }

    /// Runs one statement and reads its result to the end.
    static func run(_ sql: String, _ binds: [SQLValue], on connection: PostgresConnection, logger: Logger) async throws {
        let rows = try await connection.query(makeQuery(sql, binds), logger: logger)
        for try await _ in rows {}
    }

    /// A driver error with what went wrong in words (PSQLError's own description says nothing)
    /// and the class that tells a caller whether to try again: connection and server-shutdown
    /// errors are `StoreError.unavailable`; data the server refuses is a `DatabaseError` refusal.
    static func describe(_ error: any Error, leased: Bool) -> any Error {
        switch error {
        case is StoreError, is DatabaseError:
            return error
        case let psql as PSQLError:
            guard psql.code == .server else {
                if psql.code == .tooManyParameters { return DatabaseError(message: "PostgreSQL: too many parameters in one statement", refusal: true) }
                return StoreError.unavailable("PostgreSQL connection: \(psql.code)")
            }
            let state = psql.serverInfo?[.sqlState] ?? "?????"
            var message = psql.serverInfo?[.message] ?? ""
            let condition = String(state.prefix(2))
            // Values a statement carried can appear after a colon in data errors: leave them out.
            if condition == "22", let colon = message.firstIndex(of: ":") { message = String(message[..<colon]) }
            let text = "PostgreSQL \(state): \(message.prefix(300))"
            switch condition {
            case "08", "53", "57", "58", "40", "55", "XX": return StoreError.unavailable(text)
            case "22", "23", "54": return DatabaseError(message: text, refusal: true)
            default: return DatabaseError(message: text, refusal: false)
            }
        case is CancellationError:
            return error
        default:
            // Pool errors (shut down, circuit breaker open) and channel errors: no database.
            return leased ? error : StoreError.unavailable("no PostgreSQL connection: \(error)")
        }
    }

    static func makeQuery(_ sql: String, _ binds: [SQLValue]) throws -> PostgresQuery {
        var bindings = PostgresBindings(capacity: binds.count)
        for value in binds {
            switch value {
            case .int(let v): bindings.append(v)
            case .double(let v): bindings.append(v)
            case .text(let s): bindings.append(s)
            case .null: bindings.appendNull()
            }
        }
        return PostgresQuery(unsafeSQL: sql, binds: bindings)
    }

    static func collect(_ rows: PostgresRowSequence) async throws -> [SQLRow] {
        var result: [SQLRow] = []
        for try await row in rows {
            var values: [String: SQLValue] = [:]
            for cell in row {
                values[cell.columnName] = try decode(cell)
            }
            result.append(SQLRow(values: values))
        }
        return result
    }

    private static func decode(_ cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8, .oid: return .int(try cell.decode(Int64.self))
        case .float4, .float8: return .double(try cell.decode(Double.self))
        case .bool: return .int(try cell.decode(Bool.self) ? 1 : 0)
        case .numeric: return .double(Double(try cell.decode(String.self)) ?? 0)
        default: return .text(try cell.decode(String.self))
        }
    }

    /// The driver view of one connection, used inside the migration lock.
    private struct ConnectionDriver: SQLDriver {
        let connection: PostgresConnection
        let logger: Logger
        var dialect: any SQLDialect { PostgresDialect() }

        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
            try await PostgresDriver.collect(try await connection.query(PostgresDriver.makeQuery(sql, binds), logger: logger))
        }

        func transaction(_ statements: [SQLStatement]) async throws {
            try await PostgresDriver.inTransaction(statements, on: connection, logger: logger)
        }

        func withMigrationLock(_ body: @escaping @Sendable (any SQLDriver) async throws -> Void) async throws { try await body(self) }
        func close() async throws {}
    }
}

/// The connection a call holds, so its deadline can close it.
private final class LeasedConnection: Sendable {
    private let state = Mutex<(connection: PostgresConnection?, everLeased: Bool)>((nil, false))

    var everLeased: Bool { state.withLock { $0.everLeased } }

    /// A connection is in use and has been closed under the call.
    var isClosedUnderCall: Bool { state.withLock { $0.connection?.isClosed ?? false } }

    func set(_ connection: PostgresConnection?) {
        state.withLock {
            $0.connection = connection
            if connection != nil { $0.everLeased = true }
        }
    }

    func close() {
        if let connection = state.withLock({ $0.connection }) { PostgresDriver.closeSoon(connection) }
    }
}

/// Whether a migration is waiting for the lock, for the words of its time-out.
private final class WaitingFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set(_ newValue: Bool) { value.store(newValue, ordering: .relaxed) }
}
