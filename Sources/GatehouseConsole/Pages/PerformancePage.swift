import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseHTTP
import Hummingbird

/// `/performance`: Sentry's Performance screen. The transactions table (as
/// `GET /api/v1/transactions`), and with `?transaction=NAME` that transaction's latest or slowest
/// traces (span search over its root spans), each leading to its waterfall at `/traces/{id}`.
struct PerformancePage: Sendable {
    let console: Console
    var deps: ConsoleDependencies { console.deps }
    /// Rows of the transactions table.
    static let pageSize = 100
    /// Traces listed for one transaction.
    static let tracesShown = 50
    /// Root spans read to find the slowest: the latest this many in the range.
    static let slowestOf = 1000
    /// A p95 this much higher than the range before is marked.
    static let regressionPercent = 50.0
    /// Longest filter value kept from the URL (a project or environment name).
    static let maxFilterLength = 200
    /// Longest transaction name taken from the URL: a longer one is cut, so a hostile link cannot
    /// send a megabyte into a query.
    static let maxNameLength = 1000

    func addRoutes(to r: APIRouter.AccessGroup) {
        r.get("/performance") { request, _ in
            await console.page(request, .performance) { input in
                if let name = input.parameters["transaction"] { return try await transaction(name, input) }
                return try await list(input)
            }
        }
    }

    /// The filters a page keeps in its links: project, environment and the query.
    struct Filters {
        var project: String
        var environment: String
        var q: String

        init(_ parameters: [String: String]) {
            func value(_ name: String) -> String { String((parameters[name] ?? "").trimmingCharacters(in: .whitespaces).prefix(PerformancePage.maxFilterLength)) }
            project = value("project")
            environment = value("environment")
            q = parameters["q"] ?? ""
        }

        var parameters: [(String, String)] { [("project", project), ("environment", environment), ("q", q)].filter { !$0.1.isEmpty } }
        var isEmpty: Bool { parameters.isEmpty }
    }

    struct Row {
        var name: String
        var href: String
        var count: String
        var throughput: String
        var errorRate: String
        /// Nil when nothing is marked (a template section skips nil, not an empty string).
        var errorTone: String?
        var p50: String
        var p95: String
        var p99: String
        var change: String
        var changeTone: String?
        var changeTitle: String
    }

    // MARK: The transactions table

    /// The table's columns, each sorting by what it shows (as the API's `sort=`).
    static let headers: [(label: String, sort: TransactionSort)] = [
        ("Transaction", .name), ("Count", .count), ("Per minute", .throughput), ("Errors", .errorRate),
        ("p50", .p50), ("p95", .p95), ("p99", .p99), ("p95 change", .change),
    ]

    struct Header {
        var label: String
        var href: String
        var sorted: Bool
        var numeric: Bool
    }

    func list(_ input: Console.PageInput) async throws -> Console.PageOutput {
        let range = input.range
        let filters = Filters(input.parameters)
        let sort = input.parameters["sort"].flatMap(TransactionSort.init(rawValue:)) ?? .count
        var rows: [Row] = []
        var problem: PageProblem?
        do {
            let query = TransactionSummaryQuery(fromMicros: range.fromMicros, toMicros: range.toMicros,
                                                project: filters.project.isEmpty ? nil : filters.project,
                                                environment: filters.environment.isEmpty ? nil : filters.environment,
                                                filter: try APIParameters.filter(filters.q))
            let list = try await deps.traceRoutes.transactions(query, sort: sort, limit: Self.pageSize)
            rows = list.data.map { Self.row($0, href: Console.url("/performance", [("transaction", $0.name)] + filters.parameters + range.parameters)) }
        } catch {
            guard let found = PageProblem(error) else { throw error }
            problem = found
        }
        var body: [String: Any] = [
            "filters": filters, "rangeFields": range.parameters.map { Nav.Hidden(name: $0.0, value: $0.1) }, "rangeLabel": range.label,
            "rows": rows, "hasRows": !rows.isEmpty, "full": rows.count == Self.pageSize, "pageSize": Self.pageSize,
            "filtered": !filters.isEmpty, "regressionPercent": Int(Self.regressionPercent),
            "headers": Self.headers.map { header in
                Header(label: header.label, href: Console.url("/performance", filters.parameters + range.parameters + [("sort", header.sort.rawValue)]),
                       sorted: header.sort == sort, numeric: header.sort != .name)
            },
            "sortLabel": Self.headers.first { $0.sort == sort }.map { $0.sort == .name ? "by name" : "by \($0.label.lowercased()), highest first" } ?? "",
        ]
        if let problem { body["queryError"] = problem.message }
        return Console.PageOutput(template: "performance", title: "Performance", body: body, status: problem?.status ?? .ok)
    }

    static func row(_ t: TransactionRow, href: String) -> Row {
        let change = changeText(t.p95ChangePercent)
        return Row(name: t.name, href: href, count: Format.count(t.count), throughput: rate(t.throughputPerMinute),
                   errorRate: Format.percent(t.errorRate), errorTone: t.errorRate > 0 ? "bad" : nil,
                   p50: Format.latency(micros: t.p50Milliseconds * 1000), p95: Format.latency(micros: t.p95Milliseconds * 1000),
                   p99: Format.latency(micros: t.p99Milliseconds * 1000), change: change.text, changeTone: change.tone.isEmpty ? nil : change.tone,
                   changeTitle: t.previousP95Milliseconds.map { "p95 the range before: " + Format.latency(micros: $0 * 1000) + " over \(Format.count(t.previousCount))" }
                       ?? "none ran the range before")
    }

    /// "+62%" (marked when at least `regressionPercent` slower), "−12%", "new" without a range before.
    static func changeText(_ percent: Double?) -> (text: String, tone: String) {
        guard let percent, percent.isFinite else { return ("new", "") }
        if abs(percent) < 0.5 { return ("±0%", "") }
        let text = (percent > 0 ? "+" : "−") + String(format: "%.0f%%", abs(percent))
        return (text, percent >= regressionPercent ? "bad" : percent < 0 ? "good" : "")
    }

    /// Per minute: "12.4", "0.02", "1.2k".
    static func rate(_ perMinute: Double) -> String {
        if perMinute >= 10_000 { return Format.count(Int64(perMinute.rounded())) }
        if perMinute >= 10 { return String(format: "%.0f", perMinute) }
        if perMinute >= 0.1 { return String(format: "%.1f", perMinute) }
        return perMinute > 0 ? String(format: "%.3f", perMinute) : "0"
    }

    // MARK: One transaction's traces

    struct TraceRow {
        var traceID: String
        var shortID: String
        var href: String
        var time: String
        var utc: String
        var duration: String
        var bar: String
        var status: String
        var statusTone: String
        var slow: Bool
        var service: String?
        var environment: String?
        var release: String?
    }

    struct Tab {
        var label: String
        var href: String
        var active: Bool
    }

    /// The transaction's row of the table, and its latest or slowest traces in the range: its root
    /// spans by span search (as `GET /api/v1/spans?q=transaction:"NAME" is_transaction:true …`).
    func transaction(_ rawName: String, _ input: Console.PageInput) async throws -> Console.PageOutput {
        let name = String(rawName.prefix(Self.maxNameLength))
        let range = input.range
        let filters = Filters(input.parameters)
        let slowest = input.parameters["order"] == "slowest"
        let base = [("transaction", name)] + filters.parameters + range.parameters
        var summary: Row?
        var traces: [TraceRow] = []
        var problem: PageProblem?
        do {
            let userFilter = try APIParameters.filter(filters.q)
            var conditions: [QueryNode] = [.field("transaction", .equals(.text(name))), .field("is_transaction", .equals(.text("true")))]
            if !filters.project.isEmpty { conditions.append(.field("project", .equals(.text(filters.project)))) }
            if !filters.environment.isEmpty { conditions.append(.field("environment", .equals(.text(filters.environment)))) }
            if let userFilter { conditions.append(userFilter) }
            let query = TransactionSummaryQuery(fromMicros: range.fromMicros, toMicros: range.toMicros,
                                                project: filters.project.isEmpty ? nil : filters.project,
                                                environment: filters.environment.isEmpty ? nil : filters.environment,
                                                filter: .and([.field("transaction", .equals(.text(name)))] + (userFilter.map { [$0] } ?? [])))
            async let table = deps.traceRoutes.transactions(query, sort: .count, limit: TransactionSummaryQuery.maxNames)
            async let found = deps.traces.searchSpans(SpanSearchQuery(filter: .and(conditions), fromMicros: range.fromMicros, toMicros: range.toMicros,
                                                                      limit: slowest ? Self.slowestOf : Self.tracesShown))
            summary = try await table.data.first { $0.name == name }.map { Self.row($0, href: Console.url("/performance", base)) }
            var roots = try await found
            if slowest { roots.sort { ($0.durationMicros, $0.startMicros) > ($1.durationMicros, $1.startMicros) } }
            let shown = Array(roots.prefix(Self.tracesShown))
            let longest = shown.map(\.durationMicros).max() ?? 0
            traces = shown.map { Self.traceRow($0, longest: longest, slow: deps.traceRoutes.view($0).slow) }
        } catch {
            guard let found = PageProblem(error) else { throw error }
            problem = found
        }
        let tabs = [("latest", "Latest"), ("slowest", "Slowest")].map { order, label in
            Tab(label: label, href: Console.url("/performance", base + [("order", order)]), active: slowest == (order == "slowest"))
        }
        var body: [String: Any] = [
            "name": name, "tabs": tabs, "traces": traces, "hasTraces": !traces.isEmpty, "slowest": slowest,
            "tracesShown": Self.tracesShown, "slowestOf": Self.slowestOf, "rangeLabel": range.label,
            "backHref": Console.url("/performance", filters.parameters + range.parameters),
            "filters": filters,
        ]
        if let summary { body["summary"] = summary }
        if let problem { body["queryError"] = problem.message }
        return Console.PageOutput(template: "performance-transaction", title: "Transaction \(name)", body: body, status: problem?.status ?? .ok)
    }

    static func traceRow(_ root: Span, longest: Int64, slow: Bool) -> TraceRow {
        TraceRow(traceID: root.traceID, shortID: String(root.traceID.prefix(8)), href: TracePage.href(root.traceID),
                 time: Format.rowTime(root.startMicros), utc: Format.dateTime(root.startMicros),
                 duration: Format.latency(micros: Double(root.durationMicros)),
                 bar: TracePage.bar(offset: 0, duration: Double(root.durationMicros), total: Double(max(longest, 1)), tone: root.isError ? "error" : slow ? "slow" : "ok",
                                    title: Format.latency(micros: Double(root.durationMicros))),
                 status: root.status, statusTone: root.isError ? "bad" : "good", slow: slow,
                 service: root.service, environment: root.environment, release: root.release)
    }
}
