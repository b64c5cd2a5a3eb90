import AsyncHTTPClient
import GatehouseCore
import GatehouseTestSupport
import Synchronization
import Testing
@testable import GatehouseAlerts

/// Shutdown cancels an evaluation round while it waits on the store. That is a stop, not a
/// failure, and must not be logged as one.
@Suite struct AlertShutdownTests {
    /// A store whose lease call only ends when its task is cancelled, as a slow query does at shutdown.
    final class LeaseUntilCancelled: NoOpAlertStore, @unchecked Sendable {
        let leasing = Atomic<Bool>(false)
        override func acquireLease(name: String, holder: String, nowMicros: Int64, durationMicros: Int64) async throws -> Bool {
            leasing.store(true, ordering: .relaxed)
            while true { try await Task.sleep(for: .seconds(60)) }
        }
    }

    @Test func cancelledWhileTakingTheLeaseLogsNoWarning() async throws {
        let store = LeaseUntilCancelled()
        let log = CapturedLog()
        var settings = AlertSettings()
        settings.rules = [try rule()]
        let delivery = DeliveryService(client: HTTPClient.shared, store: store, attempts: 1, logger: log.logger)
        let service = AlertService(settings: settings, reader: ScriptedSignal(), delivery: delivery, store: store, logger: log.logger)
        let round = Task { await service.tick() }
        try await Poll.until("the round is taking the lease") { store.leasing.load(ordering: .relaxed) ? true : nil }
        round.cancel()
        await round.value
        #expect(log.lines(atLeast: .warning).map(\.message) == [])
    }
}
