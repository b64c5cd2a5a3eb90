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
        /// A log level stored as its severity (1–6): `level:error`, `level:>=warn`.
        case level
        /// An id matched exactly (case counts), so equality uses the column's plain index.
        case identifier
    }

    struct Column {
        var sql: String
        var kind: Kind
    }

    /// Where fields that are not columns are looked up.
    enum DynamicFields {
        /// Only `property.<name>`, one key deep, as text (AI request properties).
        case properties(column: String)
        /// Any other field, as a dotted path into a JSON object, as text or number (log attributes).
        case attributes(column: String)
    }

    /// Field names, lowercased without `_`, to columns.
    var columns: [String: Column]
    /// The names shown when a field is unknown.
    var fieldNames: [String]
    /// The column bare words and phrases search.
    var messageColumn: String
    var dynamic: DynamicFields?
    /// Sentry's search keys and tags (`SentrySearch`), on issues and error events.
    var sentry: SentrySearch?

    init(_ fields: [([String], String, Kind)], messageColumn: String, dynamic: DynamicFields?, sentry: SentrySearch? = nil) {
        var c: [String: Column] = [:]
        for (names, sql, kind) in fields {
            for name in names { c[Self.normalize(name)] = Column(sql: sql, kind: kind) }
        }
        self.columns = c
        self.fieldNames = fields.map { $0.0[0] }
        self.messageColumn = messageColumn
        self.dynamic = dynamic
        self.sentry = sentry
    }

    static let requests = QuerySchema([
        (["model"], "model", .text), (["requested_model"], "requested_model", .text), (["provider"], "provider", .text),
        (["route", "path"], "route", .text), (["key", "key_id"], "key_id", .text), (["user", "user_id"], "user_id", .text),
        (["correlation_id", "request_id", "trace_id", "correlation"], "correlation_id", .identifier),
        (["error", "error_class"], "error_class", .text), (["message", "error_message"], "error_message", .text), (["id"], "id", .identifier),
        (["status"], "status", .integer), (["input_tokens"], "input_tokens", .integer), (["output_tokens"], "output_tokens", .integer),
        (["cached_input_tokens"], "cached_input_tokens", .integer), (["reasoning_tokens"], "reasoning_tokens", .integer),
        (["tokens", "total_tokens"], "(input_tokens + output_tokens)", .integer),
        (["latency", "duration"], "latency_us", .duration), (["ttft", "time_to_first_token"], "ttft_us", .duration),
        (["cost"], "cost_micros", .money), (["cost_saved"], "cost_saved_micros", .money),
        (["stream"], "stream", .boolean), (["complete"], "complete", .boolean), (["cache_hit", "cached"], "cache_hit", .boolean),
        (["usage_estimated"], "usage_estimated", .boolean),
        (["timestamp", "time", "ts"], "ts", .time),
    ], messageColumn: "error_message", dynamic: .properties(column: "properties"))

    /// Log lines: the well-known fields are columns; anything else is an attribute path
    /// (`dbCalls:>50`, `http.status:>=500`).
    static let logs = QuerySchema([
        (["timestamp", "time", "ts"], "ts", .time), (["level", "severity"], "severity", .level), (["message", "msg"], "message", .text),
        (["service"], "service", .text), (["environment", "env"], "environment", .text),
        (["correlation_id", "correlationId", "request_id", "requestId", "trace_id", "traceId", "correlation"], "correlation_id", .identifier),
        (["function", "func"], "function", .text), (["duration"], "duration_us", .duration), (["project"], "project", .text),
        (["slow"], "slow", .boolean),
    ], messageColumn: "message", dynamic: .attributes(column: "attributes"))

    /// Error issues (groups of events).
    static let issues = QuerySchema([
        (["title", "message"], "title", .text), (["type", "exception"], "type", .text), (["culprit"], "culprit", .text),
        (["status"], "status", .text), (["level"], "severity", .level), (["count", "events"], "event_count", .integer),
        (["first_seen", "firstSeen"], "first_seen", .time), (["last_seen", "lastSeen", "timestamp"], "last_seen", .time),
        (["project"], "project", .text), (["regressed"], "regressed", .boolean), (["last_release"], "last_release", .text), (["id"], "id", .identifier),
    ], messageColumn: "title", dynamic: nil, sentry: .issues)

    /// Error events (what `errors(…)` alert rules count).
    static let errorEvents = QuerySchema([
        (["title", "message"], "title", .text), (["type", "exception"], "type", .text), (["value"], "value", .text), (["culprit"], "culprit", .text),
        (["level"], "severity", .level), (["release"], "release", .text), (["environment", "env"], "environment", .text),
        (["project"], "project", .text), (["issue", "issue_id"], "issue_id", .text), (["user"], "user_key", .text),
        (["correlation_id", "correlationId", "request_id", "trace_id"], "correlation_id", .identifier), (["timestamp"], "ts", .time),
    ], messageColumn: "title", dynamic: nil, sentry: .errorEvents)

    /// Trace spans: the well-known fields are columns; anything else is an attribute path
    /// (`http.status_code:>=500`, `db.system:postgresql`).
    static let spans = QuerySchema([
        (["trace_id", "trace", "traceId"], "trace_id", .identifier), (["span_id", "spanId"], "span_id", .identifier),
        (["parent", "parent_span_id", "parentSpanId"], "parent_span_id", .identifier),
        (["name"], "name", .text), (["op", "operation"], "op", .text), (["transaction"], "transaction_name", .text),
        (["service"], "service", .text), (["project"], "project", .text), (["status"], "status", .text),
        (["error", "is_error"], "is_error", .boolean), (["is_transaction"], "is_transaction", .boolean), (["duration"], "duration_us", .duration),
        (["environment", "env"], "environment", .text), (["release"], "release", .text),
        (["correlation_id", "correlationId", "request_id", "requestId", "correlation"], "correlation_id", .identifier),
        (["timestamp", "time", "ts"], "ts", .time), (["source"], "source", .text),
    ], messageColumn: "name", dynamic: .attributes(column: "attributes"))

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
        if case .properties(let column) = schema.dynamic, name.lowercased().hasPrefix("property.") {
            let key = b.bind(b.dialect.jsonKeyBind(String(name.dropFirst("property.".count)).lowercased()))
            return try text(b.dialect.jsonText(column: column, keyPlaceholder: key), name: name, match, &b)
        }
        if let sentry = schema.sentry, let sql = try sentryField(sentry, name: name, match, &b) { return sql }
        guard let column = schema.columns[QuerySchema.normalize(name)] else {
            if case .attributes(let column) = schema.dynamic { return try attribute(column, name: name, match, &b) }
            // As in Sentry, any other key is a tag.
            if let sentry = schema.sentry { return try tag(sentry, key: name, match, &b) }
            let dynamic = if case .properties = schema.dynamic { " and property.<name>" } else { "" }
            throw QueryFieldError("unknown field `\(name)`; fields here are \(schema.fieldNames.joined(separator: ", "))\(dynamic)")
        }
        switch column.kind {
        case .text: return try text(column.sql, name: name, match, &b)
        case .identifier:
            if case .equals(let v) = match { return "\(column.sql) = \(b.bind(.text(Self.rawText(v))))" }
            return try text(column.sql, name: name, match, &b)
        case .integer, .duration, .money, .time: return try number(column, name: name, match, &b)
        case .level: return try level(column.sql, name: name, match, &b)
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

    func text(_ sql: String, name: String, _ match: FieldMatch, _ b: inout SQLBuilder) throws -> String {
        switch match {
        // The message is free text: `message:"Slow query"` finds the lines that contain it.
        case .equals(let v) where sql == schema.messageColumn:
            return "LOWER(\(sql)) LIKE \(b.bind(.text("%" + Self.escapeLike(Self.rawText(v).lowercased()) + "%"))) ESCAPE '\\'"
        case .equals(let v): return "LOWER(\(sql)) = \(b.bind(.text(Self.rawText(v).lowercased())))"
        case .wildcard(let pattern): return "LOWER(\(sql)) LIKE \(b.bind(.text(Self.likePattern(pattern)))) ESCAPE '\\'"
        case .exists: return "\(sql) IS NOT NULL"
        case .compare, .range: throw QueryFieldError("`\(name)` is text: match it with \(name):value or a wildcard, not a comparison")
        }
    }

    func number(_ column: QuerySchema.Column, name: String, _ match: FieldMatch, _ b: inout SQLBuilder) throws -> String {
        func value(_ v: QueryValue) throws -> Int64 {
            switch (column.kind, v) {
            // Saturating: an absurd number (`status:>1e300`) reaches the range check below, not a trap.
            case (.integer, .number(let n)): return Int64(saturating: n.rounded())
            // Long digit runs and leading zeros stay text in the parser (they may be ids).
            case (.integer, .text(let t)) where Int64(t) != nil: return Int64(t)!
            case (.duration, .duration(let micros)): return micros
            case (.duration, .number(let ms)): return Int64(saturating: (ms * 1000).rounded())
            case (.money, .number(let dollars)): return Int64(saturating: (dollars * 1_000_000).rounded())
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

    /// `dbCalls:>50`, `http.method:POST`: a path into the attributes object. Comparisons only
    /// match JSON numbers; a duration or size is compared in milliseconds or bytes.
    private func attribute(_ column: String, name: String, _ match: FieldMatch, _ b: inout SQLBuilder) throws -> String {
        let path = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard path.count <= 16, !path.contains(where: \.isEmpty) else { throw QueryFieldError("`\(name)` is not a field path (name.name…)") }
        let p = b.bind(b.dialect.jsonPathBind(path))
        // OpenTelemetry and many loggers write flat dotted keys (`{"http.status": 503}`): a
        // dotted field reads the nested path first, then the flat key.
        let flat = path.count > 1 ? b.bind(b.dialect.jsonPathBind([name])) : nil
        func either(_ make: (String) -> String) -> String { flat.map { "COALESCE(\(make(p)), \(make($0)))" } ?? make(p) }
        func number(_ v: QueryValue) throws -> String {
            let n: Double
            switch v {
            case .number(let x): n = x
            case .duration(let micros): n = Double(micros) / 1000
            case .bytes(let bytes): n = Double(bytes)
            case .text, .time: throw QueryFieldError("`\(name)`: compare with a number, such as \(name):>50")
            }
            return b.bind(.double(n))
        }
        let numeric = either { b.dialect.jsonPathNumber(column: column, pathPlaceholder: $0) }
        let textValue = either { b.dialect.jsonPathText(column: column, pathPlaceholder: $0) }
        switch match {
        case .compare(let op, let v): return "\(numeric) \(op.rawValue) \(try number(v))"
        case let .range(low, high): return "\(numeric) BETWEEN \(try number(low)) AND \(try number(high))"
        case .equals(.number(let n)):
            // 15 matches the number 15 and the text "15".
            return "(\(numeric) = \(b.bind(.double(n))) OR LOWER(CAST(\(textValue) AS TEXT)) = \(b.bind(.text(Self.rawText(.number(n))))))"
        default: return try text(textValue, name: name, match, &b)
        }
    }

    private func level(_ sql: String, name: String, _ match: FieldMatch, _ b: inout SQLBuilder) throws -> String {
        func severity(_ v: QueryValue) throws -> String {
            guard let level = LogLevel(loose: Self.rawText(v)) else {
                throw QueryFieldError("`\(name)` is one of \(LogLevel.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return b.bind(.int(Int64(level.severity)))
        }
        switch match {
        case .equals(let v): return "\(sql) = \(try severity(v))"
        case .compare(let op, let v): return "\(sql) \(op.rawValue) \(try severity(v))"
        case let .range(low, high): return "\(sql) BETWEEN \(try severity(low)) AND \(try severity(high))"
        case .exists: return "\(sql) IS NOT NULL"
        case .wildcard: throw QueryFieldError("`\(name)` takes a level, not a wildcard: \(name):error or \(name):>=warn")
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
}
