import Foundation
import GatehouseCore

/// Reads the JSON of `POST /api/v1/keys` and `PATCH /api/v1/keys/{id}` into a key, naming the
/// field of every mistake.
struct KeyRequest {
    struct Invalid: Error { var message: String }

    static let maxAliasLength = 128
    static let maxMetadataEntries = 64
    static let maxTags = 64

    /// Applies the fields present in `object` to `key`.
    static func apply(_ object: [String: Any], to key: inout VirtualKey) throws(Invalid) {
        let known: Set<String> = ["alias", "models", "routes", "limits", "max_parallel", "budget", "expires_at", "metadata", "tags", "blocked",
                                  "rpm", "tpm", "rpd"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw Invalid(message: "unknown field `\(unknown)` (expected one of: \(known.sorted().joined(separator: ", ")))")
        }
        if let v = object["alias"] {
            if v is NSNull { key.alias = nil } else {
                guard let s = v as? String, !s.isEmpty, s.count <= maxAliasLength else { throw Invalid(message: "`alias` must be 1 to \(maxAliasLength) characters") }
                key.alias = s
            }
        }
        if let v = object["models"] { key.allowedModels = try strings(v, "models") }
        if let v = object["routes"] {
            key.allowedRoutes = try strings(v, "routes")
            for r in key.allowedRoutes where GatewayRoute(rawValue: r) == nil {
                throw Invalid(message: "`routes`: \"\(r)\" is not a gateway route (\(GatewayRoute.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
        }
        if let v = object["limits"] {
            guard let list = v as? [[String: Any]] else { throw Invalid(message: "`limits` must be a list of {requests|tokens, per}") }
            key.limits = try list.enumerated().map { i, item throws(Invalid) in try limit(item, "limits[\(i)]") }
        }
        for (field, unit, period) in [("rpm", QuotaUnit.requests, QuotaPeriod.minute), ("tpm", .tokens, .minute), ("rpd", .requests, .day)] {
            guard let v = object[field] else { continue }
            key.limits.removeAll { $0.unit == unit && $0.period == period }
            if v is NSNull { continue }
            guard let n = (v as? NSNumber)?.int64Value, n >= 1 else { throw Invalid(message: "`\(field)` must be a whole number of at least 1") }
            key.limits.append(KeyLimit(unit: unit, limit: n, period: period))
        }
        if let v = object["max_parallel"] {
            if v is NSNull { key.maxParallel = nil } else {
                guard let n = (v as? NSNumber)?.intValue, n >= 1, n <= 100_000 else { throw Invalid(message: "`max_parallel` must be between 1 and 100000") }
                key.maxParallel = n
            }
        }
        if let v = object["budget"] {
            if v is NSNull { key.budget = nil } else {
                guard let b = v as? [String: Any] else { throw Invalid(message: "`budget` must be {amount_usd, period, soft_thresholds}") }
                key.budget = try budget(b)
            }
        }
        if let v = object["expires_at"] {
            if v is NSNull { key.expiresAtMicros = nil } else {
                guard let s = v as? String, let micros = instant(s) else {
                    throw Invalid(message: "`expires_at` must be RFC 3339 (2027-01-31T00:00:00Z) or a duration from now such as +30d")
                }
                key.expiresAtMicros = micros
            }
        }
        if let v = object["metadata"] {
            guard let m = v as? [String: Any], m.count <= maxMetadataEntries else {
                throw Invalid(message: "`metadata` must be an object of at most \(maxMetadataEntries) string values")
            }
            var metadata: [String: String] = [:]
            for (k, value) in m {
                guard let s = value as? String, s.count <= 1024, k.count <= 128 else { throw Invalid(message: "`metadata.\(k)` must be a string of at most 1024 characters") }
                metadata[k] = s
            }
            key.metadata = metadata
        }
        if let v = object["tags"] {
            key.tags = try strings(v, "tags")
            guard key.tags.count <= maxTags else { throw Invalid(message: "at most \(maxTags) `tags`") }
        }
        if let v = object["blocked"] {
            guard let b = v as? Bool else { throw Invalid(message: "`blocked` must be true or false") }
            key.blocked = b
        }
    }

    static func strings(_ v: Any, _ field: String) throws(Invalid) -> [String] {
        guard let list = v as? [Any], list.count <= 1000 else { throw Invalid(message: "`\(field)` must be a list of strings") }
        var result: [String] = []
        for item in list {
            guard let s = item as? String, !s.isEmpty, s.count <= 256 else { throw Invalid(message: "`\(field)` must be a list of non-empty strings") }
            result.append(s)
        }
        return result
    }

    static func limit(_ item: [String: Any], _ at: String) throws(Invalid) -> KeyLimit {
        let requests = (item["requests"] as? NSNumber)?.int64Value
        let tokens = (item["tokens"] as? NSNumber)?.int64Value
        guard (requests == nil) != (tokens == nil), let n = requests ?? tokens, n >= 1 else {
            throw Invalid(message: "`\(at)` needs exactly one of `requests` or `tokens`, at least 1")
        }
        guard let text = item["per"] as? String, let period = QuotaPeriod(text: text), period != .total else {
            throw Invalid(message: "`\(at).per` must be second, minute, hour, day, week or month")
        }
        return KeyLimit(unit: requests != nil ? .requests : .tokens, limit: n, period: period)
    }

    static func budget(_ b: [String: Any]) throws(Invalid) -> KeyBudget {
        let amountText = (b["amount_usd"] as? String) ?? (b["amount_usd"] as? NSNumber).map { String(format: "%.6f", $0.doubleValue) }
        guard let amountText, let amount = MicroDollars(dollars: amountText), amount.value > 0 else {
            throw Invalid(message: "`budget.amount_usd` must be a positive dollar amount such as \"25.00\"")
        }
        guard let periodText = (b["period"] as? String) ?? Optional("month"), let period = QuotaPeriod(text: periodText), period != .second, period != .minute else {
            throw Invalid(message: "`budget.period` must be hour, day, week, month or total")
        }
        var thresholds = [0.5, 0.8, 1.0]
        if let list = b["soft_thresholds"] {
            guard let numbers = list as? [NSNumber], numbers.count <= 10 else { throw Invalid(message: "`budget.soft_thresholds` must be a list of numbers") }
            thresholds = numbers.map { $0.doubleValue > 1 ? $0.doubleValue / 100 : $0.doubleValue }
            guard thresholds.allSatisfy({ $0 > 0 && $0 <= 10 }) else { throw Invalid(message: "`budget.soft_thresholds` must be fractions (0.8) or percents (80)") }
        }
        return KeyBudget(limit: amount, period: period, softThresholds: thresholds)
    }

    /// RFC 3339, or `+30d` from now.
    static func instant(_ text: String) -> Int64? {
        if text.hasPrefix("+"), let d = TimeExpressions.durationMicros(String(text.dropFirst())) { return TimeExpressions.nowMicros().addingSaturated(d) }
        return TimeExpressions.rfc3339(text).map { Int64(saturating: $0.timeIntervalSince1970 * 1_000_000) }
    }

    /// The key as the API shows it: never the secret or its hash.
    static func json(_ key: VirtualKey) -> [String: Any] {
        var o: [String: Any] = [
            "id": key.id, "alias": key.alias as Any? ?? NSNull(), "prefix": key.prefix + "…", "models": key.allowedModels, "routes": key.allowedRoutes,
            "limits": key.limits.map { ["\($0.unit.rawValue)": $0.limit, "per": $0.period.rawValue] as [String: Any] },
            "max_parallel": key.maxParallel as Any? ?? NSNull(),
            "metadata": key.metadata, "tags": key.tags, "blocked": key.blocked,
            "status": key.revokedAtMicros != nil ? "revoked" : key.expiresAtMicros.map { $0 <= TimeExpressions.nowMicros() } == true ? "expired" : key.blocked ? "blocked" : "active",
            "created_at": TimeExpressions.format(micros: key.createdAtMicros), "updated_at": TimeExpressions.format(micros: key.updatedAtMicros),
            "expires_at": key.expiresAtMicros.map { TimeExpressions.format(micros: $0) } as Any? ?? NSNull(),
            "revoked_at": key.revokedAtMicros.map { TimeExpressions.format(micros: $0) } as Any? ?? NSNull(),
        ]
        o["budget"] = key.budget.map { b -> [String: Any] in
            ["amount_usd": b.limit.dollarString, "period": b.period.rawValue, "soft_thresholds": b.softThresholds]
        } ?? NSNull()
        return o
    }
}
