import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseHTTP
import HTTPTypes
import Hummingbird

/// The probes API: each HTTP probe and heartbeat with its state, a probe's results, and the
/// routes jobs call to say they ran.
public struct ProbeRoutes: Sendable {
    let settings: AlertSettings
    let store: any AlertStore
    let probes: ProbeMonitor

    public init(settings: AlertSettings, store: any AlertStore, probes: ProbeMonitor) {
        self.settings = settings
        self.store = store
        self.probes = probes
    }

    public func addRoutes(to api: APIRouter) {
        api.team.get("/api/v1/probes") { _, _ in await self.answer { try await self.probeList() } }
        api.team.get("/api/v1/probes/{name}/results") { request, context in
            await self.answer { try await self.probeResults(request, name: context.parameters.get("name") ?? "") }
        }
        // Open: a heartbeat checks its own token.
        api.open.post("/api/v1/heartbeats/{name}") { request, context in await self.answer { try await self.ping(request, name: context.parameters.get("name") ?? "") } }
        api.open.get("/api/v1/heartbeats/{name}/ping") { request, context in await self.answer { try await self.ping(request, name: context.parameters.get("name") ?? "") } }
    }

    func answer(_ body: () async throws -> Response) async -> Response { await APIAnswer.run(body) }

    func probeList() async throws -> Response {
        let now = TimeExpressions.nowMicros()
        var rows: [ProbeView] = []
        for s in try await probes.states(nowMicros: now) {
            // Heartbeats have no checks of their own: their 24-hour figures are left out.
            var day: [ProbeResult]?
            if s.kind == "http" { day = try await store.probeResults(probe: s.name, fromMicros: now - 86_400_000_000, limit: 100_000) }
            rows.append(ProbeView(s, lastDay: day))
        }
        return JSONResponse.make(ProbeList(data: rows))
    }

    /// A probe's results, newest first: the response-time series.
    func probeResults(_ request: Request, name: String) async throws -> Response {
        guard settings.probes.contains(where: { $0.name == name }) else { throw GatewayError.notFound("no probe named \(name)") }
        let params = FormParameters(query: request.uri.query)
        let from = try params.get("from").map { try APIParameters.instant($0, name: "from") } ?? TimeExpressions.nowMicros() - 86_400_000_000
        let limit = try APIParameters.limit(params.get("limit"), fallback: 500, max: 10_000)
        return JSONResponse.make(ProbeResultsAnswer(probe: name, data: try await store.probeResults(probe: name, fromMicros: from, limit: limit)
            .map(ProbeResultView.init)))
    }

    /// A job calling in. Needs the heartbeat's token when it has one (`?token=` or a bearer token).
    func ping(_ request: Request, name: String) async throws -> Response {
        guard let heartbeat = settings.heartbeats.first(where: { $0.name == name }) else { throw GatewayError.notFound("no heartbeat named \(name)") }
        guard !heartbeat.isBuiltIn else {
            throw GatewayError(status: .forbidden, message: "\(name) is Gatehouse's own heartbeat: only its scheduled backups report to it", type: "permission_error",
                               code: "built_in_heartbeat")
        }
        if let token = heartbeat.token {
            let given = FormParameters(query: request.uri.query).get("token") ?? request.headers[.authorization].flatMap(BearerToken.token)
            guard let given, ConstantTime.equal(given, token) else {
                throw GatewayError(status: .unauthorized, message: "this heartbeat needs its token (?token= or Authorization: Bearer)", type: "authentication_error",
                                   code: "invalid_heartbeat_token")
            }
        }
        let now = TimeExpressions.nowMicros()
        try await store.recordHeartbeat(name: name, atMicros: now)
        return JSONResponse.make(HeartbeatReceipt(name: name, received: TimeExpressions.format(micros: now)))
    }
}

// MARK: - The API's views of probes

extension ProbeView {
    /// `lastDay`: an HTTP probe's results of the last 24 hours; nil for a heartbeat.
    init(_ s: ProbeMonitor.State, lastDay: [ProbeResult]?) {
        let uptime = lastDay.flatMap { day in day.isEmpty ? nil : (Double(day.filter(\.up).count) / Double(day.count) * 10000).rounded() / 100 }
        self.init(name: s.name, kind: s.kind, status: s.up.map { $0 ? .up : .down } ?? .unknown, since: s.since.map { TimeExpressions.format(micros: $0) },
                  lastCheck: s.lastCheckMicros.map { TimeExpressions.format(micros: $0) }, lastLatencyMs: s.lastLatencyMicros.map { Double($0) / 1000 },
                  lastError: s.lastError, uptime24h: uptime, checks24h: lastDay?.count)
    }
}

extension ProbeResultView {
    init(_ r: ProbeResult) {
        self.init(timestamp: TimeExpressions.format(micros: r.timestampMicros), up: r.up, status: r.status, latencyMs: Double(r.latencyMicros) / 1000,
                  error: r.error)
    }
}
