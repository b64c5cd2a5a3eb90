import ArgumentParser
import Foundation
import GatehouseAPI
import GatehouseCore
import Rainbow

/// Token and spend use against their thresholds, as coloured progress bars, read from
/// Gatehouse's usage and budget APIs: a glance at the AI bill from a terminal.
struct Monitor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Watch AI tokens and spend against their thresholds as progress bars.",
        discussion: "gatehouse monitor --tokens-per-hour 100000 --spend-per-day 25 --interval 10s   (Ctrl-C stops; --once prints one screen)")

    @Option(help: "Gatehouse base URL (GATEHOUSE_URL). Default http://127.0.0.1:8080.") var url: String?
    @Option(help: "The hourly token threshold.") var tokensPerHour: Int = 100_000
    @Option(help: "The daily spend threshold in dollars.") var spendPerDay: Double = 10
    @Option(help: "How often to refresh: 5s, 30s, 1m.") var interval: String = "5s"
    @Option(help: "Width of the bars.") var width: Int = 30
    @Flag(help: "Print one screen and exit.") var once = false

    func validate() throws {
        guard let micros = TimeExpressions.durationMicros(interval), micros >= 1_000_000 else { throw ValidationError("--interval must be at least 1s, such as 5s or 1m") }
        guard tokensPerHour > 0, spendPerDay > 0 else { throw ValidationError("thresholds must be above 0") }
        guard (10...120).contains(width) else { throw ValidationError("--width must be 10 to 120") }
    }

    func run() async throws {
        let client = APIClient(url: url)
        let pause = Duration.microseconds(TimeExpressions.durationMicros(interval) ?? 5_000_000)
        while true {
            let screen = try await render(client)
            if once {
                print(screen)
                return
            }
            print("\u{1B}[2J\u{1B}[H" + screen + "\n" + "refreshing every \(interval) — Ctrl-C to stop".dim)
            fflush(nil)  // a pipe would otherwise hold the screen back until Ctrl-C discards it
            try await Task.sleep(for: pause)
        }
    }

    func render(_ client: APIClient) async throws -> String {
        func totals(from: String) async throws -> UsageStatsView {
            try await client.get("/api/v1/ai/usage", query: [URLQueryItem(name: "from", value: from), URLQueryItem(name: "interval", value: "none")],
                                 as: UsageReportView.self).totals
        }
        let hour = try await totals(from: "-1h"), today = try await totals(from: "today")
        let spend = Double(today.costMicros) / 1_000_000
        var lines = ["Gatehouse AI usage — \(TimeExpressions.format(micros: TimeExpressions.nowMicros()))".bold, ""]
        lines.append(Self.bar("Tokens, last hour", used: Double(hour.totalTokens), limit: Double(tokensPerHour), width: width,
                              text: "\(UsageTable.number(hour.totalTokens)) / \(UsageTable.number(Int64(tokensPerHour)))"))
        lines.append(Self.bar("Spend, today", used: spend, limit: spendPerDay, width: width, text: String(format: "$%.2f / $%.2f", spend, spendPerDay)))
        // Budgets need the admin token when one is set; without it they are left out.
        if let budgets = try? await client.get("/api/v1/budgets", as: BudgetReport.self) {
            for row in budgets.data {
                let used = Double(row.spentUSD) ?? 0, limit = Double(row.limitUSD) ?? 0
                let name = "Budget \(row.name)" + (row.value.map { " [\($0)]" } ?? "")
                lines.append(Self.bar(name, used: used, limit: limit, width: width, text: String(format: "$%.2f / $%.2f (%@)", used, limit, row.period)))
            }
        }
        let p95 = hour.latencyMs.map { String(format: "%.0f ms", $0.p95) } ?? "-"
        lines.append("")
        lines.append("Last hour: \(hour.requests) calls, \(hour.errors) errors, p95 \(p95)".dim)
        return lines.joined(separator: "\n")
    }

    /// `Tokens, last hour  [█████████░░░░░░]  62.3%  62,300 / 100,000`, green below 50%, yellow below 80%, red from 80%.
    static func bar(_ label: String, used: Double, limit: Double, width: Int, text: String) -> String {
        let fraction = limit > 0 ? used / limit : 0
        let filled = min(width, Int((fraction * Double(width)).rounded()))
        var bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let percent = String(format: "%5.1f%%", fraction * 100)
        switch fraction {
        case ..<0.5: bar = bar.green
        case ..<0.8: bar = bar.yellow
        default: bar = bar.red
        }
        let mark = fraction >= 1 ? " OVER".red.bold : fraction >= 0.8 ? " WARN".yellow : ""
        return "\(label.padding(toLength: 26, withPad: " ", startingAt: 0)) [\(bar)] \(percent)  \(text)\(mark)"
    }
}
