import Crypto
import Foundation
import Yams

extension GatehouseConfig {
    /// The effective configuration as YAML with every secret masked, for `check-config`.
    /// Written by Yams' emitter from a node tree, so every value reads back as what it is: text
    /// is always double-quoted (a name `yes`, `*x` or `a: b #c` stays text), words Gatehouse
    /// chose (`kind: openai`) are plain unless YAML would read them as something else.
    public func redactedYAML() -> String {
        typealias Y = RedactedYAML
        let mask = Y.text(Redactor.mask)
        func optionalSecret(_ value: String?) -> Node { value == nil ? Y.null : mask }
        func flow(_ pairs: [(String, Node)]) -> Node { Y.mapping(pairs, style: .flow) }
        func list(_ items: [Node]) -> Node { Node(items, .implicit, .block) }
        // A user name without a password is a token too (`https://sk-…@proxy/v1`).
        func url(_ value: String) -> Node { Y.text(Redactor.maskURLCredentials(Redactor.redactURL(value))) }

        var root: [(String, Node)] = [
            ("host", Y.text(host)),
            ("port", Y.number(port)),
            ("tls_cert_file", tlsCertFile.map(Y.text) ?? Y.null),
            ("tls_key_file", tlsKeyFile.map(Y.text) ?? Y.null),
            ("data_dir", Y.text(dataDirectory)),
            ("database_url", Y.text(Redactor.redactURL(resolvedDatabaseURL))),
            ("log_format", Y.word(logFormat.rawValue)),
            ("log_level", Y.word(logLevel.rawValue)),
            ("encryption_key", optionalSecret(encryptionKey)),
            ("migrate_on_start", Y.bool(migrateOnStart)),
            ("cors_allowed_origins", Y.sequence(corsAllowedOrigins.map(Y.text), style: .flow)),
            ("gateway", Y.mapping([
                ("max_request_body_bytes", Y.number(gateway.maxRequestBodyBytes)),
                ("upstream_timeout_seconds", Y.number(gateway.upstreamTimeoutSeconds)),
                ("stream_idle_timeout_seconds", Y.number(gateway.streamIdleTimeoutSeconds)),
                ("client_disconnect_grace_seconds", Y.number(gateway.clientDisconnectGraceSeconds)),
                ("client_idle_timeout_seconds", Y.number(gateway.clientIdleTimeoutSeconds)),
                ("connect_timeout_seconds", Y.number(gateway.connectTimeoutSeconds)),
                ("trust_forwarded_for", Y.bool(gateway.trustForwardedFor)),
                ("capture_bodies", Y.bool(gateway.captureBodies)),
                ("capture_max_bytes", Y.number(gateway.captureMaxBytes)),
            ])),
            ("recorder", Y.mapping([
                ("capacity", Y.number(recorder.capacity)),
                ("batch_size", Y.number(recorder.batchSize)),
                ("flush_interval_ms", Y.number(recorder.flushIntervalMilliseconds)),
                ("when_full", Y.word(recorder.whenFull.rawValue)),
            ])),
        ]
        root.append(("providers", list(providers.map { p in
            var fields: [(String, Node)] = [
                ("name", Y.text(p.name)), ("kind", Y.word(p.kind.rawValue)), ("base_url", url(p.baseURL)),
                ("api_key", optionalSecret(p.apiKey)),
            ]
            if let v = p.apiVersion { fields.append(("api_version", Y.text(v))) }
            if !p.headers.isEmpty {
                fields.append(("headers", Node(p.headers.sorted { $0.key < $1.key }.map { key, value in
                    (Y.text(key), Redactor.isHarmlessHeader(key) && !Redactor.isSecretKey(key) ? Y.text(value) : mask)
                }, .implicit, .block)))
            }
            fields.append(("price_provider", Y.text(p.effectivePriceProvider)))
            if p.kind == .mock {
                fields.append(("mock_latency_ms", Y.number(p.mockLatencyMilliseconds)))
                fields.append(("mock_chunk_delay_ms", Y.number(p.mockChunkDelayMilliseconds)))
            }
            return Y.mapping(fields)
        })))
        root.append(("aliases", Node(aliases.map { a in
            let target = a.deployments.count == 1 ? Y.text(a.target)
                : list(a.deployments.map { d in
                    flow([("model", Y.text(d.target)), ("weight", Y.number(d.weight)), ("priority", Y.number(d.priority))])
                })
            return (Y.text(a.alias), target)
        }, .implicit, .block)))
        root.append(("metrics", Y.mapping([("require_token", Y.bool(metrics.requireToken))])))
        root.append(("backups", backups.map { b in
            flow([("dir", Y.text(b.directory)), ("interval", Y.word(TimeExpressions.formatDuration(micros: Int64(b.intervalSeconds) * 1_000_000))),
                  ("keep", Y.number(b.keep))])
        } ?? Y.null))
        let slow = telemetry.slow, retention = telemetry.retention
        let kinds = TelemetryKind.allCases
        root.append(("telemetry", Y.mapping([
            ("projects", list(telemetry.projects.map { p in
                flow([("name", Y.text(p.name)), ("id", Y.text(p.id)), ("key", mask), ("events_per_minute", Y.number(p.eventsPerMinute))])
            })),
            ("slow_operations", flow([("duration_ms", Y.number(slow.durationMilliseconds)), ("db_calls", Y.number(slow.dbCalls)),
                                      ("docs_scanned", Y.number(slow.docsScanned))])),
            ("retention", flow(kinds.map { ("\($0.rawValue)_days", Y.number(retention.days[$0] ?? 0)) }
                + kinds.map { ("\($0.rawValue)_max_rows", Y.number(retention.maxRows[$0] ?? 0)) }
                + [("interval_seconds", Y.number(retention.intervalSeconds))])),
            ("otlp_export", telemetry.otlpExport.map { e in
                // Header values are credentials (a vendor's API key): names only.
                flow([("endpoint", url(e.endpoint)), ("headers", Node(e.headers.keys.sorted().map { (Y.text($0), mask) }, .implicit, .flow)),
                      ("timeout", Y.word(TimeExpressions.formatDuration(micros: Int64(e.timeoutSeconds * 1_000_000))))])
            } ?? Y.null),
        ])))
        root.append(("alerts", Y.mapping([
            ("evaluation_interval_seconds", Y.number(alerts.evaluationIntervalSeconds)),
            ("group_by", Y.sequence(alerts.groupBy.map(Y.text), style: .flow)),
            ("group_wait_seconds", Y.number(alerts.groupWaitSeconds)),
            ("group_interval_seconds", Y.number(alerts.groupIntervalSeconds)),
            ("repeat_interval_seconds", Y.number(alerts.repeatIntervalSeconds)),
            ("send_resolved", Y.bool(alerts.sendResolved)),
            ("external_url", Y.text(Redactor.redactURL(alerts.externalURL))),
            ("delivery_attempts", Y.number(alerts.deliveryAttempts)),
            ("rules", list(alerts.rules.map { r in
                flow([("name", Y.text(r.name)), ("expr", Y.text(r.expressionText)),
                      ("for", Y.word(TimeExpressions.formatDuration(micros: r.forMicros))), ("severity", Y.word(r.severity.rawValue))])
            })),
            ("receivers", list(alerts.receivers.map { r in
                // Webhook URLs carry their secret in the path (Slack) and routing keys are credentials.
                let (kind, url): (String, String) = switch r.kind {
                case .slack(let u): ("slack", u)
                case .pagerDuty(_, let u): ("pagerduty", u)
                case .webhook(let u, _): ("webhook", u)
                }
                return flow([("name", Y.text(r.name)), ("kind", Y.word(kind)), ("url", Y.text(Redactor.redactURLPath(url)))])
            })),
            ("routes", list(alerts.routes.map { r in
                var fields: [(String, Node)] = [("receiver", Y.text(r.receiver))]
                if !r.severities.isEmpty { fields.append(("severity", Y.sequence(r.severities.map { Y.word($0.rawValue) }, style: .flow))) }
                if !r.match.isEmpty {
                    fields.append(("match", Node(r.match.sorted { $0.key < $1.key }.map { (Y.text($0.key), Y.text($0.value)) }, .implicit, .flow)))
                }
                fields.append(("continue", Y.bool(r.continueMatching)))
                return flow(fields)
            })),
            ("default_receiver", alerts.defaultReceiver.map(Y.text) ?? Y.null),
            ("probes", list(alerts.probes.map { p in
                flow([("name", Y.text(p.name)), ("url", url(p.url)), ("interval_seconds", Y.number(p.intervalSeconds)),
                      ("retries", Y.number(p.retries)), ("public", Y.bool(p.isPublic))])
            })),
            ("heartbeats", list(alerts.heartbeats.map { h in
                flow([("name", Y.text(h.name)), ("interval_seconds", Y.number(h.intervalSeconds)), ("grace_seconds", Y.number(h.graceSeconds)),
                      ("token", optionalSecret(h.token)), ("public", Y.bool(h.isPublic))])
            })),
        ])))
        root.append(("admin_token", optionalSecret(controls.adminToken)))
        root.append(("rate_limits", list(controls.rateLimits.map { r in
            flow([("name", Y.text(r.id)), ("scope", Y.text(r.scope.description)), (r.unit.rawValue, Y.number(r.limit)), ("per", Y.word(r.period.rawValue))])
        })))
        root.append(("budgets", list(controls.budgets.map { r in
            flow([("name", Y.text(r.id)), ("scope", Y.text(r.scope.description)), ("amount_usd", Y.text(MicroDollars(r.limit).dollarString)),
                  ("period", Y.word(r.period.rawValue))])
        })))
        let retry = controls.retry, breaker = controls.breaker, cache = controls.cache
        root.append(("retries", flow([("max_attempts", Y.number(retry.maxAttempts)), ("initial_backoff_ms", Y.number(retry.initialBackoffMilliseconds)),
                                      ("max_backoff_ms", Y.number(retry.maxBackoffMilliseconds)), ("total_deadline_seconds", Y.number(retry.totalDeadlineSeconds))])))
        root.append(("circuit_breaker", flow([("failure_threshold", Y.number(breaker.failureThreshold)), ("open_seconds", Y.number(breaker.openSeconds))])))
        root.append(("cache", flow([("enabled", Y.bool(cache.enabled)), ("ttl_seconds", Y.number(cache.ttlSeconds)), ("max_entries", Y.number(cache.maxEntries))])))
        root.append(("controls", flow([("require_keys", Y.bool(controls.requireKeys)), ("when_store_unavailable", Y.word(controls.whenStoreUnavailable.rawValue)),
                                       ("sync_interval_ms", Y.number(controls.syncIntervalMilliseconds)), ("lease_fraction", Y.number(controls.leaseFraction))])))
        root.append(("prices", list(prices.map { e in
            flow([("provider", Y.text(e.provider)), ("model", Y.text(e.model)), ("input", Y.text(e.input)), ("output", Y.text(e.output))])
        })))
        return Y.emit(Y.mapping(root))
    }
}

/// The pieces `redactedYAML` builds its tree from.
enum RedactedYAML {
    static var null: Node { Node("null", Tag(.null), .plain) }

    /// Text from the configuration: always quoted, so nothing in it reads as YAML syntax.
    static func text(_ value: String) -> Node { Node(value, .implicit, .doubleQuoted) }

    /// A word Gatehouse chose (an enum's value, a duration): plain when YAML reads it back as
    /// that same text, quoted otherwise (`on`, `null`, `1e3`).
    static func word(_ value: String) -> Node {
        Resolver.default.resolveTag(of: Node(value)) == .str ? Node(value, .implicit, .plain) : text(value)
    }

    static func number(_ value: some BinaryInteger) -> Node { Node(String(value), Tag(.int), .plain) }
    static func number(_ value: Double) -> Node { value.isFinite ? Node("\(value)", Tag(.float), .plain) : text("\(value)") }
    static func bool(_ value: Bool) -> Node { Node(value ? "true" : "false", Tag(.bool), .plain) }

    static func mapping(_ pairs: [(String, Node)], style: Node.Mapping.Style = .block) -> Node {
        Node(pairs.map { (Node($0.0, .implicit, .plain), $0.1) }, .implicit, style)
    }

    static func sequence(_ items: [Node], style: Node.Sequence.Style) -> Node { Node(items, .implicit, style) }

    /// Why a value is empty, next to it (the emitter writes no comments; these lines are ours).
    static let notes: [String: String] = [
        "tls_cert_file: null": "plain HTTP: TLS is terminated in front of Gatehouse, if at all",
        "cors_allowed_origins: []": "no CORS headers: browsers on other origins cannot call",
        "api_key: null": "caller's own credential is passed through",
        "projects: []": "open mode: ingest takes logs and events without a key",
        "routes: []": "every alert goes to default_receiver",
        "default_receiver: null": "alerts no route matches are recorded, not sent",
        "admin_token: null": "admin API off",
        "backups: null": "no scheduled backups",
        "prices: []": "shipped table only",
    ]

    static func emit(_ root: Node) -> String {
        let yaml: String
        do {
            yaml = try Yams.serialize(node: root, width: -1, allowUnicode: true)
        } catch {
            return "# the configuration could not be printed: \(error)\n"
        }
        // Keys of ours are plain and text is quoted, so a line that is one of these (after its
        // indentation and a list's `- `) is the key it names, never a value from the file.
        return yaml.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            let content = line.drop { $0 == " " || $0 == "-" }
            guard let note = notes[String(content)] else { return String(line) }
            return "\(line)  # \(note)"
        }.joined(separator: "\n")
    }
}
