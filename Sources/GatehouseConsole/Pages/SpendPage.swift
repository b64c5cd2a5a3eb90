import GatehouseCore
import GatehouseHTTP
import HTTPTypes
import Hummingbird

/// `/spend`: cost and tokens grouped by model, provider, key, user or property; budgets.
struct SpendPage: Sendable {
    let console: Console
    var deps: ConsoleDependencies { console.deps }

    /// Rows the group table shows; the rest are summed in one line.
    static let maxGroups = 100
    /// How far back the budget events go.
    static let eventDays: Int64 = 31

    func addRoutes(to r: APIRouter.AccessGroup) {
        r.get("/spend") { request, _ in await console.page(request, .spend) { try await render($0) } }
    }

    /// The groupings the tabs offer, with the request-list parameter that narrows to one group.
    static let groupings: [(name: String, label: String, filter: String)] = [
        ("model", "Model", "model"), ("provider", "Provider", "provider"), ("key", "Key", "key"), ("user", "User", "user"),
        ("route", "Route", "route"), ("property", "Property", "property"),
    ]

    struct Tab {
        var label: String
        var href: String
        var active: Bool
    }

    struct GroupRow {
        var label: String
        var href: String
        var requests: String
        var errors: String
        var inputTokens: String
        var outputTokens: String
        var cost: String
        var share: String
        var fraction: String
    }

    /// A budget's row: where it applies and its window, then its use as every page draws it.
    struct BudgetRow {
        var name: String
        var scope: String
        var value: String?
        var period: String
        var windowStart: String
        var windowEnd: String
        var reserved: String
        var bar: BudgetBar
        var warn: Bool { bar.warn }
    }

    struct EventRow {
        var time: String
        var ago: String
        var budget: String
        var threshold: String
        var tone: String
        var used: String
        var limit: String
        var windowStart: String
    }

    func render(_ input: Console.PageInput) async throws -> Console.PageOutput {
        let range = input.range, parameters = input.parameters
        let groupName = Self.groupings.contains { $0.name == parameters["group"] } ? parameters["group"]! : "model"
        let propertyName = (parameters["property"] ?? "").trimmingCharacters(in: .whitespaces).lowercased()
        async let keyNames = RequestsPage.keyNames(deps)
        async let budgetUses = deps.budgets.budgetUses()
        async let events = deps.controls.budgetEvents(sinceMicros: TimeExpressions.nowMicros() - Self.eventDays * 86_400_000_000, limit: 50)
        var body: [String: Any] = [
            "rangeLabel": range.label, "group": groupName, "isProperty": groupName == "property", "propertyName": propertyName,
            "q": parameters["q"] ?? "", "chips": RequestsPage.chips("/spend", input), "hasChips": !RequestsPage.activeFilters(parameters).isEmpty,
            "tabs": Self.groupings.map { g in
                Tab(label: g.label, href: RequestsPage.href("/spend", input, ["group": g.name == "model" ? nil : g.name]), active: g.name == groupName)
            },
            "kept": parameters.filter { ["range", "from", "to", "group", "property"].contains($0.key) || ($0.key != "q" && RequestsPage.filterNames.contains($0.key))
                || $0.key.hasPrefix("property.") }
                .filter { !$0.value.isEmpty }.sorted { $0.key < $1.key }.map { Nav.Hidden(name: $0.key, value: $0.value) },
            "propertyKept": parameters.filter { ["range", "from", "to", "q"].contains($0.key) || RequestsPage.filterNames.contains($0.key) || $0.key.hasPrefix("property.") }
                .filter { !$0.value.isEmpty }.sorted { $0.key < $1.key }.map { Nav.Hidden(name: $0.key, value: $0.value) },
        ]
        let names = try await keyNames
        var status: HTTPResponse.Status = .ok
        do {
            let grouping: UsageGrouping?
            if groupName == "property" {
                grouping = propertyName.isEmpty ? nil : UsageGrouping("property." + propertyName)
                if !propertyName.isEmpty && grouping == nil { throw GatewayError.invalidRequest("a property name is 1 to 119 characters") }
            } else {
                grouping = UsageGrouping(groupName)
            }
            let filter = try RequestsPage.filter(parameters)
            let queries = Self.queries(range, grouping: grouping, filter: filter)
            async let current = deps.requests.usage(queries.current)
            async let previous = deps.requests.usage(queries.previous)
            let (now, before) = try await (current, previous)
            let t = now.totals, p = before.totals
            body["kpis"] = Self.kpis(t, p)
            body["costChart"] = SVGChart.columns(now.series.map { .init(startMicros: $0.startMicros, value: Double($0.stats.cost.value)) },
                                                 range: range, bucketMicros: range.bucketMicros) { Format.dollars(MicroDollars(Int64($0))) }
            body["tokenChart"] = SVGChart.columns(now.series.map { .init(startMicros: $0.startMicros, value: Double($0.stats.usage.totalTokens)) },
                                                  range: range, bucketMicros: range.bucketMicros, cssClass: "bar alt") { Format.count(Int64($0)) }
            body["hasCalls"] = t.requests > 0
            if let grouping {
                let rows = now.groups.prefix(Self.maxGroups).map { Self.row($0, grouping: grouping, total: t, input: input, keyNames: names) }
                body["rows"] = rows
                body["hasRows"] = !rows.isEmpty
                body["groupLabel"] = Self.groupings.first { $0.name == grouping.name }?.label ?? grouping.name
                if now.groups.count > Self.maxGroups {
                    let rest = now.groups.dropFirst(Self.maxGroups)
                    body["more"] = "\(rest.count) more groups: \(Format.dollars(MicroDollars(rest.reduce(0) { $0 + $1.stats.cost.value }))) together"
                }
            } else {
                body["needsProperty"] = true
            }
        } catch {
            guard let problem = PageProblem(error) else { throw error }
            status = problem.status
            body["error"] = problem.message
        }
        let uses = try await budgetUses.sorted { ($0.fraction, $0.name) > ($1.fraction, $1.name) }
        let budgetRows = uses.map { Self.budgetRow($0, keyNames: names) }
        body["budgets"] = budgetRows
        body["hasBudgets"] = !budgetRows.isEmpty
        let eventRows = try await events.map { e in
            EventRow(time: Format.dateTime(e.timestampMicros), ago: Format.ago(e.timestampMicros), budget: Self.counterLabel(e.counter, keyNames: names),
                     threshold: "\(e.thresholdPercent)%", tone: e.thresholdPercent >= 100 ? "bad" : "warn",
                     used: Format.dollars(MicroDollars(e.usedMicros)), limit: Format.dollars(MicroDollars(e.limitMicros)),
                     windowStart: Format.dateTime(e.windowStartMicros))
        }
        body["events"] = eventRows
        body["hasEvents"] = !eventRows.isEmpty
        body["eventDays"] = String(Self.eventDays)
        return Console.PageOutput(template: "spend", title: "Spend", body: body, status: status)
    }

    /// The range by group with its series, and the range before for the trends. The page shows
    /// no latency, so neither asks for percentiles.
    static func queries(_ range: TimeRange, grouping: UsageGrouping?, filter: RequestFilter) -> (current: UsageQuery, previous: UsageQuery) {
        (UsageQuery(fromMicros: range.fromMicros, toMicros: range.toMicros, intervalMicros: range.bucketMicros, groupBy: grouping, filter: filter,
                    includeLatency: false),
         UsageQuery(fromMicros: range.previous.fromMicros, toMicros: range.previous.toMicros, filter: filter, includeLatency: false))
    }

    /// The spend page's figure cards, each against the range before.
    static func kpis(_ t: UsageStats, _ p: UsageStats) -> [KPI] {
        func perCall(_ s: UsageStats) -> Double { s.requests > 0 ? Double(s.cost.value) / Double(s.requests) : 0 }
        return [
            KPI("Spend", Format.dollars(t.cost), Double(t.cost.value), Double(p.cost.value)),
            KPI("Requests", Format.count(t.requests), Double(t.requests), Double(p.requests), goodWhenUp: true),
            KPI("Input tokens", Format.count(t.usage.inputTokens), Double(t.usage.inputTokens), Double(p.usage.inputTokens)),
            KPI("Output tokens", Format.count(t.usage.outputTokens), Double(t.usage.outputTokens), Double(p.usage.outputTokens)),
            KPI("Cost per request", Format.dollars(MicroDollars(Int64(perCall(t).rounded()))), perCall(t), perCall(p)),
        ]
    }

    static func row(_ group: UsageGroup, grouping: UsageGrouping, total: UsageStats, input: Console.PageInput, keyNames: [String: String]) -> GroupRow {
        let s = group.stats
        let share = total.cost.value > 0 ? Double(s.cost.value) / Double(total.cost.value) : 0
        let label = group.key.map { grouping == .key ? keyNames[$0] ?? $0 : $0 } ?? "(no \(grouping.name))"
        // The group's calls in the request list: each grouping's name is the filter parameter that narrows to it.
        let parameter = grouping.name
        var changes: [String: String?] = ["group": nil, "property": nil]
        if let key = group.key {
            changes[parameter] = key
        } else {
            // Calls without a value have no simple filter; the query language finds them: `-user:*`.
            changes["q"] = ((input.parameters["q"] ?? "") + " -\(parameter):*").trimmingCharacters(in: .whitespaces)
        }
        let href = RequestsPage.href("/requests", input, changes)
        return GroupRow(label: label, href: href, requests: Format.count(s.requests), errors: Format.count(s.errors),
                        inputTokens: Format.count(s.usage.inputTokens), outputTokens: Format.count(s.usage.outputTokens), cost: Format.dollars(s.cost),
                        share: total.cost.value > 0 ? Format.percent(share) : "–", fraction: String(format: "%.4f", share))
    }

    static func budgetRow(_ use: BudgetUse, keyNames: [String: String]) -> BudgetRow {
        // A key's own budget is named by the key's id; a per-key budget counts each key's id.
        let name = keyNames[use.name].map { "key \($0)" } ?? Self.budgetName(use.name)
        return BudgetRow(
            name: name, scope: use.scope, value: use.value.map { use.scope == "key" ? keyNames[$0] ?? $0 : $0 },
            period: use.period, windowStart: Format.dateTime(use.windowStartMicros), windowEnd: use.windowEndMicros.map(Format.dateTime) ?? "open-ended",
            reserved: Format.dollars(MicroDollars(max(0, use.grantedMicros - use.usedMicros))),
            bar: BudgetBar(use, name: name, window: use.period))
    }

    /// A budget counter as people name it: `key:<id>:budget/month` → `key <alias> · budget/month`,
    /// `<budget>|<value>` → `<budget> · <value>`.
    static func counterLabel(_ counter: String, keyNames: [String: String]) -> String {
        if counter.hasPrefix("key:") {
            let parts = counter.split(separator: ":", maxSplits: 2).map(String.init)
            if parts.count == 3 { return "key \(keyNames[parts[1]] ?? parts[1]) · \(parts[2])" }
        }
        let parts = counter.split(separator: "|", maxSplits: 1).map(String.init)
        return parts.count == 2 ? "\(budgetName(parts[0])) · \(keyNames[parts[1]] ?? parts[1])" : budgetName(counter)
    }

    /// `budget:team-cap` → `team-cap`: the name given in gatehouse.yaml.
    static func budgetName(_ id: String) -> String {
        id.hasPrefix("budget:") ? String(id.dropFirst("budget:".count)) : id
    }
}
