/// What a store is asked to aggregate: a query's stage over the records matching its filter in
/// a time window, with a bound on the groups it answers.
public struct AggregationQuery: Sendable, Equatable {
    public var aggregation: Aggregation
    public var filter: QueryNode?
    /// `from ≤ ts < to`, microseconds since 1970.
    public var fromMicros: Int64
    public var toMicros: Int64
    /// At most this many groups are answered; `truncated` says when there were more.
    public var limit: Int

    public init(aggregation: Aggregation, filter: QueryNode?, fromMicros: Int64, toMicros: Int64, limit: Int) {
        self.aggregation = aggregation
        self.filter = filter
        self.fromMicros = fromMicros
        self.toMicros = toMicros
        self.limit = limit
    }

    /// The bin's width, when the stage groups by one.
    public var binMicros: Int64? {
        for term in aggregation.groupBy { if case .bin(let micros) = term { return micros } }
        return nil
    }

    /// Checks the explicit bounds (a window, at most `AggregationLimits.maxBins` bins, 1…`maxGroups`
    /// groups); a violation is a `QueryFieldError` the API answers with 400.
    public func validate() throws(QueryFieldError) {
        guard fromMicros < toMicros else { throw QueryFieldError("the window is empty: `from` must be before `to`") }
        guard (1...AggregationLimits.maxGroups).contains(limit) else {
            throw QueryFieldError("at most \(AggregationLimits.maxGroups) groups can be asked for")
        }
        guard let width = binMicros else { return }
        guard (Aggregation.minBinMicros...Aggregation.maxBinMicros).contains(width) else { throw QueryFieldError("a bin is from 1s to 1000d") }
        let bins = AggregationLimits.binCount(fromMicros: fromMicros, toMicros: toMicros, widthMicros: width)
        guard bins <= Int64(AggregationLimits.maxBins) else {
            // Saturating: the store's callers may pass any instants, not only those the API reads.
            let (span, overflow) = toMicros.subtractingReportingOverflow(fromMicros)
            let narrowest = overflow ? Int64.max / 2 : span / Int64(AggregationLimits.maxBins) + (span % Int64(AggregationLimits.maxBins) == 0 ? 0 : 1)
            throw QueryFieldError("bin(\(TimeExpressions.formatDuration(micros: width))) cuts the window into \(bins) bins; "
                + "at most \(AggregationLimits.maxBins) are allowed: use a bin of at least \(Self.roundUp(narrowest)) or a shorter window")
        }
    }

    /// A width that is easy to write (whole seconds, minutes, hours or days) and at least `micros`.
    static func roundUp(_ micros: Int64) -> String {
        for scale: Int64 in [1_000_000, 60_000_000, 3_600_000_000, 86_400_000_000] where micros <= scale * 60 || scale == 86_400_000_000 {
            return TimeExpressions.formatDuration(micros: (micros + scale - 1) / scale * scale)
        }
        return TimeExpressions.formatDuration(micros: micros)
    }
}

/// The explicit bounds on an aggregation (see docs/query-language.md).
public enum AggregationLimits {
    /// Groups answered when the caller does not say (`limit`).
    public static let defaultGroups = 100
    /// Groups answered when the stage groups by a bin and the caller does not say: a day of
    /// 5-minute bins fits.
    public static let defaultBinnedGroups = 1000
    /// The most groups any call answers.
    public static let maxGroups = 1000
    /// The most bins a window may be cut into.
    public static let maxBins = 1000
    /// The window when the caller gives none: the last 24 hours.
    public static let defaultWindowMicros: Int64 = 86_400_000_000

    /// How many bins of `width` (aligned to 1970) hold some instant of `from ≤ ts < to`.
    public static func binCount(fromMicros: Int64, toMicros: Int64, widthMicros: Int64) -> Int64 {
        // With a width of at least 1 s (as `validate` checks first) the quotients are at most
        // 2^63 / 10^6 apart, so the difference cannot overflow.
        TimeExpressions.floorDivide(toMicros - 1, widthMicros) - TimeExpressions.floorDivide(fromMicros, widthMicros) + 1
    }
}

/// Which records a telemetry aggregation runs over.
public enum TelemetryAggregationTarget: String, Sendable, CaseIterable {
    case logs
    case errorEvents = "error_events"
    case spans
}

/// A store's answer to an `AggregationQuery`: the groups, largest value first (bins in time
/// order, then largest value first within a bin).
public struct AggregationOutcome: Sendable, Equatable {
    /// What `value` counts in: durations in milliseconds, money in dollars.
    public enum Unit: String, Sendable {
        case count, ms, usd, number
    }

    public var unit: Unit
    public var groups: [AggregateGroup]
    /// More groups matched than `limit`; the smallest were left out.
    public var truncated: Bool

    public init(unit: Unit, groups: [AggregateGroup], truncated: Bool) {
        self.unit = unit
        self.groups = groups
        self.truncated = truncated
    }
}

public struct AggregateGroup: Sendable, Equatable {
    /// One value per group term, in the stage's order, named as written (`function`, `bin(1h)`).
    public var key: [AggregateKey]
    public var value: Double
    /// The records the value was computed from (for `sum(f)` and the like, those where `f` has a number).
    public var count: Int64

    public init(key: [AggregateKey], value: Double, count: Int64) {
        self.key = key
        self.value = value
        self.count = count
    }
}

public struct AggregateKey: Sendable, Equatable {
    public enum Value: Sendable, Equatable {
        case text(String)
        case number(Double)
        case bool(Bool)
        /// A bin's start, microseconds since 1970.
        case time(micros: Int64)
        /// The field is absent from these records.
        case missing
    }

    public var name: String
    public var value: Value

    public init(name: String, value: Value) {
        self.name = name
        self.value = value
    }
}
