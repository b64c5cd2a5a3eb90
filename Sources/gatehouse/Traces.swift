import ArgumentParser
import Foundation
import GatehouseAPI
import GatehouseCore
import Rainbow

/// `gatehouse traces`: performance from a running Gatehouse. Without an id, the transactions
/// table (`GET /api/v1/transactions`); with a trace id, that trace's span tree as a text
/// waterfall and the errors linked to it (`GET /api/v1/traces/{id}`).
struct Traces: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List transactions with their throughput, error rate and latency, or show one trace as a waterfall.",
        discussion: """
            Examples:
              gatehouse traces
              gatehouse traces --since 1h --project web --query 'op:http.server release:shop@2.0.0'
              gatehouse traces --sort change
              gatehouse traces 4bf92f3577b34da6a3ce929d0e0e4736
            The table's change is p95 against the window of equal length before --since, in red when 50% or more slower.
            The query runs over the transactions' root spans (docs/query-language.md: op:, service:, status:, duration:>500ms, any attribute).
            At a terminal names and ids are hyperlinks to their console pages (GATEHOUSE_CONSOLE_URL overrides the address; --no-links or GATEHOUSE_LINKS=0 turns links off).
            """)

    @Argument(help: "A trace id (32 hex digits): show that trace's spans as a waterfall instead of the table.")
    var traceID: String?

    // --since/--until, as `logs` and `requests` name them.
    @Option(name: .customLong("since"), help: "Start: a relative time like 1h or 7d, today, a date, or RFC 3339. Default: 24 hours ago.")
    var from: String?

    @Option(name: .customLong("until"), help: "End; default now.")
    var to: String?

    @Option(help: "Only this project's transactions.")
    var project: String?

    @Option(help: "Only this environment's transactions.")
    var environment: String?

    @Option(name: [.short, .long], help: "A query over the transactions' root spans, e.g. 'op:http.server duration:>500ms'.")
    var query: String?

    @Option(help: "Order: count, throughput, error_rate, p50, p95, p99, change or name.")
    var sort: TransactionSort = .count

    @Option(help: "Most transactions to show (1 to 1000).")
    var limit: Int = 50

    @Option(help: "Gatehouse base URL (GATEHOUSE_URL). Default http://127.0.0.1:8080.")
    var url: String?

    @Flag(help: "Print the API's JSON.")
    var json = false

    @OptionGroup var linkOptions: LinkOptions

    func validate() throws {
        if let traceID, traceID.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("the trace id is empty") }
        if !(1...1000).contains(limit) { throw ValidationError("--limit is 1 to 1000") }
        if traceID != nil, [from, to, project, environment, query].contains(where: { $0 != nil }) {
            throw ValidationError("--since, --until, --project, --environment and --query filter the table; a trace id shows one whole trace")
        }
    }

    func run() async throws {
        let client = APIClient(url: url)
        if let traceID {
            let path = "/api/v1/traces/" + ConsoleLinks.segment(traceID)
            if json { return print(String(decoding: try await client.call(.GET, path), as: UTF8.self)) }
            let trace = try await client.get(path, as: TraceDetail.self)
            for line in TraceWaterfall.render(trace, links: try linkOptions.links(for: client), width: TraceWaterfall.terminalWidth()) { print(line) }
            return
        }
        var items = [URLQueryItem(name: "sort", value: sort.rawValue), URLQueryItem(name: "limit", value: String(limit))]
        if let from { items.append(URLQueryItem(name: "from", value: from)) }
        if let to { items.append(URLQueryItem(name: "to", value: to)) }
        if let project { items.append(URLQueryItem(name: "project", value: project)) }
        if let environment { items.append(URLQueryItem(name: "environment", value: environment)) }
        if let query { items.append(URLQueryItem(name: "q", value: query)) }
        if json { return print(String(decoding: try await client.call(.GET, "/api/v1/transactions", query: items), as: UTF8.self)) }
        let list = try await client.get("/api/v1/transactions", query: items, as: TransactionList.self)
        for line in TransactionTable.render(list, links: try linkOptions.links(for: client), limit: limit) { print(line) }
    }
}

extension TransactionSort: ExpressibleByArgument {}

extension ConsoleLinks {
    /// `/traces/{id}`: one trace's waterfall.
    func trace(_ id: String) -> String { base + "/traces/" + Self.segment(id) }
    /// `/performance?transaction=NAME`: one transaction's latest traces.
    /// (Everything but unreserved ASCII is encoded, so `&`, `+`, `=` or `#` in a name stay in it.)
    func transaction(_ name: String) -> String { base + "/performance?transaction=" + Self.segment(name) }
}

/// The transactions table: one row per name with its latency and the change since the window before.
enum TransactionTable {
    /// A p95 this much (percent) higher than the window before is shown in red.
    static let regressionPercent = 50.0
    /// Widest name column; longer names are cut with an ellipsis.
    static let maxNameWidth = 60

    static func render(_ list: TransactionList, links: ConsoleLinks, limit: Int) -> [String] {
        var lines = ["Transactions \(list.from) → \(list.to)".bold]
        guard !list.data.isEmpty else {
            lines.append("(no transactions in this window: send traces with a Sentry SDK's traces_sample_rate, or OTLP to /v1/traces)".dim)
            return lines
        }
        var table = TextTable(columns: [
            .init(header: "TRANSACTION"), .init(header: "COUNT", alignment: .right), .init(header: "TPM", alignment: .right),
            .init(header: "ERRORS", alignment: .right), .init(header: "P50", alignment: .right), .init(header: "P95", alignment: .right),
            .init(header: "P99", alignment: .right), .init(header: "P95 CHANGE", alignment: .right),
        ])
        for row in list.data {
            let name = TerminalText.truncated(TerminalText.printable(row.name), to: maxNameWidth)
            let url = links.transaction(row.name)
            let (change, worse) = changeText(row.p95ChangePercent)
            table.rows.append([
                .init(text: name, style: { links.link($0, to: url) }),
                .init(text: UsageTable.number(row.count)), .init(text: rate(row.throughputPerMinute)),
                .init(text: percent(row.errorRate), style: { row.errorRate > 0 ? $0.red : $0 }),
                .init(text: milliseconds(row.p50Milliseconds)), .init(text: milliseconds(row.p95Milliseconds)), .init(text: milliseconds(row.p99Milliseconds)),
                .init(text: change, style: { worse ? $0.red.bold : row.p95ChangePercent == nil ? $0.dim : $0 }),
            ])
        }
        lines += table.render()
        if list.data.count == limit { lines.append("(there may be more: raise --limit or narrow the query)".dim) }
        return lines
    }

    /// "+62%", "-12%", "new" without a window before; `worse` from `regressionPercent` up.
    static func changeText(_ percent: Double?) -> (text: String, worse: Bool) {
        guard let percent, percent.isFinite else { return ("new", false) }
        if abs(percent) < 0.5 { return ("±0%", false) }
        return ((percent > 0 ? "+" : "-") + String(format: "%.0f%%", abs(percent)), percent >= regressionPercent)
    }

    static func rate(_ perMinute: Double) -> String {
        perMinute >= 100 ? String(format: "%.0f", perMinute) : perMinute >= 0.1 ? String(format: "%.1f", perMinute) : String(format: "%.3f", perMinute)
    }

    static func percent(_ fraction: Double) -> String {
        let p = fraction * 100
        return p > 0 && p < 10 ? String(format: "%.1f%%", p) : String(format: "%.0f%%", p)
    }

    /// "0.4ms", "12ms", "1.24s".
    static func milliseconds(_ ms: Double) -> String {
        if ms >= 1000 { return String(format: "%.2fs", ms / 1000) }
        if ms >= 10 { return String(format: "%.0fms", ms) }
        return String(format: "%.1fms", ms)
    }
}

/// One trace as an indented text waterfall: each span's name under its parent, its duration,
/// and a bar of block characters placed by its start and length within the trace.
enum TraceWaterfall {
    /// Deepest indent drawn; deeper spans line up there.
    static let maxIndent = 12
    /// Narrowest and widest bar, in columns.
    static let barWidths = 20...80
    /// Widest name column.
    static let maxNameWidth = 56

    /// The terminal's columns (`COLUMNS`), else 120.
    static func terminalWidth(environment: [String: String] = ProcessInfo.processInfo.environment) -> Int {
        var size = winsize()
        if isatty(STDOUT_FILENO) != 0, ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return environment["COLUMNS"].flatMap { Int($0) }.map { min(max($0, 40), 400) } ?? 120
    }

    static func render(_ trace: TraceDetail, links: ConsoleLinks, width: Int) -> [String] {
        let url = links.trace(trace.traceID)
        let failed = trace.spans.filter(\.span.error).count
        var lines = [
            TerminalText.printable(trace.rootName).bold + "  " + links.link(trace.traceID, to: url),
            "Started \(trace.start), \(TransactionTable.milliseconds(trace.durationMilliseconds)), \(trace.spanCount) span\(trace.spanCount == 1 ? "" : "s")"
                + (failed > 0 ? ", " + "\(failed) failed".red : "") + (trace.truncated ? " (only the first \(TraceDetail.maxSpans) shown)" : ""),
            "",
        ]
        let labels = trace.spans.map { placed in
            String(repeating: "  ", count: min(placed.depth, maxIndent)) + TerminalText.printable(placed.span.name)
        }.map { TerminalText.truncated($0, to: maxNameWidth) }
        let nameWidth = max(labels.map(\.count).max() ?? 0, 4)
        let durations = trace.spans.map { TransactionTable.milliseconds($0.span.durationMilliseconds) }
        let durationWidth = max(durations.map(\.count).max() ?? 0, 8)
        let barWidth = min(max(width - nameWidth - durationWidth - 6 - 18, barWidths.lowerBound), barWidths.upperBound)
        let total = max(trace.durationMilliseconds, 0.001)
        lines.append("SPAN".padding(toLength: nameWidth, withPad: " ", startingAt: 0).bold + "  " + String(repeating: " ", count: durationWidth - 8) + "DURATION".bold
                     + "  " + axis(total, width: barWidth).dim)
        for (i, placed) in trace.spans.enumerated() {
            let span = placed.span
            let bar = self.bar(offset: placed.offsetMilliseconds, duration: span.durationMilliseconds, total: total, width: barWidth)
            let styledBar = span.error ? bar.red : span.slow ? bar.yellow : bar.cyan
            var notes: [String] = []
            if let op = span.op { notes.append(TerminalText.printable(op).dim) }
            if span.error { notes.append(TerminalText.printable(span.status).red) }
            if span.slow { notes.append("slow".yellow) }
            let label = labels[i].padding(toLength: nameWidth, withPad: " ", startingAt: 0)
            lines.append((span.isTransaction ? label.bold : label) + "  " + String(repeating: " ", count: durationWidth - durations[i].count) + durations[i]
                         + "  " + styledBar + (notes.isEmpty ? "" : "  " + notes.joined(separator: " ")))
        }
        if !trace.errors.isEmpty {
            lines += ["", "Errors (\(trace.errors.count))".bold]
            for e in trace.errors {
                lines.append("  " + String(e.timestamp.replacingOccurrences(of: "T", with: " ").prefix(23)).dim + "  " + e.level.rawValue.red + "  " + TerminalText.printable(e.title)
                             + "  " + links.link("issue " + String(e.issueID.prefix(12)), to: links.issue(e.issueID)))
            }
        }
        lines.append("")
        lines.append("Logs and AI calls of this trace: " + links.link(trace.traceID, to: links.correlation(trace.traceID)))
        if let line = links.consoleLine(url) { lines.append(line) }
        return lines
    }

    /// The bar's scale: 0 under its start, the trace's length at its end.
    static func axis(_ totalMilliseconds: Double, width: Int) -> String {
        let label = TransactionTable.milliseconds(totalMilliseconds)
        guard width > label.count + 2 else { return "" }
        return "0" + String(repeating: " ", count: width - 1 - label.count) + label
    }

    /// The span's bar: spaces up to its start, then full blocks, with an eighth block for the
    /// last part column so short spans still differ; at least one eighth, so every span shows.
    static func bar(offset: Double, duration: Double, total: Double, width: Int) -> String {
        let eighths = Double(width * 8)
        let start = Int((min(max(offset / total, 0), 1) * eighths).rounded(.down))
        let length = max(1, Int((min(max(duration / total, 0), 1) * eighths).rounded()))
        let startColumn = min(start / 8, width - 1)
        let available = (width - startColumn) * 8
        let drawn = min(length, available)
        let partials = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]
        let text = String(repeating: " ", count: startColumn) + String(repeating: "█", count: drawn / 8) + partials[drawn % 8]
        return text + String(repeating: " ", count: max(0, width - text.count))
    }
}
