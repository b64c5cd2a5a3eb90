import GatehouseCore

/// A bound SQL parameter or a result cell, independent of the database.
public enum SQLValue: Sendable, Hashable {
    case int(Int64)
    case double(Double)
    case text(String)
    case null

    var int: Int64? {
        switch self {
        case .int(let v): v
        case .double(let v): Int64(exactly: v.rounded()) ?? nil
        case .text(let s): Int64(s)
        case .null: nil
        }
    }

    var double: Double? {
        switch self {
        case .int(let v): Double(v)
        case .double(let v): v
        case .text(let s): Double(s)
        case .null: nil
        }
    }

    var text: String? {
        switch self {
        case .text(let s): s
        case .int(let v): String(v)
        case .double(let v): String(v)
        case .null: nil
        }
    }
}

/// One result row, by column name.
public struct SQLRow: Sendable {
    public var values: [String: SQLValue]
    public subscript(_ column: String) -> SQLValue { values[column] ?? .null }
}

/// What differs between the SQL of SQLite and PostgreSQL. Everything else is shared.
public protocol SQLDialect: Sendable {
    var name: String { get }
    /// The n-th (1-based) bind placeholder.
    func placeholder(_ index: Int) -> String
    /// The text value at key `nameParameter` (a placeholder) of a JSON object column.
    func jsonText(column: String, keyPlaceholder: String) -> String
    /// How a JSON key is bound for `jsonText`.
    func jsonKeyBind(_ key: String) -> SQLValue
    /// How a dotted path into a JSON object (`http.status` as ["http", "status"]) is bound.
    func jsonPathBind(_ path: [String]) -> SQLValue
    /// The value at a bound path as text (NULL when absent).
    func jsonPathText(column: String, pathPlaceholder: String) -> String
    /// The value at a bound path as a number, NULL when absent or not a JSON number.
    func jsonPathNumber(column: String, pathPlaceholder: String) -> String
    /// Casts a bound text placeholder to the JSON column type.
    func jsonValue(_ placeholder: String) -> String
    /// Selects a JSON column as text.
    func jsonAsText(_ column: String) -> String
    /// The larger of two values (`MAX(a, b)` on SQLite, `GREATEST` on PostgreSQL).
    func greatest(_ a: String, _ b: String) -> String
    func least(_ a: String, _ b: String) -> String
    /// An integer sum that is 0 over no rows.
    func sumInt(_ expression: String) -> String
    /// Whether latency percentiles can be computed in SQL (`percentile_cont`).
    var hasPercentiles: Bool { get }
    /// A statement that opens every transaction inserting into a table with rollups (calls,
    /// probe results), so that two instances writing at once cannot deadlock on the rollup rows
    /// their triggers update: each statement's trigger locks its rows in key order, but a batch
    /// is several statements. Nil where one connection writes anyway (SQLite).
    var rollupWriteLock: SQLStatement? { get }
}

/// The minimum a store needs from a database connection (pool).
public protocol SQLDriver: Sendable {
    var dialect: any SQLDialect { get }
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow]
    /// Runs the statements in order inside one transaction; all or nothing.
    func transaction(_ statements: [SQLStatement]) async throws
    /// Runs `body` inside a transaction holding the migration lock (an advisory lock on
    /// PostgreSQL), so that instances starting together migrate once.
    func withMigrationLock(_ body: @escaping @Sendable (any SQLDriver) async throws -> Void) async throws
    func close() async throws
}

/// A statement the database answered with an error, in words without the bound values.
///
/// `refusal` marks errors about the values themselves (a constraint, a value out of range, a
/// row too big): the same statement will fail again, so a writer may set the record aside.
/// Everything that means "the database is not there" is `StoreError.unavailable` instead.
public struct DatabaseError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var refusal: Bool
    public init(message: String, refusal: Bool) {
        self.message = message
        self.refusal = refusal
    }
    public var description: String { message }
}

/// What a failed store call means for whoever retries it.
enum StoreFailure: Equatable {
    /// The database could not be reached, did not answer in time, or went away: keep
    /// everything and try again later.
    case outage
    /// The database answered and refused these values: trying them again will not help.
    case refusal
    /// Anything else (including errors of stores that are not SQL drivers).
    case unknown

    init(_ error: any Error) {
        switch error {
        case StoreError.unavailable(_), is CancellationError: self = .outage
        case let error as DatabaseError: self = error.refusal ? .refusal : .unknown
        default: self = .unknown
        }
    }
}

public struct SQLStatement: Sendable {
    public var sql: String
    public var binds: [SQLValue]
    public init(_ sql: String, _ binds: [SQLValue] = []) {
        self.sql = sql
        self.binds = binds
    }
}

/// Builds SQL with placeholders numbered for the dialect; values are only ever bound.
struct SQLBuilder {
    let dialect: any SQLDialect
    private(set) var binds: [SQLValue] = []

    init(dialect: any SQLDialect) { self.dialect = dialect }

    /// Adds a bind and returns its placeholder.
    mutating func bind(_ value: SQLValue) -> String {
        binds.append(value)
        return dialect.placeholder(binds.count)
    }

    /// ` WHERE a AND b …`, or nothing for no conditions.
    static func whereClause(_ conditions: [String]) -> String {
        conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
    }
}
