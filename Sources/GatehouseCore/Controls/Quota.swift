import Foundation

/// A counting window. Rate limits and budgets are counted in fixed windows aligned to UTC
/// (a minute starts at :00, a day at midnight, a week on Monday, a month on the 1st), so every
/// instance agrees on which window a call belongs to without talking to the others.
public enum QuotaPeriod: String, Sendable, Codable, CaseIterable {
    case second, minute, hour, day, week, month, total

    /// Accepts `second|minute|hour|day|week|month|total`, plurals, and `s|m|h|d|w`.
    public init?(text: String) {
        let t = text.lowercased()
        let aliases: [String: QuotaPeriod] = ["s": .second, "sec": .second, "m": .minute, "min": .minute, "h": .hour,
                                              "d": .day, "w": .week, "mo": .month, "all": .total, "lifetime": .total]
        if let p = QuotaPeriod(rawValue: t) ?? QuotaPeriod(rawValue: String(t.dropLast())).flatMap({ t.hasSuffix("s") ? $0 : nil }) ?? aliases[t] {
            self = p
        } else {
            return nil
        }
    }

    private static let utc: Calendar = {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = TimeZone(identifier: "UTC")!
        return c
    }()

    /// The window containing `micros`: its start and its end (exclusive), in µs since 1970.
    public func window(containing micros: Int64) -> (start: Int64, end: Int64) {
        let second: Int64 = 1_000_000
        func fixed(_ length: Int64, offset: Int64 = 0) -> (Int64, Int64) {
            let start = (micros.subtractingSaturated(offset) / length * length).addingSaturated(offset)
            return (start, start.addingSaturated(length))
        }
        switch self {
        case .second: return fixed(second)
        case .minute: return fixed(60 * second)
        case .hour: return fixed(3600 * second)
        case .day: return fixed(86_400 * second)
        // 1970-01-05 was a Monday.
        case .week: return fixed(7 * 86_400 * second, offset: 4 * 86_400 * second)
        case .month:
            // Calendars are for years 1 to 9999; beyond them (never now) a 30-day window will do.
            guard (-62_135_596_800_000_000...253_402_300_799_000_000).contains(micros) else { return fixed(30 * 86_400 * second) }
            let date = Date(timeIntervalSince1970: Double(micros) / 1e6)
            let parts = Self.utc.dateComponents([.year, .month], from: date)
            guard let start = Self.utc.date(from: parts), let end = Self.utc.date(byAdding: .month, value: 1, to: start) else {
                return fixed(30 * 86_400 * second)
            }
            return (Int64(saturating: start.timeIntervalSince1970).multipliedSaturated(by: second),
                    Int64(saturating: end.timeIntervalSince1970).multipliedSaturated(by: second))
        case .total: return (0, Int64.max)
        }
    }
}

/// What a quota counts.
public enum QuotaUnit: String, Sendable, Codable, CaseIterable {
    case requests, tokens
    /// Spend, counted in micro-dollars (configured in dollars or, in Helicone's policy header, cents).
    case cost
}

/// Who a quota is counted for: each distinct value gets its own counter.
public enum QuotaScope: Sendable, Hashable, CustomStringConvertible {
    /// One counter for everything.
    case global
    /// Per virtual key.
    case key
    /// Per requested model.
    case model
    /// Per gateway route (`/v1/chat/completions`…).
    case route
    /// Per client IP address.
    case ip
    /// Per `Gatehouse-User-Id` / `Helicone-User-Id`.
    case user
    /// Per value of a `Gatehouse-Property-<name>` header, e.g. `property.domain`.
    case property(String)

    public init?(text: String) {
        let t = text.trimmingCharacters(in: .whitespaces)
        switch t.lowercased() {
        case "global", "all": self = .global
        case "key": self = .key
        case "model": self = .model
        case "route", "path": self = .route
        case "ip", "client_ip": self = .ip
        case "user": self = .user
        default:
            guard t.lowercased().hasPrefix("property."), t.count > "property.".count else { return nil }
            self = .property(String(t.dropFirst("property.".count)).lowercased())
        }
    }

    public var description: String {
        switch self {
        case .global: "global"
        case .key: "key"
        case .model: "model"
        case .route: "route"
        case .ip: "ip"
        case .user: "user"
        case .property(let name): "property.\(name)"
        }
    }
}

/// One limit: at most `limit` units per `period`, counted separately for each value of `scope`,
/// applying to calls that match `routes` / `models` (empty means all).
public struct QuotaRule: Sendable, Equatable, Hashable {
    /// Names the rule's counters; stable across restarts so counts survive them.
    public var id: String
    public var scope: QuotaScope
    public var unit: QuotaUnit
    /// Requests, tokens, or micro-dollars.
    public var limit: Int64
    public var period: QuotaPeriod
    public var routes: [String]
    public var models: [String]
    /// Only for a property scope: the one value this rule applies to (nil: every value).
    public var propertyValue: String?
    /// Fractions of the limit (0.5, 0.8, 1.0) at which a budget event is written.
    public var softThresholds: [Double]
    /// A window of this many seconds instead of `period` (Helicone's `w=` policies).
    public var customWindowSeconds: Int64?

    public init(id: String, scope: QuotaScope, unit: QuotaUnit, limit: Int64, period: QuotaPeriod, routes: [String] = [],
                models: [String] = [], propertyValue: String? = nil, softThresholds: [Double] = [], customWindowSeconds: Int64? = nil) {
        self.id = id
        self.scope = scope
        self.unit = unit
        self.limit = limit
        self.period = period
        self.routes = routes
        self.models = models
        self.propertyValue = propertyValue
        self.softThresholds = softThresholds
        self.customWindowSeconds = customWindowSeconds
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.id == rhs.id && lhs.scope == rhs.scope && lhs.unit == rhs.unit && lhs.limit == rhs.limit && lhs.period == rhs.period
            && lhs.routes == rhs.routes && lhs.models == rhs.models && lhs.propertyValue == rhs.propertyValue
            && lhs.softThresholds == rhs.softThresholds && lhs.customWindowSeconds == rhs.customWindowSeconds
    }

    public func window(containing micros: Int64) -> (start: Int64, end: Int64) {
        guard let seconds = customWindowSeconds, seconds > 0 else { return period.window(containing: micros) }
        // The window's length comes from a header (Helicone's `w=`): saturate, never trap.
        let length = seconds.multipliedSaturated(by: 1_000_000)
        let start = micros / length * length
        return (start, start.addingSaturated(length))
    }

    /// "60 requests per minute", "$25.00 per month".
    public var summary: String {
        let amount = unit == .cost ? "$" + MicroDollars(limit).dollarString : "\(limit) \(unit.rawValue)"
        if let seconds = customWindowSeconds { return "\(amount) per \(seconds)s" }
        return period == .total ? "\(amount) in total" : "\(amount) per \(period.rawValue)"
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(id) }

    /// A budget is a cost rule; it is listed at `/api/v1/budgets` and has soft thresholds.
    public var isBudget: Bool { unit == .cost }
}

/// A budget's soft thresholds, read the same way from `gatehouse.yaml` and the admin API.
public enum SoftThresholds {
    /// Warn at half, at 80% and at the limit unless told otherwise.
    public static let standard: [Double] = [0.5, 0.8, 1.0]
    public static let maxCount = 10
    public static let rule = "a list of at most 10 fractions (0.8) or percents (80), each above 0 and at most 1000%"

    /// The fractions `values` mean (80 and 0.8 both mean 80%); nil when any is not a threshold.
    public static func fractions(_ values: [Double]) -> [Double]? {
        guard values.count <= maxCount else { return nil }
        let fractions = values.compactMap { value -> Double? in
            guard value.isFinite, value > 0 else { return nil }
            let fraction = value > 1 ? value / 100 : value
            return fraction <= 10 ? fraction : nil
        }
        return fractions.count == values.count ? fractions : nil
    }

    /// Whether `usedMicros` of a `limitMicros` budget has crossed `threshold` (a fraction): the
    /// rule that writes a budget event, and the one every page that shows a budget draws by.
    public static func isCrossed(_ threshold: Double, usedMicros: Int64, limitMicros: Int64) -> Bool {
        limitMicros > 0 && Double(usedMicros) >= threshold * Double(limitMicros)
    }
}

/// A budget crossing a soft threshold (or its hard limit) in one window.
public struct BudgetEvent: Sendable, Equatable, Codable {
    public var counter: String
    public var windowStartMicros: Int64
    /// Percent of the limit crossed: 50, 80, 100…
    public var thresholdPercent: Int
    public var usedMicros: Int64
    public var limitMicros: Int64
    public var timestampMicros: Int64

    public init(counter: String, windowStartMicros: Int64, thresholdPercent: Int, usedMicros: Int64, limitMicros: Int64, timestampMicros: Int64) {
        self.counter = counter
        self.windowStartMicros = windowStartMicros
        self.thresholdPercent = thresholdPercent
        self.usedMicros = usedMicros
        self.limitMicros = limitMicros
        self.timestampMicros = timestampMicros
    }
}
