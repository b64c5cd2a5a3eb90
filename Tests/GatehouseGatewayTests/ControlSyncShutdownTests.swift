import GatehouseCore
import GatehouseTestSupport
import Logging
import Synchronization
import Testing
@testable import GatehouseGateway

/// Shutdown cancels the control sync mid-reload. That is not a failure and must not be logged as
/// one; the final sync still runs after it.
@Suite struct ControlSyncShutdownTests {
    /// Keys whose version check only ends when its task is cancelled, as a slow query does at shutdown.
    final class ReloadUntilCancelled: KeyStore, SwitchStore {
        let reloading = Atomic<Bool>(false)
        func keysVersion() async throws -> String {
            reloading.store(true, ordering: .relaxed)
            while true { try await Task.sleep(for: .seconds(60)) }
        }
        func insertKey(_ key: VirtualKey) async throws {}
        func updateKey(_ key: VirtualKey) async throws {}
        func key(id: String) async throws -> VirtualKey? { nil }
        func allKeys() async throws -> [VirtualKey] { [] }
        func setSwitch(_ s: KillSwitch) async throws {}
        func removeSwitch(kind: KillSwitch.Kind, value: String) async throws -> Bool { false }
        func allSwitches() async throws -> [KillSwitch] { [] }
        func switchesVersion() async throws -> String { "0" }
    }

    @Test func cancelledMidReloadLogsNoWarning() async throws {
        let keys = ReloadUntilCancelled()
        let log = CapturedLog()
        let quotas = MemoryQuotaStore()
        let controls = Controls(settings: ControlSettings(), state: ControlState(store: keys, logger: log.logger),
                                ledger: QuotaLedger(store: quotas, leaseFraction: 0.05, logger: log.logger), prices: try PriceTable.shipped())
        let cache = ResponseCache(settings: CacheSettings(), store: NoCachedAnswers())
        let service = ControlSyncService(controls: controls, cache: cache, interval: .milliseconds(20), logger: log.logger)
        let running = Task { try await service.run() }
        try await Poll.until("the sync is reloading keys") { keys.reloading.load(ordering: .relaxed) ? true : nil }
        running.cancel()
        try await running.value
        #expect(log.lines(atLeast: .warning).map(\.message) == [])
    }
}
