import Foundation
import GatehouseCore
import Logging
import Testing
@testable import GatehouseStorage

@Suite struct AlertStoreTests {
    @Test(arguments: Backend.allCases)
    func historySilencesDeliveriesProbesHeartbeatsAndLeases(_ backend: Backend) async throws {
        try await StoreFactory.withOpenedStore(databaseURL: try backend.databaseURL(), logger: Logger(label: "test")) { opened in
            let store = opened.alerts
            try await store.recordTransitions([
                AlertTransition(timestampMicros: base, rule: "A", fingerprint: "f1", labels: ["alertname": "A", "model": "gpt-4o"], state: .pending,
                                value: 0.02, severity: .high, summary: "2% > 1%"),
                AlertTransition(timestampMicros: base + 1, rule: "A", fingerprint: "f1", labels: ["alertname": "A"], state: .firing, value: 0.03,
                                severity: .high, summary: "3% > 1%"),
                AlertTransition(timestampMicros: base + 2, rule: "B", fingerprint: "f2", labels: [:], state: .pending, value: .infinity,
                                severity: .low, summary: "x"),
            ])
            let history = try await store.alertHistory(limit: 10, rule: "A")
            #expect(history.map(\.state) == [.firing, .pending] && history[1].labels["model"] == "gpt-4o" && history[0].value == 0.03)
            #expect(try await store.alertHistory(limit: 1, rule: nil).map(\.rule) == ["B"])

            let silence = Silence(id: "s1", matchers: [Silence.Matcher("alertname=A")!, Silence.Matcher("severity!=low")!],
                                  startsAtMicros: base, endsAtMicros: base + hour, createdBy: "ada", comment: "deploy")
            try await store.addSilence(silence)
            #expect(try await store.silences() == [silence])
            #expect(try await store.expireSilence(id: "s1", atMicros: base + 60))
            #expect(try await store.expireSilence(id: "nope", atMicros: base) == false)
            #expect(try await store.silences().first?.isActive(at: base + 61) == false)

            try await store.recordDelivery(DeliveryRecord(timestampMicros: base, receiver: "slack", groupKey: "g", status: "firing", attempt: 1,
                                                          outcome: .retrying, detail: "the receiver answered 500"))
            try await store.recordDelivery(DeliveryRecord(timestampMicros: base + 1, receiver: "slack", groupKey: "g", status: "firing", attempt: 2,
                                                          outcome: .delivered, detail: "200"))
            #expect(try await store.deliveries(limit: 10).map(\.outcome) == [.delivered, .retrying])

            try await store.recordProbeResults([
                ProbeResult(probe: "app", timestampMicros: base, up: true, status: 200, latencyMicros: 1200, error: nil),
                ProbeResult(probe: "app", timestampMicros: base + 10, up: false, status: nil, latencyMicros: 5_000_000, error: "connection refused"),
            ])
            let results = try await store.probeResults(probe: "app", fromMicros: base, limit: 10)
            #expect(results.map(\.up) == [false, true] && results[0].error == "connection refused" && results[1].status == 200)
            try await store.pruneProbeResults(beforeMicros: base + 5)
            #expect(try await store.probeResults(probe: "app", fromMicros: 0, limit: 10).count == 1)

            try await store.recordHeartbeat(name: "nightly", atMicros: base + 100)
            try await store.recordHeartbeat(name: "nightly", atMicros: base + 50)  // a late, older ping does not go back in time
            #expect(try await store.heartbeats() == ["nightly": base + 100])

            try await store.recordHeartbeatFailure(HeartbeatFailure(name: "gatehouse-backup", atMicros: base + 200, error: "disk full"))
            try await store.recordHeartbeatFailure(HeartbeatFailure(name: "gatehouse-backup", atMicros: base + 150, error: "older"))  // late, older: kept out
            try await store.recordHeartbeatFailure(HeartbeatFailure(name: "gatehouse-backup", atMicros: base + 200, error: String(repeating: "x", count: 5000)))
            let failures = try await store.heartbeatFailures()
            #expect(failures.count == 1 && failures["gatehouse-backup"]?.atMicros == base + 200 && failures["gatehouse-backup"]?.error.count == 500)

            #expect(try await store.acquireLease(name: "alerts", holder: "one", nowMicros: base, durationMicros: 10))
            #expect(try await store.acquireLease(name: "alerts", holder: "two", nowMicros: base + 5, durationMicros: 10) == false)
            #expect(try await store.acquireLease(name: "alerts", holder: "one", nowMicros: base + 8, durationMicros: 10), "the holder renews")
            #expect(try await store.acquireLease(name: "alerts", holder: "two", nowMicros: base + 30, durationMicros: 10), "an expired lease is taken over")
        }
    }

    /// Uptime per span and per bucket, and incidents (runs of failed checks), counted in the
    /// database; the same answers as counting the stored results one by one.
    @Test(arguments: Backend.allCases)
    func probeUptimeAndIncidentsAreAggregatedInTheStore(_ backend: Backend) async throws {
        try await StoreFactory.withOpenedStore(databaseURL: try backend.databaseURL(), logger: Logger(label: "test")) { opened in
            let store = opened.alerts
            let minute: Int64 = 60_000_000
            func check(_ probe: String, _ at: Int64, up: Bool, latency: Int64, error: String? = nil) -> ProbeResult {
                ProbeResult(probe: probe, timestampMicros: base + at * minute, up: up, status: up ? 200 : nil, latencyMicros: latency, error: error)
            }
            // Stored out of order: runs follow time, not insertion.
            try await store.recordProbeResults([
                check("app", 5, up: false, latency: 900, error: "status 503"),
                check("app", 0, up: true, latency: 100),
                check("app", 2, up: false, latency: 700, error: "no answer within 5000 ms"),
                check("app", 1, up: false, latency: 500, error: "connection refused"),
                check("app", 3, up: true, latency: 300),
                check("app", 4, up: true, latency: 200),
                check("api", 0, up: true, latency: 40),
                check("api", 1, up: true, latency: 60),
                check("other", 1, up: false, latency: 1, error: "not asked for"),
            ])
            let span = (from: base, to: base + 10 * minute)
            let whole = try await store.probeUptime(probes: ["app", "api"], fromMicros: span.from, toMicros: span.to, bucketMicros: nil)
            #expect(whole == [
                ProbeUptime(probe: "api", bucketStartMicros: nil, checks: 2, upChecks: 2, averageLatencyMicros: 50),
                ProbeUptime(probe: "app", bucketStartMicros: nil, checks: 6, upChecks: 3, averageLatencyMicros: 450),
            ])
            #expect(whole[1].fraction == 0.5)
            let buckets = try await store.probeUptime(probes: ["app"], fromMicros: span.from, toMicros: span.to, bucketMicros: 2 * minute)
            #expect(buckets.map(\.bucketStartMicros) == [base, base + 2 * minute, base + 4 * minute])
            #expect(buckets.map(\.checks) == [2, 2, 2] && buckets.map(\.upChecks) == [1, 1, 1] && buckets.map(\.averageLatencyMicros) == [300, 500, 550])
            let late = try await store.probeUptime(probes: ["app"], fromMicros: base + 3 * minute, toMicros: base + 5 * minute, bucketMicros: nil)
            #expect(late.map(\.checks) == [2], "[from, to): the check at `to` is left out")
            #expect(try await store.probeUptime(probes: [], fromMicros: span.from, toMicros: span.to, bucketMicros: nil).isEmpty)
            #expect(try await store.probeUptime(probes: ["app"], fromMicros: base + 20 * minute, toMicros: base + 30 * minute, bucketMicros: nil).isEmpty)

            let incidents = try await store.probeIncidents(probes: ["app", "api"], fromMicros: span.from, toMicros: span.to, limit: 10)
            #expect(incidents == [
                ProbeIncident(probe: "app", startedMicros: base + 5 * minute, endedMicros: nil, failedChecks: 1, firstError: "status 503"),
                ProbeIncident(probe: "app", startedMicros: base + minute, endedMicros: base + 3 * minute, failedChecks: 2, firstError: "connection refused"),
            ])
            #expect(try await store.probeIncidents(probes: ["app"], fromMicros: span.from, toMicros: span.to, limit: 1).map(\.startedMicros) == [base + 5 * minute])
            let fromInside = try await store.probeIncidents(probes: ["app"], fromMicros: base + 2 * minute, toMicros: base + 5 * minute, limit: 10)
            #expect(fromInside == [ProbeIncident(probe: "app", startedMicros: base + 2 * minute, endedMicros: base + 3 * minute, failedChecks: 1,
                                                 firstError: "no answer within 5000 ms")], "a run cut by the span starts where the span does")
            #expect(try await store.probeIncidents(probes: ["api"], fromMicros: span.from, toMicros: span.to, limit: 10).isEmpty)

            // The store's counts are those of the results it gives back.
            let stored = try await store.probeResults(probe: "app", fromMicros: span.from, limit: 100)
            #expect(ProbeUptime.summarize(stored, bucketMicros: 2 * minute) == buckets)
            #expect(ProbeIncident.runs(stored) == incidents)
        }
    }
}
