import Foundation

// Kill switches, the audit log and budgets (`/api/v1/switches`, `/api/v1/audit`,
// `/api/v1/budgets`), described in OpenAPI/controls.yaml.

// MARK: Kill switches

/// A kill switch as the API shows it.
public struct SwitchView: Codable, Sendable, Equatable {
    /// `maintenance`, `provider`, `model`, `key` or `property`.
    public var kind: String
    /// What is switched off: a provider, a model, a key id, or `name=value` of a property; empty for maintenance.
    public var value: String
    @Nullable public var reason: String?
    /// Maintenance: the `Retry-After` seconds callers are sent.
    @Nullable public var retryAfter: Int?
    public var createdAt: String

    public init(kind: String, value: String, reason: String?, retryAfter: Int?, createdAt: String) {
        self.kind = kind
        self.value = value
        self.reason = reason
        self.retryAfter = retryAfter
        self.createdAt = createdAt
    }

    enum CodingKeys: String, CodingKey {
        case kind, value, reason
        case retryAfter = "retry_after"
        case createdAt = "created_at"
    }
}

/// `GET /api/v1/switches`.
public struct SwitchList: Codable, Sendable, Equatable {
    public var data: [SwitchView]
    public init(data: [SwitchView]) { self.data = data }
    enum CodingKeys: String, CodingKey { case data }
}

/// The body of `POST /api/v1/switches`. Every field is optional on the wire so the server can
/// name what is missing; `kind` is always needed and `value` for every kind but maintenance.
public struct SwitchChange: Codable, Sendable, Equatable {
    public var kind: String?
    public var value: String?
    /// Shown to refused callers; cut to 500 characters.
    public var reason: String?
    /// Maintenance: 1 to 86400 seconds.
    public var retryAfter: Int?

    public init(kind: String?, value: String? = nil, reason: String? = nil, retryAfter: Int? = nil) {
        self.kind = kind
        self.value = value
        self.reason = reason
        self.retryAfter = retryAfter
    }

    enum CodingKeys: String, CodingKey {
        case kind, value, reason
        case retryAfter = "retry_after"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        kind = try container.decodeIfPresent(String.self, forKey: .kind)
        value = try container.decodeIfPresent(String.self, forKey: .value)
        reason = try container.decodeIfPresent(String.self, forKey: .reason)
        // A `null` here has always been refused: it is not a number of seconds.
        retryAfter = try container.placing(.retryAfter, Int.self) { try container.decodeIfGiven(Int.self, forKey: .retryAfter) }
    }
}

/// What `DELETE /api/v1/switches?kind=…&value=…` names.
public struct SwitchTarget: Codable, Sendable, Equatable {
    public var kind: String
    public var value: String
    public init(kind: String, value: String) {
        self.kind = kind
        self.value = value
    }
    enum CodingKeys: String, CodingKey { case kind, value }
}

/// The answer of `DELETE /api/v1/switches`.
public struct SwitchRemoval: Codable, Sendable, Equatable {
    public var removed: SwitchTarget
    public init(removed: SwitchTarget) { self.removed = removed }
    enum CodingKeys: String, CodingKey { case removed }
}

// MARK: Audit log

/// One administrative change.
public struct AuditRecord: Codable, Sendable, Equatable {
    public var id: Int64
    public var timestamp: String
    /// `admin-token:<fingerprint>@<client address>` for the admin API, `console:<email>` for a
    /// console account, `console:admin-token` for the console signed in with the admin token.
    public var actor: String
    /// Any text: known values are `key.create`, `key.update`, `key.revoke`, `key.rotate`,
    /// `switch.set`, `switch.remove`, `account.create`, `account.delete`, `issue.status`,
    /// `silence.create` and `silence.expire`; new kinds of change add more.
    public var action: String
    /// The key id, `kind:value` of a switch, or the account's, issue's or silence's id.
    public var target: String
    /// What changed, never a secret: the key (`key.create`), `{"changes": …}` (`key.update`),
    /// `{"prefix": …}` (`key.rotate`), the switch (`switch.set`), the account's email and role
    /// (`account.*`), `{"from", "status"}` (`issue.status`), the silence (`silence.create`), `{}` otherwise.
    public var details: JSONValue

    public init(id: Int64, timestamp: String, actor: String, action: String, target: String, details: JSONValue) {
        self.id = id
        self.timestamp = timestamp
        self.actor = actor
        self.action = action
        self.target = target
        self.details = details
    }

    enum CodingKeys: String, CodingKey { case id, timestamp, actor, action, target, details }
}

/// `GET /api/v1/audit`: newest first.
public struct AuditPage: Codable, Sendable, Equatable {
    public var data: [AuditRecord]
    /// Pass as `before` for the next (older) page; `null` on the last page.
    @Nullable public var nextBefore: Int64?

    public init(data: [AuditRecord], nextBefore: Int64?) {
        self.data = data
        self.nextBefore = nextBefore
    }

    enum CodingKeys: String, CodingKey {
        case data
        case nextBefore = "next_before"
    }
}

// MARK: Budgets

/// `GET /api/v1/budgets`: every budget's current window, and the thresholds crossed lately.
public struct BudgetReport: Codable, Sendable, Equatable {
    public var data: [BudgetWindowView]
    /// Threshold crossings of the last 31 days, newest first, at most 200.
    public var events: [BudgetEventView]

    public init(data: [BudgetWindowView], events: [BudgetEventView]) {
        self.data = data
        self.events = events
    }

    enum CodingKeys: String, CodingKey { case data, events }
}

/// One budget's current window: a configured budget (per property value when it is scoped to
/// one) or a key's own.
public struct BudgetWindowView: Codable, Sendable, Equatable {
    /// `budget:<name>` for a configured budget, the key's id for a key's own.
    public var name: String
    public var scope: String
    /// The property value the counter belongs to, for a budget scoped to a property; `null` for a key's budget.
    @Nullable public var value: String?
    public var period: String
    public var windowStart: String
    /// `null` for a `total` budget, which never resets.
    @Nullable public var windowEnd: String?
    public var limitUSD: String
    public var spentUSD: String
    /// Granted to instances as leases but not yet spent.
    public var reservedUSD: String
    /// Spent as a percentage of the limit, one decimal.
    public var percentUsed: Double
    /// Percents, e.g. [50, 80, 100].
    public var softThresholds: [Int]
    public var thresholdsCrossed: [Int]
    public var exhausted: Bool

    public init(name: String, scope: String, value: String?, period: String, windowStart: String, windowEnd: String?, limitUSD: String,
                spentUSD: String, reservedUSD: String, percentUsed: Double, softThresholds: [Int], thresholdsCrossed: [Int], exhausted: Bool) {
        self.name = name
        self.scope = scope
        self.value = value
        self.period = period
        self.windowStart = windowStart
        self.windowEnd = windowEnd
        self.limitUSD = limitUSD
        self.spentUSD = spentUSD
        self.reservedUSD = reservedUSD
        self.percentUsed = percentUsed
        self.softThresholds = softThresholds
        self.thresholdsCrossed = thresholdsCrossed
        self.exhausted = exhausted
    }

    enum CodingKeys: String, CodingKey {
        case name, scope, value, period
        case windowStart = "window_start"
        case windowEnd = "window_end"
        case limitUSD = "limit_usd"
        case spentUSD = "spent_usd"
        case reservedUSD = "reserved_usd"
        case percentUsed = "percent_used"
        case softThresholds = "soft_thresholds"
        case thresholdsCrossed = "thresholds_crossed"
        case exhausted
    }
}

/// A budget crossing one of its thresholds in one window (written once per threshold and window).
public struct BudgetEventView: Codable, Sendable, Equatable {
    /// The quota counter: `budget:<name>|<value>` for a configured budget, `key:<id>:budget/<period>` for a key's.
    public var counter: String
    public var thresholdPercent: Int
    public var usedUSD: String
    public var limitUSD: String
    public var windowStart: String
    public var timestamp: String

    public init(counter: String, thresholdPercent: Int, usedUSD: String, limitUSD: String, windowStart: String, timestamp: String) {
        self.counter = counter
        self.thresholdPercent = thresholdPercent
        self.usedUSD = usedUSD
        self.limitUSD = limitUSD
        self.windowStart = windowStart
        self.timestamp = timestamp
    }

    enum CodingKeys: String, CodingKey {
        case counter
        case thresholdPercent = "threshold_percent"
        case usedUSD = "used_usd"
        case limitUSD = "limit_usd"
        case windowStart = "window_start"
        case timestamp
    }
}
