import Foundation
import Synchronization

/// Each provider's recent outcomes (the last `window` calls), for `/api/v1/ai/health`.
public final class ProviderHealth: Sendable {
    public struct Snapshot: Sendable, Equatable {
        public var provider: String
        public var calls: Int
        public var failures: Int
        public var successRate: Double?
        public var p50LatencyMicros: Int64?
        public var p95LatencyMicros: Int64?
        public var lastError: String?
        public var lastCallAt: Date?
        /// `ok` (≥ 95% success), `degraded` (≥ 50%), `down`, or `unknown` (no calls yet).
        public var status: String
    }

    private struct Outcome {
        var success: Bool
        var latencyMicros: Int64
    }

    private struct Ring {
        var outcomes: [Outcome] = []
        var next = 0
        var lastError: String?
        var lastCallAt: Date?
    }

    public let window: Int
    private let rings = Mutex<[String: Ring]>([:])

    public init(window: Int = 100) { self.window = window }

    public func record(provider: String, success: Bool, latencyMicros: Int64, error: String?) {
        rings.withLock { rings in
            var ring = rings[provider] ?? Ring()
            let outcome = Outcome(success: success, latencyMicros: latencyMicros)
            if ring.outcomes.count < window {
                ring.outcomes.append(outcome)
            } else {
                ring.outcomes[ring.next] = outcome
            }
            ring.next = (ring.next + 1) % window
            if let error { ring.lastError = error }
            ring.lastCallAt = Date()
            rings[provider] = ring
        }
    }

    public func snapshot(providers: [String]) -> [Snapshot] {
        let copy = rings.withLock { $0 }
        return providers.map { name in
            guard let ring = copy[name], !ring.outcomes.isEmpty else {
                return Snapshot(provider: name, calls: 0, failures: 0, successRate: nil, p50LatencyMicros: nil, p95LatencyMicros: nil,
                                lastError: nil, lastCallAt: nil, status: "unknown")
            }
            let failures = ring.outcomes.filter { !$0.success }.count
            let rate = Double(ring.outcomes.count - failures) / Double(ring.outcomes.count)
            let sorted = ring.outcomes.map(\.latencyMicros).sorted()
            // Nearest rank: the smallest latency at or above the p-th fraction of calls.
            func rank(_ p: Double) -> Int64 { sorted[min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))] }
            return Snapshot(provider: name, calls: ring.outcomes.count, failures: failures, successRate: rate,
                            p50LatencyMicros: rank(0.5), p95LatencyMicros: rank(0.95), lastError: ring.lastError,
                            lastCallAt: ring.lastCallAt, status: rate >= 0.95 ? "ok" : rate >= 0.5 ? "degraded" : "down")
        }
    }
}
