import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseGateway
import GatehouseHTTP
import Hummingbird

/// `/keys`: virtual keys with their limits, budget use and traffic in the range. Admins create,
/// edit, revoke and rotate them through the admin API's own operations (`AdminRoutes.createKey`
/// and the rest: same checks, store write, audit entry and reload); a new secret is shown once,
/// in the answer to the form that made it, and never again.
struct KeysPage: Sendable {
    let console: Console
    var deps: ConsoleDependencies { console.deps }

    func addRoutes(to r: APIRouter.AccessGroup) {
        r.get("/keys") { request, _ in await console.page(request, .keys) { try await list($0) } }
        r.get("/keys/new") { request, _ in await console.page(request, .keys) { newKey($0) } }
        r.post("/keys") { request, _ in await create(request) }
        r.get("/keys/{id}") { request, context in
            let id = Self.id(context)
            return await console.page(request, .keys) { try await detail(id, $0) }
        }
        r.post("/keys/{id}") { request, context in await update(request, id: Self.id(context)) }
        r.post("/keys/{id}/revoke") { request, context in await revoke(request, id: Self.id(context)) }
        r.post("/keys/{id}/rotate") { request, context in await rotate(request, id: Self.id(context)) }
    }

    /// The key id in the path, decoded (the router leaves it percent-encoded).
    static func id(_ context: GatehouseRequestContext) -> String { PathSegment.decode(context.parameters.get("id") ?? "") }

    /// `/keys/{id}`: one key's page.
    static func href(_ id: String) -> String { "/keys/" + PathSegment.encode(id) }

    static let statuses = ["all", "active", "blocked", "expired", "revoked"]

    // MARK: The list

    struct Row {
        var id: String
        var href: String
        /// The alias, or the id for a key without one.
        var name: String
        var hasAlias: Bool
        var prefix: String
        var status: String
        var tone: String
        var limits: String
        var models: String
        var budget: BudgetBar?
        var requests: String
        var spend: String
        var created: String
        var createdAt: String
        var updated: String
        var updatedAt: String
    }

    func list(_ input: Console.PageInput) async throws -> Console.PageOutput {
        let range = input.range
        async let keys = deps.controls.allKeys()
        async let usage = deps.requests.usage(Self.listQuery(range))
        async let budgets = deps.budgets.budgetUses()
        // Newest first, revoked keys last.
        let all = try await keys.map { (key: $0, view: KeyRequest.view($0)) }
            .sorted { ($0.key.revokedAtMicros == nil ? 0 : 1, $1.key.createdAtMicros) < ($1.key.revokedAtMicros == nil ? 0 : 1, $0.key.createdAtMicros) }
        let traffic = Dictionary(try await usage.groups.compactMap { g in g.key.map { ($0, g.stats) } }, uniquingKeysWith: { a, _ in a })
        let uses = Dictionary(try await budgets.filter { $0.scope == "key" }.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })

        let status = input.parameters["status"].flatMap { Self.statuses.contains($0) ? $0 : nil } ?? "all"
        let tabs = Self.statuses.map { s in
            // A tab per status, its count as the badge.
            Nav.Link(href: Console.url("/keys", [("status", s == "all" ? "" : s)] + range.parameters), label: s.capitalized, active: s == status,
                     badge: String(s == "all" ? all.count : all.filter { $0.view.status == s }.count))
        }
        let rows = all.filter { status == "all" || $0.view.status == status }.map { key, view in
            Self.row(key, view, stats: traffic[key.id], use: uses[key.id])
        }
        return Console.PageOutput(template: "keys", title: "Keys", body: [
            "rows": rows, "hasRows": !rows.isEmpty, "tabs": tabs, "anyKeys": !all.isEmpty, "status": status,
            "canChange": input.viewer.canChange, "openMode": input.viewer.openMode, "rangeLabel": range.label,
            "spendHref": Console.url("/spend", [("group", "key")] + range.parameters),
        ] as [String: Any])
    }

    /// Each key's calls and spend in the range; the page shows no latency, so none is ranked.
    static func listQuery(_ range: TimeRange) -> UsageQuery {
        UsageQuery(fromMicros: range.fromMicros, toMicros: range.toMicros, groupBy: .key, includeLatency: false)
    }

    /// One key's calls over the range, for its chart and figures (no latency shown).
    static func detailQuery(_ range: TimeRange, keyID: String) -> UsageQuery {
        UsageQuery(fromMicros: range.fromMicros, toMicros: range.toMicros, intervalMicros: range.bucketMicros, filter: RequestFilter(keyID: keyID),
                   includeLatency: false)
    }

    static func row(_ key: VirtualKey, _ view: KeyView, stats: UsageStats?, use: BudgetUse?) -> Row {
        let created = key.createdAtMicros, updated = key.updatedAtMicros
        return Row(id: view.id, href: Self.href(view.id), name: view.alias ?? view.id, hasAlias: view.alias != nil, prefix: view.prefix, status: view.status, tone: tone(view.status),
                   limits: view.limits.isEmpty ? "none" : view.limits.map(limitText).joined(separator: ", "),
                   models: view.models.isEmpty ? "any" : view.models.joined(separator: ", "),
                   budget: view.budget.map { budgetBar($0, name: view.alias ?? view.id, use: use) },
                   requests: Format.count(stats?.requests ?? 0), spend: Format.dollars(stats?.cost ?? .zero),
                   created: Format.ago(created), createdAt: Format.dateTime(created), updated: Format.ago(updated), updatedAt: Format.dateTime(updated))
    }

    /// The key's budget as every page draws budgets: spent in the current window of its limit,
    /// against the key's own soft thresholds.
    static func budgetBar(_ budget: KeyBudgetView, name: String, use: BudgetUse?) -> BudgetBar {
        BudgetBar(name: name, window: KeyForm.periodPhrase(budget.period), usedMicros: use?.usedMicros ?? 0,
                  limitMicros: (MicroDollars(dollars: budget.amountUSD) ?? .zero).value, softThresholds: budget.softThresholds)
    }

    static func tone(_ status: String) -> String {
        switch status {
        case "active": "good"
        case "revoked": "bad"
        default: "warn"
        }
    }

    /// `60 req/minute`, `100k tok/day`.
    static func limitText(_ limit: KeyRateLimit) -> String {
        let (n, unit) = limit.requests.map { ($0, "req") } ?? (limit.tokens ?? 0, "tok")
        return "\(Format.count(n)) \(unit)/\(limit.per)"
    }


    // MARK: One key

    func detail(_ id: String, _ input: Console.PageInput) async throws -> Console.PageOutput {
        guard id.utf8.count <= 128, let key = try await deps.controls.key(id: id) else {
            throw Console.PageFailure.notFound("There is no key with id \(Format.foreignID(id)). It may have been typed wrong; revoked keys stay listed on the keys page.")
        }
        let range = input.range
        async let usage = deps.requests.usage(Self.detailQuery(range, keyID: key.id))
        async let budgets = deps.budgets.budgetUses()
        async let switches = deps.controls.allSwitches()
        let view = KeyRequest.view(key)
        let report = try await usage
        let use = try await budgets.first { $0.scope == "key" && $0.name == key.id }
        let switchedOff = try await switches.first { $0.kind == .key && $0.value == key.id }
        let totals = report.totals
        let chart = SVGChart.columns(report.series.map { .init(startMicros: $0.startMicros, value: Double($0.stats.requests)) },
                                     range: range, bucketMicros: range.bucketMicros) { Format.count(Int64($0)) + " calls" }
        let canChange = input.viewer.canChange && key.revokedAtMicros == nil
        var body: [String: Any] = [
            "key": Self.row(key, view, stats: totals, use: use),
            "routes": view.routes.isEmpty ? "any" : view.routes.joined(separator: ", "),
            "maxParallel": view.maxParallel.map(String.init) ?? "unlimited",
            "capture": view.captureBodies.map { $0 ? "on for this key" : "off for this key" } ?? "as configured",
            "expires": key.expiresAtMicros.map { Format.dateTime($0) } ?? "never",
            "tags": view.tags.joined(separator: ", "), "hasTags": !view.tags.isEmpty,
            "metadata": view.metadata.sorted { $0.key < $1.key }.map { ["name": $0.key, "value": $0.value] }, "hasMetadata": !view.metadata.isEmpty,
            "thresholds": view.budget.map { Self.percents($0.softThresholds) } ?? "",
            "requests": Format.count(totals.requests), "errors": Format.count(totals.errors), "spend": Format.dollars(totals.cost),
            "tokens": Format.count(totals.usage.totalTokens), "chart": chart, "rangeLabel": range.label,
            "requestsHref": Console.url("/requests", [("key", key.id)] + range.parameters),
            "historyHref": Console.url("/audit", [("target", key.id)]),
            "switchHref": Console.url("/switches", [("kind", "key"), ("value", key.id)]),
            "canChange": canChange, "openMode": input.viewer.openMode, "isRevoked": key.revokedAtMicros != nil,
            "csrfToken": input.viewer.csrfToken,
            "form": KeyForm.model(action: Self.href(key.id), key: key),
        ]
        if let revoked = key.revokedAtMicros { body["revoked"] = Format.dateTime(revoked) }
        if let switchedOff { body["switchedOff"] = ["reason": switchedOff.reason ?? "no reason given", "since": Format.ago(switchedOff.createdAtMicros)] }
        return Console.PageOutput(template: "keys-detail", title: view.alias.map { "Key · \($0)" } ?? "Key \(view.id)", body: body)
    }

    static func percents(_ fractions: [Double]) -> String {
        fractions.map { f in
            let p = f * 100
            return p == p.rounded() ? String(Int(p)) : String(format: "%.1f", p)
        }.joined(separator: ", ")
    }

    func newKey(_ input: Console.PageInput) -> Console.PageOutput {
        Console.PageOutput(template: "keys-new", title: "New key", body: [
            "canChange": input.viewer.canChange, "openMode": input.viewer.openMode, "csrfToken": input.viewer.csrfToken,
            "form": KeyForm.model(action: "/keys", key: nil),
        ] as [String: Any], showsRange: false)
    }

    // MARK: Changes

    /// A key with its secret, for the one page that shows it.
    struct Issued {
        var view: KeyView
        var secret: String
        var created: Bool
    }

    func create(_ request: Request) async -> Response {
        var issued: Issued?
        let response = await console.action(request, needsAdmin: true) { viewer, form in
            do {
                let (key, secret) = try await deps.admin.createKey(try KeyForm.changes(form), actor: viewer.auditActor)
                issued = Issued(view: KeyRequest.view(key), secret: secret, created: true)
                return Self.href(key.id)
            } catch let mistake as GatewayError where mistake.status == .badRequest {
                return Console.url("/keys/new", [("error", mistake.message)])
            }
        }
        return await showOnce(issued, request, response)
    }

    func update(_ request: Request, id: String) async -> Response {
        await console.action(request, needsAdmin: true) { viewer, form in
            let back = Self.href(id)
            do {
                // The form sends every field; only what changes the key is saved and audited.
                let (_, changes) = try await deps.admin.updateKey(id: id, actor: viewer.auditActor) { key in
                    try KeyForm.changed(try KeyForm.changes(form), on: key)
                }
                guard let changes else { return Console.url(back, [("ok", "Nothing changed.")]) }
                return Console.url(back, [("ok", "Saved: " + KeyForm.names(of: changes) + ".")])
            } catch let mistake as GatewayError where mistake.status == .badRequest {
                return Console.url(back, [("error", mistake.message)])
            }
        }
    }

    func revoke(_ request: Request, id: String) async -> Response {
        await console.action(request, needsAdmin: true) { viewer, _ in
            let (key, revokedNow) = try await deps.admin.revokeKey(id: id, actor: viewer.auditActor)
            let name = key.alias ?? key.id
            return Console.url(Self.href(key.id), [("ok", revokedNow ? "Revoked \(name): calls with it are refused from now on." : "\(name) was already revoked.")])
        }
    }

    func rotate(_ request: Request, id: String) async -> Response {
        var issued: Issued?
        let response = await console.action(request, needsAdmin: true) { viewer, _ in
            do {
                let (key, secret) = try await deps.admin.rotateKey(id: id, actor: viewer.auditActor)
                issued = Issued(view: KeyRequest.view(key), secret: secret, created: false)
                return Self.href(key.id)
            } catch let mistake as GatewayError where mistake.status == .badRequest {
                return Console.url(Self.href(id), [("error", mistake.message)])
            }
        }
        return await showOnce(issued, request, response)
    }

    /// The answer to a form that made a secret is the page showing it (never a redirect: the
    /// secret must not travel in a URL, and no later page can show it again).
    private func showOnce(_ issued: Issued?, _ request: Request, _ response: Response) async -> Response {
        guard let issued, response.status == .seeOther else { return response }
        return await console.page(request, .keys) { _ in
            Console.PageOutput(template: "keys-issued", title: issued.created ? "Key created" : "Key rotated", body: [
                "secret": issued.secret, "created": issued.created, "name": issued.view.alias ?? issued.view.id, "id": issued.view.id,
                "prefix": issued.view.prefix, "href": Self.href(issued.view.id),
            ] as [String: Any], showsRange: false)
        }
    }
}

/// The key form of the console (new key and edit), read into the admin API's `KeyChanges`, so
/// `KeyRequest.apply` checks every bound exactly as for `POST/PATCH /api/v1/keys`.
enum KeyForm {
    /// Empty limit rows offered below a key's own.
    static let spareLimitRows = 2
    static let budgetPeriods = ["hour", "day", "week", "month", "total"]
    static let limitPeriods = ["second", "minute", "hour", "day", "week", "month"]

    /// Every field of the form as a change: an empty field clears what it shows. A mistake is
    /// the 400 the admin API gives for it.
    static func changes(_ form: [String: String]) throws(GatewayError) -> KeyChanges {
        func text(_ name: String) -> String { (form[name] ?? "").trimmingCharacters(in: .whitespacesAndNewlines) }
        func list(_ name: String) -> [String] { text(name).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
        var changes = KeyChanges()
        changes.alias = text("alias").isEmpty ? .clear : .set(text("alias"))
        changes.models = list("models")
        changes.routes = GatewayRoute.allCases.map(\.rawValue).filter { form["route:" + $0] != nil }
        var limits: [KeyRateLimit] = []
        for i in 0..<64 {
            let value = text("limit_\(i)")
            guard form["limit_\(i)"] != nil || form["limit_unit_\(i)"] != nil else { break }
            if value.isEmpty { continue }
            guard let n = Int64(value) else { throw .invalidRequest("Limit \(i + 1) must be a whole number of at least 1.") }
            let per = text("limit_per_\(i)")
            limits.append(text("limit_unit_\(i)") == "tokens" ? KeyRateLimit(tokens: n, per: per) : KeyRateLimit(requests: n, per: per))
        }
        changes.limits = limits
        if text("max_parallel").isEmpty {
            changes.maxParallel = .clear
        } else {
            guard let n = Int(text("max_parallel")) else { throw .invalidRequest("`max_parallel` must be between 1 and 100000") }
            changes.maxParallel = .set(n)
        }
        if text("budget_usd").isEmpty {
            changes.budget = .clear
        } else {
            var thresholds: [Double]?
            if !text("budget_thresholds").isEmpty {
                let parts = text("budget_thresholds").split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "%", with: "")) }
                guard parts.allSatisfy({ $0 != nil }) else { throw .invalidRequest("`budget.soft_thresholds` must be \(SoftThresholds.rule)") }
                thresholds = parts.compactMap { $0 }
            }
            changes.budget = .set(KeyBudgetChanges(amountUSD: text("budget_usd").replacingOccurrences(of: "$", with: ""),
                                                   period: text("budget_period").isEmpty ? "month" : text("budget_period"), softThresholds: thresholds))
        }
        changes.expiresAt = text("expires_at").isEmpty ? .clear : .set(text("expires_at"))
        changes.tags = list("tags")
        changes.blocked = form["blocked"] != nil
        // A form without the field (a page from before it existed) leaves the key's choice alone.
        switch form["capture_bodies"].map({ $0.trimmingCharacters(in: .whitespaces) }) {
        case nil: break
        case "on": changes.captureBodies = .set(true)
        case "off": changes.captureBodies = .set(false)
        case "", "default": changes.captureBodies = .clear
        default: throw .invalidRequest("`capture_bodies` must be on, off or default")
        }
        return changes
    }

    /// Only the changes that change `key` (what the audit log records and the page confirms);
    /// nil when nothing does.
    static func changed(_ all: KeyChanges, on key: VirtualKey) throws(GatewayError) -> KeyChanges? {
        var after = key
        do throws(KeyRequest.Invalid) { try KeyRequest.apply(all, to: &after) } catch { throw .invalidRequest(error.message) }
        let old = KeyRequest.view(key), new = KeyRequest.view(after)
        var changes = all
        if old.alias == new.alias { changes.alias = nil }
        if old.models == new.models { changes.models = nil }
        if Set(old.routes) == Set(new.routes) { changes.routes = nil }
        if old.limits == new.limits { changes.limits = nil }
        if old.maxParallel == new.maxParallel { changes.maxParallel = nil }
        if old.budget == new.budget { changes.budget = nil }
        if old.expiresAt == new.expiresAt { changes.expiresAt = nil }
        if old.tags == new.tags { changes.tags = nil }
        if old.blocked == new.blocked { changes.blocked = nil }
        if old.captureBodies == new.captureBodies { changes.captureBodies = nil }
        return changes == KeyChanges() ? nil : changes
    }

    /// "alias, limits, budget": the fields a change touches, in words.
    static func names(of changes: KeyChanges) -> String {
        let fields: [(Bool, String)] = [
            (changes.alias != nil, "name"), (changes.models != nil, "models"), (changes.routes != nil, "routes"),
            (changes.limits != nil, "limits"), (changes.maxParallel != nil, "parallel calls"), (changes.budget != nil, "budget"),
            (changes.expiresAt != nil, "expiry"), (changes.tags != nil, "tags"),
            (changes.blocked != nil, changes.blocked == true ? "blocked" : "unblocked"),
            (changes.captureBodies != nil, "body capture"),
        ]
        return fields.filter(\.0).map(\.1).joined(separator: ", ")
    }

    struct Choice {
        var value: String
        var label: String
        var selected: Bool
    }

    struct LimitRow {
        var index: Int
        var value: String
        var units: [Choice]
        var periods: [Choice]
    }

    /// The form's values: the key's own, or empty for a new key.
    static func model(action: String, key: VirtualKey?) -> [String: Any] {
        let view = key.map(KeyRequest.view)
        let limits = (view?.limits ?? []).map { Optional($0) } + Array(repeating: nil, count: spareLimitRows + (key == nil ? 1 : 0))
        let rows = limits.enumerated().map { i, limit in
            LimitRow(index: i, value: (limit?.requests ?? limit?.tokens).map(String.init) ?? "",
                     units: ["requests", "tokens"].map { Choice(value: $0, label: $0, selected: (limit?.tokens != nil ? "tokens" : "requests") == $0) },
                     periods: limitPeriods.map { Choice(value: $0, label: "per " + $0, selected: (limit?.per ?? "minute") == $0) })
        }
        let budgetPeriod = view?.budget?.period ?? "month"
        return [
            "action": action, "editing": key != nil,
            "alias": view?.alias ?? "", "models": view?.models.joined(separator: ", ") ?? "",
            "routes": GatewayRoute.allCases.map { Choice(value: "route:" + $0.rawValue, label: $0.rawValue, selected: view?.routes.contains($0.rawValue) == true) },
            "limits": rows, "maxParallel": view?.maxParallel.map(String.init) ?? "",
            "budgetUSD": view?.budget.map { plainDollars($0.amountUSD) } ?? "",
            "budgetPeriods": budgetPeriods.map { Choice(value: $0, label: periodPhrase($0), selected: $0 == budgetPeriod) },
            "thresholds": view?.budget.map { KeysPage.percents($0.softThresholds) } ?? "",
            "expiresAt": view?.expiresAt ?? "", "tags": view?.tags.joined(separator: ", ") ?? "", "blocked": view?.blocked == true,
            "captureChoices": [("default", "As configured (gateway.capture_bodies)"), ("on", "Keep this key's request and response bodies"),
                               ("off", "Never keep this key's bodies")].map { value, label in
                Choice(value: value, label: label, selected: value == captureChoice(view?.captureBodies))
            },
        ]
    }

    static func captureChoice(_ setting: Bool?) -> String {
        switch setting {
        case nil: "default"
        case true?: "on"
        case false?: "off"
        }
    }

    /// "per day", "in total".
    static func periodPhrase(_ period: String) -> String { period == "total" ? "in total" : "per " + period }

    /// "25.000000" → "25", "0.500000" → "0.5".
    static func plainDollars(_ text: String) -> String {
        guard text.contains(".") else { return text }
        var t = text
        while t.hasSuffix("0") { t.removeLast() }
        if t.hasSuffix(".") { t.removeLast() }
        return t
    }
}
