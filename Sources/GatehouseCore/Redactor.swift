import Crypto
import Foundation

/// Keeps secrets out of logs, stored records, error messages and printed configuration.
public enum Redactor {
    public static let mask = "[REDACTED]"

    /// Header names whose values are credentials and never stored or logged.
    public static let secretHeaderNames: Set<String> = [
        "authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "set-cookie",
        "x-sentry-auth", "helicone-auth", "openai-api-key", "anthropic-api-key", "x-goog-api-key",
    ]

    public static func isSecretHeader(_ name: String) -> Bool { secretHeaderNames.contains(name.lowercased()) }

    /// Parts of key names that may mark a credential (`password`, `x_auth_token`, `stripeApiKey`):
    /// log ingest scans raw bytes for them before looking closer with `isSecretKey`.
    public static let secretKeyMarkers = ["password", "passwd", "secret", "token", "api_key", "apikey", "api-key", "private_key"]

    /// Key names whose values are credentials wherever they appear: a Sentry event's request
    /// headers, a log line's attributes, a call's `Gatehouse-Property-*` names.
    public static func isSecretKey(_ key: String) -> Bool {
        let k = key.lowercased()
        if secretHeaderNames.contains(k) { return true }
        // "token" names a credential (`token`, `x_auth_token`, `csrfToken`), not a count
        // (`max_tokens`, `token_count`): an LLM app's logs are full of the latter.
        if k.hasSuffix("token") { return true }
        return secretKeyMarkers.contains { $0 != "token" && k.contains($0) }
    }

    /// A JSON value (from JSONSerialization) with the values of secret-named keys masked, at any depth.
    public static func redactJSON(_ value: Any, depth: Int = 0) -> Any {
        // Deeper than anyone nests real data: masked whole rather than left unread.
        guard depth < 64 else { return mask }
        if let object = value as? [String: Any] {
            var copy = object
            for (key, inner) in object {
                copy[key] = isSecretKey(key) ? mask : redactJSON(inner, depth: depth + 1)
            }
            return copy
        }
        if let array = value as? [Any] {
            // Headers often come as [[name, value], …] pairs.
            if array.count == 2, let name = array[0] as? String, isSecretKey(name) { return [name, mask] }
            return array.map { redactJSON($0, depth: depth + 1) }
        }
        return value
    }

    /// A URL with its password (and any `key`/`token`-like query values) replaced.
    public static func redactURL(_ text: String) -> String {
        guard var components = URLComponents(string: text) else { return mask }
        if components.password != nil { components.password = "REDACTED" }
        if let items = components.queryItems {
            components.queryItems = items.map { item in
                let name = item.name.lowercased()
                let secret = ["key", "token", "secret", "password", "sentry_key", "api-key", "api_key"].contains { name.contains($0) }
                return secret ? URLQueryItem(name: item.name, value: "REDACTED") : item
            }
        }
        return components.string ?? mask
    }

    /// A URL reduced to its scheme and host: a webhook's path is its secret.
    public static func redactURLPath(_ text: String) -> String {
        guard let c = URLComponents(string: text), let scheme = c.scheme, let host = c.host else { return mask }
        return "\(scheme)://\(host)\(c.port.map { ":\($0)" } ?? "")/\(mask)"
    }

    /// A short, stable, non-reversible label for a credential, for telling keys apart in records.
    /// Shows the key's scheme prefix (e.g. `sk-…`) and a hash fragment; never the key itself.
    public static func fingerprint(ofSecret secret: String, hash: (String) -> String) -> String {
        let prefix = secret.hasPrefix("sk-ant-") ? "sk-ant-" : secret.hasPrefix("sk-") ? "sk-" : ""
        return prefix + "…" + String(hash(secret).prefix(12))
    }

    /// Replaces anything that looks like a provider key inside free text (e.g. an upstream error
    /// message that echoes "Incorrect API key provided: sk-abc…").
    public static func scrubText(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.count)
        var index = text.startIndex
        while index < text.endIndex {
            let rest = text[index...]
            if rest.hasPrefix("sk-") || rest.hasPrefix("Bearer ") {
                let start = rest.hasPrefix("Bearer ") ? text.index(index, offsetBy: 7) : index
                var end = start
                while end < text.endIndex, text[end].isLetter || text[end].isNumber || "-_*.".contains(text[end]) {
                    end = text.index(after: end)
                }
                if text.distance(from: start, to: end) >= 8 {
                    result += text[index..<start] + mask
                    index = end
                    continue
                }
            }
            result.append(text[index])
            index = text.index(after: index)
        }
        return result
    }
}

extension GatehouseConfig {
    /// The effective configuration as YAML with every secret masked, for `check-config`.
    public func redactedYAML() -> String {
        func quote(_ s: String) -> String {
            let escaped = s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            return "\"\(escaped)\""
        }
        var lines: [String] = []
        lines.append("host: \(quote(host))")
        lines.append("port: \(port)")
        lines.append("data_dir: \(quote(dataDirectory))")
        lines.append("database_url: \(quote(Redactor.redactURL(resolvedDatabaseURL)))")
        lines.append("log_format: \(logFormat.rawValue)")
        lines.append("log_level: \(logLevel.rawValue)")
        lines.append("encryption_key: \(encryptionKey == nil ? "null" : quote(Redactor.mask))")
        lines.append(corsAllowedOrigins.isEmpty ? "cors_allowed_origins: []  # no CORS headers: browsers on other origins cannot call"
                                                : "cors_allowed_origins: [\(corsAllowedOrigins.map(quote).joined(separator: ", "))]")
        lines.append("gateway:")
        lines.append("  max_request_body_bytes: \(gateway.maxRequestBodyBytes)")
        lines.append("  upstream_timeout_seconds: \(gateway.upstreamTimeoutSeconds)")
        lines.append("  stream_idle_timeout_seconds: \(gateway.streamIdleTimeoutSeconds)")
        lines.append("  client_disconnect_grace_seconds: \(gateway.clientDisconnectGraceSeconds)")
        lines.append("  client_idle_timeout_seconds: \(gateway.clientIdleTimeoutSeconds)")
        lines.append("  connect_timeout_seconds: \(gateway.connectTimeoutSeconds)")
        lines.append("  trust_forwarded_for: \(gateway.trustForwardedFor)")
        lines.append("recorder:")
        lines.append("  capacity: \(recorder.capacity)")
        lines.append("  batch_size: \(recorder.batchSize)")
        lines.append("  flush_interval_ms: \(recorder.flushIntervalMilliseconds)")
        lines.append("  when_full: \(recorder.whenFull.rawValue)")
        lines.append("providers:")
        for p in providers {
            lines.append("  - name: \(quote(p.name))")
            lines.append("    kind: \(p.kind.rawValue)")
            lines.append("    base_url: \(quote(p.baseURL))")
            lines.append("    api_key: \(p.apiKey == nil ? "null  # caller's own credential is passed through" : quote(Redactor.mask))")
            if let v = p.apiVersion { lines.append("    api_version: \(quote(v))") }
            if !p.headers.isEmpty {
                lines.append("    headers:")
                for (k, v) in p.headers.sorted(by: { $0.key < $1.key }) {
                    lines.append("      \(quote(k)): \(quote(Redactor.isSecretHeader(k) ? Redactor.mask : v))")
                }
            }
            lines.append("    price_provider: \(quote(p.effectivePriceProvider))")
            if p.kind == .mock {
                lines.append("    mock_latency_ms: \(p.mockLatencyMilliseconds)")
                lines.append("    mock_chunk_delay_ms: \(p.mockChunkDelayMilliseconds)")
            }
        }
        lines.append(aliases.isEmpty ? "aliases: {}" : "aliases:")
        for a in aliases {
            if a.deployments.count == 1 { lines.append("  \(quote(a.alias)): \(quote(a.target))"); continue }
            lines.append("  \(quote(a.alias)):")
            for d in a.deployments { lines.append("    - {model: \(quote(d.target)), weight: \(d.weight), priority: \(d.priority)}") }
        }
        lines.append("metrics:")
        lines.append("  require_token: \(metrics.requireToken)")
        lines.append("telemetry:")
        lines.append(telemetry.projects.isEmpty ? "  projects: []  # open mode: ingest takes logs and events without a key" : "  projects:")
        for p in telemetry.projects {
            lines.append("    - {name: \(quote(p.name)), id: \(quote(p.id)), key: \(quote(Redactor.mask)), events_per_minute: \(p.eventsPerMinute)}")
        }
        let slow = telemetry.slow, retention = telemetry.retention
        lines.append("  slow_operations: {duration_ms: \(slow.durationMilliseconds), db_calls: \(slow.dbCalls), docs_scanned: \(slow.docsScanned)}")
        let kinds = TelemetryKind.allCases
        lines.append("  retention: {" + (kinds.map { "\($0.rawValue)_days: \(retention.days[$0] ?? 0)" }
            + kinds.map { "\($0.rawValue)_max_rows: \(retention.maxRows[$0] ?? 0)" } + ["interval_seconds: \(retention.intervalSeconds)"]).joined(separator: ", ") + "}")
        lines.append("alerts:")
        lines.append("  evaluation_interval_seconds: \(alerts.evaluationIntervalSeconds)")
        lines.append("  group_by: [\(alerts.groupBy.map(quote).joined(separator: ", "))]")
        lines.append("  group_wait_seconds: \(alerts.groupWaitSeconds)")
        lines.append("  group_interval_seconds: \(alerts.groupIntervalSeconds)")
        lines.append("  repeat_interval_seconds: \(alerts.repeatIntervalSeconds)")
        lines.append("  send_resolved: \(alerts.sendResolved)")
        lines.append("  external_url: \(quote(Redactor.redactURL(alerts.externalURL)))")
        lines.append("  delivery_attempts: \(alerts.deliveryAttempts)")
        lines.append(alerts.rules.isEmpty ? "  rules: []" : "  rules:")
        for r in alerts.rules {
            lines.append("    - {name: \(quote(r.name)), expr: \(quote(r.expressionText)), for: \(TimeExpressions.formatDuration(micros: r.forMicros)), severity: \(r.severity.rawValue)}")
        }
        lines.append(alerts.receivers.isEmpty ? "  receivers: []" : "  receivers:")
        for r in alerts.receivers {
            // Webhook URLs carry their secret in the path (Slack) and routing keys are credentials.
            let (kind, url): (String, String) = switch r.kind {
            case .slack(let u): ("slack", u)
            case .pagerDuty(_, let u): ("pagerduty", u)
            case .webhook(let u, _): ("webhook", u)
            }
            lines.append("    - {name: \(quote(r.name)), kind: \(kind), url: \(quote(Redactor.redactURLPath(url)))}")
        }
        lines.append(alerts.routes.isEmpty ? "  routes: []  # every alert goes to default_receiver" : "  routes:")
        for r in alerts.routes {
            var fields = ["receiver: \(quote(r.receiver))"]
            if !r.severities.isEmpty { fields.append("severity: [\(r.severities.map(\.rawValue).joined(separator: ", "))]") }
            if !r.match.isEmpty {
                fields.append("match: {\(r.match.sorted { $0.key < $1.key }.map { "\(quote($0.key)): \(quote($0.value))" }.joined(separator: ", "))}")
            }
            fields.append("continue: \(r.continueMatching)")
            lines.append("    - {\(fields.joined(separator: ", "))}")
        }
        lines.append("  default_receiver: \(alerts.defaultReceiver.map(quote) ?? "null  # alerts no route matches are recorded, not sent")")
        lines.append(alerts.probes.isEmpty ? "  probes: []" : "  probes:")
        for p in alerts.probes {
            lines.append("    - {name: \(quote(p.name)), url: \(quote(Redactor.redactURL(p.url))), interval_seconds: \(p.intervalSeconds), retries: \(p.retries)}")
        }
        for h in alerts.heartbeats {
            lines.append("  # heartbeat \(quote(h.name)): every \(h.intervalSeconds)s + \(h.graceSeconds)s grace, token \(h.token == nil ? "none" : Redactor.mask)")
        }
        lines.append("admin_token: \(controls.adminToken == nil ? "null  # admin API off" : quote(Redactor.mask))")
        lines.append(controls.rateLimits.isEmpty ? "rate_limits: []" : "rate_limits:")
        for r in controls.rateLimits {
            lines.append("  - {name: \(quote(r.id)), scope: \(quote(r.scope.description)), \(r.unit.rawValue): \(r.limit), per: \(r.period.rawValue)}")
        }
        lines.append(controls.budgets.isEmpty ? "budgets: []" : "budgets:")
        for r in controls.budgets {
            lines.append("  - {name: \(quote(r.id)), scope: \(quote(r.scope.description)), amount_usd: \(quote(MicroDollars(r.limit).dollarString)), period: \(r.period.rawValue)}")
        }
        lines.append("retries: {max_attempts: \(controls.retry.maxAttempts), initial_backoff_ms: \(controls.retry.initialBackoffMilliseconds), max_backoff_ms: \(controls.retry.maxBackoffMilliseconds), total_deadline_seconds: \(controls.retry.totalDeadlineSeconds)}")
        lines.append("circuit_breaker: {failure_threshold: \(controls.breaker.failureThreshold), open_seconds: \(controls.breaker.openSeconds)}")
        lines.append("cache: {enabled: \(controls.cache.enabled), ttl_seconds: \(controls.cache.ttlSeconds), max_entries: \(controls.cache.maxEntries)}")
        lines.append("controls: {require_keys: \(controls.requireKeys), when_store_unavailable: \(controls.whenStoreUnavailable.rawValue), sync_interval_ms: \(controls.syncIntervalMilliseconds), lease_fraction: \(controls.leaseFraction)}")
        lines.append(prices.isEmpty ? "prices: []  # shipped table only" : "prices:")
        for e in prices {
            lines.append("  - {provider: \(quote(e.provider)), model: \(quote(e.model)), input: \(quote(e.input)), output: \(quote(e.output))}")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}


extension Redactor {
    /// `sk-…1a2b3c4d5e6f`: the key's scheme prefix and the first 12 hex digits of its SHA-256.
    public static func fingerprint(ofSecret secret: String) -> String {
        fingerprint(ofSecret: secret) { text in
            Hex.encode(SHA256.hash(data: Data(text.utf8)))
        }
    }
}
