import GatehouseAlerts
import GatehouseCore
import GatehouseHTTP
import Hummingbird

/// `/`: the state of everything at a glance for the chosen range, each figure against the
/// range before it.
struct OverviewPage: Sendable {
    let console: Console
    var deps: ConsoleDependencies { console.deps }

    func addRoutes(to r: APIRouter.AccessGroup) {
        r.get("/") { request, _ in await console.page(request, .overview) { try await render($0) } }
    }

    /// The range with its series, and the range before it for the trends. Both carry latency:
    /// an unfiltered range of many calls finds its percentiles through the rollups' histogram.
    static func queries(_ range: TimeRange) -> (current: UsageQuery, previous: UsageQuery) {
        (UsageQuery(fromMicros: range.fromMicros, toMicros: range.toMicros, intervalMicros: range.bucketMicros),
         UsageQuery(fromMicros: range.previous.fromMicros, toMicros: range.previous.toMicros))
    }

    /// The range's usage; a range too large for SQLite's percentiles is shown without them.
    static func usage(_ store: any RequestStore, _ query: UsageQuery) async throws -> UsageReport {
        do {
            return try await store.usage(query)
        } catch is UsageQueryTooLarge {
            var sumsOnly = query
            sumsOnly.includeLatency = false
            return try await store.usage(sumsOnly)
        }
    }

    /// p50 and p95 against the range before: a trend where both ranges have percentiles, "new"
    /// after a range without calls, none where a range was too large for SQLite to rank.
    static func latencyKPIs(now: UsageStats, before: UsageStats) -> [KPI] {
        [("Latency p50", \LatencyPercentiles.p50), ("Latency p95", \LatencyPercentiles.p95)].map { label, percentile in
            guard let current = now.latency?[keyPath: percentile] else { return KPI(label, "–", 0, nil) }
            return KPI(label, Format.latency(micros: current), current, before.requests == 0 ? 0 : before.latency?[keyPath: percentile])
        }
    }

    /// One budget's bar: its name (and the value a per-value budget counts), its window.
    static func budgetBar(_ use: BudgetUse) -> BudgetBar {
        BudgetBar(use, name: use.value.flatMap { $0.isEmpty ? nil : "\(SpendPage.budgetName(use.name)) · \($0)" } ?? SpendPage.budgetName(use.name),
                  window: use.period)
    }

    func render(_ input: Console.PageInput) async throws -> Console.PageOutput {
        let range = input.range
        let queries = Self.queries(range)
        async let current = Self.usage(deps.requests, queries.current)
        async let previous = Self.usage(deps.requests, queries.previous)
        async let issues = deps.telemetry.issues(IssueListQuery(filter: .field("status", .equals(.text("unresolved"))), limit: 8))
        async let budgets = deps.budgets.budgetUses()
        async let probes = deps.probes.states()
        let (now, before) = try await (current, previous)
        let t = now.totals, p = before.totals

        func rate(_ s: UsageStats) -> Double { s.requests > 0 ? Double(s.errors) / Double(s.requests) : 0 }
        let kpis = [
            KPI("Requests", Format.count(t.requests), Double(t.requests), Double(p.requests), goodWhenUp: true),
            KPI("Spend", Format.dollars(t.cost), Double(t.cost.value), Double(p.cost.value)),
            KPI("Tokens", Format.count(t.usage.totalTokens), Double(t.usage.totalTokens), Double(p.usage.totalTokens), goodWhenUp: true),
            KPI("Error rate", Format.percent(rate(t)), rate(t), rate(p)),
        ] + Self.latencyKPIs(now: t, before: p)
        let bucket = range.bucketMicros
        let requestChart = SVGChart.columns(now.series.map { .init(startMicros: $0.startMicros, value: Double($0.stats.requests)) },
                                            range: range, bucketMicros: bucket, integral: true) { Format.count(Int64($0)) + " calls" }
        let errorChart = SVGChart.columns(now.series.map { .init(startMicros: $0.startMicros, value: Double($0.stats.errors)) },
                                          range: range, bucketMicros: bucket, cssClass: "bar bad", integral: true) { Format.count(Int64($0)) + " errors" }
        let costChart = SVGChart.columns(now.series.map { .init(startMicros: $0.startMicros, value: Double($0.stats.cost.value)) },
                                         range: range, bucketMicros: bucket) { Format.dollars(MicroDollars(Int64($0))) }

        let bars = try await budgets.sorted { $0.fraction > $1.fraction }.prefix(8).map(Self.budgetBar)
        let firing = await deps.alerting.evaluator.active().filter { $0.state != .resolved }.map { alert in
            ["rule": alert.rule, "summary": alert.summary, "severity": alert.severity.rawValue, "state": alert.state.rawValue,
             "tone": alert.state == .firing ? "bad" : "warn", "href": "/alerts#" + alert.rule]
        }
        let down = try await probes.filter { $0.up == false }.map { state in
            ["name": state.name, "kind": state.kind, "since": state.since.map { Format.ago($0) } ?? "", "error": state.lastError ?? ""]
        }
        let issueRows = try await issues.map { IssuesRow($0) }
        return Console.PageOutput(template: "overview", title: "Overview", body: [
            "kpis": kpis, "requestChart": requestChart, "errorChart": errorChart, "costChart": costChart,
            "budgets": bars, "hasBudgets": !bars.isEmpty, "alerts": firing, "hasAlerts": !firing.isEmpty,
            "down": down, "probeCount": try await probes.count, "hasDown": !down.isEmpty,
            "issues": issueRows, "hasIssues": !issueRows.isEmpty, "rangeLabel": range.label,
            "requestsHref": Console.url("/requests", range.parameters), "spendHref": Console.url("/spend", range.parameters),
        ] as [String: Any])
    }
}
