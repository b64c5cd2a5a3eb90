import Crypto
import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseHTTP
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The admin API: virtual keys, kill switches, budgets and the audit log. Every change is
/// applied to the shared store, picked up by every instance, and written to the audit log.
/// The changes themselves are the operations below (`createKey`, `setSwitch`, …), which the
/// console's pages call too, so both make a change the same way and audit it the same way.
public struct AdminRoutes: Sendable {
    let store: any KeyStore & SwitchStore & AuditLog & BudgetEventStore & QuotaStore
    let controls: Controls
    let budgets: [QuotaRule]
    static let logger = Logger(label: "gatehouse.admin")

    /// Largest admin request body.
    static let maxBodyBytes = 64 * 1024
    /// The `Retry-After` seconds a maintenance switch may send.
    static let retryAfterRange = 1...86_400
    public static let retryAfterMessage = "`retry_after` must be 1 to 86400 seconds"
    /// A switch's reason is cut to this length: it is sent to every refused caller.
    static let maxReasonCharacters = 500
    /// Key ids are short; a longer one cannot exist, so it is not looked up.
    static let maxKeyIDBytes = 128

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

    /// Who changes something through the admin API: the token's fingerprint (never the token)
    /// and the client's address.
    public static func actor(_ request: Request, _ context: GatehouseRequestContext) -> String {
        let token = request.headers[.authorization].flatMap(BearerToken.token) ?? ""
        return "admin-token:" + String(Redactor.fingerprint(ofSecret: token).suffix(12)) + "@" + (context.clientIP ?? "unknown")
    }

    /// Writes one change to the audit log; `details` are stored as JSON and never hold a secret.
    public func audit(actor: String, action: String, target: String, details: some Encodable) async throws {
        let data = (try? APIJSON.encode(details)) ?? Data("{}".utf8)
        try await store.appendAudit(AuditEntry(timestampMicros: TimeExpressions.nowMicros(), actor: actor, action: action, target: target,
                                               details: String(decoding: data, as: UTF8.self)))
    }

    // MARK: Changes: store, audit, then apply on this instance at once

    /// A new key with `changes` applied. Its secret is returned here only: the store keeps its hash.
    public func createKey(_ changes: KeyChanges, actor: String) async throws -> (key: VirtualKey, secret: String) {
        let secret = KeyMint.newSecret()
        let now = TimeExpressions.nowMicros()
        var key = VirtualKey(id: KeyMint.newID(), hash: KeyMint.hash(secret), prefix: KeyMint.displayPrefix(secret),
                             createdAtMicros: now, updatedAtMicros: now)
        do { try KeyRequest.apply(changes, to: &key) } catch { throw GatewayError.invalidRequest(error.message) }
        try await store.insertKey(key)
        try await audit(actor: actor, action: "key.create", target: key.id, details: KeyRequest.view(key))
        await reload()
        return (key, secret)
    }

    /// Applies the changes `decide` reads for the key as stored (it runs once the key is known to
    /// exist and not be revoked). When `decide` returns nil nothing is written or audited.
    public func updateKey(id: String, actor: String,
                          _ decide: (VirtualKey) async throws -> KeyChanges?) async throws -> (key: VirtualKey, changes: KeyChanges?) {
        var key = try await existingKey(id)
        try Self.refuseRevoked(key)
        guard let changes = try await decide(key) else { return (key, nil) }
        do { try KeyRequest.apply(changes, to: &key) } catch { throw GatewayError.invalidRequest(error.message) }
        key.updatedAtMicros = TimeExpressions.nowMicros()
        try await store.updateKey(key)
        try await audit(actor: actor, action: "key.update", target: key.id, details: KeyChangesDetails(changes: changes))
        await reload()
        return (key, changes)
    }

    /// Revokes the key; revoking a revoked key changes nothing (`revokedNow` is false).
    public func revokeKey(id: String, actor: String) async throws -> (key: VirtualKey, revokedNow: Bool) {
        var key = try await existingKey(id)
        guard key.revokedAtMicros == nil else { return (key, false) }
        let now = TimeExpressions.nowMicros()
        key.revokedAtMicros = now
        key.updatedAtMicros = now
        try await store.updateKey(key)
        try await audit(actor: actor, action: "key.revoke", target: key.id, details: JSONValue.object([:]))
        await reload()
        return (key, true)
    }

    /// A new secret for the same key (same id, limits, budget and history); the old secret stops
    /// working at once. The new secret is returned here only.
    public func rotateKey(id: String, actor: String) async throws -> (key: VirtualKey, secret: String) {
        var key = try await existingKey(id)
        try Self.refuseRevoked(key)
        let secret = KeyMint.newSecret()
        key.hash = KeyMint.hash(secret)
        key.prefix = KeyMint.displayPrefix(secret)
        key.updatedAtMicros = TimeExpressions.nowMicros()
        try await store.updateKey(key)
        try await audit(actor: actor, action: "key.rotate", target: key.id, details: KeyRotationDetails(prefix: key.prefix + "…"))
        await reload()
        return (key, secret)
    }

    /// Turns a switch on (or replaces it), checking the kind, the value, `retryAfter` and the
    /// reason's length as the API states them.
    public func setSwitch(kind kindText: String?, value: String?, reason: String?, retryAfter: Int?, actor: String) async throws -> KillSwitch {
        let (kind, value) = try switchTarget(kindText: kindText, value: value)
        if let retryAfter, !Self.retryAfterRange.contains(retryAfter) { throw GatewayError.invalidRequest(Self.retryAfterMessage) }
        let s = KillSwitch(kind: kind, value: value, reason: reason.map { String($0.prefix(Self.maxReasonCharacters)) }, retryAfterSeconds: retryAfter,
                           createdAtMicros: TimeExpressions.nowMicros())
        try await store.setSwitch(s)
        try await audit(actor: actor, action: "switch.set", target: "\(kind.rawValue):\(value)", details: Self.switchView(s))
        await reload()
        return s
    }

    /// Turns a switch off; a switch that is not on is a 404.
    public func removeSwitch(kind kindText: String?, value: String?, actor: String) async throws -> (kind: KillSwitch.Kind, value: String) {
        let (kind, value) = try switchTarget(kindText: kindText, value: value)
        guard try await store.removeSwitch(kind: kind, value: value) else { throw GatewayError.notFound("no \(kind.rawValue) switch for \"\(value)\"") }
        try await audit(actor: actor, action: "switch.remove", target: "\(kind.rawValue):\(value)", details: JSONValue.object([:]))
        await reload()
        return (kind, value)
    }

    private func existingKey(_ id: String) async throws -> VirtualKey {
        guard id.utf8.count <= Self.maxKeyIDBytes, let key = try await store.key(id: id) else { throw GatewayError.notFound("no key with id \(id)") }
        return key
    }

    private static func refuseRevoked(_ key: VirtualKey) throws {
        guard key.revokedAtMicros == nil else { throw GatewayError.invalidRequest("the key \(key.id) is revoked; create a new one") }
    }

    /// Applies a stored change on this instance at once. The change is already stored and
    /// audited, so a failed reload is not the change failing: the control sync retries it within
    /// a second, and the answer (with a new key's secret) must still reach the caller.
    private func reload() async {
        do { try await controls.state.refresh() } catch {
            Self.logger.warning("could not reload keys and switches after a change; the control sync retries",
                                metadata: ["error": "\(Redactor.scrubText(String(describing: error)))"])
        }
    }

    // MARK: Keys

    private func keyChanges(_ request: Request) async throws -> KeyChanges {
        let data = try await requestBody(request)
        do { return try KeyRequest.changes(from: data) } catch { throw GatewayError.invalidRequest(error.message) }
    }

    func createKey(_ request: Request, _ context: GatehouseRequestContext) async throws -> Response {
        let (key, secret) = try await createKey(try await keyChanges(request), actor: Self.actor(request, context))
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

    func updateKey(_ request: Request, _ context: GatehouseRequestContext) async throws -> Response {
        let (key, _) = try await updateKey(id: context.parameters.get("id") ?? "", actor: Self.actor(request, context)) { _ in
            try await keyChanges(request)
        }
        return JSONResponse.make(KeyRequest.view(key))
    }

    func revokeKey(_ request: Request, _ context: GatehouseRequestContext) async throws -> Response {
        JSONResponse.make(KeyRequest.view(try await revokeKey(id: context.parameters.get("id") ?? "", actor: Self.actor(request, context)).key))
    }

    func rotateKey(_ request: Request, _ context: GatehouseRequestContext) async throws -> Response {
        let (key, secret) = try await rotateKey(id: context.parameters.get("id") ?? "", actor: Self.actor(request, context))
        return JSONResponse.make(IssuedKey(view: KeyRequest.view(key), key: secret))
    }

    // MARK: Switches

    public static func switchView(_ s: KillSwitch) -> SwitchView {
        SwitchView(kind: s.kind.rawValue, value: s.value, reason: s.reason, retryAfter: s.retryAfterSeconds,
                   createdAt: TimeExpressions.format(micros: s.createdAtMicros))
    }

    func listSwitches() async throws -> Response {
        JSONResponse.make(SwitchList(data: try await store.allSwitches().map(Self.switchView)))
    }

    /// `{"kind": "maintenance|provider|model|key|property", "value": …, "reason": …, "retry_after": 120}`.
    func setSwitch(_ request: Request, _ context: GatehouseRequestContext) async throws -> Response {
        let change = try Self.switchChange(from: try await requestBody(request))
        let s = try await setSwitch(kind: change.kind, value: change.value, reason: change.reason, retryAfter: change.retryAfter,
                                    actor: Self.actor(request, context))
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
            case "retry_after": throw GatewayError.invalidRequest(retryAfterMessage)
            default: throw GatewayError.invalidRequest(JSONBody.message(for: error))
            }
        }
    }

    func removeSwitch(_ request: Request, _ context: GatehouseRequestContext) async throws -> Response {
        let params = FormParameters(query: request.uri.query)
        let (kind, value) = try await removeSwitch(kind: params.get("kind"), value: params.get("value"), actor: Self.actor(request, context))
        return JSONResponse.make(SwitchRemoval(removed: SwitchTarget(kind: kind.rawValue, value: value)))
    }

    public func switchTarget(kindText: String?, value: String?) throws -> (KillSwitch.Kind, String) {
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

    /// The longest text an audit filter takes.
    public static let maxAuditFilterCharacters = 200

    func audit(_ request: Request) async throws -> Response {
        let params = FormParameters(query: request.uri.query)
        let limit = try APIParameters.limit(params.get("limit"), fallback: 100, max: 1000)
        func filterText(_ name: String) throws -> String {
            let text = params.get(name) ?? ""
            guard text.count <= Self.maxAuditFilterCharacters else {
                throw GatewayError.invalidRequest("`\(name)` must be at most \(Self.maxAuditFilterCharacters) characters", param: name)
            }
            return text
        }
        let filter = AuditFilter(actor: try filterText("actor"), action: try filterText("action"), target: try filterText("target"))
        let entries = try await store.audit(limit: limit, before: params.get("before").flatMap(Int64.init), matching: filter)
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
