import Crypto
import Foundation

/// A key Gatehouse issues to a caller. Only its SHA-256 hash is stored; the secret is shown once.
public struct VirtualKey: Sendable, Equatable, Codable {
    /// Public identifier (`key_…`), safe to log and to put in records.
    public var id: String
    public var alias: String?
    /// Hex SHA-256 of the secret.
    public var hash: String
    /// The first characters of the secret (`gh-abcd`), so a person can tell keys apart.
    public var prefix: String
    /// Models the key may call (requested names; `*` wildcards allowed). Empty: any.
    public var allowedModels: [String]
    /// Gateway routes the key may call (`/v1/chat/completions`…). Empty: any.
    public var allowedRoutes: [String]
    public var limits: [KeyLimit]
    /// Calls in flight at once on one instance; nil: unlimited.
    public var maxParallel: Int?
    public var budget: KeyBudget?
    public var expiresAtMicros: Int64?
    public var metadata: [String: String]
    public var tags: [String]
    public var blocked: Bool
    /// Keep this key's calls' bodies (true), never (false), or as `gateway.capture_bodies` says (nil).
    public var captureBodies: Bool?
    public var revokedAtMicros: Int64?
    public var createdAtMicros: Int64
    public var updatedAtMicros: Int64

    public init(id: String, alias: String? = nil, hash: String, prefix: String, allowedModels: [String] = [], allowedRoutes: [String] = [],
                limits: [KeyLimit] = [], maxParallel: Int? = nil, budget: KeyBudget? = nil, expiresAtMicros: Int64? = nil,
                metadata: [String: String] = [:], tags: [String] = [], blocked: Bool = false, captureBodies: Bool? = nil, revokedAtMicros: Int64? = nil,
                createdAtMicros: Int64, updatedAtMicros: Int64) {
        self.id = id
        self.alias = alias
        self.hash = hash
        self.prefix = prefix
        self.allowedModels = allowedModels
        self.allowedRoutes = allowedRoutes
        self.limits = limits
        self.maxParallel = maxParallel
        self.budget = budget
        self.expiresAtMicros = expiresAtMicros
        self.metadata = metadata
        self.tags = tags
        self.blocked = blocked
        self.captureBodies = captureBodies
        self.revokedAtMicros = revokedAtMicros
        self.createdAtMicros = createdAtMicros
        self.updatedAtMicros = updatedAtMicros
    }

    /// Whether `model` is allowed: exact, or a `prefix*` pattern.
    public func allows(model: String) -> Bool {
        allowedModels.isEmpty || allowedModels.contains { Self.matches(pattern: $0, model) }
    }

    public func allows(route: String) -> Bool { allowedRoutes.isEmpty || allowedRoutes.contains(route) }

    public static func matches(pattern: String, _ value: String) -> Bool {
        if pattern == "*" { return true }
        if pattern.hasSuffix("*") { return value.hasPrefix(pattern.dropLast()) }
        return pattern == value
    }

    /// The quota rules this key carries, with ids unique to the key.
    public var quotaRules: [QuotaRule] {
        var rules = limits.map { limit in
            QuotaRule(id: "key:\(id):\(limit.unit.rawValue)/\(limit.period.rawValue)", scope: .key, unit: limit.unit,
                      limit: limit.limit, period: limit.period)
        }
        if let budget {
            rules.append(QuotaRule(id: "key:\(id):budget/\(budget.period.rawValue)", scope: .key, unit: .cost,
                                   limit: budget.limit.value, period: budget.period, softThresholds: budget.softThresholds))
        }
        return rules
    }
}

/// A rate limit carried by a key.
public struct KeyLimit: Sendable, Equatable, Codable {
    public var unit: QuotaUnit
    public var limit: Int64
    public var period: QuotaPeriod
    public init(unit: QuotaUnit, limit: Int64, period: QuotaPeriod) {
        self.unit = unit
        self.limit = limit
        self.period = period
    }
}

public struct KeyBudget: Sendable, Equatable, Codable {
    public var limit: MicroDollars
    public var period: QuotaPeriod
    /// Fractions of the budget that write a budget event (default 0.5, 0.8, 1.0).
    public var softThresholds: [Double]
    public init(limit: MicroDollars, period: QuotaPeriod, softThresholds: [Double] = [0.5, 0.8, 1.0]) {
        self.limit = limit
        self.period = period
        self.softThresholds = softThresholds
    }
}

/// Makes and recognises key secrets.
public enum KeyMint {
    /// `gh-` followed by 40 base62 characters (about 238 bits).
    public static let secretPrefix = "gh-"

    public static func newSecret() -> String {
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        var rng = SystemRandomNumberGenerator()
        return secretPrefix + String((0..<40).map { _ in alphabet[Int(rng.next(upperBound: UInt32(alphabet.count)))] })
    }

    public static func newID() -> String {
        var rng = SystemRandomNumberGenerator()
        let n = rng.next() as UInt64
        return "key_" + String(n, radix: 36)
    }

    public static func hash(_ secret: String) -> String {
        Hex.sha256(secret)
    }

    public static func displayPrefix(_ secret: String) -> String { String(secret.prefix(secretPrefix.count + 4)) }
}
