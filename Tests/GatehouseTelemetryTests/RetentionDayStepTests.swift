import GatehouseCore
import Logging
import Synchronization
import Testing
@testable import GatehouseTelemetry

/// A store that keeps some kinds in day partitions (PostgreSQL) is pruned at midnights, so it
/// drops whole partitions and deletes no rows; other kinds keep the exact cutoff.
@Suite struct RetentionDayStepTests {
    static let day = TimeExpressions.microsPerDay

    @Test func cutoffsFallOnMidnightWhereTheStoreDropsDays() async throws {
        let store = StubTelemetryStore(steps: [.requests: Self.day, .logs: Self.day, .errors: Self.day])
        let now: Int64 = 1_796_198_400_000_000 + 13 * 3_600_000_000 + 7  // 2026-12-02T13:00:00.000007Z
        var retention = Retention()
        retention.days = [.requests: 90, .logs: 30, .errors: 1, .bodies: 14]
        _ = await RetentionService(store: store, retention: retention, logger: Logger(label: "test")).pruneOnce(nowMicros: now)
        let cutoffs = store.cutoffs.withLock { $0 }
        let midnight = (now / Self.day) * Self.day
        #expect(cutoffs[.requests] == midnight - 90 * Self.day)
        #expect(cutoffs[.logs] == midnight - 30 * Self.day)
        #expect(cutoffs[.errors] == midnight - Self.day)
        #expect(cutoffs[.bodies] == now - 14 * Self.day, "kept to the microsecond where rows are deleted one by one")
        // A retention so long its cutoff is far before 1970 is rounded down too, without overflow.
        retention.days = [.requests: Int.max]
        _ = await RetentionService(store: store, retention: retention, logger: Logger(label: "test")).pruneOnce(nowMicros: now)
        let far = try #require(store.cutoffs.withLock { $0[.requests] })
        #expect(far % Self.day == 0 && far <= now &- Int64.max && far > now &- Int64.max &- Self.day)
    }
}
