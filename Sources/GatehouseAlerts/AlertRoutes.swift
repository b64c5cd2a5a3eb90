import Foundation
import GatehouseCore
import GatehouseHTTP
import HTTPTypes
import Hummingbird
import NIOCore

/// The alerting API: rules and their state, alert history, deliveries, silences, probes and
/// heartbeats.
public struct AlertRoutes: Sendable {
    let settings: AlertSettings
    let service: AlertService
    let store: any AlertStore
    let probes: ProbeMonitor

    public init(settings: AlertSettings, service: AlertService, store: any AlertStore, probes: ProbeMonitor) {
        self.settings = settings
        self.service = service
        self.store = store
        self.probes = probes
    }

    public func addRoutes(to api: APIRouter) {
        api.team.get("/api/v1/alerts") { request, _ in await self.answer { try await self.alerts(request) } }
        api.team.get("/api/v1/alerts/rules") { _, _ in await self.answer { try await self.rules() } }
        api.team.get("/api/v1/alerts/deliveries") { request, _ in await self.answer { try await self.deliveries(request) } }
        api.team.get("/api/v1/silences") { _, _ in await self.answer { try await self.silences() } }
        api.team.post("/api/v1/silences") { request, _ in await self.answer { try await self.addSilence(request) } }
        api.team.delete("/api/v1/silences/{id}") { _, context in await self.answer { try await self.expire(context.parameters.get("id") ?? "") } }
        api.team.get("/api/v1/probes") { _, _ in await self.answer { try await self.probeList() } }
        api.team.get("/api/v1/probes/{name}/results") { request, context in
            await self.answer { try await self.probeResults(request, name: context.parameters.get("name") ?? "") }
        }
        api.open.post("/api/v1/heartbeats/{name}") { request, context in await self.answer { try await self.ping(request, name: context.parameters.get("name") ?? "") } }
        api.open.get("/api/v1/heartbeats/{name}/ping") { request, context in await self.answer { try await self.ping(request, name: context.parameters.get("name") ?? "") } }
    }

    func answer(_ body: () async throws -> Response) async -> Response { await APIAnswer.run(body) }

    static func json(_ a: ActiveAlert) -> [String: Any] {
        [
            "rule": a.rule, "fingerprint": a.fingerprint, "labels": a.labels, "annotations": a.annotations, "severity": a.severity.rawValue,
            "state": a.state.rawValue, "value": a.value.isFinite ? a.value : 0, "summary": a.summary, "expr": a.expression,
            "active_since": TimeExpressions.format(micros: a.activeSinceMicros),
            "fired_at": a.firedAtMicros.map { TimeExpressions.format(micros: $0) as Any } ?? NSNull(),
        ]
    }

    /// Alerts pending or firing now, with whether a silence mutes them, and the latest history.
    func alerts(_ request: Request) async throws -> Response {
        let params = FormParameters(query: request.uri.query)
        let limit = try APIParameters.limit(params.get("limit"), fallback: 100, max: 1000)
        let now = TimeExpressions.nowMicros()
        let silences = try await store.silences()
        let active = await service.evaluator.active().map { a -> [String: Any] in
            var o = Self.json(a)
            o["silenced_by"] = silences.first { $0.mutes(a.labels, at: now) }?.id as Any? ?? NSNull()
            return o
        }
        let history = try await store.alertHistory(limit: limit, rule: params.get("rule")).map { t -> [String: Any] in
            ["timestamp": TimeExpressions.format(micros: t.timestampMicros), "rule": t.rule, "fingerprint": t.fingerprint, "labels": t.labels,
             "state": t.state.rawValue, "value": t.value, "severity": t.severity.rawValue, "summary": t.summary]
        }
        return JSONResponse.make(["active": active, "history": history])
    }

    func rules() async throws -> Response {
        let active = await service.evaluator.active()
        let failures = await service.evaluator.ruleFailures()
        return JSONResponse.make(["data": settings.rules.map { r -> [String: Any] in
            let mine = active.filter { $0.rule == r.name }
            let state = mine.contains { $0.state == .firing } ? "firing" : (mine.isEmpty ? "inactive" : "pending")
            return [
                "name": r.name, "expr": r.expressionText, "signal": r.expression.signal.rawValue, "threshold": r.expression.thresholdText,
                "window": r.expression.windowMicros.map { TimeExpressions.formatDuration(micros: $0) as Any } ?? NSNull(),
                "for": TimeExpressions.formatDuration(micros: r.forMicros), "severity": r.severity.rawValue, "labels": r.labels,
                "annotations": r.annotations, "state": state, "alerts": mine.map(Self.json),
                "last_error": failures[r.name] as Any? ?? NSNull(),
            ]
        }, "evaluation_interval_seconds": settings.evaluationIntervalSeconds])
    }

    func deliveries(_ request: Request) async throws -> Response {
        let limit = try APIParameters.limit(FormParameters(query: request.uri.query).get("limit"), fallback: 100, max: 1000)
        return JSONResponse.make(["data": try await store.deliveries(limit: limit).map { d -> [String: Any] in
            ["timestamp": TimeExpressions.format(micros: d.timestampMicros), "receiver": d.receiver, "group_key": d.groupKey, "status": d.status,
             "attempt": d.attempt, "outcome": d.outcome.rawValue, "detail": d.detail]
        }])
    }

    static func json(_ s: Silence, now: Int64) -> [String: Any] {
        ["id": s.id, "matchers": s.matchers.map(\.description), "starts_at": TimeExpressions.format(micros: s.startsAtMicros),
         "ends_at": TimeExpressions.format(micros: s.endsAtMicros), "created_by": s.createdBy, "comment": s.comment,
         "state": s.isActive(at: now) ? "active" : (now < s.startsAtMicros ? "pending" : "expired")]
    }

    func silences() async throws -> Response {
        let now = TimeExpressions.nowMicros()
        return JSONResponse.make(["data": try await store.silences().map { Self.json($0, now: now) }])
    }

    /// `{"matchers": ["alertname=HighErrorRate", "severity!=low"], "ends_at": "…" | "duration": "2h", "comment": "…", "created_by": "…"}`.
    func addSilence(_ request: Request) async throws -> Response {
        let body = try await request.body.collect(upTo: 64 * 1024)
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] else {
            throw GatewayError.invalidRequest("send a JSON object: {\"matchers\": [\"alertname=X\"], \"duration\": \"2h\", \"comment\": \"…\"}")
        }
        let texts = (object["matchers"] as? [String]) ?? []
        let matchers = texts.compactMap(Silence.Matcher.init)
        guard !texts.isEmpty, matchers.count == texts.count, matchers.count <= 20 else {
            throw GatewayError.invalidRequest("`matchers` must be 1 to 20 of label=value or label!=value", param: "matchers")
        }
        let now = TimeExpressions.nowMicros()
        let starts = try (object["starts_at"] as? String).map { try APIParameters.instant($0, name: "starts_at") } ?? now
        var ends: Int64
        if let text = object["ends_at"] as? String {
            ends = try APIParameters.instant(text, name: "ends_at")
        } else if let text = object["duration"] as? String, let d = TimeExpressions.durationMicros(text) {
            ends = starts + d
        } else {
            throw GatewayError.invalidRequest("give `ends_at` (RFC 3339) or `duration` (such as 2h)", param: "ends_at")
        }
        guard ends > starts, ends > now else { throw GatewayError.invalidRequest("the silence must end in the future, after it starts", param: "ends_at") }
        guard ends - starts <= 366 * 86_400_000_000 else { throw GatewayError.invalidRequest("a silence may last at most a year", param: "ends_at") }
        let comment = String(((object["comment"] as? String) ?? "").prefix(1000))
        let silence = Silence(id: UUID().uuidString.lowercased(), matchers: matchers, startsAtMicros: starts, endsAtMicros: ends,
                              createdBy: String(((object["created_by"] as? String) ?? "api").prefix(200)), comment: comment)
        try await store.addSilence(silence)
        return JSONResponse.make(Self.json(silence, now: now), status: .created)
    }

    func expire(_ id: String) async throws -> Response {
        guard try await store.expireSilence(id: id, atMicros: TimeExpressions.nowMicros()) else { throw GatewayError.notFound("no silence with id \(id)") }
        return JSONResponse.make(["id": id, "state": "expired"])
    }

    func probeList() async throws -> Response {
        let now = TimeExpressions.nowMicros()
        var rows: [[String: Any]] = []
        for s in try await probes.states(nowMicros: now) {
            var o: [String: Any] = [
                "name": s.name, "kind": s.kind, "status": s.up.map { $0 ? "up" : "down" } ?? "unknown",
                "since": s.since.map { TimeExpressions.format(micros: $0) as Any } ?? NSNull(),
                "last_check": s.lastCheckMicros.map { TimeExpressions.format(micros: $0) as Any } ?? NSNull(),
                "last_latency_ms": s.lastLatencyMicros.map { Double($0) / 1000 as Any } ?? NSNull(), "last_error": s.lastError as Any? ?? NSNull(),
            ]
            if s.kind == "http" {
                let day = try await store.probeResults(probe: s.name, fromMicros: now - 86_400_000_000, limit: 100_000)
                o["uptime_24h"] = day.isEmpty ? NSNull() : (Double(day.filter(\.up).count) / Double(day.count) * 10000).rounded() / 100 as Any
                o["checks_24h"] = day.count
            }
            rows.append(o)
        }
        return JSONResponse.make(["data": rows])
    }

    /// A probe's results, newest first: the response-time series.
    func probeResults(_ request: Request, name: String) async throws -> Response {
        guard settings.probes.contains(where: { $0.name == name }) else { throw GatewayError.notFound("no probe named \(name)") }
        let params = FormParameters(query: request.uri.query)
        let from = try params.get("from").map { try APIParameters.instant($0, name: "from") } ?? TimeExpressions.nowMicros() - 86_400_000_000
        let limit = try APIParameters.limit(params.get("limit"), fallback: 500, max: 10_000)
        return JSONResponse.make(["probe": name, "data": try await store.probeResults(probe: name, fromMicros: from, limit: limit).map { r -> [String: Any] in
            ["timestamp": TimeExpressions.format(micros: r.timestampMicros), "up": r.up, "status": r.status as Any? ?? NSNull(),
             "latency_ms": Double(r.latencyMicros) / 1000, "error": r.error as Any? ?? NSNull()]
        }])
    }

    /// A job calling in. Needs the heartbeat's token when it has one (`?token=` or a bearer token).
    func ping(_ request: Request, name: String) async throws -> Response {
        guard let heartbeat = settings.heartbeats.first(where: { $0.name == name }) else { throw GatewayError.notFound("no heartbeat named \(name)") }
        if let token = heartbeat.token {
            let given = FormParameters(query: request.uri.query).get("token") ?? request.headers[.authorization].flatMap(BearerToken.token)
            guard let given, ConstantTime.equal(given, token) else {
                throw GatewayError(status: .unauthorized, message: "this heartbeat needs its token (?token= or Authorization: Bearer)", type: "authentication_error",
                                   code: "invalid_heartbeat_token")
            }
        }
        let now = TimeExpressions.nowMicros()
        try await store.recordHeartbeat(name: name, atMicros: now)
        return JSONResponse.make(["name": name, "received": TimeExpressions.format(micros: now)])
    }
}
