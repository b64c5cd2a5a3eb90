/// A page of log lines, newest first, and where the next page starts.
public struct LogPage: Sendable {
    public var lines: [LogRecord]
    public var nextCursor: String?
    public init(lines: [LogRecord], nextCursor: String?) {
        self.lines = lines
        self.nextCursor = nextCursor
    }
}

public struct LogListQuery: Sendable {
    public var filter: QueryNode?
    public var fromMicros: Int64?
    public var toMicros: Int64?
    public var limit: Int
    public var cursor: String?
    public init(filter: QueryNode? = nil, fromMicros: Int64? = nil, toMicros: Int64? = nil, limit: Int = 100, cursor: String? = nil) {
        self.filter = filter
        self.fromMicros = fromMicros
        self.toMicros = toMicros
        self.limit = limit
        self.cursor = cursor
    }
}

public struct IssueListQuery: Sendable {
    public var filter: QueryNode?
    public var limit: Int
    public init(filter: QueryNode? = nil, limit: Int = 100) {
        self.filter = filter
        self.limit = limit
    }
}

/// What one kind of data takes in the store.
public struct StorageUse: Sendable, Equatable {
    public var kind: TelemetryKind
    public var rows: Int64
    /// The stored size, estimated from the rows' contents (indexes not included).
    public var approximateBytes: Int64
    public var oldestMicros: Int64?
    public init(kind: TelemetryKind, rows: Int64, approximateBytes: Int64, oldestMicros: Int64?) {
        self.kind = kind
        self.rows = rows
        self.approximateBytes = approximateBytes
        self.oldestMicros = oldestMicros
    }
}

/// The kinds of data that have a retention of their own.
public enum TelemetryKind: String, Sendable, CaseIterable {
    case requests, logs, errors
}

/// Where logs, error events and issues live. SQLite and PostgreSQL implement it.
public protocol TelemetryStore: Sendable {
    func insertLogs(_ lines: [LogRecord]) async throws
    func logs(_ query: LogListQuery) async throws -> LogPage
    /// Lines stored after `sequence`, oldest first: what a live tail shows next.
    func logs(after sequence: Int64, filter: QueryNode?, limit: Int) async throws -> [LogRecord]
    /// The newest sequence number stored (0 when there is none): where a tail starts.
    func latestLogSequence() async throws -> Int64
    func logs(correlationID: String, limit: Int) async throws -> [LogRecord]
    /// Lines matching `filter` with `from ≤ ts < to` (alert rules' `count(…)`).
    func countLogs(filter: QueryNode?, fromMicros: Int64, toMicros: Int64) async throws -> Int64

    /// Stores events and creates or updates their issues in the same transaction.
    func insertErrorEvents(_ events: [ErrorEvent]) async throws
    func issues(_ query: IssueListQuery) async throws -> [ErrorIssue]
    func issue(id: String) async throws -> ErrorIssue?
    func events(issueID: String, limit: Int) async throws -> [ErrorEvent]
    func errorEvents(correlationID: String, limit: Int) async throws -> [ErrorEvent]
    /// Error events matching `filter` (over events: type, title, level, release, environment…) in the window.
    func countErrorEvents(filter: QueryNode?, fromMicros: Int64, toMicros: Int64) async throws -> Int64
    /// Returns false when there is no such issue.
    func setIssueStatus(id: String, status: IssueStatus) async throws -> Bool

    func storageUse() async throws -> [StorageUse]
    /// Deletes up to `batch` rows of `kind` older than `beforeMicros`; returns how many went.
    func prune(_ kind: TelemetryKind, beforeMicros: Int64, batch: Int) async throws -> Int
    /// Deletes up to `batch` of the oldest rows of `kind` beyond the newest `keep`.
    func trim(_ kind: TelemetryKind, keep: Int64, batch: Int) async throws -> Int
}
