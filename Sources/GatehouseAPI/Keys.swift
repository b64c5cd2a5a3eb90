import Foundation

// The virtual-key routes of the admin API (`/api/v1/keys…`), described in OpenAPI/keys.yaml.

/// A key as the API shows it: never its secret or hash.
public struct KeyView: Codable, Sendable, Equatable {
    /// Public identifier, `key_…`.
    public var id: String
    @Nullable public var alias: String?
    /// The secret's first characters followed by `…`, e.g. `gh-AbCd…`.
    public var prefix: String
    /// Models the key may call (`prefix*` patterns allowed); empty: any.
    public var models: [String]
    /// Gateway routes the key may call; empty: any.
    public var routes: [String]
    public var limits: [KeyRateLimit]
    @Nullable public var maxParallel: Int?
    @Nullable public var budget: KeyBudgetView?
    public var metadata: [String: String]
    public var tags: [String]
    public var blocked: Bool
    /// Keep this key's calls' request and response bodies: true, false, or null to follow
    /// `gateway.capture_bodies`.
    @Nullable public var captureBodies: Bool?
    /// `active`, `blocked`, `expired` or `revoked` (the first that applies of revoked, expired, blocked).
    public var status: String
    public var createdAt: String
    public var updatedAt: String
    @Nullable public var expiresAt: String?
    @Nullable public var revokedAt: String?

    public init(id: String, alias: String?, prefix: String, models: [String], routes: [String], limits: [KeyRateLimit], maxParallel: Int?,
                budget: KeyBudgetView?, metadata: [String: String], tags: [String], blocked: Bool, captureBodies: Bool? = nil, status: String,
                createdAt: String, updatedAt: String, expiresAt: String?, revokedAt: String?) {
        self.id = id
        self.alias = alias
        self.prefix = prefix
        self.models = models
        self.routes = routes
        self.limits = limits
        self.maxParallel = maxParallel
        self.budget = budget
        self.metadata = metadata
        self.tags = tags
        self.blocked = blocked
        self.captureBodies = captureBodies
        self.status = status
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, alias, prefix, models, routes, limits
        case maxParallel = "max_parallel"
        case budget, metadata, tags, blocked
        case captureBodies = "capture_bodies"
        case status
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case expiresAt = "expires_at"
        case revokedAt = "revoked_at"
    }
}

/// One rate limit of a key: exactly one of `requests` or `tokens`, per window.
public struct KeyRateLimit: Codable, Sendable, Equatable {
    public var requests: Int64?
    public var tokens: Int64?
    /// `second`, `minute`, `hour`, `day`, `week` or `month`.
    public var per: String

    public init(requests: Int64? = nil, tokens: Int64? = nil, per: String) {
        self.requests = requests
        self.tokens = tokens
        self.per = per
    }

    enum CodingKeys: String, CodingKey { case requests, tokens, per }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        requests = try container.placing(.requests, Int64.self) { try container.decodeIfPresent(Int64.self, forKey: .requests) }
        tokens = try container.placing(.tokens, Int64.self) { try container.decodeIfPresent(Int64.self, forKey: .tokens) }
        per = try container.decode(String.self, forKey: .per)
    }
}

/// A key's own spending limit, as the API shows it.
public struct KeyBudgetView: Codable, Sendable, Equatable {
    /// Dollars, e.g. `"25.000000"`.
    public var amountUSD: String
    /// `hour`, `day`, `week`, `month` or `total`.
    public var period: String
    /// Fractions of the budget (0.5, 0.8, 1) that write a budget event when crossed.
    public var softThresholds: [Double]

    public init(amountUSD: String, period: String, softThresholds: [Double]) {
        self.amountUSD = amountUSD
        self.period = period
        self.softThresholds = softThresholds
    }

    enum CodingKeys: String, CodingKey {
        case amountUSD = "amount_usd"
        case period
        case softThresholds = "soft_thresholds"
    }
}

/// `GET /api/v1/keys`.
public struct KeyList: Codable, Sendable, Equatable {
    public var data: [KeyView]
    public init(data: [KeyView]) { self.data = data }
    enum CodingKeys: String, CodingKey { case data }
}

/// The answer of `POST /api/v1/keys` and `POST /api/v1/keys/{id}/rotate`: the key and its
/// secret, which is shown this once. Written as the key's own fields plus `key` (and `note`).
public struct IssuedKey: Codable, Sendable, Equatable {
    public var view: KeyView
    /// The secret, `gh-…`.
    public var key: String
    /// A reminder to store the secret; only on creation.
    public var note: String?

    public init(view: KeyView, key: String, note: String? = nil) {
        self.view = view
        self.key = key
        self.note = note
    }

    enum CodingKeys: String, CodingKey { case key, note }

    public init(from decoder: any Decoder) throws {
        view = try KeyView(from: decoder)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        key = try container.decode(String.self, forKey: .key)
        note = try container.decodeIfPresent(String.self, forKey: .note)
    }

    public func encode(to encoder: any Encoder) throws {
        try view.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(key, forKey: .key)
        try container.encodeIfPresent(note, forKey: .note)
    }
}

/// The body of `POST /api/v1/keys` (the new key's settings) and `PATCH /api/v1/keys/{id}` (the
/// settings to change). A field left out is left as it is; `null` clears the fields that can be
/// cleared (alias, rpm, tpm, rpd, max_parallel, budget, expires_at). The server names the field
/// of every mistake and refuses fields it does not know.
public struct KeyChanges: Codable, Sendable, Equatable {
    public var alias: Patch<String>?
    public var models: [String]?
    public var routes: [String]?
    /// Replaces all the key's rate limits (before `rpm`, `tpm` and `rpd` are applied).
    public var limits: [KeyRateLimit]?
    /// Requests per minute: replaces that one limit; `null` removes it.
    public var rpm: Patch<Int64>?
    /// Tokens per minute.
    public var tpm: Patch<Int64>?
    /// Requests per day.
    public var rpd: Patch<Int64>?
    public var maxParallel: Patch<Int>?
    public var budget: Patch<KeyBudgetChanges>?
    /// RFC 3339, or a duration from now such as `+30d`.
    public var expiresAt: Patch<String>?
    /// Replaces all the key's metadata.
    public var metadata: [String: String]?
    public var tags: [String]?
    public var blocked: Bool?
    /// true or false; `null` follows `gateway.capture_bodies` again.
    public var captureBodies: Patch<Bool>?

    public init(alias: Patch<String>? = nil, models: [String]? = nil, routes: [String]? = nil, limits: [KeyRateLimit]? = nil,
                rpm: Patch<Int64>? = nil, tpm: Patch<Int64>? = nil, rpd: Patch<Int64>? = nil, maxParallel: Patch<Int>? = nil,
                budget: Patch<KeyBudgetChanges>? = nil, expiresAt: Patch<String>? = nil, metadata: [String: String]? = nil,
                tags: [String]? = nil, blocked: Bool? = nil, captureBodies: Patch<Bool>? = nil) {
        self.alias = alias
        self.models = models
        self.routes = routes
        self.limits = limits
        self.rpm = rpm
        self.tpm = tpm
        self.rpd = rpd
        self.maxParallel = maxParallel
        self.budget = budget
        self.expiresAt = expiresAt
        self.metadata = metadata
        self.tags = tags
        self.blocked = blocked
        self.captureBodies = captureBodies
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case alias, models, routes, limits, rpm, tpm, rpd
        case maxParallel = "max_parallel"
        case budget
        case expiresAt = "expires_at"
        case metadata, tags, blocked
        case captureBodies = "capture_bodies"
    }

    /// Every field the body may carry, sorted.
    public static var fieldNames: [String] { CodingKeys.allCases.map(\.rawValue).sorted() }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        alias = try container.decodePatch(String.self, forKey: .alias)
        models = try container.decodeIfGiven([String].self, forKey: .models)
        routes = try container.decodeIfGiven([String].self, forKey: .routes)
        limits = try container.decodeIfGiven([KeyRateLimit].self, forKey: .limits)
        rpm = try container.placing(.rpm, Int64.self) { try container.decodePatch(Int64.self, forKey: .rpm) }
        tpm = try container.placing(.tpm, Int64.self) { try container.decodePatch(Int64.self, forKey: .tpm) }
        rpd = try container.placing(.rpd, Int64.self) { try container.decodePatch(Int64.self, forKey: .rpd) }
        maxParallel = try container.placing(.maxParallel, Int.self) { try container.decodePatch(Int.self, forKey: .maxParallel) }
        budget = try container.decodePatch(KeyBudgetChanges.self, forKey: .budget)
        expiresAt = try container.decodePatch(String.self, forKey: .expiresAt)
        metadata = try container.decodeIfGiven([String: String].self, forKey: .metadata)
        tags = try container.decodeIfGiven([String].self, forKey: .tags)
        blocked = try container.decodeIfGiven(Bool.self, forKey: .blocked)
        captureBodies = try container.decodePatch(Bool.self, forKey: .captureBodies)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodePatch(alias, forKey: .alias)
        try container.encodeIfPresent(models, forKey: .models)
        try container.encodeIfPresent(routes, forKey: .routes)
        try container.encodeIfPresent(limits, forKey: .limits)
        try container.encodePatch(rpm, forKey: .rpm)
        try container.encodePatch(tpm, forKey: .tpm)
        try container.encodePatch(rpd, forKey: .rpd)
        try container.encodePatch(maxParallel, forKey: .maxParallel)
        try container.encodePatch(budget, forKey: .budget)
        try container.encodePatch(expiresAt, forKey: .expiresAt)
        try container.encodeIfPresent(metadata, forKey: .metadata)
        try container.encodeIfPresent(tags, forKey: .tags)
        try container.encodeIfPresent(blocked, forKey: .blocked)
        try container.encodePatch(captureBodies, forKey: .captureBodies)
    }
}

/// A key's budget in a request. `amount_usd` may be a string (`"25.00"`, exact) or a number.
public struct KeyBudgetChanges: Codable, Sendable, Equatable {
    /// Dollars as text; a number in the request is read with six decimals. nil when missing, which
    /// the server refuses by name.
    public var amountUSD: String?
    /// `hour`, `day`, `week`, `month` (the default) or `total`.
    public var period: String?
    /// Fractions (0.8) or percents (80); default 0.5, 0.8, 1.
    public var softThresholds: [Double]?

    public init(amountUSD: String?, period: String? = nil, softThresholds: [Double]? = nil) {
        self.amountUSD = amountUSD
        self.period = period
        self.softThresholds = softThresholds
    }

    enum CodingKeys: String, CodingKey {
        case amountUSD = "amount_usd"
        case period
        case softThresholds = "soft_thresholds"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let number = try? container.decodeIfPresent(Double.self, forKey: .amountUSD) {
            amountUSD = String(format: "%.6f", number)
        } else {
            amountUSD = try container.decodeIfPresent(String.self, forKey: .amountUSD)
        }
        period = try container.decodeIfPresent(String.self, forKey: .period)
        softThresholds = try container.decodeIfGiven([Double].self, forKey: .softThresholds)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(amountUSD, forKey: .amountUSD)
        try container.encodeIfPresent(period, forKey: .period)
        try container.encodeIfPresent(softThresholds, forKey: .softThresholds)
    }
}

// MARK: Audit details of key changes

/// The `details` of a `key.update` audit entry: the body of the PATCH as the server read it.
public struct KeyChangesDetails: Codable, Sendable, Equatable {
    public var changes: KeyChanges
    public init(changes: KeyChanges) { self.changes = changes }
    enum CodingKeys: String, CodingKey { case changes }
}

/// The `details` of a `key.rotate` audit entry: the new secret's display prefix.
public struct KeyRotationDetails: Codable, Sendable, Equatable {
    public var prefix: String
    public init(prefix: String) { self.prefix = prefix }
    enum CodingKeys: String, CodingKey { case prefix }
}

extension KeyedDecodingContainer {
    /// Runs `decode`, turning an error that carries no coding path into a type mismatch at `key`:
    /// Foundation's decoder reports a number that does not fit the type (1.5 or 1e30 for an
    /// integer) with its own error, which reaches the caller as "not valid JSON" with no field,
    /// and the server names the field of every mistake.
    func placing<T>(_ key: Key, _ type: Any.Type, _ decode: () throws -> T) throws -> T {
        do {
            return try decode()
        } catch let error as DecodingError {
            throw error
        } catch {
            throw DecodingError.typeMismatch(type, DecodingError.Context(codingPath: codingPath + [key], debugDescription: "\(error)", underlyingError: error))
        }
    }

    /// The value when the field is present, nil when it is absent. Unlike `decodeIfPresent`, a
    /// `null` is an error: for fields that cannot be cleared, `null` is a mistake to name.
    func decodeIfGiven<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard contains(key) else { return nil }
        return try decode(T.self, forKey: key)
    }
}
