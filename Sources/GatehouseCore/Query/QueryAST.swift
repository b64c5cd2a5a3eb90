/// A parsed query: a boolean expression over fields and message text, and an optional
/// aggregation stage after `|`.
public struct Query: Sendable, Equatable {
    /// nil for the empty query (everything matches).
    public var filter: QueryNode?
    public var aggregation: Aggregation?

    public init(filter: QueryNode?, aggregation: Aggregation? = nil) {
        self.filter = filter
        self.aggregation = aggregation
    }
}

public indirect enum QueryNode: Sendable, Equatable {
    case and([QueryNode])
    case or([QueryNode])
    case not(QueryNode)
    /// A bare word or "phrase": matches the message (for AI requests, the error message).
    case text(String, phrase: Bool)
    case field(String, FieldMatch)
}

public enum FieldMatch: Sendable, Equatable {
    /// `field:value` (for text fields a case-insensitive equality).
    case equals(QueryValue)
    /// `field:prefix*` or `field:*middle*`; `*` matches any run of characters.
    case wildcard(String)
    /// `field:*`: the field is present.
    case exists
    case compare(Comparison, QueryValue)
    /// `field:[a TO b]`, both ends included.
    case range(QueryValue, QueryValue)
}

public enum Comparison: String, Sendable, Equatable, CaseIterable {
    case greater = ">", greaterOrEqual = ">=", less = "<", lessOrEqual = "<="
}

/// A value as written; units are resolved so comparisons can be made in one unit per kind.
public enum QueryValue: Sendable, Equatable {
    case text(String)
    case number(Double)
    /// `100ms`, `2s`, `5m`: microseconds.
    case duration(micros: Int64)
    /// `1MB`, `512KB`: bytes.
    case bytes(Int64)
    /// `-1h` (an hour ago) or an RFC 3339 time: microseconds since 1970, resolved at parse time.
    case time(micros: Int64)
}

/// `| count by function`, `| p95(duration) by route`, `| sum(cost) by model, user`.
public struct Aggregation: Sendable, Equatable {
    public enum Function: Sendable, Equatable {
        case count
        case sum(String), avg(String), min(String), max(String)
        /// p1…p99 of a field.
        case percentile(Int, String)
    }

    /// One term after `by`: a field, or `bin(1h)` (the record's time floored to a multiple of
    /// the width, counted from 1970-01-01T00:00:00Z).
    public enum GroupTerm: Sendable, Equatable, ExpressibleByStringLiteral, CustomStringConvertible {
        case field(String)
        case bin(micros: Int64)

        public init(stringLiteral value: String) { self = .field(value) }

        /// As written in a query (`function`, `bin(1h)`): the name of the group's key.
        public var description: String {
            switch self {
            case .field(let name): name
            case .bin(let micros): "bin(\(TimeExpressions.formatDuration(micros: micros)))"
            }
        }
    }

    /// At most this many terms after `by` (a bin counts as one).
    public static let maxGroupTerms = 4
    /// A bin's width, 1s to 1000 days.
    public static let minBinMicros: Int64 = 1_000_000
    public static let maxBinMicros: Int64 = 1000 * 86_400_000_000

    public var function: Function
    public var groupBy: [GroupTerm]

    public init(function: Function, groupBy: [GroupTerm]) {
        self.function = function
        self.groupBy = groupBy
    }
}

extension Aggregation.Function {
    /// The function as written (`count`, `sum`, `p95`).
    public var name: String {
        switch self {
        case .count: "count"
        case .sum: "sum"
        case .avg: "avg"
        case .min: "min"
        case .max: "max"
        case .percentile(let p, _): "p\(p)"
        }
    }

    /// The field it reads; nil for `count`.
    public var field: String? {
        switch self {
        case .count: nil
        case .sum(let f), .avg(let f), .min(let f), .max(let f), .percentile(_, let f): f
        }
    }
}

extension Aggregation: CustomStringConvertible {
    /// The stage as a query writes it, without the `|`: `p95(duration) by bin(5m), route`.
    public var description: String {
        let head = function.field.map { "\(function.name)(\($0))" } ?? function.name
        return groupBy.isEmpty ? head : head + " by " + groupBy.map(\.description).joined(separator: ", ")
    }
}
