import Crypto
import Foundation
import GatehouseCore
import GatehouseHTTP
import HTTPTypes
import Hummingbird
import NIOCore

/// The admin API: virtual keys, kill switches, budgets and the audit log. Every change is
/// applied to the shared store, picked up by every instance, and written to the audit log.
public struct AdminRoutes: Sendable {
    let store: any ControlStore
    let controls: Controls
    let budgets: [QuotaRule]

    /// Largest admin request body.
    static let maxBodyBytes = 64 * 1024

    public init(store: any ControlStore, controls: Controls, budgets: [QuotaRule]) {
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

    struct Failure: Error {
        var status: HTTPResponse.Status
        var message: String
        static func bad(_ m: String) -> Failure { Failure(status: .badRequest, message: m) }
        static func notFound(_ m: String) -> Failure { Failure(status: .notFound, message: m) }
    }

    private func guarded(_ request: Request, _ context: GatehouseRequestContext,
                         _ body: (Request, GatehouseRequestContext) async throws -> Response) async -> Response {
        do {
            return try await body(request, context)
        } catch let f as Failure {
            return GatewayError(status: f.status, message: f.message, type: f.status == .notFound ? "not_found_error" : "invalid_request_error")
                .response(dialect: .openAI)
        } catch {
            context.logger.error("admin request failed", metadata: ["error": "\(Redactor.scrubText(String(describing: error)))"])
            return GatewayError.internalError("the store could not complete the change; nothing was applied").response(dialect: .openAI)
        }
    }

    private func jsonBody(_ request: Request) async throws -> [String: Any] {
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: Self.maxBodyBytes) } catch is NIOTooManyBytesError {
            throw Failure(status: .contentTooLarge, message: "admin request bodies are limited to \(Self.maxBodyBytes) bytes")
        } catch {
            throw Failure.bad("the request body could not be read: its framing is malformed")
        }
        if buffer.readableBytes == 0 { return [:] }
        guard let object = try? JSONSerialization.jsonObject(with: Data(buffer: buffer)) as? [String: Any] else {
            throw Failure.bad("the body must be a JSON object")
        }
        return object
    }

    private func audit(_ context: GatehouseRequestContext, _ request: Request, action: String, target: String, details: [String: Any]) async throws {
        let token = request.headers[.authorization].flatMap(BearerToken.token) ?? ""
        let actor = "admin-token:" + String(Redactor.fingerprint(ofSecret: token).suffix(12)) + "@" + (context.clientIP ?? "unknown")
        let data = (try? JSONSerialization.data(withJSONObject: details, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        try await store.appendAudit(AuditEntry(timestampMicros: TimeExpressions.nowMicros(), actor: actor, action: action, target: target,
                                               details: String(decoding: data, as: UTF8.self)))
    }

    // MARK: Keys

    func createKey(_ request: Request, _ context: GatehouseRequestContext) async throws -> Response {
        let object = try await jsonBody(request)
        let secret = KeyMint.newSecret()
        let now = TimeExpressions.nowMicros()
        var key = VirtualKey(id: KeyMint.newID(), hash: KeyMint.hash(secret), prefix: KeyMint.displayPrefix(secret),
                             createdAtMicros: now, updatedAtMicros: now)
        do { try KeyRequest.apply(object, to: &key) } catch { throw Failure.bad(error.message) }
        try await store.insertKey(key)
        try await audit(context, request, action: "key.create", target: key.id, details: KeyRequest.json(key))
        try await controls.state.refresh()
        var out = KeyRequest.json(key)
        out["key"] = secret
        out["note"] = "Store this key now: Gatehouse keeps only its hash and cannot show it again."
        return JSONResponse.make(out, status: .created)
    }

    func listKeys() async throws -> Response {
        let keys = try await store.allKeys()
        return JSONResponse.make(["data": keys.map(KeyRequest.json)])
    }

    func showKey(_ id: String) async throws -> Response {
        guard let key = try await store.key(id: id) else { throw Failure.notFound("no key with id \(id)") }
        return JSONResponse.make(KeyRequest.json(key))
    }

    private func existing(_ context: GatehouseRequestContext) async throws -> VirtualKey {
        let id = context.parameters.get("id") ?? ""
        guard let key = try await store.key(id: id) else { throw Failure.notFound("no key with id \(id)") }
        return key
    }

    func updateKey(_ request: Request, _ context: GatehouseRequestContext) async throws -> Response {
        var key = try await existing(context)
        guard key.revokedAtMicros == nil else { throw Failure.bad("the key \(key.id) is revoked; create a new one") }
        let object = try await jsonBody(request)
        do { try KeyRequest.apply(object, to: &key) } catch { throw Failure.bad(error.message) }
        key.updatedAtMicros = TimeExpressions.nowMicros()
        try await store.updateKey(key)
        try await audit(context, request, action: "key.update", target: key.id, details: ["changes": object])
        try await controls.state.refresh()
        return JSONResponse.make(KeyRequest.json(key))
    }

    func revokeKey(_ request: Request, _ context: GatehouseRequestContext) async throws -> Response {
        var key = try await existing(context)
        if key.revokedAtMicros == nil {
            key.revokedAtMicros = TimeExpressions.nowMicros()
            key.updatedAtMicros = key.revokedAtMicros!
            try await store.updateKey(key)
            try await audit(context, request, action: "key.revoke", target: key.id, details: [:])
            try await controls.state.refresh()
        }
        return JSONResponse.make(KeyRequest.json(key))
    }

    /// A new secret for the same key (same id, limits, budget and history); the old secret stops
    /// working at once.
    func rotateKey(_ request: Request, _ context: GatehouseRequestContext) async throws -> Response {
        var key = try await existing(context)
        guard key.revokedAtMicros == nil else { throw Failure.bad("the key \(key.id) is revoked; create a new one") }
        let secret = KeyMint.newSecret()
        key.hash = KeyMint.hash(secret)
        key.prefix = KeyMint.displayPrefix(secret)
        key.updatedAtMicros = TimeExpressions.nowMicros()
        try await store.updateKey(key)
        try await audit(context, request, action: "key.rotate", target: key.id, details: ["prefix": key.prefix + "…"])
        try await controls.state.refresh()
        var out = KeyRequest.json(key)
        out["key"] = secret
        return JSONResponse.make(out)
    }

    // MARK: Switches

    static func switchJSON(_ s: KillSwitch) -> [String: Any] {
        ["kind": s.kind.rawValue, "value": s.value, "reason": s.reason as Any? ?? NSNull(),
         "retry_after": s.retryAfterSeconds as Any? ?? NSNull(), "created_at": TimeExpressions.format(micros: s.createdAtMicros)]
    }

    func listSwitches() async throws -> Response {
        JSONResponse.make(["data": try await store.allSwitches().map(Self.switchJSON)])
    }

    /// `{"kind": "maintenance|provider|model|key|property", "value": …, "reason": …, "retry_after": 120}`.
    func setSwitch(_ request: Request, _ context: GatehouseRequestContext) async throws -> Response {
        let object = try await jsonBody(request)
        let (kind, value) = try switchTarget(kindText: object["kind"] as? String, value: object["value"] as? String)
        let reason = (object["reason"] as? String).map { String($0.prefix(500)) }
        var retryAfter: Int?
        if let v = object["retry_after"] {
            guard let n = (v as? NSNumber)?.intValue, n >= 1, n <= 86_400 else { throw Failure.bad("`retry_after` must be 1 to 86400 seconds") }
            retryAfter = n
        }
        let s = KillSwitch(kind: kind, value: value, reason: reason, retryAfterSeconds: retryAfter, createdAtMicros: TimeExpressions.nowMicros())
        try await store.setSwitch(s)
        try await audit(context, request, action: "switch.set", target: "\(kind.rawValue):\(value)", details: Self.switchJSON(s))
        try await controls.state.refresh()
        return JSONResponse.make(Self.switchJSON(s), status: .created)
    }

    func removeSwitch(_ request: Request, _ context: GatehouseRequestContext) async throws -> Response {
        let params = FormParameters(query: request.uri.query)
        let (kind, value) = try switchTarget(kindText: params.get("kind"), value: params.get("value"))
        guard try await store.removeSwitch(kind: kind, value: value) else { throw Failure.notFound("no \(kind.rawValue) switch for \"\(value)\"") }
        try await audit(context, request, action: "switch.remove", target: "\(kind.rawValue):\(value)", details: [:])
        try await controls.state.refresh()
        return JSONResponse.make(["removed": ["kind": kind.rawValue, "value": value]])
    }

    private func switchTarget(kindText: String?, value: String?) throws -> (KillSwitch.Kind, String) {
        guard let kindText, let kind = KillSwitch.Kind(rawValue: kindText) else {
            throw Failure.bad("`kind` must be one of \(KillSwitch.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if kind == .maintenance { return (kind, "") }
        guard let value, !value.isEmpty, value.count <= 600 else { throw Failure.bad("`value` is required for a \(kind.rawValue) switch") }
        if kind == .property {
            let parts = value.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw Failure.bad("a property switch's `value` is name=value, e.g. customer=acme") }
            return (kind, parts[0].lowercased() + "=" + parts[1])
        }
        return (kind, value)
    }

    // MARK: Audit and budgets

    func audit(_ request: Request) async throws -> Response {
        let params = FormParameters(query: request.uri.query)
        let limit = try APIParameters.limit(params.get("limit"), fallback: 100, max: 1000)
        let entries = try await store.audit(limit: limit, before: params.get("before").flatMap(Int64.init))
        return JSONResponse.make([
            "data": entries.map { e -> [String: Any] in
                let details = (try? JSONSerialization.jsonObject(with: Data(e.details.utf8))) ?? [:]
                return ["id": e.id, "timestamp": TimeExpressions.format(micros: e.timestampMicros), "actor": e.actor, "action": e.action,
                        "target": e.target, "details": details]
            },
            "next_before": entries.count == limit ? entries.last.map { $0.id as Any } ?? NSNull() : NSNull(),
        ])
    }

    /// Every budget with its current window: limit, spent, reserved by leases, thresholds crossed.
    func budgetReport() async throws -> Response {
        let now = TimeExpressions.nowMicros()
        let rows = try await BudgetReporter(store: store, controls: controls, budgets: budgets).budgetUses().map { use -> [String: Any] in
            let percent = use.fraction * 100
            let thresholds = use.softThresholds.map { Int(($0 * 100).rounded()) }
            return [
                "name": use.name, "scope": use.scope, "value": use.value as Any? ?? NSNull(), "period": use.period,
                "window_start": TimeExpressions.format(micros: use.windowStartMicros),
                "window_end": use.windowEndMicros.map { TimeExpressions.format(micros: $0) as Any } ?? NSNull(),
                "limit_usd": MicroDollars(use.limitMicros).dollarString, "spent_usd": MicroDollars(use.usedMicros).dollarString,
                "reserved_usd": MicroDollars(max(0, use.grantedMicros - use.usedMicros)).dollarString,
                "percent_used": (percent * 10).rounded() / 10,
                "soft_thresholds": thresholds, "thresholds_crossed": thresholds.filter { Double($0) <= percent },
                "exhausted": use.usedMicros >= use.limitMicros,
            ]
        }
        let events = try await store.budgetEvents(sinceMicros: now - 31 * 86_400_000_000, limit: 200)
        return JSONResponse.make([
            "data": rows,
            "events": events.map { e -> [String: Any] in
                ["counter": e.counter, "threshold_percent": e.thresholdPercent, "used_usd": MicroDollars(e.usedMicros).dollarString,
                 "limit_usd": MicroDollars(e.limitMicros).dollarString, "window_start": TimeExpressions.format(micros: e.windowStartMicros),
                 "timestamp": TimeExpressions.format(micros: e.timestampMicros)]
            },
        ])
    }
}
