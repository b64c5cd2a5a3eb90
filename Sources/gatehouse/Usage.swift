import ArgumentParser
import Foundation
import GatehouseAPI
import Rainbow

struct Usage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show AI usage and cost from a running Gatehouse, as a table by model (or another grouping).")

    @Option(help: "Gatehouse base URL (GATEHOUSE_URL). Default http://127.0.0.1:8080.")
    var url: String?

    @Option(help: "Group by model, provider, key, user, route, status or property.<name>.")
    var by: String = "model"

    @Option(help: "Start: today (UTC midnight), a relative time like 24h or 7d, a date, or RFC 3339.")
    var since: String = "today"

    @Option(help: "End; default now.")
    var until: String?

    @Flag(help: "Print the API's JSON instead of a table.")
    var json = false

    func run() async throws {
        var items = [URLQueryItem(name: "from", value: since), URLQueryItem(name: "group_by", value: by), URLQueryItem(name: "interval", value: "none")]
        if let until { items.append(URLQueryItem(name: "to", value: until)) }
        let client = APIClient(url: url)
        if json {
            print(String(decoding: try await client.call(.GET, "/api/v1/ai/usage", query: items), as: UTF8.self))
            return
        }
        print(UsageTable.render(try await client.get("/api/v1/ai/usage", query: items, as: UsageReportView.self), groupName: by))
    }
}

/// The usage report as an aligned table, with a totals row.
enum UsageTable {
    static func render(_ report: UsageReportView, groupName: String) -> String {
        let headers = [groupName.uppercased(), "REQUESTS", "ERRORS", "INPUT", "OUTPUT", "CACHED", "COST (USD)", "P95 MS"]
        func row(_ label: String, _ s: UsageStatsView) -> [String] {
            [
                label, number(s.requests), number(s.errors), number(s.inputTokens), number(s.outputTokens),
                number(s.cachedInputTokens), s.costUSD, s.latencyMs.map { String(format: "%.1f", $0.p95) } ?? "-",
            ]
        }
        let rows = (report.groups ?? []).map { row($0.key ?? "(none)", $0.stats) }
        let totals = row("TOTAL", report.totals)
        var widths = headers.map(\.count)
        for r in rows + [totals] { for (i, cell) in r.enumerated() { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                i == 0 ? cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[i] - cell.count) + cell
            }.joined(separator: "  ")
        }
        var out = ["Usage \(report.from) → \(report.to)".bold, line(headers).bold]
        if rows.isEmpty { out.append("(no calls in this range)".dim) }
        out += rows.map(line)
        out.append(line(totals).bold)
        return out.joined(separator: "\n")
    }

    static func number(_ n: Int64) -> String {
        let formatter = NumberFormatter()
        formatter.numberStyle = .decimal
        formatter.groupingSeparator = ","
        formatter.locale = Locale(identifier: "en_US_POSIX")
        return formatter.string(from: NSNumber(value: n)) ?? String(n)
    }
}
