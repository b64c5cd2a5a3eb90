import Crypto
import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseHTTP
import HTTPTypes
import Hummingbird
import NIOCore

/// The admin API: virtual keys, kill switches, budgets and the audit log. Every change is
/// applied to the shared store, picked up by every instance, and written to the audit log.
public struct AdminRoutes: Sendable {
    let store: any KeyStore & SwitchStore & AuditLog & BudgetEventStore & QuotaStore
    let controls: Controls
    let budgets: [QuotaRule]

    /// Largest admin request body.
    static let maxBodyBytes = 64 * 1024

    public init(store: any KeyStore & SwitchStore & AuditLog & BudgetEventStore & QuotaStore, controls: Controls, budgets: [QuotaRule]) {
        self.store = store
        self.controls = controls
        self.budgets = budgets
    }

    /// Every route here changes or reveals keys, switches, audit or budgets: admin only.
    public func addRoutes(to api: APIRouter) {
        api.admin.post("/api/v1/keys") { request, context in await self.guarded(request, context) { try await self.createKey($0, $1) } }
        api.admin.get("/api/v1/keys") { request, context in await self.guarded(request, context) { _, _ in try await self.listKeys() } }
        api.admin.get("/api/v1/keys/{id}") { request, context in await self.guarded(request, context) { _, c in try await self.showKey(c.parameters.get("id") ?? "") } }
        api.admin.patch("/api/v1/keys/{id}") { request, context in await self.guarded(request, context) { try await self.updateKey($0, $1) } }
        api.admin.post("/api/v1/keys/{id}/revoke") { request, context in await self.guarded(request, context) { try await self.revokeKey($0, $1) } }
        api.admin.delete("/api/v1/keys/{id}") { request, context in await self.guarded(request, context) { try await self.revokeKey($0, $1) } }
        api.admin.post("/api/v1/keys/{id}/rotate") { request, context in await self.guarded(request, context) { try await self.rotateKey($0, $1) } }
        api.admin.get("/api/v1/switches") { request, context in await self.guarded(request, context) { _, _ in try await self.listSwitches() } }
        api.admin.post("/api/v1/switches") { request, context in await self.guarded(request, context) { try await self.setSwitch($0, $1) } }
        api.admin.delete("/api/v1/switches") { request, context in await self.guarded(request, context) { try await self.removeSwitch($0, $1) } }
        api.admin.get("/api/v1/audit") { request, context in await self.guarded(request, context) { r, _ in try await self.audit(r) } }
        api.admin.get("/api/v1/budgets") { request, context in await self.guarded(request, context) { _, _ in try await self.budgetReport() } }
    }

    /// Admin answers go through the one error mapping every API route uses.
    private func guarded(_ request: Request, _ context: GatehouseRequestContext,
                         _ body: (Request, GatehouseRequestContext) async throws -> Response) async -> Response {
        await APIAnswer.run { try await body(request, context) }
    }

    /// The request body's bytes (empty when there is none), within the admin limit.
    private func requestBody(_ request: Request) async throws -> Data {
        try await JSONBody.collect(request, limit: Self.maxBodyBytes)
    }

    private func audit(_ context: GatehouseRequestContext, _ request: Request, action: String, target: String, details: some Encodable) async throws {
        let token = request.headers[.authorization].flatMap(BearerToken.token) ?? ""
        let actor = "admin-token:" + String(Redactor.fingerprint(ofSecret: token).suffix(12)) + "@" + (context.clientIP ?? "unknown")
        let data = (try? APIJSON.encode(details)) ?? Data("{}".utf8)
        try await store.appendAudit(AuditEntry(timestampMicros: TimeExpressions.nowMicros(), actor: actor, action: action, target: target,
                                               details: String(decoding: data, as: UTF8.self)))
    }

    // MARK: Keys

    private func keyChanges(_ request: Request) async throws -> KeyChanges {
        let data = try await requestBody(request)
        do { return try KeyRequest.changes(from: data) } catch { throw GatewayError.invalidRequest(error.message) }
    }

    func createKey(_ request: Request, _ context: GatehouseRequestContext) async throws -> Response {
        let changes = try await keyChanges(request)
        let secret = KeyMint.newSecret()
        let now = TimeExpressions.nowMicros()
        var key = VirtualKey(id: KeyMint.newID(), hash: KeyMint.hash(secret), prefix: KeyMint.displayPrefix(secret),
                             createdAtMicros: now, updatedAtMicros: now)
        do { try KeyRequest.apply(changes, to: &key) } catch { throw GatewayError.invalidRequest(error.message) }
        try await store.insertKey(key)
        try await audit(context, request, action: "key.create", target: key.id, details: KeyRequest.view(key))
        try await controls.state.refresh()
        return JSONResponse.make(IssuedKey(view: KeyRequest.view(key), key: secret,
                                           note: "Store this key now: Gatehouse keeps only its hash and cannot show it again."),
                                 status: .created)
    }

    func listKeys() async throws -> Response {
        JSONResponse.make(KeyList(data: try await store.allKeys().map(KeyRequest.view)))
    }

    func showKey(_ id: String) async throws -> Response {
        guard let key = try await store.key(id: id) else { throw GatewayError.notFound("no key with id \(id)") }
        return JSONResponse.make(KeyRequest.view(key))
    }

    private func existing(_ context: GatehouseRequestContext) async throws -> VirtualKey {
        let id = context.parameters.get("id") ?? ""
        guard let key = try await store.key(id: id) else { throw GatewayError.notFound("no key with id \(id)") }
        return key
    }

    func updateKey(_ request: Request, _ context: GatehouseRequestContext) async throws -> Response {
        var key = try await existing(context)
        guard key.revokedAtMicros == nil else { throw GatewayError.invalidRequest("the key \(key.id) is revoked; create a new one") }
        let changes = try await keyChanges(request)
        do { try KeyRequest.apply(changes, to: &key) } catch { throw GatewayError.invalidRequest(error.message) }
        key.updatedAtMicros = TimeExpressions.nowMicros()
        try await store.updateKey(key)
        try await audit(context, request, action: "key.update", target: key.id, details: KeyChangesDetails(changes: changes))
        try await controls.state.refresh()
        return JSONResponse.make(KeyRequest.view(key))
    }

    func revokeKey(_ request: Request, _ context: GatehouseRequestContext) async throws -> Response {
        var key = try await existing(context)
        if key.revokedAtMicros == nil {
            key.revokedAtMicros = TimeExpressions.nowMicros()
            key.updatedAtMicros = key.revokedAtMicros!
            try await store.updateKey(key)
            try await audit(context, request, action: "key.revoke", target: key.id, details: JSONValue.object([:]))
            try await controls.state.refresh()
        }
        return JSONResponse.make(KeyRequest.view(key))
    }

    /// A new secret for the same key (same id, limits, budget and history); the old secret stops
    /// working at once.
    func rotateKey(_ request: Request, _ context: GatehouseRequestContext) async throws -> Response {
        var key = try await existing(context)
        guard key.revokedAtMicros == nil else { throw GatewayError.invalidRequest("the key \(key.id) is revoked; create a new one") }
        let secret = KeyMint.newSecret()
        key.hash = KeyMint.hash(secret)
        key.prefix = KeyMint.displayPrefix(secret)
        key.updatedAtMicros = TimeExpressions.nowMicros()
        try await store.updateKey(key)
        try await audit(context, request, action: "key.rotate", target: key.id, details: KeyRotationDetails(prefix: key.prefix + "…"))
        try await controls.state.refresh()
        return JSONResponse.make(IssuedKey(view: KeyRequest.view(key), key: secret))
    }

    // MARK: Switches

    static func switchView(_ s: KillSwitch) -> SwitchView {
        SwitchView(kind: s.kind.rawValue, value: s.value, reason: s.reason, retryAfter: s.retryAfterSeconds,
                   createdAt: TimeExpressions.format(micros: s.createdAtMicros))
    }

    func listSwitches() async throws -> Response {
        JSONResponse.make(SwitchList(data: try await store.allSwitches().map(Self.switchView)))
    }

    /// `{"kind": "maintenance|provider|model|key|property", "value": …, "reason": …, "retry_after": 120}`.
    func setSwitch(_ request: Request, _ context: GatehouseRequestContext) async throws -> Response {
        let change = try Self.switchChange(from: try await requestBody(request))
        let (kind, value) = try switchTarget(kindText: change.kind, value: change.value)
        let reason = change.reason.map { String($0.prefix(500)) }
        if let retryAfter = change.retryAfter, !(1...86_400).contains(retryAfter) { throw GatewayError.invalidRequest("`retry_after` must be 1 to 86400 seconds") }
        let s = KillSwitch(kind: kind, value: value, reason: reason, retryAfterSeconds: change.retryAfter, createdAtMicros: TimeExpressions.nowMicros())
        try await store.setSwitch(s)
        try await audit(context, request, action: "switch.set", target: "\(kind.rawValue):\(value)", details: Self.switchView(s))
        try await controls.state.refresh()
        return JSONResponse.make(Self.switchView(s), status: .created)
    }

    /// The body of `POST /api/v1/switches`; an empty body names the missing `kind`.
    static func switchChange(from data: Data) throws -> SwitchChange {
        if data.isEmpty { return SwitchChange(kind: nil) }
        do {
            return try APIJSON.decode(SwitchChange.self, from: data)
        } catch let error as DecodingError {
            switch JSONBody.path(of: error).first?.stringValue {
            case "kind": throw GatewayError.invalidRequest("`kind` must be one of \(KillSwitch.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            case "retry_after": throw GatewayError.invalidRequest("`retry_after` must be 1 to 86400 seconds")
            default: throw GatewayError.invalidRequest(JSONBody.message(for: error))
            }
        }
    }

    func removeSwitch(_ request: Request, _ context: GatehouseRequestContext) async throws -> Response {
        let params = FormParameters(query: request.uri.query)
        let (kind, value) = try switchTarget(kindText: params.get("kind"), value: params.get("value"))
        guard try await store.removeSwitch(kind: kind, value: value) else { throw GatewayError.notFound("no \(kind.rawValue) switch for \"\(value)\"") }
        try await audit(context, request, action: "switch.remove", target: "\(kind.rawValue):\(value)", details: JSONValue.object([:]))
        try await controls.state.refresh()
        return JSONResponse.make(SwitchRemoval(removed: SwitchTarget(kind: kind.rawValue, value: value)))
    }

    private func switchTarget(kindText: String?, value: String?) throws -> (KillSwitch.Kind, String) {
        guard let kindText, let kind = KillSwitch.Kind(rawValue: kindText) else {
            throw GatewayError.invalidRequest("`kind` must be one of \(KillSwitch.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if kind == .maintenance { return (kind, "") }
        guard let value, !value.isEmpty, value.count <= 600 else { throw GatewayError.invalidRequest("`value` is required for a \(kind.rawValue) switch") }
        if kind == .property {
            let parts = value.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw GatewayError.invalidRequest("a property switch's `value` is name=value, e.g. customer=acme") }
            return (kind, parts[0].lowercased() + "=" + parts[1])
        }
        return (kind, value)
    }

    // MARK: Audit and budgets

    func audit(_ request: Request) async throws -> Response {
        let params = FormParameters(query: request.uri.query)
        let limit = try APIParameters.limit(params.get("limit"), fallback: 100, max: 1000)
        let entries = try await store.audit(limit: limit, before: params.get("before").flatMap(Int64.init))
        let records = entries.map { e in
            // Details are written by this file as JSON; an unreadable one (never expected) shows as {}.
            AuditRecord(id: e.id, timestamp: TimeExpressions.format(micros: e.timestampMicros), actor: e.actor, action: e.action, target: e.target,
                        details: (try? APIJSON.decode(JSONValue.self, from: Data(e.details.utf8))) ?? .object([:]))
        }
        return JSONResponse.make(AuditPage(data: records, nextBefore: entries.count == limit ? entries.last?.id : nil))
    }

    /// Every budget with its current window: limit, spent, reserved by leases, thresholds crossed.
    func budgetReport() async throws -> Response {
        let now = TimeExpressions.nowMicros()
        let rows = try await BudgetReporter(store: store, controls: controls, budgets: budgets).budgetUses().map { use in
            let percent = use.fraction * 100
            let thresholds = use.softThresholds.map { Int(($0 * 100).rounded()) }
            return BudgetWindowView(
                name: use.name, scope: use.scope, value: use.value, period: use.period,
                windowStart: TimeExpressions.format(micros: use.windowStartMicros),
                windowEnd: use.windowEndMicros.map { TimeExpressions.format(micros: $0) },
                limitUSD: MicroDollars(use.limitMicros).dollarString, spentUSD: MicroDollars(use.usedMicros).dollarString,
                reservedUSD: MicroDollars(max(0, use.grantedMicros - use.usedMicros)).dollarString,
                percentUsed: (percent * 10).rounded() / 10,
                softThresholds: thresholds, thresholdsCrossed: thresholds.filter { Double($0) <= percent },
                exhausted: use.usedMicros >= use.limitMicros)
        }
        let events = try await store.budgetEvents(sinceMicros: now - 31 * 86_400_000_000, limit: 200).map { e in
            BudgetEventView(counter: e.counter, thresholdPercent: e.thresholdPercent, usedUSD: MicroDollars(e.usedMicros).dollarString,
                            limitUSD: MicroDollars(e.limitMicros).dollarString, windowStart: TimeExpressions.format(micros: e.windowStartMicros),
                            timestamp: TimeExpressions.format(micros: e.timestampMicros))
        }
        return JSONResponse.make(BudgetReport(data: rows, events: events))
    }
}
