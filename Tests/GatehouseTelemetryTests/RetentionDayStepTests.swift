import GatehouseCore
import Logging
import Synchronization
import Testing
@testable import GatehouseTelemetry

/// A store that keeps some kinds in day partitions (PostgreSQL) is pruned at midnights, so it
/// drops whole partitions and deletes no rows; other kinds keep the exact cutoff.
@Suite struct RetentionDayStepTests {
    static let day: Int64 = 86_400_000_000

    final class RecordingCutoffs: TelemetryStore {
        let cutoffs = Mutex<[TelemetryKind: Int64]>([:])
        struct NotUsed: Error {}
        func retentionStepMicros(_ kind: TelemetryKind) -> Int64 { kind == .bodies ? 1 : RetentionDayStepTests.day }
        func prune(_ kind: TelemetryKind, beforeMicros: Int64, batch: Int) async throws -> Int {
            cutoffs.withLock { $0[kind] = beforeMicros }
            return 0
        }
        func trim(_ kind: TelemetryKind, keep: Int64, batch: Int) async throws -> Int { 0 }
        func insertLogs(_ lines: [LogRecord]) async throws { throw NotUsed() }
        func logs(_ query: LogListQuery) async throws -> LogPage { throw NotUsed() }
        func logs(after sequence: Int64, filter: QueryNode?, limit: Int) async throws -> [LogRecord] { throw NotUsed() }
        func latestLogSequence() async throws -> Int64 { throw NotUsed() }
        func logs(correlationID: String, limit: Int) async throws -> [LogRecord] { throw NotUsed() }
        func countLogs(filter: QueryNode?, fromMicros: Int64, toMicros: Int64) async throws -> Int64 { throw NotUsed() }
        func insertErrorEvents(_ events: [ErrorEvent]) async throws { throw NotUsed() }
        func issues(_ query: IssueListQuery) async throws -> [ErrorIssue] { throw NotUsed() }
        func issue(id: String) async throws -> ErrorIssue? { throw NotUsed() }
        func events(issueID: String, limit: Int) async throws -> [ErrorEvent] { throw NotUsed() }
        func errorEvents(correlationID: String, limit: Int) async throws -> [ErrorEvent] { throw NotUsed() }
        func countErrorEvents(filter: QueryNode?, fromMicros: Int64, toMicros: Int64) async throws -> Int64 { throw NotUsed() }
        func setIssueStatus(id: String, status: IssueStatus) async throws -> Bool { throw NotUsed() }
        func storageUse() async throws -> [StorageUse] { throw NotUsed() }
    }

    @Test func cutoffsFallOnMidnightWhereTheStoreDropsDays() async throws {
        let store = RecordingCutoffs()
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
