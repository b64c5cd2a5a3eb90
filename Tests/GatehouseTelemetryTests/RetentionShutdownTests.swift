import GatehouseCore
import GatehouseTestSupport
import Synchronization
import Testing
@testable import GatehouseTelemetry

/// Shutdown cancels the pruner mid-pass. That is not a failure and must not be logged as one:
/// a warning on every clean stop teaches operators to ignore warnings.
@Suite struct RetentionShutdownTests {
    /// A store whose prune only ends when its task is cancelled, as a long delete does at shutdown.
    final class PruneUntilCancelled: TelemetryStore {
        let pruning = Atomic<Bool>(false)
        struct NotUsed: Error {}
        func prune(_ kind: TelemetryKind, beforeMicros: Int64, batch: Int) async throws -> Int {
            pruning.store(true, ordering: .relaxed)
            while true { try await Task.sleep(for: .seconds(60)) }
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

    @Test func cancelledMidPassLogsNoWarning() async throws {
        let store = PruneUntilCancelled()
        let log = CapturedLog()
        let service = RetentionService(store: store, retention: Retention(), logger: log.logger)
        let running = Task { try await service.run() }
        try await Poll.until("the pruner is deleting") { store.pruning.load(ordering: .relaxed) ? true : nil }
        running.cancel()
        try await running.value
        #expect(log.lines(atLeast: .warning).map(\.message) == [])
    }
}
