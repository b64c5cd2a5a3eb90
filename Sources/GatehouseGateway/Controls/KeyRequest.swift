import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseHTTP

/// Reads the JSON of `POST /api/v1/keys` and `PATCH /api/v1/keys/{id}` into a key, naming the
/// field of every mistake.
public struct KeyRequest {
    public struct Invalid: Error { public var message: String }

    static let maxAliasLength = 128
    static let maxMetadataEntries = 64
    static let maxTags = 64

    /// The changes a request body asks for: an empty body asks for none. Refuses a body that is
    /// not a JSON object, a field the API does not know, and a field of the wrong type, by name.
    static func changes(from body: Data) throws(Invalid) -> KeyChanges {
        if body.isEmpty { return KeyChanges() }
        let given: FieldNames
        do { given = try APIJSON.decode(FieldNames.self, from: body) } catch { throw Invalid(message: "the body must be a JSON object") }
        // Checked before the types, so a misspelt field is named as such rather than ignored.
        let known = KeyChanges.fieldNames
        if let unknown = given.names.sorted().first(where: { !known.contains($0) }) {
            throw Invalid(message: "unknown field `\(unknown)` (expected one of: \(known.joined(separator: ", ")))")
        }
        do {
            return try APIJSON.decode(KeyChanges.self, from: body)
        } catch let error as DecodingError {
            throw Invalid(message: message(for: error))
        } catch {
            throw Invalid(message: "the body must be a JSON object")
        }
    }

    /// Applies the changes to `key`, checking every bound.
    public static func apply(_ changes: KeyChanges, to key: inout VirtualKey) throws(Invalid) {
        switch changes.alias {
        case nil: break
        case .clear: key.alias = nil
        case .set(let alias):
            guard !alias.isEmpty, alias.count <= maxAliasLength else { throw Invalid(message: "`alias` must be 1 to \(maxAliasLength) characters") }
            key.alias = alias
        }
        if let models = changes.models { key.allowedModels = try strings(models, "models") }
        if let routes = changes.routes {
            key.allowedRoutes = try strings(routes, "routes")
            for r in key.allowedRoutes where GatewayRoute(rawValue: r) == nil {
                throw Invalid(message: "`routes`: \"\(r)\" is not a gateway route (\(GatewayRoute.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
        }
        if let limits = changes.limits {
            key.limits = try limits.enumerated().map { i, item throws(Invalid) in try limit(item, "limits[\(i)]") }
        }
        let shorthands: [(Patch<Int64>?, String, QuotaUnit, QuotaPeriod)] = [
            (changes.rpm, "rpm", .requests, .minute), (changes.tpm, "tpm", .tokens, .minute), (changes.rpd, "rpd", .requests, .day),
        ]
        for (patch, field, unit, period) in shorthands {
            guard let patch else { continue }
            key.limits.removeAll { $0.unit == unit && $0.period == period }
            guard case .set(let n) = patch else { continue }
            guard n >= 1 else { throw Invalid(message: "`\(field)` must be a whole number of at least 1") }
            key.limits.append(KeyLimit(unit: unit, limit: n, period: period))
        }
        switch changes.maxParallel {
        case nil: break
        case .clear: key.maxParallel = nil
        case .set(let n):
            guard n >= 1, n <= 100_000 else { throw Invalid(message: "`max_parallel` must be between 1 and 100000") }
            key.maxParallel = n
        }
        switch changes.budget {
        case nil: break
        case .clear: key.budget = nil
        case .set(let b): key.budget = try budget(b)
        }
        switch changes.expiresAt {
        case nil: break
        case .clear: key.expiresAtMicros = nil
        case .set(let text):
            guard let micros = instant(text) else {
                throw Invalid(message: "`expires_at` must be RFC 3339 (2027-01-31T00:00:00Z) or a duration from now such as +30d")
            }
            key.expiresAtMicros = micros
        }
        if let metadata = changes.metadata {
            guard metadata.count <= maxMetadataEntries else {
                throw Invalid(message: "`metadata` must be an object of at most \(maxMetadataEntries) string values")
            }
            for (k, value) in metadata.sorted(by: { $0.key < $1.key }) where value.count > 1024 || k.count > 128 {
                throw Invalid(message: "`metadata.\(k)` must be a string of at most 1024 characters")
            }
            key.metadata = metadata
        }
        if let tags = changes.tags {
            key.tags = try strings(tags, "tags")
            guard key.tags.count <= maxTags else { throw Invalid(message: "at most \(maxTags) `tags`") }
        }
        if let blocked = changes.blocked { key.blocked = blocked }
        switch changes.captureBodies {
        case nil: break
        case .clear: key.captureBodies = nil
        case .set(let capture): key.captureBodies = capture
        }
    }

    static func strings(_ list: [String], _ field: String) throws(Invalid) -> [String] {
        guard list.count <= 1000 else { throw Invalid(message: "`\(field)` must be a list of strings") }
        for s in list where s.isEmpty || s.count > 256 {
            throw Invalid(message: "`\(field)` must be a list of non-empty strings")
        }
        return list
    }

    static func limit(_ item: KeyRateLimit, _ at: String) throws(Invalid) -> KeyLimit {
        guard (item.requests == nil) != (item.tokens == nil), let n = item.requests ?? item.tokens, n >= 1 else {
            throw Invalid(message: "`\(at)` needs exactly one of `requests` or `tokens`, at least 1")
        }
        guard let period = QuotaPeriod(text: item.per), period != .total else {
            throw Invalid(message: "`\(at).per` must be second, minute, hour, day, week or month")
        }
        return KeyLimit(unit: item.requests != nil ? .requests : .tokens, limit: n, period: period)
    }

    static func budget(_ b: KeyBudgetChanges) throws(Invalid) -> KeyBudget {
        guard let amountText = b.amountUSD, let amount = MicroDollars(dollars: amountText), amount.value > 0 else {
            throw Invalid(message: "`budget.amount_usd` must be a positive dollar amount such as \"25.00\"")
        }
        guard let period = QuotaPeriod(text: b.period ?? "month"), period != .second, period != .minute else {
            throw Invalid(message: "`budget.period` must be hour, day, week, month or total")
        }
        var thresholds = SoftThresholds.standard
        if let list = b.softThresholds {
            guard let fractions = SoftThresholds.fractions(list) else { throw Invalid(message: "`budget.soft_thresholds` must be \(SoftThresholds.rule)") }
            thresholds = fractions
        }
        return KeyBudget(limit: amount, period: period, softThresholds: thresholds)
    }

    /// RFC 3339, or `+30d` from now.
    static func instant(_ text: String) -> Int64? {
        if text.hasPrefix("+"), let d = TimeExpressions.durationMicros(String(text.dropFirst())) { return TimeExpressions.nowMicros().addingSaturated(d) }
        return TimeExpressions.rfc3339Micros(text)
    }

    /// The key as the API shows it: never the secret or its hash.
    public static func view(_ key: VirtualKey) -> KeyView {
        let status = key.revokedAtMicros != nil ? "revoked"
            : key.expiresAtMicros.map { $0 <= TimeExpressions.nowMicros() } == true ? "expired"
            : key.blocked ? "blocked" : "active"
        return KeyView(
            id: key.id, alias: key.alias, prefix: key.prefix + "…", models: key.allowedModels, routes: key.allowedRoutes,
            // Keys carry request and token limits only: the API accepts nothing else.
            limits: key.limits.map { $0.unit == .requests ? KeyRateLimit(requests: $0.limit, per: $0.period.rawValue)
                                                          : KeyRateLimit(tokens: $0.limit, per: $0.period.rawValue) },
            maxParallel: key.maxParallel,
            budget: key.budget.map { KeyBudgetView(amountUSD: $0.limit.dollarString, period: $0.period.rawValue, softThresholds: $0.softThresholds) },
            metadata: key.metadata, tags: key.tags, blocked: key.blocked, captureBodies: key.captureBodies, status: status,
            createdAt: TimeExpressions.format(micros: key.createdAtMicros), updatedAt: TimeExpressions.format(micros: key.updatedAtMicros),
            expiresAt: key.expiresAtMicros.map { TimeExpressions.format(micros: $0) },
            revokedAt: key.revokedAtMicros.map { TimeExpressions.format(micros: $0) })
    }

    // MARK: Naming the field of a decoding error

    /// The names of a JSON object's members, whatever their values; fails for anything but an object.
    struct FieldNames: Decodable {
        var names: [String]
        init(from decoder: any Decoder) throws {
            names = try decoder.container(keyedBy: AdminFieldKey.self).allKeys.map(\.stringValue)
        }
    }

    /// The message for a field of the wrong type (or `null` where a value is needed): the same
    /// words as for a value out of bounds in that field, so a caller reads one message per field.
    static func message(for error: DecodingError) -> String {
        let path = JSONBody.path(of: error)
        guard let field = path.first?.stringValue else { return "the body must be a JSON object" }
        let rest = Array(path.dropFirst())
        switch field {
        case "alias":
            return "`alias` must be 1 to \(maxAliasLength) characters"
        case "models", "routes", "tags":
            return rest.isEmpty ? "`\(field)` must be a list of strings" : "`\(field)` must be a list of non-empty strings"
        case "limits":
            guard rest.count >= 2, let index = rest[0].intValue else { return "`limits` must be a list of {requests|tokens, per}" }
            return rest[1].stringValue == "per" ? "`limits[\(index)].per` must be second, minute, hour, day, week or month"
                                                : "`limits[\(index)]` needs exactly one of `requests` or `tokens`, at least 1"
        case "rpm", "tpm", "rpd":
            return "`\(field)` must be a whole number of at least 1"
        case "max_parallel":
            return "`max_parallel` must be between 1 and 100000"
        case "budget":
            switch rest.first?.stringValue {
            case "amount_usd": return "`budget.amount_usd` must be a positive dollar amount such as \"25.00\""
            case "period": return "`budget.period` must be hour, day, week, month or total"
            case "soft_thresholds": return "`budget.soft_thresholds` must be a list of numbers"
            default: return "`budget` must be {amount_usd, period, soft_thresholds}"
            }
        case "expires_at":
            return "`expires_at` must be RFC 3339 (2027-01-31T00:00:00Z) or a duration from now such as +30d"
        case "metadata":
            guard let entry = rest.first else { return "`metadata` must be an object of at most \(maxMetadataEntries) string values" }
            return "`metadata.\(entry.stringValue)` must be a string of at most 1024 characters"
        case "blocked":
            return "`blocked` must be true or false"
        case "capture_bodies":
            return "`capture_bodies` must be true, false or null"
        default:
            return JSONBody.message(for: error)
        }
    }
}

/// A coding key for any member name, to list the members of an object.
struct AdminFieldKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}
