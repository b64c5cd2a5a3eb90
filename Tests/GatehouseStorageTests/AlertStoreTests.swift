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

            #expect(try await store.acquireLease(name: "alerts", holder: "one", nowMicros: base, durationMicros: 10))
            #expect(try await store.acquireLease(name: "alerts", holder: "two", nowMicros: base + 5, durationMicros: 10) == false)
            #expect(try await store.acquireLease(name: "alerts", holder: "one", nowMicros: base + 8, durationMicros: 10), "the holder renews")
            #expect(try await store.acquireLease(name: "alerts", holder: "two", nowMicros: base + 30, durationMicros: 10), "an expired lease is taken over")
        }
    }
}
