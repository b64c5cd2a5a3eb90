import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseHTTP

/// A query with a stage (`level:error | count by function`) on the logs and requests pages: the
/// groups as a table (template `aggregation`), over the page's time range, with the API's bounds.
struct AggregationView {
    struct Cell {
        var text: String
        var num: Bool
    }

    struct Row {
        var cells: [Cell]
    }

    var headers: [Cell]
    var rows: [Row]
    var truncated: Bool
    var empty: Bool
    var stage: String

    /// The stage of `q` over the range, or nil when `q` has none (or does not parse: the page's
    /// own search reports that).
    static func query(_ q: String, range: TimeRange) throws -> AggregationQuery? {
        guard q.contains("|"), let parsed = try? QueryParser.parse(q), let stage = parsed.aggregation else { return nil }
        let hasBin = stage.groupBy.contains { if case .bin = $0 { true } else { false } }
        let query = AggregationQuery(aggregation: stage, filter: parsed.filter, fromMicros: range.fromMicros, toMicros: range.toMicros,
                                     limit: hasBin ? AggregationLimits.defaultBinnedGroups : AggregationLimits.defaultGroups)
        try query.validate()
        return query
    }

    init(_ outcome: AggregationOutcome, query: AggregationQuery, over: String) {
        let result = APIAggregation.result(outcome, query: query, over: over)
        let unit = result.unit == "count" || result.unit == "number" ? "" : " (\(result.unit))"
        headers = result.groupBy.map { Cell(text: $0, num: false) }
            + [Cell(text: (result.field.map { "\(result.function)(\($0))" } ?? result.function) + unit, num: true), Cell(text: "records", num: true)]
        rows = result.groups.map { group in
            Row(cells: result.groupBy.map { Cell(text: Self.text(group.key[$0] ?? .null), num: false) }
                + [Cell(text: Self.number(group.value, unit: result.unit), num: true), Cell(text: Format.count(group.count), num: true)])
        }
        truncated = result.truncated
        empty = result.groups.isEmpty
        stage = query.aggregation.description
    }

    static func text(_ value: JSONValue) -> String {
        switch value {
        case .string(let s): s
        case .integer(let n): String(n)
        case .number(let n): String(n)
        case .bool(let b): b ? "true" : "false"
        case .null: "(none)"
        case .array, .object: ""
        }
    }

    static func number(_ value: Double, unit: String) -> String {
        switch unit {
        case "usd": "$" + (abs(value) >= 0.01 || value == 0 ? String(format: "%.2f", value) : String(format: "%.6f", value))
        case "ms": String(format: "%.3f", value).replacingOccurrences(of: #"\.?0+$"#, with: "", options: .regularExpression) + " ms"
        default: value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        }
    }
}
