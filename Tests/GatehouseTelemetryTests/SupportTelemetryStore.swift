import GatehouseCore
import Synchronization
import GatehouseTelemetry

/// The one stub `TelemetryStore` of the retention tests. `prune` records each kind's cutoff and,
/// when `pruneUntilCancelled`, never ends until its task is cancelled (as a long delete does at
/// shutdown); `trim` removes nothing; the reads and writes retention never calls throw `NotUsed`.
final class StubTelemetryStore: TelemetryStore {
    struct NotUsed: Error {}

    /// The step `RetentionService` rounds each kind's cutoff down to; 1 (none) for kinds not given.
    let steps: [TelemetryKind: Int64]
    let pruneUntilCancelled: Bool
    /// The last cutoff `prune` was given, by kind.
    let cutoffs = Mutex<[TelemetryKind: Int64]>([:])
    /// Set once `prune` was called.
    let pruning = Atomic<Bool>(false)

    init(steps: [TelemetryKind: Int64] = [:], pruneUntilCancelled: Bool = false) {
        self.steps = steps
        self.pruneUntilCancelled = pruneUntilCancelled
    }

    func retentionStepMicros(_ kind: TelemetryKind) -> Int64 { steps[kind] ?? 1 }
    func prune(_ kind: TelemetryKind, beforeMicros: Int64, batch: Int) async throws -> Int {
        cutoffs.withLock { $0[kind] = beforeMicros }
        pruning.store(true, ordering: .relaxed)
        while pruneUntilCancelled { try await Task.sleep(for: .seconds(60)) }
        return 0
    }
    func trim(_ kind: TelemetryKind, keep: Int64, batch: Int) async throws -> Int { 0 }
    func insertLogs(_ lines: [LogRecord]) async throws { throw NotUsed() }
    func logs(_ query: LogListQuery) async throws -> LogPage { throw NotUsed() }
    func logs(after sequence: Int64, filter: QueryNode?, limit: Int) async throws -> [LogRecord] { throw NotUsed() }
    func latestLogSequence() async throws -> Int64 { throw NotUsed() }
    func logs(correlationID: String, limit: Int) async throws -> [LogRecord] { throw NotUsed() }
    func countLogs(filter: QueryNode?, fromMicros: Int64, toMicros: Int64) async throws -> Int64 { throw NotUsed() }
    func aggregate(_ target: TelemetryAggregationTarget, _ query: AggregationQuery) async throws -> AggregationOutcome { throw NotUsed() }
    func insertErrorEvents(_ events: [ErrorEvent]) async throws { throw NotUsed() }
    func issues(_ query: IssueListQuery) async throws -> [ErrorIssue] { throw NotUsed() }
    func issue(id: String) async throws -> ErrorIssue? { throw NotUsed() }
    func events(issueID: String, limit: Int) async throws -> [ErrorEvent] { throw NotUsed() }
    func errorEvents(correlationID: String, limit: Int) async throws -> [ErrorEvent] { throw NotUsed() }
    func countErrorEvents(filter: QueryNode?, fromMicros: Int64, toMicros: Int64) async throws -> Int64 { throw NotUsed() }
    func setIssueStatus(id: String, status: IssueStatus) async throws -> Bool { throw NotUsed() }
    func storageUse() async throws -> [StorageUse] { throw NotUsed() }
}
