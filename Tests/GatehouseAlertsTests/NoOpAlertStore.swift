import GatehouseCore

/// An `AlertStore` that keeps nothing: the base of the alert tests' stubs, which override only
/// the calls their test is about. No stored state, so no data race to check.
class NoOpAlertStore: AlertStore, @unchecked Sendable {
    func recordTransitions(_ transitions: [AlertTransition]) async throws {}
    func alertHistory(limit: Int, rule: String?) async throws -> [AlertTransition] { [] }
    func silences() async throws -> [Silence] { [] }
    func addSilence(_ silence: Silence) async throws {}
    func expireSilence(id: String, atMicros: Int64) async throws -> Bool { false }
    func recordDelivery(_ delivery: DeliveryRecord) async throws {}
    func deliveries(limit: Int) async throws -> [DeliveryRecord] { [] }
    func recordProbeResults(_ results: [ProbeResult]) async throws {}
    func probeResults(probe: String, fromMicros: Int64, limit: Int) async throws -> [ProbeResult] { [] }
    func recordHeartbeat(name: String, atMicros: Int64) async throws {}
    func heartbeats() async throws -> [String: Int64] { [:] }
    func recordHeartbeatFailure(_ failure: HeartbeatFailure) async throws {}
    func heartbeatFailures() async throws -> [String: HeartbeatFailure] { [:] }
    func acquireLease(name: String, holder: String, nowMicros: Int64, durationMicros: Int64) async throws -> Bool { false }
    func pruneProbeResults(beforeMicros: Int64) async throws {}
}
