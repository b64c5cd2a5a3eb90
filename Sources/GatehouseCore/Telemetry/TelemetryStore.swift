import Foundation

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
    /// Captured request and response bodies: kept apart, and usually for less time, than their records.
    case bodies
    /// Trace spans (Sentry transactions and their spans, OTLP spans, the gateway's own).
    case spans
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
    /// A query's aggregation stage (`| count by function`) over logs, error events or spans.
    func aggregate(_ target: TelemetryAggregationTarget, _ query: AggregationQuery) async throws -> AggregationOutcome

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
    /// Events of each of `issueIDs` with `from ≤ ts < to`, counted per `bucketMicros` (buckets
    /// start at its multiples): an issue list's sparklines in one query.
    func issueEventCounts(issueIDs: [String], fromMicros: Int64, toMicros: Int64, bucketMicros: Int64) async throws -> [IssueEventBucket]
    /// Each tag's most common values (at most `valuesPerKey`) over the issue's newest
    /// `IssueTagValue.eventLimit` stored events, with the events that carry the tag at all;
    /// `environment` and `release` count as tags, as in Sentry.
    func issueTagValues(issueID: String, valuesPerKey: Int) async throws -> [IssueTagValue]
    /// One event of an issue (its latest when `eventID` is nil) and its neighbours in time; nil
    /// when the issue has no such event.
    func issueEvent(issueID: String, eventID: String?) async throws -> IssueEventPosition?
    /// Sets the status, with what ends an ignore; false when there is no such issue.
    func updateIssueStatus(id: String, to change: IssueStatusChange) async throws -> Bool
    /// Moves the sources' events into the target, adds their counts to it, deletes them, and
    /// sends their future events to the target; the target as it is then. Throws
    /// `IssueMergeError` (and changes nothing) when an id is unknown or of another project.
    func mergeIssues(into targetID: String, from sourceIDs: [String]) async throws -> ErrorIssue
    /// The issue a merged issue's id now leads to; nil when the id was never merged.
    func mergedIssue(id: String) async throws -> String?

    func storageUse() async throws -> [StorageUse]
    /// Deletes up to `batch` rows of `kind` older than `beforeMicros`; returns how many went.
    func prune(_ kind: TelemetryKind, beforeMicros: Int64, batch: Int) async throws -> Int
    /// Deletes up to `batch` of the oldest rows of `kind` beyond the newest `keep`.
    func trim(_ kind: TelemetryKind, keep: Int64, batch: Int) async throws -> Int
    /// Retention's cutoff for `kind` is rounded down to a multiple of this: a day where the store
    /// keeps the kind in day partitions (it then drops whole partitions instead of deleting
    /// rows, and keeps a row up to a day longer), 1 µs elsewhere.
    func retentionStepMicros(_ kind: TelemetryKind) -> Int64
}

extension TelemetryStore {
    public func retentionStepMicros(_ kind: TelemetryKind) -> Int64 { 1 }

    /// For stores without ignore-until (test doubles): the status alone.
    public func updateIssueStatus(id: String, to change: IssueStatusChange) async throws -> Bool {
        try await setIssueStatus(id: id, status: change.status)
    }

    public func mergeIssues(into targetID: String, from sourceIDs: [String]) async throws -> ErrorIssue {
        throw IssueMergeError.noTarget(targetID)
    }

    public func mergedIssue(id: String) async throws -> String? { nil }
}

/// How many events one issue had in one time bucket.
public struct IssueEventBucket: Sendable, Equatable {
    public var issueID: String
    public var startMicros: Int64
    public var count: Int64
    public init(issueID: String, startMicros: Int64, count: Int64) {
        self.issueID = issueID
        self.startMicros = startMicros
        self.count = count
    }
}

/// How many of an issue's stored events carry one tag value, and how many carry the tag.
public struct IssueTagValue: Sendable, Equatable {
    /// Tags are counted over at most this many of an issue's newest events: a busy issue has far
    /// more, and each event's document is parsed to read them.
    public static let eventLimit = 1000

    public var key: String
    public var value: String
    public var count: Int64
    public var keyTotal: Int64
    public init(key: String, value: String, count: Int64, keyTotal: Int64) {
        self.key = key
        self.value = value
        self.count = count
        self.keyTotal = keyTotal
    }
}

/// An issue's event and the ids of the events just newer and just older (by time, then id).
public struct IssueEventPosition: Sendable, Equatable {
    public var event: ErrorEvent
    public var newerEventID: String?
    public var olderEventID: String?
    public init(event: ErrorEvent, newerEventID: String?, olderEventID: String?) {
        self.event = event
        self.newerEventID = newerEventID
        self.olderEventID = olderEventID
    }
}

/// The issue aggregates computed from `events(issueID:limit:)`, for stores without a database of
/// their own (test doubles); `SQLTelemetryStore` answers each in one query instead.
extension TelemetryStore {
    public func issueEventCounts(issueIDs: [String], fromMicros: Int64, toMicros: Int64, bucketMicros: Int64) async throws -> [IssueEventBucket] {
        var buckets: [IssueEventBucket] = []
        for id in issueIDs {
            let starts = try await events(issueID: id, limit: .max).map(\.timestampMicros).filter { $0 >= fromMicros && $0 < toMicros }
            buckets += Dictionary(grouping: starts) { $0 / bucketMicros * bucketMicros }
                .map { IssueEventBucket(issueID: id, startMicros: $0.key, count: Int64($0.value.count)) }
        }
        return buckets
    }

    public func issueTagValues(issueID: String, valuesPerKey: Int) async throws -> [IssueTagValue] {
        var counts: [String: [String: Int64]] = [:]
        for event in try await events(issueID: issueID, limit: IssueTagValue.eventLimit) {
            let document = (try? JSONSerialization.jsonObject(with: Data(event.documentJSON.utf8))) as? [String: Any]
            var tags: [(String, String)] = []
            if let object = document?["tags"] as? [String: Any] { tags = object.filter { !($0.value is NSNull) }.map { ($0.key, "\($0.value)") } }
            if let pairs = document?["tags"] as? [[Any]] { tags = pairs.filter { $0.count == 2 }.map { ("\($0[0])", "\($0[1])") } }
            tags += [("environment", event.environment), ("release", event.release)].compactMap { key, value in value.map { (key, $0) } }
            for (key, value) in tags { counts[key, default: [:]][value, default: 0] += 1 }
        }
        return counts.sorted { $0.key < $1.key }.flatMap { key, values in
            let total = values.values.reduce(0, +)
            return values.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.prefix(valuesPerKey)
                .map { IssueTagValue(key: key, value: $0.key, count: $0.value, keyTotal: total) }
        }
    }

    public func issueEvent(issueID: String, eventID: String?) async throws -> IssueEventPosition? {
        let newestFirst = try await events(issueID: issueID, limit: .max)
            .sorted { ($0.timestampMicros, $0.eventID) > ($1.timestampMicros, $1.eventID) }
        let found = if let eventID { newestFirst.firstIndex { $0.eventID == eventID } } else { newestFirst.indices.first }
        guard let index = found else { return nil }
        return IssueEventPosition(event: newestFirst[index], newerEventID: index > 0 ? newestFirst[index - 1].eventID : nil,
                                  olderEventID: index + 1 < newestFirst.count ? newestFirst[index + 1].eventID : nil)
    }
}
