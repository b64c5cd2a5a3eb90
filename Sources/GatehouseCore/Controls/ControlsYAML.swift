import Foundation

/// Reads the controls' sections of the configuration file.
extension YAMLReader {
    mutating func readControls(_ map: [String: Any], into c: inout ControlSettings) {
        if let list = map["rate_limits"].flatMap({ sequence($0, at: "rate_limits") }) {
            c.rateLimits = list.enumerated().compactMap { quotaRule($1, at: "rate_limits[\($0)]", budget: false) }
        }
        if let list = map["budgets"].flatMap({ sequence($0, at: "budgets") }) {
            c.budgets = list.enumerated().compactMap { quotaRule($1, at: "budgets[\($0)]", budget: true) }
        }
        if let list = map["token_caps"].flatMap({ sequence($0, at: "token_caps") }) {
            c.tokenCaps = list.enumerated().compactMap { tokenCap($1, at: "token_caps[\($0)]") }
        }
        if let r = map["retries"].flatMap({ mapping($0, at: "retries") }) {
            check(r, at: "retries", allowed: ["max_attempts", "initial_backoff_ms", "max_backoff_ms", "total_deadline_seconds"])
            if let v = int(r["max_attempts"], at: "retries.max_attempts") { c.retry.maxAttempts = v }
            if let v = int(r["initial_backoff_ms"], at: "retries.initial_backoff_ms") { c.retry.initialBackoffMilliseconds = v }
            if let v = int(r["max_backoff_ms"], at: "retries.max_backoff_ms") { c.retry.maxBackoffMilliseconds = v }
            if let v = int(r["total_deadline_seconds"], at: "retries.total_deadline_seconds") { c.retry.totalDeadlineSeconds = v }
        }
        if let b = map["circuit_breaker"].flatMap({ mapping($0, at: "circuit_breaker") }) {
            check(b, at: "circuit_breaker", allowed: ["failure_threshold", "open_seconds"])
            if let v = int(b["failure_threshold"], at: "circuit_breaker.failure_threshold") { c.breaker.failureThreshold = v }
            if let v = int(b["open_seconds"], at: "circuit_breaker.open_seconds") { c.breaker.openSeconds = v }
        }
        if let m = map["cache"].flatMap({ mapping($0, at: "cache") }) {
            check(m, at: "cache", allowed: ["enabled", "routes", "ttl_seconds", "max_entries", "max_memory_bytes", "max_entry_bytes"])
            if let v = bool(m["enabled"], at: "cache.enabled") { c.cache.enabled = v }
            if let v = strings(m["routes"], at: "cache.routes") { c.cache.routes = v }
            if let v = int(m["ttl_seconds"], at: "cache.ttl_seconds") { c.cache.ttlSeconds = v }
            if let v = int(m["max_entries"], at: "cache.max_entries") { c.cache.maxEntries = v }
            if let v = int(m["max_memory_bytes"], at: "cache.max_memory_bytes") { c.cache.maxMemoryBytes = v }
            if let v = int(m["max_entry_bytes"], at: "cache.max_entry_bytes") { c.cache.maxEntryBytes = v }
        }
        if let m = map["controls"].flatMap({ mapping($0, at: "controls") }) {
            check(m, at: "controls", allowed: ["require_keys", "default_output_token_estimate", "sync_interval_ms", "lease_fraction",
                                               "when_store_unavailable"])
            if let v = string(m["when_store_unavailable"], at: "controls.when_store_unavailable") {
                ConfigurationLoader.setEnum(v, key: "controls.when_store_unavailable", into: &c.whenStoreUnavailable, errors: &errors)
            }
            if let v = bool(m["require_keys"], at: "controls.require_keys") { c.requireKeys = v }
            if let v = int(m["default_output_token_estimate"], at: "controls.default_output_token_estimate") { c.defaultOutputTokenEstimate = v }
            if let v = int(m["sync_interval_ms"], at: "controls.sync_interval_ms") { c.syncIntervalMilliseconds = v }
            if let v = m["lease_fraction"] {
                if let d = v as? Double { c.leaseFraction = d } else if let i = v as? Int { c.leaseFraction = Double(i) } else {
                    errors.append(.init(key: "controls.lease_fraction", problem: "must be a number between 0 and 1"))
                }
            }
        }
    }

    /// `{name, scope, requests|tokens|amount_usd, per|period, routes, models, value, soft_thresholds}`.
    mutating func quotaRule(_ item: Any, at path: String, budget: Bool) -> QuotaRule? {
        guard let m = mapping(item, at: path) else { return nil }
        let common = ["name", "scope", "routes", "paths", "models", "value"]
        check(m, at: path, allowed: Set(common + (budget ? ["amount_usd", "period", "soft_thresholds"] : ["requests", "tokens", "per"])))
        // Every field is read before giving up, so one pass reports every mistake of the rule.
        let scopeText = string(m["scope"], at: "\(path).scope") ?? "global"
        let scope = QuotaScope(text: scopeText)
        if scope == nil {
            errors.append(.init(key: "\(path).scope", problem: "\"\(scopeText)\" is not global, key, model, route, ip, user or property.<name>"))
        }
        let periodKey = budget ? "period" : "per"
        let periodText = string(m[periodKey], at: "\(path).\(periodKey)", required: true) ?? "minute"
        let period = QuotaPeriod(text: periodText)
        if period == nil {
            errors.append(.init(key: "\(path).\(periodKey)", problem: "\"\(periodText)\" is not one of \(QuotaPeriod.allCases.map(\.rawValue).joined(separator: ", "))"))
        }
        var unit: QuotaUnit?
        var limit: Int64 = 0
        if budget {
            if let text = decimal(m["amount_usd"], at: "\(path).amount_usd", required: true) {
                if let amount = MicroDollars(dollars: text), amount.value > 0 {
                    unit = .cost
                    limit = amount.value
                } else {
                    errors.append(.init(key: "\(path).amount_usd", problem: "\"\(text)\" is not a positive dollar amount with at most 6 decimals"))
                }
            }
        } else {
            let requests = int(m["requests"], at: "\(path).requests")
            let tokens = int(m["tokens"], at: "\(path).tokens")
            if (requests == nil) != (tokens == nil) {
                let u: QuotaUnit = requests != nil ? .requests : .tokens
                unit = u
                limit = Int64(requests ?? tokens ?? 0)
                if limit < 1 { errors.append(.init(key: "\(path).\(u.rawValue)", problem: "must be at least 1")) }
            } else {
                errors.append(.init(key: path, problem: "give exactly one of `requests` or `tokens`"))
            }
        }
        let routes = (strings(m["routes"], at: "\(path).routes") ?? []) + (strings(m["paths"], at: "\(path).paths") ?? [])
        for route in routes where GatewayRoute(rawValue: route) == nil {
            errors.append(.init(key: "\(path).routes", problem: "\"\(route)\" is not a gateway route (\(GatewayRoute.allCases.map(\.rawValue).joined(separator: ", ")))"))
        }
        var thresholds: [Double] = budget ? SoftThresholds.standard : []
        if let list = m["soft_thresholds"].flatMap({ sequence($0, at: "\(path).soft_thresholds") }) {
            let numbers = list.compactMap { ($0 as? Double) ?? ($0 as? Int).map(Double.init) }
            if numbers.count == list.count, let fractions = SoftThresholds.fractions(numbers) {
                thresholds = fractions
            } else {
                errors.append(.init(key: "\(path).soft_thresholds", problem: "must be \(SoftThresholds.rule)"))
            }
        }
        let value = string(m["value"], at: "\(path).value")
        if value != nil, case .property? = scope {} else if value != nil, scope != nil {
            errors.append(.init(key: "\(path).value", problem: "only a property scope takes a value"))
        }
        let models = strings(m["models"], at: "\(path).models") ?? []
        let givenName = string(m["name"], at: "\(path).name")
        guard let scope, let period, let unit else { return nil }
        let name = givenName
            ?? "\(budget ? "budget" : "limit")-\(scopeText)-\(unit.rawValue)-\(period.rawValue)-\(routes.joined(separator: ","))-\(models.joined(separator: ","))-\(value ?? "")"
        return QuotaRule(id: (budget ? "budget:" : "limit:") + name, scope: scope, unit: unit, limit: limit, period: period, routes: routes,
                         models: models, propertyValue: value, softThresholds: thresholds)
    }

    mutating func tokenCap(_ item: Any, at path: String) -> TokenCap? {
        guard let m = mapping(item, at: path) else { return nil }
        check(m, at: path, allowed: ["routes", "paths", "property", "max_output_tokens", "max_input_tokens", "mode"])
        var cap = TokenCap()
        cap.routes = (strings(m["routes"], at: "\(path).routes") ?? []) + (strings(m["paths"], at: "\(path).paths") ?? [])
        if let p = string(m["property"], at: "\(path).property") {
            let parts = p.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2, !parts[0].isEmpty {
                cap.property = (parts[0].lowercased().replacingOccurrences(of: "property.", with: ""), parts[1])
            } else {
                errors.append(.init(key: "\(path).property", problem: "must be name=value, e.g. feature=rewrite"))
            }
        }
        cap.maxOutputTokens = int(m["max_output_tokens"], at: "\(path).max_output_tokens")
        cap.maxInputTokens = int(m["max_input_tokens"], at: "\(path).max_input_tokens")
        if let v = string(m["mode"], at: "\(path).mode") { ConfigurationLoader.setEnum(v, key: "\(path).mode", into: &cap.mode, errors: &errors) }
        if cap.maxOutputTokens == nil && cap.maxInputTokens == nil {
            errors.append(.init(key: path, problem: "give max_output_tokens, max_input_tokens or both"))
        }
        if let v = cap.maxOutputTokens, v < 1 { errors.append(.init(key: "\(path).max_output_tokens", problem: "must be at least 1")) }
        if let v = cap.maxInputTokens, v < 1 { errors.append(.init(key: "\(path).max_input_tokens", problem: "must be at least 1")) }
        return cap
    }

    mutating func bool(_ value: Any?, at path: String) -> Bool? {
        guard let value, !(value is NSNull) else { return nil }
        if let b = value as? Bool { return b }
        if let s = value as? String, let b = ["true": true, "false": false, "yes": true, "no": false][s.lowercased()] { return b }
        errors.append(.init(key: path, problem: "must be true or false"))
        return nil
    }

    mutating func strings(_ value: Any?, at path: String) -> [String]? {
        guard let value, !(value is NSNull) else { return nil }
        if let s = value as? String { return [s] }
        if let list = value as? [Any] {
            return list.compactMap { string($0, at: path) }
        }
        errors.append(.init(key: path, problem: "must be a list of strings"))
        return nil
    }
}
