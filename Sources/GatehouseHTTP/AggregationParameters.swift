import Foundation
import GatehouseAPI
import GatehouseCore
import Hummingbird

/// The read APIs' second answer: when `q` ends in an aggregation stage (`level:error | count by
/// function`), the groups instead of the records. One reading of `q`, `from`, `to` and `limit`
/// for every endpoint, and one shape of answer (`AggregationResult`).
public enum APIAggregation {
    /// The stage and its bounds when `q` parses and has one; nil otherwise (the caller lists
    /// records as before). `from`/`to` default to the last 24 hours; `limit` is the number of
    /// groups (default 100, or 1000 when grouping by a bin; at most 1000).
    public static func query(_ params: FormParameters, nowMicros: Int64 = TimeExpressions.nowMicros()) throws(GatewayError) -> AggregationQuery? {
        // A `q` that does not parse is left to the endpoint's own reading, which reports the
        // mistake (and the issue search reads `is:a|b` in its own syntax).
        guard let text = params.get("q"), text.contains("|"), let parsed = try? QueryParser.parse(text, nowMicros: nowMicros),
              let stage = parsed.aggregation else { return nil }
        let to = try params.get("to").map { text throws(GatewayError) in try APIParameters.instant(text, name: "to") } ?? nowMicros
        let from = try params.get("from").map { text throws(GatewayError) in try APIParameters.instant(text, name: "from") }
            ?? (to - AggregationLimits.defaultWindowMicros)
        guard from < to else { throw .invalidRequest("`from` must be before `to`", param: "from") }
        let hasBin = stage.groupBy.contains { if case .bin = $0 { true } else { false } }
        let limit = try APIParameters.limit(params.get("limit"),
                                            fallback: hasBin ? AggregationLimits.defaultBinnedGroups : AggregationLimits.defaultGroups,
                                            max: AggregationLimits.maxGroups)
        let query = AggregationQuery(aggregation: stage, filter: parsed.filter, fromMicros: from, toMicros: to, limit: limit)
        do {
            try query.validate()
        } catch {
            throw .invalidRequest("`q`: \(error.message)", param: "q", code: "invalid_query")
        }
        return query
    }

    /// The API's view of a store's outcome.
    public static func result(_ outcome: AggregationOutcome, query: AggregationQuery, over: String) -> AggregationResult {
        let stage = query.aggregation
        return AggregationResult(
            over: over, function: stage.function.name, field: stage.function.field, groupBy: stage.groupBy.map(\.description),
            unit: outcome.unit.rawValue,
            groups: outcome.groups.map { group in
                AggregationGroup(key: Dictionary(group.key.map { ($0.name, json($0.value)) }, uniquingKeysWith: { first, _ in first }),
                                 value: group.value, count: group.count)
            },
            truncated: outcome.truncated,
            from: TimeExpressions.format(micros: query.fromMicros), to: TimeExpressions.format(micros: query.toMicros))
    }

    public static func response(_ outcome: AggregationOutcome, query: AggregationQuery, over: String) -> Response {
        JSONResponse.make(result(outcome, query: query, over: over))
    }

    static func json(_ value: AggregateKey.Value) -> JSONValue {
        switch value {
        case .text(let t): .string(t)
        case .number(let n): n == n.rounded() && abs(n) < 9e15 ? .integer(Int64(n)) : .number(n)
        case .bool(let b): .bool(b)
        case .time(let micros): .string(TimeExpressions.format(micros: micros))
        case .missing: .null
        }
    }
}
