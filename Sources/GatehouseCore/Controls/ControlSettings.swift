import Foundation

/// The controls configured in the file: limits, budgets, token caps, retries, breaker, cache.
public struct ControlSettings: Sendable, Equatable {
    /// Bearer token for the admin API (`GATEHOUSE_ADMIN_TOKEN`). Without it the admin API is off.
    public var adminToken: String?
    /// Rate limits from the file (`rate_limits:`), including path rules.
    public var rateLimits: [QuotaRule] = []
    /// Budgets from the file (`budgets:`).
    public var budgets: [QuotaRule] = []
    public var tokenCaps: [TokenCap] = []
    /// Output tokens assumed for a call that sets no `max_tokens`, when reserving budget and
    /// token quota before the call.
    public var defaultOutputTokenEstimate = 1024
    /// Counted per second: how often each instance reports consumption and returns idle leases.
    public var syncIntervalMilliseconds = 500
    /// The largest lease one instance takes from a shared counter, as a fraction of its limit.
    public var leaseFraction = 0.05
    public var retry = RetrySettings()
    public var breaker = BreakerSettings()
    public var cache = CacheSettings()
    /// Whether calls without a virtual key are refused even before any key exists.
    public var requireKeys = false
    /// What a call gets when the quota store cannot be reached: admitted (the gateway stays up,
    /// limits lapse until the store returns) or refused with 503.
    public var whenStoreUnavailable: StoreFailurePolicy = .admit

    public enum StoreFailurePolicy: String, Sendable, CaseIterable {
        case admit, refuse
    }
    public init() {}
}

/// Caps on the tokens one call may ask for, for a route or a property value.
public struct TokenCap: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable {
        /// Lower `max_tokens` (or set it when absent) to the cap.
        case clamp
        /// Answer 400 when the call asks for more than the cap.
        case reject
    }

    public var routes: [String]
    /// `name=value` of a property this cap applies to (e.g. `feature=rewrite`); nil: any call.
    public var property: (name: String, value: String)?
    public var maxOutputTokens: Int?
    /// Estimated from the body at 4 bytes per token; over it the call is refused before it costs anything.
    public var maxInputTokens: Int?
    public var mode: Mode

    public init(routes: [String] = [], property: (name: String, value: String)? = nil, maxOutputTokens: Int? = nil,
                maxInputTokens: Int? = nil, mode: Mode = .clamp) {
        self.routes = routes
        self.property = property
        self.maxOutputTokens = maxOutputTokens
        self.maxInputTokens = maxInputTokens
        self.mode = mode
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.routes == rhs.routes && lhs.property?.name == rhs.property?.name && lhs.property?.value == rhs.property?.value
            && lhs.maxOutputTokens == rhs.maxOutputTokens && lhs.maxInputTokens == rhs.maxInputTokens && lhs.mode == rhs.mode
    }
}

public struct RetrySettings: Sendable, Equatable {
    /// Tries in total, across deployments, the first one included. Two by default: the SDKs
    /// retry too, and retries multiply.
    public var maxAttempts = 2
    public var initialBackoffMilliseconds = 200
    public var maxBackoffMilliseconds = 8_000
    /// No new attempt starts after this long since the call began.
    public var totalDeadlineSeconds = 60
    public init() {}
}

public struct BreakerSettings: Sendable, Equatable {
    /// Consecutive failures that open a deployment's breaker.
    public var failureThreshold = 5
    /// How long an open breaker refuses calls before letting one probe through.
    public var openSeconds = 30
    public init() {}
}

public struct CacheSettings: Sendable, Equatable {
    /// Cache every eligible call (otherwise only calls that opt in by header).
    public var enabled = false
    /// Routes cached by default even when `enabled` is false.
    public var routes: [String] = []
    public var ttlSeconds = 3600
    public var maxEntries = 10_000
    public var maxMemoryBytes = 64 * 1024 * 1024
    /// Larger answers are not cached.
    public var maxEntryBytes = 1024 * 1024
    public init() {}
}
