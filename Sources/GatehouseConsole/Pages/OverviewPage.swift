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

    struct KPI {
        var label: String
        var value: String
        var trend: String
        var direction: String
        /// "goodwhenup" where more is better (requests), so colours read right.
        var tone: String
    }

    struct BudgetBar {
        var name: String
        var window: String
        var used: String
        var limit: String
        var percent: String
        var fraction: Double
        var warn: Bool
    }

    /// The range with its series and latency, and the range before it for the trends: sums only,
    /// since latency percentiles of the range before are not worth ranking its calls for.
    static func queries(_ range: TimeRange) -> (current: UsageQuery, previous: UsageQuery) {
        (UsageQuery(fromMicros: range.fromMicros, toMicros: range.toMicros, intervalMicros: range.bucketMicros),
         UsageQuery(fromMicros: range.previous.fromMicros, toMicros: range.previous.toMicros, includeLatency: false))
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

    func render(_ input: Console.PageInput) async throws -> Console.PageOutput {
        let range = input.range
        let queries = Self.queries(range)
        async let current = Self.usage(deps.requests, queries.current)
        async let previous = deps.requests.usage(queries.previous)
        async let issues = deps.telemetry.issues(IssueListQuery(filter: .field("status", .equals(.text("unresolved"))), limit: 8))
        async let budgets = deps.budgets.budgetUses()
        async let probes = deps.probes.states()
        let (now, before) = try await (current, previous)
        let t = now.totals, p = before.totals

        func rate(_ s: UsageStats) -> Double { s.requests > 0 ? Double(s.errors) / Double(s.requests) : 0 }
        func kpi(_ label: String, _ value: String, _ a: Double, _ b: Double?, goodWhenUp: Bool = false) -> KPI {
            guard let b else { return KPI(label: label, value: value, trend: "", direction: "", tone: "") }
            let trend = Format.trend(a, b)
            return KPI(label: label, value: value, trend: trend.text, direction: trend.direction, tone: goodWhenUp ? "goodwhenup" : "")
        }
        let kpis = [
            kpi("Requests", Format.count(t.requests), Double(t.requests), Double(p.requests), goodWhenUp: true),
            kpi("Spend", Format.dollars(t.cost), Double(t.cost.value), Double(p.cost.value)),
            kpi("Tokens", Format.count(t.usage.totalTokens), Double(t.usage.totalTokens), Double(p.usage.totalTokens), goodWhenUp: true),
            kpi("Error rate", Format.percent(rate(t)), rate(t), rate(p)),
            // Latency has no trend: the range before is read without percentiles.
            kpi("Latency p50", t.latency.map { Format.latency(micros: $0.p50) } ?? "–", t.latency?.p50 ?? 0, nil),
            kpi("Latency p95", t.latency.map { Format.latency(micros: $0.p95) } ?? "–", t.latency?.p95 ?? 0, nil),
        ]
        let bucket = range.bucketMicros
        let requestChart = SVGChart.columns(now.series.map { .init(startMicros: $0.startMicros, value: Double($0.stats.requests)) },
                                            range: range, bucketMicros: bucket, integral: true) { Format.count(Int64($0)) + " calls" }
        let errorChart = SVGChart.columns(now.series.map { .init(startMicros: $0.startMicros, value: Double($0.stats.errors)) },
                                          range: range, bucketMicros: bucket, cssClass: "bar bad", integral: true) { Format.count(Int64($0)) + " errors" }
        let costChart = SVGChart.columns(now.series.map { .init(startMicros: $0.startMicros, value: Double($0.stats.cost.value)) },
                                         range: range, bucketMicros: bucket) { Format.dollars(MicroDollars(Int64($0))) }

        let bars = try await budgets.sorted { $0.fraction > $1.fraction }.prefix(8).map { use in
            BudgetBar(name: use.value.flatMap { $0.isEmpty ? nil : "\(SpendPage.budgetName(use.name)) · \($0)" } ?? SpendPage.budgetName(use.name),
                      window: use.period,
                      used: Format.dollars(MicroDollars(use.usedMicros)), limit: Format.dollars(MicroDollars(use.limitMicros)),
                      percent: Format.percent(use.fraction), fraction: min(use.fraction, 1.2), warn: use.fraction >= 0.8)
        }
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

/// One issue as the lists show it.
struct IssuesRow {
    var id: String
    var href: String
    var title: String
    var culprit: String
    var level: String
    var count: String
    var users: String
    var lastSeen: String
    var firstSeen: String
    var regressed: Bool
    var status: String

    init(_ issue: ErrorIssue) {
        id = issue.id
        href = "/issues/" + issue.id
        title = issue.title
        culprit = issue.culprit
        level = issue.level.rawValue
        count = Format.count(issue.count)
        users = Format.count(issue.users)
        lastSeen = Format.ago(issue.lastSeenMicros)
        firstSeen = Format.ago(issue.firstSeenMicros)
        regressed = issue.regressed
        status = issue.status.rawValue
    }
}
