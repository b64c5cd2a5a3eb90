import Foundation

/// A runtime switch that turns something off without a restart.
public struct KillSwitch: Sendable, Equatable, Codable, Hashable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// Every gateway call answers 503 with `Retry-After`.
        case maintenance
        case provider, model, key
        /// `name=value` of a call property, e.g. `customer=acme`.
        case property
    }

    public var kind: Kind
    /// Empty for maintenance.
    public var value: String
    public var reason: String?
    /// Maintenance only: the `Retry-After` seconds to send.
    public var retryAfterSeconds: Int?
    public var createdAtMicros: Int64

    public init(kind: Kind, value: String, reason: String? = nil, retryAfterSeconds: Int? = nil, createdAtMicros: Int64) {
        self.kind = kind
        self.value = value
        self.reason = reason
        self.retryAfterSeconds = retryAfterSeconds
        self.createdAtMicros = createdAtMicros
    }
}

/// One administrative change, kept forever.
public struct AuditEntry: Sendable, Equatable, Codable {
    public var id: Int64
    public var timestampMicros: Int64
    /// Who: `admin-token:<fingerprint>@<client address>` for the admin API, `console:<email>` (or
    /// `console:admin-token`) for the console.
    public var actor: String
    public var action: String
    public var target: String
    /// What changed, as JSON text, never containing a secret.
    public var details: String

    public init(id: Int64 = 0, timestampMicros: Int64, actor: String, action: String, target: String, details: String) {
        self.id = id
        self.timestampMicros = timestampMicros
        self.actor = actor
        self.action = action
        self.target = target
        self.details = details
    }
}

/// The current count of one quota counter in one window.
public struct QuotaCount: Sendable, Equatable {
    public var counter: String
    public var windowStartMicros: Int64
    /// Units handed out to instances as leases (an upper bound on what may be used).
    public var granted: Int64
    /// Units actually consumed, as reported by instances.
    public var used: Int64
    public var limit: Int64
    public init(counter: String, windowStartMicros: Int64, granted: Int64, used: Int64, limit: Int64) {
        self.counter = counter
        self.windowStartMicros = windowStartMicros
        self.granted = granted
        self.used = used
        self.limit = limit
    }
}

/// Virtual keys. `ControlState` polls `keysVersion` and reloads every key when it changes.
public protocol KeyStore: Sendable {
    func insertKey(_ key: VirtualKey) async throws
    /// Replaces the stored key with the same id.
    func updateKey(_ key: VirtualKey) async throws
    func key(id: String) async throws -> VirtualKey?
    func allKeys() async throws -> [VirtualKey]
    /// A value that changes whenever any key changes (cheap to poll).
    func keysVersion() async throws -> String
}

/// Kill switches, reloaded like keys when `switchesVersion` changes.
public protocol SwitchStore: Sendable {
    func setSwitch(_ s: KillSwitch) async throws
    func removeSwitch(kind: KillSwitch.Kind, value: String) async throws -> Bool
    func allSwitches() async throws -> [KillSwitch]
    func switchesVersion() async throws -> String
}

/// Which audit entries to read. Empty parts match everything; letters match in any case
/// (ASCII letters on SQLite), and `%`, `_` and `\` are matched literally.
public struct AuditFilter: Sendable, Equatable {
    /// Part of the actor, e.g. `console:` or an email.
    public var actor: String
    /// The start of the action, e.g. `key.` for every key change.
    public var action: String
    /// Part of the target, e.g. a key's id.
    public var target: String

    public init(actor: String = "", action: String = "", target: String = "") {
        self.actor = actor
        self.action = action
        self.target = target
    }

    public static let none = AuditFilter()
    public var isEmpty: Bool { self == .none }
}

/// Every administrative change, kept forever.
public protocol AuditLog: Sendable {
    func appendAudit(_ entry: AuditEntry) async throws
    /// The entries `filter` matches, newest first; `before` is an entry id for paging.
    func audit(limit: Int, before: Int64?, matching filter: AuditFilter) async throws -> [AuditEntry]
}

extension AuditLog {
    /// Every entry, newest first.
    public func audit(limit: Int, before: Int64?) async throws -> [AuditEntry] {
        try await audit(limit: limit, before: before, matching: .none)
    }
}

/// The shared counters behind rate limits and budgets (see docs/controls/multi-instance.md).
public protocol QuotaStore: Sendable {
    /// Atomically hands out up to `want` units of `counter`'s window, never letting the total
    /// granted exceed `limit`; returns the units granted (0 when fewer than `need` remain) and
    /// the window's granted total afterwards.
    func claimQuota(counter: String, windowStartMicros: Int64, want: Int64, need: Int64, limit: Int64) async throws -> (granted: Int64, total: Int64)
    /// Returns unused leased units and records consumption, in one batch.
    func settleQuota(_ changes: [QuotaChange]) async throws -> [QuotaCount]
    func quotaCounts(counterPrefix: String, sinceWindowMicros: Int64) async throws -> [QuotaCount]
    /// The counters of several windows in one read: for each window asked about, the counters
    /// whose name starts with its prefix in exactly that window (a counter matching several is
    /// returned once). Budget reports ask for every budget's current window at once.
    func quotaCounts(windows: [QuotaWindowQuery]) async throws -> [QuotaCount]
}

/// Counters whose name starts with `counterPrefix`, in the window that starts at `windowStartMicros`.
public struct QuotaWindowQuery: Sendable, Hashable {
    public var counterPrefix: String
    public var windowStartMicros: Int64
    public init(counterPrefix: String, windowStartMicros: Int64) {
        self.counterPrefix = counterPrefix
        self.windowStartMicros = windowStartMicros
    }
}

extension QuotaStore {
    /// One read per window, for stores without a batched read.
    public func quotaCounts(windows: [QuotaWindowQuery]) async throws -> [QuotaCount] {
        var seen: Set<String> = [], result: [QuotaCount] = []
        for window in Set(windows) {
            for count in try await quotaCounts(counterPrefix: window.counterPrefix, sinceWindowMicros: window.windowStartMicros)
            where count.windowStartMicros == window.windowStartMicros && seen.insert(count.counter + "\u{0}\(count.windowStartMicros)").inserted {
                result.append(count)
            }
        }
        return result
    }
}

/// Budget thresholds crossed, once per counter, window and threshold.
public protocol BudgetEventStore: Sendable {
    /// Inserts the event unless the same counter, window and threshold already has one.
    /// Returns true when it was new.
    func recordBudgetEvent(_ event: BudgetEvent) async throws -> Bool
    func budgetEvents(sinceMicros: Int64, limit: Int) async throws -> [BudgetEvent]
}

/// All of the controls' shared state: with PostgreSQL every instance sees the same keys,
/// switches, counters and cached answers; this is how limits hold across replicas. Each part
/// takes only the protocol it needs, so a test fake implements only that.
public typealias ControlStore = KeyStore & SwitchStore & AuditLog & QuotaStore & BudgetEventStore & ResponseCacheStore

/// A batched change to one counter window.
public struct QuotaChange: Sendable, Equatable {
    public var counter: String
    public var windowStartMicros: Int64
    /// Leased units given back (subtracted from granted).
    public var released: Int64
    /// Units consumed since the last report (added to used).
    public var used: Int64
    public var limit: Int64
    public init(counter: String, windowStartMicros: Int64, released: Int64, used: Int64, limit: Int64) {
        self.counter = counter
        self.windowStartMicros = windowStartMicros
        self.released = released
        self.used = used
        self.limit = limit
    }
}
