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

    public var function: Function
    public var groupBy: [String]

    public init(function: Function, groupBy: [String]) {
        self.function = function
        self.groupBy = groupBy
    }
}
