/// Where request records live. SQLite and PostgreSQL implement it (GatehouseStorage); every
/// reader of records (usage API, request list, CLI) goes through it.
public protocol RequestStore: Sendable {
    /// Writes all records in one transaction; either all are stored or none.
    func insert(_ records: [RequestRecord]) async throws
    func usage(_ query: UsageQuery) async throws -> UsageReport
    func requests(_ query: RequestListQuery) async throws -> RequestPage
    /// A query's aggregation stage (`| sum(cost) by model`) over the calls matching `filter`
    /// (its `query` is ANDed with the stage's own filter).
    func aggregate(_ query: AggregationQuery, filter: RequestFilter) async throws -> AggregationOutcome
    /// A record without its bodies; `bodies(requestID:)` reads those.
    func request(id: String) async throws -> RequestRecord?
    /// The captured bodies of one call; nil when it was not captured or they have expired.
    func bodies(requestID: String) async throws -> CapturedBodies?
    /// Writes captured bodies in one transaction (a body already stored for its call is kept).
    func insertBodies(_ bodies: [CapturedBodies]) async throws
    /// Succeeds when the store answers a trivial query; `/ready` uses it.
    func ping() async throws
}

/// Narrows which records a usage or list query looks at. Every set field must match.
public struct RequestFilter: Sendable, Equatable {
    public var model: String?
    public var provider: String?
    public var keyID: String?
    public var userID: String?
    public var route: GatewayRoute?
    public var status: Int?
    public var correlationID: String?
    /// Only failed (`true`) or only successful (`false`) calls.
    public var failed: Bool?
    /// `property.<name>` equal to a value.
    public var properties: [String: String]
    /// A query-language expression (`model:gpt-4o* cost:>0.01 -status:200`), ANDed with the rest.
    public var query: QueryNode?

    public init(model: String? = nil, provider: String? = nil, keyID: String? = nil, userID: String? = nil,
                route: GatewayRoute? = nil, status: Int? = nil, correlationID: String? = nil, failed: Bool? = nil,
                properties: [String: String] = [:], query: QueryNode? = nil) {
        self.model = model
        self.provider = provider
        self.keyID = keyID
        self.userID = userID
        self.route = route
        self.status = status
        self.correlationID = correlationID
        self.failed = failed
        self.properties = properties
        self.query = query
    }
}

public enum UsageGrouping: Sendable, Equatable {
    case model, provider, key, user, route, status
    case property(String)

    /// `model`, `provider`, `key`, `user`, `route`, `status` or `property.<name>`.
    public init?(_ text: String) {
        switch text {
        case "model": self = .model
        case "provider": self = .provider
        case "key": self = .key
        case "user": self = .user
        case "route": self = .route
        case "status": self = .status
        default:
            guard text.hasPrefix("property."), text.count > "property.".count, text.count <= 128 else { return nil }
            self = .property(String(text.dropFirst("property.".count)).lowercased())
        }
    }

    public var name: String {
        switch self {
        case .model: "model"
        case .provider: "provider"
        case .key: "key"
        case .user: "user"
        case .route: "route"
        case .status: "status"
        case .property(let p): "property.\(p)"
        }
    }
}

public struct UsageQuery: Sendable, Equatable {
    /// Half-open time range [from, to) in microseconds since 1970.
    public var fromMicros: Int64
    public var toMicros: Int64
    /// Width of each time-series bucket; nil means no series.
    public var intervalMicros: Int64?
    public var groupBy: UsageGrouping?
    public var filter: RequestFilter
    /// Whether totals and groups carry latency percentiles. They cost an ordered pass over the
    /// range's calls, so readers that show no latency (spend, keys, trend comparisons) say false.
    public var includeLatency: Bool

    public init(fromMicros: Int64, toMicros: Int64, intervalMicros: Int64? = nil, groupBy: UsageGrouping? = nil,
                filter: RequestFilter = RequestFilter(), includeLatency: Bool = true) {
        self.fromMicros = fromMicros
        self.toMicros = toMicros
        self.intervalMicros = intervalMicros
        self.groupBy = groupBy
        self.filter = filter
        self.includeLatency = includeLatency
    }
}

/// Latency percentiles in microseconds (linear interpolation between ranks, as PostgreSQL's
/// `percentile_cont`). Nil when no call is in the set.
public struct LatencyPercentiles: Sendable, Equatable, Codable {
    public var p50: Double
    public var p95: Double
    public var p99: Double
    public init(p50: Double, p95: Double, p99: Double) {
        self.p50 = p50
        self.p95 = p95
        self.p99 = p99
    }

    /// The same interpolation PostgreSQL's `percentile_cont` uses, for stores without it.
    public static func compute(sorted values: [Int64]) -> LatencyPercentiles? {
        compute(count: Int64(values.count)) { values[Int($0)] }
    }

    /// The percentiles of `count` sorted values of which only some were read (`value(rank)`,
    /// 0-based): nil when a rank `ranks(count:)` names is missing or there are no values.
    public static func compute(count: Int64, value: (Int64) -> Int64?) -> LatencyPercentiles? {
        guard count > 0 else { return nil }
        func at(_ p: Double) -> Double? {
            let rank = p * Double(count - 1)
            let lower = Int64(rank.rounded(.down)), upper = min(lower + 1, count - 1)
            guard let low = value(lower), let high = value(upper) else { return nil }
            return Double(low) + (Double(high) - Double(low)) * (rank - Double(lower))
        }
        guard let p50 = at(0.5), let p95 = at(0.95), let p99 = at(0.99) else { return nil }
        return LatencyPercentiles(p50: p50, p95: p95, p99: p99)
    }

    /// The lower of the two ranks each percentile interpolates between, for `count` values.
    public static func lowerRanks(count: Int64) -> Set<Int64> {
        Set([0.5, 0.95, 0.99].map { Int64(($0 * Double(count - 1)).rounded(.down)) })
    }

    /// Every 0-based rank `compute` reads for `count` sorted values.
    public static func ranks(count: Int64) -> Set<Int64> {
        lowerRanks(count: count).reduce(into: []) { ranks, lower in
            ranks.insert(lower)
            ranks.insert(min(lower + 1, count - 1))
        }
    }
}

public struct UsageStats: Sendable, Equatable {
    public var requests: Int64 = 0
    public var errors: Int64 = 0
    public var usage = TokenUsageTotals()
    public var cost = MicroDollars.zero
    public var latency: LatencyPercentiles?
    public init() {}
}

/// Token sums over many calls (64-bit: a busy month overflows nothing).
public struct TokenUsageTotals: Sendable, Equatable, Codable {
    public var inputTokens: Int64 = 0
    public var outputTokens: Int64 = 0
    public var cachedInputTokens: Int64 = 0
    public var cacheCreationInputTokens: Int64 = 0
    public var reasoningTokens: Int64 = 0
    public init() {}
    public var totalTokens: Int64 { inputTokens + outputTokens }
}

public struct UsageGroup: Sendable, Equatable {
    /// The group's value; nil for records without one (e.g. no user id).
    public var key: String?
    public var stats: UsageStats
    public init(key: String?, stats: UsageStats) {
        self.key = key
        self.stats = stats
    }
}

public struct UsageBucket: Sendable, Equatable {
    public var startMicros: Int64
    public var stats: UsageStats
    public init(startMicros: Int64, stats: UsageStats) {
        self.startMicros = startMicros
        self.stats = stats
    }
}

public struct UsageReport: Sendable, Equatable {
    public var totals: UsageStats
    /// Ordered by cost, then requests, descending.
    public var groups: [UsageGroup]
    /// Ordered by time; only buckets with calls.
    public var series: [UsageBucket]
    public init(totals: UsageStats, groups: [UsageGroup], series: [UsageBucket]) {
        self.totals = totals
        self.groups = groups
        self.series = series
    }
}

/// The order of a request list: one column, either way. Ties fall back to time, then id, in the
/// same direction, so every row has one place and keyset paging neither skips nor repeats.
public struct RequestSort: Sendable, Equatable {
    public enum Field: String, Sendable, CaseIterable {
        case time, cost, latency
        /// Input plus output tokens.
        case tokens
    }

    public var field: Field
    public var descending: Bool

    public init(_ field: Field, descending: Bool = true) {
        self.field = field
        self.descending = descending
    }

    /// The default order: newest first.
    public static let newestFirst = RequestSort(.time)

    /// `cost` (ascending) or `-cost` (descending), for URLs.
    public init?(_ text: String) {
        let descending = text.hasPrefix("-")
        guard let field = Field(rawValue: descending ? String(text.dropFirst()) : text) else { return nil }
        self.init(field, descending: descending)
    }

    public var name: String { (descending ? "-" : "") + field.rawValue }
}

public struct RequestListQuery: Sendable, Equatable {
    public var filter: RequestFilter
    public var fromMicros: Int64?
    public var toMicros: Int64?
    public var limit: Int
    /// Opaque cursor from a page of the same sort: its `nextCursor` or `previousCursor`.
    public var cursor: String?
    public var sort: RequestSort
    public init(filter: RequestFilter = RequestFilter(), fromMicros: Int64? = nil, toMicros: Int64? = nil, limit: Int = 50, cursor: String? = nil,
                sort: RequestSort = .newestFirst) {
        self.filter = filter
        self.fromMicros = fromMicros
        self.toMicros = toMicros
        self.limit = limit
        self.cursor = cursor
        self.sort = sort
    }
}

public struct RequestPage: Sendable, Equatable {
    /// In the query's sort order (newest first by default).
    public var records: [RequestRecord]
    /// The page after this one; nil on the last page.
    public var nextCursor: String?
    /// The page before this one; nil on the first page.
    public var previousCursor: String?
    public init(records: [RequestRecord], nextCursor: String?, previousCursor: String? = nil) {
        self.records = records
        self.nextCursor = nextCursor
        self.previousCursor = previousCursor
    }
}

public enum StoreError: Error, CustomStringConvertible, Equatable {
    case invalidCursor
    case unavailable(String)
    case corrupt(String)

    public var description: String {
        switch self {
        case .invalidCursor: "the cursor is not one this server issued"
        case .unavailable(let why): "the store is unavailable: \(why)"
        case .corrupt(let what): "a stored value could not be read: \(what)"
        }
    }
}

/// Where the gateway hands finished records; the batching recorder implements it.
public protocol RequestRecordSink: Sendable {
    /// Never waits on the database. Returns false when the record was dropped.
    @discardableResult
    func record(_ record: RequestRecord) async -> Bool
}

/// A usage query that would read more rows than `SQLRequestStore.maxPercentileRows`.
public struct UsageQueryTooLarge: Error, CustomStringConvertible {
    public var rows: Int64
    public var limit: Int
    public init(rows: Int64, limit: Int) {
        self.rows = rows
        self.limit = limit
    }
    public var description: String {
        "the range holds \(rows) calls; latency percentiles are computed over at most \(limit) on SQLite. Narrow the range or add a filter."
    }
}
