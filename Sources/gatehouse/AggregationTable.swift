import Foundation
import GatehouseAPI
import GatehouseCore
import Rainbow

/// How the CLI prints the answer to a query with a stage (`level:error | count by function`):
/// one row a group, the group terms then the value and the records it came from.
enum AggregationTable {
    /// True when `query` parses and ends in a stage, so the API answers groups. A query that
    /// does not parse is sent as it is, for the server's error, which points at the mistake.
    static func hasStage(_ query: String?) -> Bool {
        guard let query, query.contains("|") else { return false }
        return (try? QueryParser.parse(query))?.aggregation != nil
    }

    static func render(_ result: AggregationResult) -> [String] {
        let valueHeader = (result.field.map { "\(result.function)(\($0))" } ?? result.function).uppercased()
            + (result.unit == "count" || result.unit == "number" ? "" : " (\(result.unit))")
        var table = TextTable(columns: result.groupBy.map { TextTable.Column(header: TerminalText.printable($0).uppercased()) }
                              + [.init(header: valueHeader, alignment: .right), .init(header: "RECORDS", alignment: .right)])
        for group in result.groups {
            let keys = result.groupBy.map { term -> TextTable.Cell in
                let value = group.key[term] ?? .null
                if value == .null { return .init(text: "(none)", style: { $0.dim }) }
                return .init(text: TerminalText.printable(LogLine.text(value)))
            }
            table.rows.append(keys + [.init(text: number(group.value, unit: result.unit)), .init(text: UsageTable.number(group.count))])
        }
        var lines = table.render()
        if result.groups.isEmpty { lines.append("(no records match)".dim) }
        if result.truncated { lines.append("(more groups match; only the largest are shown: raise --limit, at most 1000)".dim) }
        lines.append("(\(result.over) from \(result.from) to \(result.to))".dim)
        return lines
    }

    /// Dollars to the cent (or to the micro-dollar when smaller), durations to the microsecond,
    /// counts whole.
    static func number(_ value: Double, unit: String) -> String {
        switch unit {
        case "usd": return "$" + (abs(value) >= 0.01 || value == 0 ? String(format: "%.2f", value) : String(format: "%.6f", value))
        case "ms": return LogLine.number((value * 1000).rounded() / 1000) + " ms"
        default: return LogLine.number(value)
        }
    }
}
