import Foundation

// The answer of a read API whose `q` ends in an aggregation stage (`level:error | count by
// function`): `GET /api/v1/logs`, `GET /api/v1/requests`, `GET /api/v1/errors` and
// `GET /api/v1/spans` (`OpenAPI/aggregation.yaml`, schema `AggregationResult`).

/// One stage's groups over a time window.
public struct AggregationResult: Codable, Sendable, Equatable {
    /// What was aggregated: `logs`, `requests`, `error_events` or `spans`.
    public var over: String
    /// `count`, `sum`, `avg`, `min`, `max` or `p1`…`p99`.
    public var function: String
    /// The field the function reads; null for `count`.
    @Nullable public var field: String?
    /// The group terms as written (`function`, `property.customer`, `bin(1h)`): the keys of each group's `key`.
    public var groupBy: [String]
    /// What `value` counts in: `count`, `ms` (durations), `usd` (money) or `number`.
    public var unit: String
    public var groups: [AggregationGroup]
    /// More groups matched than `limit`; those with the smallest values were left out.
    public var truncated: Bool
    /// The window, `from ≤ timestamp < to`.
    public var from: String
    public var to: String

    enum CodingKeys: String, CodingKey {
        case over, function, field
        case groupBy = "group_by"
        case unit, groups, truncated, from, to
    }

    public init(over: String, function: String, field: String?, groupBy: [String], unit: String, groups: [AggregationGroup],
                truncated: Bool, from: String, to: String) {
        self.over = over
        self.function = function
        self.field = field
        self.groupBy = groupBy
        self.unit = unit
        self.groups = groups
        self.truncated = truncated
        self.from = from
        self.to = to
    }
}

public struct AggregationGroup: Codable, Sendable, Equatable {
    /// One entry per group term: text, a number, true/false, a bin's start (RFC 3339), or null
    /// where the records lack the field. Empty when the stage has no `by`.
    public var key: [String: JSONValue]
    public var value: Double
    /// The records the value was computed from.
    public var count: Int64

    public init(key: [String: JSONValue], value: Double, count: Int64) {
        self.key = key
        self.value = value
        self.count = count
    }
}
