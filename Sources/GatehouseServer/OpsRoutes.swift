import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseGateway
import GatehouseHTTP
import Hummingbird
import NIOCore

/// Liveness, readiness, provider health and Prometheus metrics.
struct OpsRoutes: Sendable {
    let store: any RequestStore
    let storeKind: String
    let health: ProviderHealth
    let providers: [ProviderConfig]
    let breakers: CircuitBreakers
    /// The admin token `/metrics` requires (`metrics.require_token: true`); nil: open.
    var metricsToken: String? = nil
    let startedAt = Date()

    func addRoutes(to api: APIRouter) {
        api.open.get("/health") { _, _ in self.alive() }
        api.open.get("/api/v1/health") { _, _ in self.alive() }
        api.open.get("/ready") { _, _ in await self.ready() }
        api.open.get("/api/v1/ai/health") { _, _ in self.aiHealth() }
        api.open.get("/metrics") { request, _ in
            // Checked here, on the route that runs, so no spelling of the path gets around it.
            if let token = self.metricsToken, !AdminToken.matches(request.headers[.authorization], token: token) {
                return AdminToken.unauthorized("/metrics needs `Authorization: Bearer <GATEHOUSE_ADMIN_TOKEN>` (metrics.require_token is on).")
            }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: MetricsRegistry.exposition())))
        }
    }

    func alive() -> Response {
        JSONResponse.make(HealthReport(status: "ok", version: GatehouseVersion.current, uptimeSeconds: Int(Date().timeIntervalSince(startedAt))))
    }

    /// Ready when the store answers within two seconds.
    func ready() async -> Response {
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await store.ping() }
                group.addTask {
                    try await Task.sleep(for: .seconds(2))
                    throw StoreError.unavailable("no answer within 2 seconds")
                }
                try await group.next()
                group.cancelAll()
            }
            return JSONResponse.make(ReadinessReport(status: "ready", store: storeKind))
        } catch {
            return JSONResponse.make(ReadinessReport(status: "unavailable", store: storeKind, error: Redactor.scrubText("\(error)")),
                                     status: .serviceUnavailable)
        }
    }

    /// Each provider's recent success rate and latency. 503 when every provider that has been
    /// called lately is down.
    func aiHealth() -> Response {
        let snapshots = health.snapshot(providers: providers.map(\.name))
        let kinds = Dictionary(providers.map { ($0.name, $0.kind.rawValue) }, uniquingKeysWith: { a, _ in a })
        let called = snapshots.filter { $0.status != "unknown" }
        let overall = called.isEmpty ? "ok" : called.allSatisfy { $0.status == "down" } ? "down"
            : called.allSatisfy { $0.status == "ok" } ? "ok" : "degraded"
        let list = snapshots.map { s in
            ProviderHealthView(
                name: s.provider, kind: kinds[s.provider] ?? "", status: s.status, calls: s.calls, failures: s.failures,
                successRate: s.successRate,
                p50LatencyMs: s.p50LatencyMicros.map { Double($0) / 1000 },
                p95LatencyMs: s.p95LatencyMicros.map { Double($0) / 1000 },
                lastError: s.lastError,
                lastCallAt: s.lastCallAt.map { TimeExpressions.format(micros: Int64($0.timeIntervalSince1970 * 1_000_000)) })
        }
        // Every breaker that has counted a failure since its last success; each instance has its own.
        let circuitBreakers = breakers.snapshot().sorted { $0.key < $1.key }.map { name, b in
            CircuitBreakerView(deployment: name, state: b.state.rawValue, consecutiveFailures: b.failures)
        }
        return JSONResponse.make(ProviderHealthReport(status: overall, windowCalls: health.window, providers: list, circuitBreakers: circuitBreakers),
                                 status: overall == "down" ? .serviceUnavailable : .ok)
    }
}
