/// Answers of the usage and request-record routes: `GET /api/v1/ai/usage`, `GET /api/v1/requests`
/// and `GET /api/v1/requests/{id}` (described in `OpenAPI/usage.yaml`).

/// `GET /api/v1/ai/usage`: totals over a time range, a time series and, with `group_by`, one row
/// per group.
public struct UsageReportView: Codable, Sendable, Equatable {
    /// The range actually covered (defaults applied), RFC 3339.
    public var from: String
    public var to: String
    /// The bucket width (`1m`, `1h`, `1d`, …); nil with `interval=none`.
    @Nullable public var interval: String?
    /// The grouping asked for (`model`, …, `property.<name>`); nil without one.
    @Nullable public var groupBy: String?
    public var totals: UsageStatsView
    /// Buckets with calls, oldest first; empty without an interval.
    public var series: [UsageBucketView]
    /// Present only with `group_by`: one row per group, dearest first.
    public var groups: [UsageGroupView]?

    public init(from: String, to: String, interval: String?, groupBy: String?, totals: UsageStatsView, series: [UsageBucketView],
                groups: [UsageGroupView]?) {
        self.from = from
        self.to = to
        self.interval = interval
        self.groupBy = groupBy
        self.totals = totals
        self.series = series
        self.groups = groups
    }

    enum CodingKeys: String, CodingKey {
        case from, to, interval
        case groupBy = "group_by"
        case totals, series, groups
    }
}

/// Calls, errors, tokens, cost and latency of a set of calls (the totals, a bucket or a group).
public struct UsageStatsView: Codable, Sendable, Equatable {
    public var requests: Int64
    public var errors: Int64
    public var inputTokens: Int64
    public var outputTokens: Int64
    public var cachedInputTokens: Int64
    public var cacheCreationInputTokens: Int64
    public var reasoningTokens: Int64
    public var totalTokens: Int64
    public var costMicros: Int64
    /// The same cost as a dollar string (`"0.000125"`).
    public var costUSD: String
    /// nil when the set holds no call.
    @Nullable public var latencyMs: UsageLatencyView?

    public init(requests: Int64, errors: Int64, inputTokens: Int64, outputTokens: Int64, cachedInputTokens: Int64,
                cacheCreationInputTokens: Int64, reasoningTokens: Int64, totalTokens: Int64, costMicros: Int64, costUSD: String,
                latencyMs: UsageLatencyView?) {
        self.requests = requests
        self.errors = errors
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cachedInputTokens = cachedInputTokens
        self.cacheCreationInputTokens = cacheCreationInputTokens
        self.reasoningTokens = reasoningTokens
        self.totalTokens = totalTokens
        self.costMicros = costMicros
        self.costUSD = costUSD
        self.latencyMs = latencyMs
    }

    enum CodingKeys: String, CodingKey {
        case requests, errors
        case inputTokens = "input_tokens"
        case outputTokens = "output_tokens"
        case cachedInputTokens = "cached_input_tokens"
        case cacheCreationInputTokens = "cache_creation_input_tokens"
        case reasoningTokens = "reasoning_tokens"
        case totalTokens = "total_tokens"
        case costMicros = "cost_micros"
        case costUSD = "cost_usd"
        case latencyMs = "latency_ms"
    }
}

/// Latency percentiles in milliseconds.
public struct UsageLatencyView: Codable, Sendable, Equatable {
    public var p50: Double
    public var p95: Double
    public var p99: Double

    public init(p50: Double, p95: Double, p99: Double) {
        self.p50 = p50
        self.p95 = p95
        self.p99 = p99
    }

    enum CodingKeys: String, CodingKey {
        case p50, p95, p99
    }
}

/// One time bucket: its start beside the stats' own fields (one flat object on the wire). A
/// bucket's `latencyMs` is always nil: the store computes no percentiles per bucket.
public struct UsageBucketView: Codable, Sendable, Equatable {
    public var start: String
    public var stats: UsageStatsView

    public init(start: String, stats: UsageStatsView) {
        self.start = start
        self.stats = stats
    }

    enum CodingKeys: String, CodingKey {
        case start
    }

    public init(from decoder: any Decoder) throws {
        start = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .start)
        stats = try UsageStatsView(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try stats.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(start, forKey: .start)
    }
}

/// One group: its value beside the stats' own fields (one flat object on the wire).
public struct UsageGroupView: Codable, Sendable, Equatable {
    /// The group's value; nil (written as `null`) for calls without one, e.g. no user id.
    public var key: String?
    public var stats: UsageStatsView

    public init(key: String?, stats: UsageStatsView) {
        self.key = key
        self.stats = stats
    }

    enum CodingKeys: String, CodingKey {
        case key
    }

    public init(from decoder: any Decoder) throws {
        key = try decoder.container(keyedBy: CodingKeys.self).decode(Nullable<String>.self, forKey: .key).wrappedValue
        stats = try UsageStatsView(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try stats.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Nullable(wrappedValue: key), forKey: .key)
    }
}

/// `GET /api/v1/requests`: one page of request records, newest first.
public struct RequestRecordPage: Codable, Sendable, Equatable {
    public var data: [RequestRecordView]
    /// Pass as `cursor` for the next page; nil on the last page.
    @Nullable public var nextCursor: String?
    public var hasMore: Bool

    public init(data: [RequestRecordView], nextCursor: String?, hasMore: Bool) {
        self.data = data
        self.nextCursor = nextCursor
        self.hasMore = hasMore
    }

    enum CodingKeys: String, CodingKey {
        case data
        case nextCursor = "next_cursor"
        case hasMore = "has_more"
    }
}

/// One AI call as Gatehouse recorded it (`GET /api/v1/requests/{id}` and the list's rows).
public struct RequestRecordView: Codable, Sendable, Equatable {
    public var id: String
    /// Start of the call, RFC 3339.
    public var timestamp: String
    /// The gateway route called, e.g. `/v1/chat/completions`.
    public var route: String
    public var provider: String
    /// The model the client asked for (`provider/model` or an alias).
    public var requestedModel: String
    /// The model upstream was asked for after routing, or the one it reported.
    public var model: String
    public var status: Int
    public var stream: Bool
    public var latencyMs: Double
    @Nullable public var timeToFirstTokenMs: Double?
    public var usage: RequestTokensView
    public var costMicros: Int64
    public var costUSD: String
    /// A non-secret identifier of the caller's key, never the key itself.
    @Nullable public var keyID: String?
    @Nullable public var userID: String?
    public var properties: [String: String]
    public var correlationID: String
    /// Why the call did not complete normally (`upstream_429`, `stream_incomplete`, …); nil on success.
    @Nullable public var errorClass: String?
    @Nullable public var errorMessage: String?
    /// False when the response ended early.
    public var complete: Bool
    /// Answered from the response cache.
    public var cacheHit: Bool
    /// The provider never reported usage: `usage` and the cost are Gatehouse's estimate.
    public var usageEstimated: Bool
    public var costSavedMicros: Int64
    public var costSavedUSD: String
    /// Every upstream attempt when there was more than one (retries, fallbacks), in order.
    public var attempts: [RequestAttemptView]

    public init(id: String, timestamp: String, route: String, provider: String, requestedModel: String, model: String, status: Int,
                stream: Bool, latencyMs: Double, timeToFirstTokenMs: Double?, usage: RequestTokensView, costMicros: Int64, costUSD: String,
                keyID: String?, userID: String?, properties: [String: String], correlationID: String, errorClass: String?,
                errorMessage: String?, complete: Bool, cacheHit: Bool, usageEstimated: Bool, costSavedMicros: Int64, costSavedUSD: String,
                attempts: [RequestAttemptView]) {
        self.id = id
        self.timestamp = timestamp
        self.route = route
        self.provider = provider
        self.requestedModel = requestedModel
        self.model = model
        self.status = status
        self.stream = stream
        self.latencyMs = latencyMs
        self.timeToFirstTokenMs = timeToFirstTokenMs
        self.usage = usage
        self.costMicros = costMicros
        self.costUSD = costUSD
        self.keyID = keyID
        self.userID = userID
        self.properties = properties
        self.correlationID = correlationID
        self.errorClass = errorClass
        self.errorMessage = errorMessage
        self.complete = complete
        self.cacheHit = cacheHit
        self.usageEstimated = usageEstimated
        self.costSavedMicros = costSavedMicros
        self.costSavedUSD = costSavedUSD
        self.attempts = attempts
    }

    enum CodingKeys: String, CodingKey {
        case id, timestamp, route, provider
        case requestedModel = "requested_model"
        case model, status, stream
        case latencyMs = "latency_ms"
        case timeToFirstTokenMs = "time_to_first_token_ms"
        case usage
        case costMicros = "cost_micros"
        case costUSD = "cost_usd"
        case keyID = "key_id"
        case userID = "user_id"
        case properties
        case correlationID = "correlation_id"
        case errorClass = "error_class"
        case errorMessage = "error_message"
        case complete
        case cacheHit = "cache_hit"
        case usageEstimated = "usage_estimated"
        case costSavedMicros = "cost_saved_micros"
        case costSavedUSD = "cost_saved_usd"
        case attempts
    }
}

/// The token counts of one call.
public struct RequestTokensView: Codable, Sendable, Equatable {
    /// Every prompt token, cached ones included.
    public var inputTokens: Int
    public var outputTokens: Int
    public var cachedInputTokens: Int
    public var cacheCreationInputTokens: Int
    public var reasoningTokens: Int
    public var totalTokens: Int

    public init(inputTokens: Int, outputTokens: Int, cachedInputTokens: Int, cacheCreationInputTokens: Int, reasoningTokens: Int,
                totalTokens: Int) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cachedInputTokens = cachedInputTokens
        self.cacheCreationInputTokens = cacheCreationInputTokens
        self.reasoningTokens = reasoningTokens
        self.totalTokens = totalTokens
    }

    enum CodingKeys: String, CodingKey {
        case inputTokens = "input_tokens"
        case outputTokens = "output_tokens"
        case cachedInputTokens = "cached_input_tokens"
        case cacheCreationInputTokens = "cache_creation_input_tokens"
        case reasoningTokens = "reasoning_tokens"
        case totalTokens = "total_tokens"
    }
}

/// One try at an upstream deployment within a call.
public struct RequestAttemptView: Codable, Sendable, Equatable {
    public var provider: String
    public var model: String
    /// HTTP status; nil when no response arrived.
    @Nullable public var status: Int?
    @Nullable public var errorClass: String?
    @Nullable public var errorMessage: String?
    public var latencyMs: Double
    /// Milliseconds waited before this attempt (backoff or `Retry-After`).
    public var delayMs: Int

    public init(provider: String, model: String, status: Int?, errorClass: String?, errorMessage: String?, latencyMs: Double, delayMs: Int) {
        self.provider = provider
        self.model = model
        self.status = status
        self.errorClass = errorClass
        self.errorMessage = errorMessage
        self.latencyMs = latencyMs
        self.delayMs = delayMs
    }

    enum CodingKeys: String, CodingKey {
        case provider, model, status
        case errorClass = "error_class"
        case errorMessage = "error_message"
        case latencyMs = "latency_ms"
        case delayMs = "delay_ms"
    }
}
