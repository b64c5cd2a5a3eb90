import Foundation

// The logs part of the API (`OpenAPI/logs.yaml`): log lines in (`POST /api/v1/logs`, OTLP's
// `POST /v1/logs`, Sentry's ingest answers), search (`GET /api/v1/logs`), the live tail
// (`GET /api/v1/logs/tail`, each event's `data` is a `LogLine`) and storage use.

/// How severe a log line, an error event or an issue is: every incoming spelling is folded into these six.
public enum TelemetryLevel: String, Codable, Sendable, Equatable, CaseIterable {
    case trace, debug, info, warn, error, fatal
}

/// One stored log line, as search, the live tail and a correlation timeline show it.
public struct LogLine: Codable, Sendable, Equatable {
    /// Insertion order: what a live tail resumes from (`Last-Event-ID`).
    @Nullable public var seq: Int64?
    public var timestamp: String
    public var level: TelemetryLevel
    public var message: String
    public var project: String
    @Nullable public var service: String?
    @Nullable public var environment: String?
    @Nullable public var correlationID: String?
    @Nullable public var function: String?
    @Nullable public var durationMilliseconds: Double?
    /// Over one of the slow-operation thresholds (duration, DB calls, documents scanned).
    public var slow: Bool
    /// Every field of the line that is not one of the above, nested values kept as they came.
    public var attributes: [String: JSONValue]

    enum CodingKeys: String, CodingKey {
        case seq, timestamp, level, message, project, service, environment
        case correlationID = "correlation_id"
        case function
        case durationMilliseconds = "duration_ms"
        case slow, attributes
    }

    public init(seq: Int64?, timestamp: String, level: TelemetryLevel, message: String, project: String, service: String? = nil,
                environment: String? = nil, correlationID: String? = nil, function: String? = nil, durationMilliseconds: Double? = nil,
                slow: Bool = false, attributes: [String: JSONValue] = [:]) {
        self.seq = seq
        self.timestamp = timestamp
        self.level = level
        self.message = message
        self.project = project
        self.service = service
        self.environment = environment
        self.correlationID = correlationID
        self.function = function
        self.durationMilliseconds = durationMilliseconds
        self.slow = slow
        self.attributes = attributes
    }
}

/// `GET /api/v1/logs`: one page of matching lines, newest first.
public struct LogSearchPage: Codable, Sendable, Equatable {
    public var data: [LogLine]
    /// Pass as `cursor` for the next (older) page; null on the last page.
    @Nullable public var nextCursor: String?
    public var hasMore: Bool

    enum CodingKeys: String, CodingKey {
        case data
        case nextCursor = "next_cursor"
        case hasMore = "has_more"
    }

    public init(data: [LogLine], nextCursor: String?) {
        self.data = data
        self.nextCursor = nextCursor
        self.hasMore = nextCursor != nil
    }
}

/// One line of a `POST /api/v1/logs` body that was not taken, and why.
public struct LogRejection: Codable, Sendable, Equatable {
    /// The line's position in the body, from 0 (blank NDJSON lines are not counted).
    public var index: Int
    public var reason: String

    public init(index: Int, reason: String) {
        self.index = index
        self.reason = reason
    }
}

/// What `POST /api/v1/logs` did with a body: 200 when any line was taken (or none was refused),
/// 400 when every line was refused, 503 when the queue took only part of it.
public struct LogIngestResult: Codable, Sendable, Equatable {
    public var accepted: Int
    /// The refused lines in index order, at most `maxListed` of them.
    public var rejected: [LogRejection]
    /// Every refused line, also those beyond the list.
    public var rejectedCount: Int

    /// Most rejections one answer lists.
    public static let maxListed = 1000

    enum CodingKeys: String, CodingKey {
        case accepted, rejected
        case rejectedCount = "rejected_count"
    }

    public init(accepted: Int, rejected: [LogRejection], rejectedCount: Int) {
        self.accepted = accepted
        self.rejected = rejected
        self.rejectedCount = rejectedCount
    }
}

/// What Sentry's ingest routes (`/api/{project}/envelope/`, `/api/{project}/store/`) answer an
/// accepted event with, as Sentry's relay does.
public struct SentryIngestAnswer: Codable, Sendable, Equatable {
    /// The first event's `event_id`, else the envelope's; empty when there was neither.
    public var id: String

    public init(id: String) { self.id = id }
}

/// Sentry's relay answers a refused ingest request as `{"detail": "…"}`, and its SDKs read that.
public struct SentryErrorBody: Codable, Sendable, Equatable {
    public var detail: String

    public init(detail: String) { self.detail = detail }
}

/// The kinds of data that have a retention of their own.
public enum StorageKind: String, Codable, Sendable, Equatable, CaseIterable {
    case requests, logs, errors
    /// Captured prompt and response bodies (`gateway.capture_bodies`).
    case bodies
    /// Trace spans (`/api/v1/traces`).
    case spans
}

/// What one kind of data takes in the store and how long it is kept.
public struct StorageKindUse: Codable, Sendable, Equatable {
    public var kind: StorageKind
    public var rows: Int64
    /// Estimated from the rows' contents; indexes are not included.
    public var approximateBytes: Int64
    /// The oldest row's time; null when there are none.
    @Nullable public var oldest: String?
    /// Rows older than this are pruned; 0: kept whatever their age.
    public var retentionDays: Int
    /// The oldest rows beyond this count are pruned; 0: no bound.
    public var maxRows: Int

    enum CodingKeys: String, CodingKey {
        case kind, rows
        case approximateBytes = "approximate_bytes"
        case oldest
        case retentionDays = "retention_days"
        case maxRows = "max_rows"
    }

    public init(kind: StorageKind, rows: Int64, approximateBytes: Int64, oldest: String?, retentionDays: Int, maxRows: Int) {
        self.kind = kind
        self.rows = rows
        self.approximateBytes = approximateBytes
        self.oldest = oldest
        self.retentionDays = retentionDays
        self.maxRows = maxRows
    }
}

/// `GET /api/v1/storage`.
public struct StorageReport: Codable, Sendable, Equatable {
    public var kinds: [StorageKindUse]

    public init(kinds: [StorageKindUse]) { self.kinds = kinds }
}
