import GatehouseAlerts
import GatehouseCore
import GatehouseHTTP
import Hummingbird

/// `/uptime`: each probe and heartbeat with its state and its uptime over 24 h, 7 days and 30
/// days, each probe's response time over the range, and the incidents (runs of failed checks).
/// `?probe=<name>` narrows the charts and incidents to one.
struct UptimePage: Sendable {
    let console: Console
    var deps: ConsoleDependencies { console.deps }

    static let incidentLimit = 50

    func addRoutes(to r: APIRouter.AccessGroup) {
        r.get("/uptime") { request, _ in await console.page(request, .uptime) { try await render($0) } }
    }

    struct MonitorRow {
        var name: String
        var href: String
        var kind: String
        var dot: String
        var status: String
        var since: String?
        var lastCheck: String
        var latency: String
        var uptime: [UptimeCell]
        var error: String?
        var isPublic: Bool
    }

    struct ProbeChart {
        var name: String
        var summary: String
        var latencyChart: String
        var failureChart: String?
    }

    struct IncidentRow {
        var probe: String
        var href: String
        var started: String
        var startedAgo: String
        var ended: String?
        var duration: String
        var failedChecks: String
        var error: String
    }

    func render(_ input: Console.PageInput) async throws -> Console.PageOutput {
        let range = input.range, now = TimeExpressions.nowMicros()
        let states = try await deps.probes.states(nowMicros: now)
        let focus = input.parameters["probe"].flatMap { $0.isEmpty ? nil : $0 }
        if let focus, !states.contains(where: { $0.name == focus }) {
            throw Console.PageFailure.notFound("No probe or heartbeat is named \(focus.prefix(200)).")
        }
        let probes = states.filter { $0.kind == "http" }.map(\.name)
        let shown = probes.filter { focus == nil || $0 == focus }
        async let windows = UptimeWindows.read(deps.alertStore, probes: probes, now: now)
        async let series = deps.alertStore.probeUptime(probes: shown, fromMicros: range.fromMicros, toMicros: range.toMicros, bucketMicros: range.bucketMicros)
        async let incidents = deps.alertStore.probeIncidents(probes: shown, fromMicros: range.fromMicros, toMicros: range.toMicros, limit: Self.incidentLimit)
        let figures = try await windows

        let rows = states.map { s in
            MonitorRow(name: s.name, href: Console.url("/uptime", [("probe", s.name)] + range.parameters), kind: s.kind,
                       dot: UptimeWindows.dot(s.up), status: UptimeWindows.status(s.up),
                       since: s.since.map { Format.ago($0, now: now) }, lastCheck: s.lastCheckMicros.map { Format.ago($0, now: now) } ?? "never",
                       latency: s.lastLatencyMicros.map { Format.latency(micros: Double($0)) } ?? "–",
                       uptime: figures.cells(s.name, isProbe: s.kind == "http"), error: s.up == false ? s.lastError : nil,
                       isPublic: deps.about.publicProbes.contains(s.name))
        }
        let bucket = range.bucketMicros
        let perProbe = Dictionary(grouping: try await series, by: \.probe)
        let charts = shown.map { name in
            let buckets = perProbe[name] ?? []
            let checks = buckets.reduce(0) { $0 + $1.checks }, failed = buckets.reduce(0) { $0 + $1.checks - $1.upChecks }
            let average = checks > 0 ? buckets.reduce(0.0) { $0 + $1.averageLatencyMicros * Double($1.checks) } / Double(checks) : nil
            let latency = SVGChart.columns(buckets.map { .init(startMicros: $0.bucketStartMicros ?? 0, value: $0.averageLatencyMicros) },
                                           range: range, bucketMicros: bucket) { Format.latency(micros: $0) }
            let failures = failed == 0 ? nil : SVGChart.columns(
                buckets.map { .init(startMicros: $0.bucketStartMicros ?? 0, value: Double($0.checks - $0.upChecks)) }, range: range, bucketMicros: bucket,
                height: 90, cssClass: "bar bad") { Format.count(Int64($0)) + " failed" }
            let summary = checks == 0 ? "no checks in this range"
                : "average \(Format.latency(micros: average ?? 0)) · \(Format.count(checks)) checks · \(Format.count(failed)) failed"
            return ProbeChart(name: name, summary: summary, latencyChart: latency, failureChart: failures)
        }
        let incidentRows = try await incidents.map { i in
            IncidentRow(probe: i.probe, href: Console.url("/uptime", [("probe", i.probe)] + range.parameters), started: Format.dateTime(i.startedMicros),
                        startedAgo: Format.ago(i.startedMicros, now: now), ended: i.endedMicros.map { Format.dateTime($0) },
                        duration: Format.duration(micros: (i.endedMicros ?? now) - i.startedMicros), failedChecks: Format.count(i.failedChecks),
                        error: i.firstError ?? "")
        }
        let focusIsHeartbeat = focus.map { name in !probes.contains(name) } ?? false
        return Console.PageOutput(template: "uptime", title: focus.map { "Uptime · \($0)" } ?? "Uptime", body: [
            "monitors": rows, "hasMonitors": !rows.isEmpty, "upCount": states.filter { $0.up == true }.count,
            "downCount": states.filter { $0.up == false }.count, "unknownCount": states.filter { $0.up == nil }.count,
            "charts": charts, "hasCharts": !charts.isEmpty, "focusIsHeartbeat": focusIsHeartbeat, "focused": focus != nil,
            "allHref": Console.url("/uptime", range.parameters), "incidents": incidentRows, "hasIncidents": !incidentRows.isEmpty,
            "incidentLimit": Self.incidentLimit, "rangeLabel": range.label, "hasPublic": !deps.about.publicProbes.isEmpty,
        ] as [String: Any])
    }
}

/// One uptime figure as a table cell: the percentage, and over how many checks.
struct UptimeCell {
    var text: String
    var title: String
    var tone: String
}

/// Each probe's uptime over the last 24 hours, 7 days and 30 days: three aggregates in the
/// store. Shared by `/uptime` and the public `/status`.
struct UptimeWindows {
    static let spans: [(label: String, micros: Int64)] = [("24 h", 86_400_000_000), ("7 days", 7 * 86_400_000_000), ("30 days", 30 * 86_400_000_000)]
    var figures: [[String: ProbeUptime]]

    static func read(_ store: any AlertStore, probes: [String], now: Int64) async throws -> UptimeWindows {
        async let day = store.probeUptime(probes: probes, fromMicros: now - spans[0].micros, toMicros: now, bucketMicros: nil)
        async let week = store.probeUptime(probes: probes, fromMicros: now - spans[1].micros, toMicros: now, bucketMicros: nil)
        async let month = store.probeUptime(probes: probes, fromMicros: now - spans[2].micros, toMicros: now, bucketMicros: nil)
        return UptimeWindows(figures: try await [day, week, month].map { Dictionary($0.map { ($0.probe, $0) }, uniquingKeysWith: { a, _ in a }) })
    }

    /// The three cells of one probe or heartbeat; heartbeats keep only their last ping, so no figure.
    func cells(_ name: String, isProbe: Bool) -> [UptimeCell] {
        zip(Self.spans, figures).map { span, byProbe in
            guard isProbe else { return UptimeCell(text: "–", title: "heartbeats keep only their last ping", tone: "") }
            guard let figure = byProbe[name], let fraction = figure.fraction else {
                return UptimeCell(text: "–", title: "no checks in the last \(span.label)", tone: "")
            }
            return UptimeCell(text: Self.percent(fraction), title: "\(Format.count(figure.upChecks)) of \(Format.count(figure.checks)) checks passed in the last \(span.label)",
                              tone: fraction >= 0.999 ? "good" : (fraction >= 0.99 ? "warn" : "bad"))
        }
    }

    /// Uptime reads in hundredths near 100% (99.95%), where whole percents would hide outages.
    static func percent(_ fraction: Double) -> String {
        fraction >= 1 ? "100%" : String(format: "%.2f%%", (fraction * 10_000).rounded(.down) / 100)
    }

    static func dot(_ up: Bool?) -> String { up.map { $0 ? "good" : "bad" } ?? "" }
    static func status(_ up: Bool?) -> String { up.map { $0 ? "up" : "down" } ?? "unknown" }
}
