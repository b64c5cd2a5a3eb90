import Foundation

// The traces part of the API (`OpenAPI/traces.yaml`): one trace as a tree
// (`GET /api/v1/traces/{trace_id}`), per-transaction performance (`GET /api/v1/transactions`)
// and span search (`GET /api/v1/spans`).

/// One stored span, as span search and a trace show it.
public struct SpanView: Codable, Sendable, Equatable {
    public var traceID: String
    public var spanID: String
    @Nullable public var parentSpanID: String?
    public var project: String
    /// `sentry`, `otlp` or `gateway`.
    public var source: String
    @Nullable public var service: String?
    public var name: String
    @Nullable public var op: String?
    /// The transaction it belongs to; equal to `name` on the transaction itself.
    @Nullable public var transaction: String?
    /// True for a transaction's root span.
    public var isTransaction: Bool
    /// When it started.
    public var timestamp: String
    public var durationMilliseconds: Double
    public var status: String
    public var error: Bool
    /// Slower than `telemetry.slow_operations.duration_ms`.
    public var slow: Bool
    @Nullable public var environment: String?
    @Nullable public var release: String?
    @Nullable public var correlationID: String?
    /// Tags, data and attributes, secrets masked.
    public var attributes: [String: JSONValue]

    enum CodingKeys: String, CodingKey {
        case traceID = "trace_id"
        case spanID = "span_id"
        case parentSpanID = "parent_span_id"
        case project, source, service, name, op, transaction
        case isTransaction = "is_transaction"
        case timestamp
        case durationMilliseconds = "duration_ms"
        case status, error, slow, environment, release
        case correlationID = "correlation_id"
        case attributes
    }

    public init(traceID: String, spanID: String, parentSpanID: String?, project: String, source: String, service: String?, name: String,
                op: String?, transaction: String?, isTransaction: Bool, timestamp: String, durationMilliseconds: Double, status: String,
                error: Bool, slow: Bool, environment: String?, release: String?, correlationID: String?, attributes: [String: JSONValue]) {
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.project = project
        self.source = source
        self.service = service
        self.name = name
        self.op = op
        self.transaction = transaction
        self.isTransaction = isTransaction
        self.timestamp = timestamp
        self.durationMilliseconds = durationMilliseconds
        self.status = status
        self.error = error
        self.slow = slow
        self.environment = environment
        self.release = release
        self.correlationID = correlationID
        self.attributes = attributes
    }
}

/// A span placed in its trace: how deep in the tree and how long after the trace's start.
public struct TraceSpan: Codable, Sendable, Equatable {
    /// 0 for a root (a span whose parent is not in the trace); a child is one deeper than its parent.
    public var depth: Int
    public var offsetMilliseconds: Double
    public var span: SpanView

    enum CodingKeys: String, CodingKey {
        case depth
        case offsetMilliseconds = "offset_ms"
        case span
    }

    public init(depth: Int, offsetMilliseconds: Double, span: SpanView) {
        self.depth = depth
        self.offsetMilliseconds = offsetMilliseconds
        self.span = span
    }
}

/// `GET /api/v1/traces/{trace_id}`: the trace's spans in tree order (each parent before its
/// children, siblings by start time) and the error events linked to it.
public struct TraceDetail: Codable, Sendable, Equatable {
    public var traceID: String
    /// The name of the trace's first root transaction (or first root span).
    public var rootName: String
    /// When its first span started.
    public var start: String
    /// From the first start to the last end.
    public var durationMilliseconds: Double
    public var spanCount: Int
    /// True when the trace has more spans than one answer shows (`TraceDetail.maxSpans`), or
    /// when the spans' attributes passed `TraceDetail.maxAttributeBytes` and the later spans'
    /// were left out (`GET /api/v1/spans?q=trace_id:… span_id:…` reads one span whole).
    public var truncated: Bool
    public var spans: [TraceSpan]
    /// Error events whose correlation id is the trace id (or its transaction's correlation id).
    public var errors: [ErrorEventView]

    /// The attributes one trace answer holds at most, as stored JSON text: 10,000 spans of 64 KiB
    /// each would be an answer of 640 MB.
    public static let maxAttributeBytes = 4 * 1024 * 1024

    /// Spans one trace answer holds at most.
    public static let maxSpans = 10_000

    enum CodingKeys: String, CodingKey {
        case traceID = "trace_id"
        case rootName = "root_name"
        case start
        case durationMilliseconds = "duration_ms"
        case spanCount = "span_count"
        case truncated, spans, errors
    }

    public init(traceID: String, rootName: String, start: String, durationMilliseconds: Double, spanCount: Int, truncated: Bool,
                spans: [TraceSpan], errors: [ErrorEventView]) {
        self.traceID = traceID
        self.rootName = rootName
        self.start = start
        self.durationMilliseconds = durationMilliseconds
        self.spanCount = spanCount
        self.truncated = truncated
        self.spans = spans
        self.errors = errors
    }
}

/// One transaction name's performance over a window, and the change from the window before.
public struct TransactionRow: Codable, Sendable, Equatable {
    public var name: String
    public var count: Int64
    /// Transactions per minute over the window.
    public var throughputPerMinute: Double
    /// The share (0…1) whose status was a failure.
    public var errorRate: Double
    public var p50Milliseconds: Double
    public var p95Milliseconds: Double
    public var p99Milliseconds: Double
    /// The same name over the window of equal length just before.
    public var previousCount: Int64
    @Nullable public var previousP95Milliseconds: Double?
    /// How much p95 rose (negative: fell) since the previous window, in percent; null without one.
    @Nullable public var p95ChangePercent: Double?

    enum CodingKeys: String, CodingKey {
        case name, count
        case throughputPerMinute = "throughput_per_minute"
        case errorRate = "error_rate"
        case p50Milliseconds = "p50_ms"
        case p95Milliseconds = "p95_ms"
        case p99Milliseconds = "p99_ms"
        case previousCount = "previous_count"
        case previousP95Milliseconds = "previous_p95_ms"
        case p95ChangePercent = "p95_change_percent"
    }

    public init(name: String, count: Int64, throughputPerMinute: Double, errorRate: Double, p50Milliseconds: Double, p95Milliseconds: Double,
                p99Milliseconds: Double, previousCount: Int64, previousP95Milliseconds: Double?, p95ChangePercent: Double?) {
        self.name = name
        self.count = count
        self.throughputPerMinute = throughputPerMinute
        self.errorRate = errorRate
        self.p50Milliseconds = p50Milliseconds
        self.p95Milliseconds = p95Milliseconds
        self.p99Milliseconds = p99Milliseconds
        self.previousCount = previousCount
        self.previousP95Milliseconds = previousP95Milliseconds
        self.p95ChangePercent = p95ChangePercent
    }
}

/// How `GET /api/v1/transactions` orders its rows (all but `name` highest first).
public enum TransactionSort: String, Codable, Sendable, Equatable, CaseIterable {
    case count, throughput, p50, p95, p99
    case errorRate = "error_rate"
    case change, name
}

/// `GET /api/v1/transactions`.
public struct TransactionList: Codable, Sendable, Equatable {
    public var from: String
    public var to: String
    public var data: [TransactionRow]

    public init(from: String, to: String, data: [TransactionRow]) {
        self.from = from
        self.to = to
        self.data = data
    }
}

/// `GET /api/v1/spans`: matching spans, newest first.
public struct SpanSearchResult: Codable, Sendable, Equatable {
    public var data: [SpanView]
    public init(data: [SpanView]) { self.data = data }
}
