import GatehouseCore
import GatehouseTestSupport
import Synchronization
import Testing
@testable import GatehouseTelemetry

/// Shutdown cancels the pruner mid-pass. That is not a failure and must not be logged as one:
/// a warning on every clean stop teaches operators to ignore warnings.
@Suite struct RetentionShutdownTests {
    @Test func cancelledMidPassLogsNoWarning() async throws {
        // Its prune only ends when its task is cancelled, as a long delete does at shutdown.
        let store = StubTelemetryStore(pruneUntilCancelled: true)
        let log = CapturedLog()
        let service = RetentionService(store: store, retention: Retention(), logger: log.logger)
        let running = Task { try await service.run() }
        try await Poll.until("the pruner is deleting") { store.pruning.load(ordering: .relaxed) ? true : nil }
        running.cancel()
        try await running.value
        #expect(log.lines(atLeast: .warning).map(\.message) == [])
    }
}
