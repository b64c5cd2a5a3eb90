/// Where trace spans live: written in batches by the span recorder, read as one trace, as
/// per-transaction summaries and by the query language. SQLite and PostgreSQL implement it
/// (`SQLTelemetryStore+Traces.swift`).
public protocol TraceStore: Sendable {
    /// Stores spans; a span already stored (same trace, span id, project and start) is kept once.
    func insertSpans(_ spans: [Span]) async throws
    /// The spans of one trace, by start time, at most `limit` of them.
    func spans(traceID: String, limit: Int) async throws -> [Span]
    /// One row per transaction name over the window, and the same name's count and p95 over the
    /// window of equal length just before it.
    func transactionSummaries(_ query: TransactionSummaryQuery) async throws -> [TransactionSummary]
    /// Spans matching the query, newest first.
    func searchSpans(_ query: SpanSearchQuery) async throws -> [Span]
}

/// Spans in a window matching a query-language filter (`QuerySchema.spans`).
public struct SpanSearchQuery: Sendable {
    public var filter: QueryNode?
    public var fromMicros: Int64?
    public var toMicros: Int64?
    public var limit: Int
    public init(filter: QueryNode? = nil, fromMicros: Int64? = nil, toMicros: Int64? = nil, limit: Int = 100) {
        self.filter = filter
        self.fromMicros = fromMicros
        self.toMicros = toMicros
        self.limit = limit
    }
}

/// Which transactions to summarize: `from ≤ ts < to`, optionally one project or environment
/// and a query-language filter over the transactions' root spans.
public struct TransactionSummaryQuery: Sendable {
    /// Most transaction names summarized: the busiest ones (a name per raw URL would be unbounded).
    public static let maxNames = 1000

    public var fromMicros: Int64
    public var toMicros: Int64
    public var project: String?
    public var environment: String?
    public var filter: QueryNode?
    public init(fromMicros: Int64, toMicros: Int64, project: String? = nil, environment: String? = nil, filter: QueryNode? = nil) {
        self.fromMicros = fromMicros
        self.toMicros = toMicros
        self.project = project
        self.environment = environment
        self.filter = filter
    }
}

/// One transaction name over a window: how many ran, how many failed, their duration
/// percentiles (µs), and the count and p95 of the window before.
public struct TransactionSummary: Sendable, Equatable {
    public var name: String
    public var count: Int64
    public var errorCount: Int64
    public var durations: LatencyPercentiles
    public var previousCount: Int64
    /// Nil when none ran in the previous window.
    public var previousP95: Double?
    public init(name: String, count: Int64, errorCount: Int64, durations: LatencyPercentiles, previousCount: Int64, previousP95: Double?) {
        self.name = name
        self.count = count
        self.errorCount = errorCount
        self.durations = durations
        self.previousCount = previousCount
        self.previousP95 = previousP95
    }
}
