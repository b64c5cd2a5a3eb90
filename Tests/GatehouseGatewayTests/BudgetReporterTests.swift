import GatehouseCore
import Logging
import Synchronization
import Testing
@testable import GatehouseGateway

/// Counters in memory that count how often they are read.
final class CountingQuotaStore: QuotaStore, BudgetEventStore, KeyStore {
    let counts: [QuotaCount]
    let reads = Atomic<Int>(0)
    init(_ counts: [QuotaCount]) { self.counts = counts.sorted { ($0.counter, $0.windowStartMicros) < ($1.counter, $1.windowStartMicros) } }

    func claimQuota(counter: String, windowStartMicros: Int64, want: Int64, need: Int64, limit: Int64) async throws -> (granted: Int64, total: Int64) { (0, 0) }
    func settleQuota(_ changes: [QuotaChange]) async throws -> [QuotaCount] { [] }
    func quotaCounts(counterPrefix: String, sinceWindowMicros: Int64) async throws -> [QuotaCount] {
        reads.add(1, ordering: .relaxed)
        return counts.filter { $0.counter.hasPrefix(counterPrefix) && $0.windowStartMicros >= sinceWindowMicros }
    }
    func quotaCounts(windows: [QuotaWindowQuery]) async throws -> [QuotaCount] {
        reads.add(1, ordering: .relaxed)
        return counts.filter { c in windows.contains { c.counter.hasPrefix($0.counterPrefix) && c.windowStartMicros == $0.windowStartMicros } }
    }

    func recordBudgetEvent(_ event: BudgetEvent) async throws -> Bool { true }
    func budgetEvents(sinceMicros: Int64, limit: Int) async throws -> [BudgetEvent] { [] }

    func insertKey(_ key: VirtualKey) async throws {}
    func updateKey(_ key: VirtualKey) async throws {}
    func key(id: String) async throws -> VirtualKey? { nil }
    func allKeys() async throws -> [VirtualKey] { [] }
    func keysVersion() async throws -> String { "0" }
}

@Suite struct BudgetReporterTests {
    /// Every budget's current window comes from one read of the counters, not one per budget.
    @Test func everyBudgetIsReadInOneQuery() async throws {
        let logger = Logger(label: "test")
        let rules = [
            QuotaRule(id: "budget:all", scope: .global, unit: .cost, limit: 1_000_000, period: .month),
            QuotaRule(id: "budget:per-model", scope: .model, unit: .cost, limit: 500_000, period: .day, softThresholds: [0.5]),
            QuotaRule(id: "budget:weekly", scope: .global, unit: .cost, limit: 9_000_000, period: .week),
        ]
        let now = TimeExpressions.nowMicros()
        let month = rules[0].window(containing: now).start, day = rules[1].window(containing: now).start
        let store = CountingQuotaStore([
            QuotaCount(counter: "budget:all|", windowStartMicros: month, granted: 300, used: 250, limit: 1_000_000),
            QuotaCount(counter: "budget:per-model|gpt-4o", windowStartMicros: day, granted: 90, used: 80, limit: 500_000),
            QuotaCount(counter: "budget:per-model|claude", windowStartMicros: day, granted: 10, used: 5, limit: 500_000),
            QuotaCount(counter: "budget:per-model|gpt-4o", windowStartMicros: day - 86_400_000_000, granted: 1, used: 1, limit: 500_000),
        ])
        let controls = Controls(settings: ControlSettings(), state: ControlState(store: NoKeysOrSwitches(), logger: logger),
                                ledger: QuotaLedger(store: store, leaseFraction: 0.05, logger: logger), prices: try PriceTable.shipped())
        let uses = try await BudgetReporter(store: store, controls: controls, budgets: rules).budgetUses()
        #expect(store.reads.load(ordering: .relaxed) == 1)
        #expect(uses.map { "\($0.name)|\($0.value ?? "-")=\($0.usedMicros)" } == [
            "budget:all|=250", "budget:per-model|claude=5", "budget:per-model|gpt-4o=80", "budget:weekly|=0",
        ])
    }
}
