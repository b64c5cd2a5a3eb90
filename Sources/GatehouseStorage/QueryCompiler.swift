import Foundation
import GatehouseCore

/// What the query language can address in one table: each field's SQL and kind.
struct QuerySchema {
    enum Kind {
        case text
        case integer
        /// Microseconds; a bare number means milliseconds (`latency:>500`).
        case duration
        /// Micro-dollars; a bare number means dollars (`cost:>0.01`).
        case money
        case boolean
        /// Microseconds since 1970.
        case time
    }

    struct Column {
        var sql: String
        var kind: Kind
    }

    /// Field names, lowercased without `_`, to columns.
    var columns: [String: Column]
    /// The column bare words and phrases search.
    var messageColumn: String
    /// The JSON column `property.<name>` reads.
    var propertiesColumn: String?

    static let requests: QuerySchema = {
        var c: [String: Column] = [:]
        for (names, sql, kind) in [
            (["model"], "model", Kind.text), (["requestedmodel"], "requested_model", .text), (["provider"], "provider", .text),
            (["route", "path"], "route", .text), (["key", "keyid"], "key_id", .text), (["user", "userid"], "user_id", .text),
            (["correlationid", "requestid", "traceid", "correlation"], "correlation_id", .text),
            (["error", "errorclass"], "error_class", .text), (["message", "errormessage"], "error_message", .text), (["id"], "id", .text),
            (["status"], "status", .integer), (["inputtokens"], "input_tokens", .integer), (["outputtokens"], "output_tokens", .integer),
            (["cachedinputtokens"], "cached_input_tokens", .integer), (["reasoningtokens"], "reasoning_tokens", .integer),
            (["tokens", "totaltokens"], "(input_tokens + output_tokens)", .integer),
            (["latency", "duration"], "latency_us", .duration), (["ttft", "timetofirsttoken"], "ttft_us", .duration),
            (["cost"], "cost_micros", .money), (["costsaved"], "cost_saved_micros", .money),
            (["stream"], "stream", .boolean), (["complete"], "complete", .boolean), (["cachehit", "cached"], "cache_hit", .boolean),
            (["timestamp", "time", "ts"], "ts", .time),
        ] as [([String], String, Kind)] {
            for name in names { c[name] = Column(sql: sql, kind: kind) }
        }
        return QuerySchema(columns: c, messageColumn: "error_message", propertiesColumn: "properties")
    }()

    static func normalize(_ field: String) -> String { field.lowercased().replacingOccurrences(of: "_", with: "") }
}

/// Compiles a query's syntax tree to a SQL condition for one schema. Every value is bound;
/// only column names from the schema and fixed operators are written into the SQL.
struct QueryCompiler {
    let schema: QuerySchema

    func compile(_ node: QueryNode, _ b: inout SQLBuilder) throws -> String {
        switch node {
        case .and(let parts): return "(" + (try parts.map { try compile($0, &b) }).joined(separator: " AND ") + ")"
        case .or(let parts): return "(" + (try parts.map { try compile($0, &b) }).joined(separator: " OR ") + ")"
        // A missing value (NULL) counts as "not matching", so its negation matches.
        case .not(let inner): return "NOT COALESCE((\(try compile(inner, &b))), FALSE)"
        case let .text(text, _):
            return "LOWER(COALESCE(\(schema.messageColumn), '')) LIKE \(b.bind(.text("%" + Self.escapeLike(text.lowercased()) + "%"))) ESCAPE '\\'"
        case let .field(name, match): return try field(name, match, &b)
        }
    }

    private func field(_ name: String, _ match: FieldMatch, _ b: inout SQLBuilder) throws -> String {
        if name.lowercased().hasPrefix("property."), let column = schema.propertiesColumn {
            let key = b.bind(b.dialect.jsonKeyBind(String(name.dropFirst("property.".count)).lowercased()))
            return try text(b.dialect.jsonText(column: column, keyPlaceholder: key), name: name, match, &b)
        }
        guard let column = schema.columns[QuerySchema.normalize(name)] else {
            throw QueryFieldError("unknown field `\(name)`; fields here are \(Self.fieldList(schema)) and property.<name>")
        }
        switch column.kind {
        case .text: return try text(column.sql, name: name, match, &b)
        case .integer, .duration, .money, .time: return try number(column, name: name, match, &b)
        case .boolean:
            guard case .equals(let v) = match else { throw QueryFieldError("`\(name)` is true or false: write \(name):true") }
            let truth: Bool
            switch v {
            case .text(let t) where ["true", "yes"].contains(t.lowercased()): truth = true
            case .text(let t) where ["false", "no"].contains(t.lowercased()): truth = false
            case .number(let n) where n == 0 || n == 1: truth = n == 1
            default: throw QueryFieldError("`\(name)` is true or false")
            }
            return "\(column.sql) = \(b.bind(.int(truth ? 1 : 0)))"
        }
    }

    private func text(_ sql: String, name: String, _ match: FieldMatch, _ b: inout SQLBuilder) throws -> String {
        switch match {
        case .equals(let v): return "LOWER(\(sql)) = \(b.bind(.text(Self.rawText(v).lowercased())))"
        case .wildcard(let pattern): return "LOWER(\(sql)) LIKE \(b.bind(.text(Self.likePattern(pattern)))) ESCAPE '\\'"
        case .exists: return "\(sql) IS NOT NULL"
        case .compare, .range: throw QueryFieldError("`\(name)` is text: match it with \(name):value or a wildcard, not a comparison")
        }
    }

    private func number(_ column: QuerySchema.Column, name: String, _ match: FieldMatch, _ b: inout SQLBuilder) throws -> String {
        func value(_ v: QueryValue) throws -> Int64 {
            switch (column.kind, v) {
            case (.integer, .number(let n)): return Int64(n.rounded())
            case (.duration, .duration(let micros)): return micros
            case (.duration, .number(let ms)): return Int64((ms * 1000).rounded())
            case (.money, .number(let dollars)): return Int64((dollars * 1_000_000).rounded())
            case (.time, .time(let micros)): return micros
            default:
                let expected = switch column.kind {
                case .integer: "a number"
                case .duration: "a duration such as 500ms or 2s (a bare number is milliseconds)"
                case .money: "an amount in dollars such as 0.01"
                case .time: "a time such as -1h or 2026-11-23T10:00:00Z"
                default: "a value"
                }
                throw QueryFieldError("`\(name)` needs \(expected)")
            }
        }
        func bound(_ v: QueryValue) throws -> String {
            let n = try value(v)
            guard abs(n) < 1 << 62 else { throw QueryFieldError("`\(name)`: the value is out of range") }
            return b.bind(.int(n))
        }
        switch match {
        case .equals(let v): return "\(column.sql) = \(try bound(v))"
        case .compare(let op, let v): return "\(column.sql) \(op.rawValue) \(try bound(v))"
        case let .range(low, high): return "\(column.sql) BETWEEN \(try bound(low)) AND \(try bound(high))"
        case .exists: return "\(column.sql) IS NOT NULL"
        case .wildcard(let pattern): return "CAST(\(column.sql) AS TEXT) LIKE \(b.bind(.text(Self.likePattern(pattern)))) ESCAPE '\\'"
        }
    }

    static func rawText(_ v: QueryValue) -> String {
        switch v {
        case .text(let t): t
        case .number(let n): n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)
        case .duration(let micros): TimeExpressions.formatDuration(micros: micros)
        case .bytes(let n): String(n)
        case .time(let micros): TimeExpressions.format(micros: micros)
        }
    }

    static func escapeLike(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
    }

    /// `gpt-4o*` → `gpt-4o%`, everything else literal.
    static func likePattern(_ pattern: String) -> String {
        pattern.lowercased().split(separator: "*", omittingEmptySubsequences: false).map { escapeLike(String($0)) }.joined(separator: "%")
    }

    static func fieldList(_ schema: QuerySchema) -> String {
        ["model", "provider", "route", "status", "cost", "latency", "ttft", "tokens", "input_tokens", "output_tokens", "key", "user",
         "correlation_id", "error", "message", "stream", "cache_hit", "timestamp"].joined(separator: ", ")
    }
}
