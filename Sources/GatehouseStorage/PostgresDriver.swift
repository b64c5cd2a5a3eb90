import Foundation
import GatehouseCore
import Logging
import NIOCore
import PostgresNIO

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
}

/// PostgreSQL through PostgresNIO's pooled `PostgresClient`. The client's `run()` must be
/// running (it is a Service in the server's ServiceGroup, or run by `withRunningClient`).
final class PostgresDriver: SQLDriver {
    let dialect: any SQLDialect = PostgresDialect()
    let client: PostgresClient
    private let logger: Logger

    init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
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
        return configuration
    }

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        let rows = try await client.query(Self.makeQuery(sql, binds), logger: logger)
        return try await Self.collect(rows)
    }

    func transaction(_ statements: [SQLStatement]) async throws {
        let logger = self.logger
        try await client.withTransaction(logger: logger) { connection in
            for statement in statements {
                _ = try await connection.query(Self.makeQuery(statement.sql, statement.binds), logger: logger)
            }
        }
    }

    func withMigrationLock(_ body: @Sendable (any SQLDriver) async throws -> Void) async throws {
        let logger = self.logger
        try await client.withConnection { connection in
            // A session-level advisory lock: concurrent instances wait here, then see the
            // migrations the first one applied.
            _ = try await connection.query("SELECT pg_advisory_lock(7263591034)", logger: logger)
            do {
                try await body(ConnectionDriver(connection: connection, logger: logger))
                _ = try await connection.query("SELECT pg_advisory_unlock(7263591034)", logger: logger)
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(7263591034)", logger: logger)
                throw error
            }
        }
    }

    func close() async throws {}

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
            let logger = self.logger
            try await connection.withTransaction(logger: logger) { connection in
                for statement in statements {
                    _ = try await connection.query(PostgresDriver.makeQuery(statement.sql, statement.binds), logger: logger)
                }
            }
        }

        func withMigrationLock(_ body: @Sendable (any SQLDriver) async throws -> Void) async throws { try await body(self) }
        func close() async throws {}
    }
}
