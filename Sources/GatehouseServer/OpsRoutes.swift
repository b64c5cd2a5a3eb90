import Foundation
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

    static let version = "0.1.0"

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
        JSONResponse.make(["status": "ok", "version": Self.version, "uptime_seconds": Int(Date().timeIntervalSince(startedAt))])
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
            return JSONResponse.make(["status": "ready", "store": storeKind])
        } catch {
            return JSONResponse.make(["status": "unavailable", "store": storeKind, "error": Redactor.scrubText("\(error)")],
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
        let list: [[String: Any]] = snapshots.map { s in
            [
                "name": s.provider, "kind": kinds[s.provider] ?? "", "status": s.status, "calls": s.calls, "failures": s.failures,
                "success_rate": s.successRate as Any? ?? NSNull(),
                "p50_latency_ms": s.p50LatencyMicros.map { Double($0) / 1000 } as Any? ?? NSNull(),
                "p95_latency_ms": s.p95LatencyMicros.map { Double($0) / 1000 } as Any? ?? NSNull(),
                "last_error": s.lastError as Any? ?? NSNull(),
                "last_call_at": s.lastCallAt.map { TimeExpressions.format(micros: Int64($0.timeIntervalSince1970 * 1_000_000)) } as Any? ?? NSNull(),
            ]
        }
        // Only breakers that are not closed are listed; each instance has its own.
        let open = breakers.snapshot().sorted { $0.key < $1.key }.map { name, b -> [String: Any] in
            ["deployment": name, "state": b.state.rawValue, "consecutive_failures": b.failures]
        }
        return JSONResponse.make(["status": overall, "window_calls": health.window, "providers": list, "circuit_breakers": open],
                                 status: overall == "down" ? .serviceUnavailable : .ok)
    }
}
