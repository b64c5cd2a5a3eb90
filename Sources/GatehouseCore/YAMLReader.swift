import Foundation

/// Reads the YAML configuration tree into `GatehouseConfig`, collecting every unknown key and
/// wrongly typed value with its path instead of stopping at the first.
struct YAMLReader {
    var errors: [ConfigError]
    /// Monitors Gatehouse adds itself (the scheduled backups' heartbeat), which rules may name.
    var builtInMonitors: Set<String> = []

    mutating func apply(root: Any, to config: inout GatehouseConfig, environment: [String: String]) {
        guard let map = mapping(root, at: "(file)") else { return }
        check(map, at: "", allowed: ["host", "port", "tls_cert_file", "tls_key_file", "data_dir", "database_url", "log_format", "log_level",
                                      "encryption_key", "gateway", "recorder", "providers", "aliases", "prices", "admin_token",
                                      "rate_limits", "budgets", "token_caps", "retries", "circuit_breaker", "cache", "controls", "telemetry", "alerts", "cors_allowed_origins", "metrics", "migrate_on_start", "backups"])
        if let b = map["backups"] { config.backups = readBackups(b) }
        if BackupSettings.requested(inFile: map["backups"] != nil, environment: environment) { builtInMonitors.insert(BackupSettings.heartbeatName) }
        if let v = string(map["admin_token"], at: "admin_token") { config.controls.adminToken = v }
        readControls(map, into: &config.controls)
        if let t = map["telemetry"] { readTelemetry(t, into: &config.telemetry) }
        if let a = map["alerts"] { readAlerts(a, into: &config.alerts) }
        if let v = strings(map["cors_allowed_origins"], at: "cors_allowed_origins") { config.corsAllowedOrigins = v }
        if let v = string(map["host"], at: "host") { config.host = v }
        if let v = int(map["port"], at: "port") { config.port = v }
        if let v = string(map["tls_cert_file"], at: "tls_cert_file") { config.tlsCertFile = v }
        if let v = string(map["tls_key_file"], at: "tls_key_file") { config.tlsKeyFile = v }
        if let v = string(map["data_dir"], at: "data_dir") { config.dataDirectory = v }
        if let v = string(map["database_url"], at: "database_url") { config.databaseURL = v }
        if let v = string(map["log_format"], at: "log_format") { ConfigurationLoader.setEnum(v, key: "log_format", into: &config.logFormat, errors: &errors) }
        if let v = string(map["log_level"], at: "log_level") { ConfigurationLoader.setEnum(v, key: "log_level", into: &config.logLevel, errors: &errors) }
        if let v = string(map["encryption_key"], at: "encryption_key") { config.encryptionKey = v }
        if let v = bool(map["migrate_on_start"], at: "migrate_on_start") { config.migrateOnStart = v }

        if let g = map["gateway"].flatMap({ mapping($0, at: "gateway") }) {
            check(g, at: "gateway", allowed: ["max_request_body_bytes", "upstream_timeout_seconds", "stream_idle_timeout_seconds", "client_disconnect_grace_seconds", "connect_timeout_seconds", "trust_forwarded_for",
                                              "client_idle_timeout_seconds", "capture_bodies", "capture_max_bytes"])
            if let v = bool(g["capture_bodies"], at: "gateway.capture_bodies") { config.gateway.captureBodies = v }
            if let v = int(g["capture_max_bytes"], at: "gateway.capture_max_bytes") { config.gateway.captureMaxBytes = v }
            if let v = int(g["client_idle_timeout_seconds"], at: "gateway.client_idle_timeout_seconds") { config.gateway.clientIdleTimeoutSeconds = v }
            if let v = bool(g["trust_forwarded_for"], at: "gateway.trust_forwarded_for") { config.gateway.trustForwardedFor = v }
            if let v = int(g["max_request_body_bytes"], at: "gateway.max_request_body_bytes") { config.gateway.maxRequestBodyBytes = v }
            if let v = int(g["upstream_timeout_seconds"], at: "gateway.upstream_timeout_seconds") { config.gateway.upstreamTimeoutSeconds = v }
            if let v = int(g["stream_idle_timeout_seconds"], at: "gateway.stream_idle_timeout_seconds") { config.gateway.streamIdleTimeoutSeconds = v }
            if let v = int(g["client_disconnect_grace_seconds"], at: "gateway.client_disconnect_grace_seconds") {
                config.gateway.clientDisconnectGraceSeconds = v
            }
            if let v = int(g["connect_timeout_seconds"], at: "gateway.connect_timeout_seconds") { config.gateway.connectTimeoutSeconds = v }
        }
        if let m = map["metrics"].flatMap({ mapping($0, at: "metrics") }) {
            check(m, at: "metrics", allowed: ["require_token"])
            if let v = bool(m["require_token"], at: "metrics.require_token") { config.metrics.requireToken = v }
        }
        if let r = map["recorder"].flatMap({ mapping($0, at: "recorder") }) {
            check(r, at: "recorder", allowed: ["capacity", "batch_size", "flush_interval_ms", "when_full"])
            if let v = int(r["capacity"], at: "recorder.capacity") { config.recorder.capacity = v }
            if let v = int(r["batch_size"], at: "recorder.batch_size") { config.recorder.batchSize = v }
            if let v = int(r["flush_interval_ms"], at: "recorder.flush_interval_ms") { config.recorder.flushIntervalMilliseconds = v }
            if let v = string(r["when_full"], at: "recorder.when_full") { ConfigurationLoader.setEnum(v, key: "recorder.when_full", into: &config.recorder.whenFull, errors: &errors) }
        }
        if let list = map["providers"].flatMap({ sequence($0, at: "providers") }) {
            config.providers = list.enumerated().compactMap { provider($1, at: "providers[\($0)]", environment: environment) }
        }
        if let list = map["aliases"] {
            // Either a mapping `alias: provider/model` or a list of {alias, target}.
            if let m = list as? [String: Any] {
                config.aliases = m.keys.sorted().compactMap { key in
                    string(m[key], at: "aliases.\(key)").map { ModelAlias(alias: key, target: $0) }
                }
            } else if let seq = sequence(list, at: "aliases") {
                config.aliases = seq.enumerated().compactMap { i, item in
                    guard let m = mapping(item, at: "aliases[\(i)]") else { return nil }
                    check(m, at: "aliases[\(i)]", allowed: ["alias", "target", "targets"])
                    let name = string(m["alias"], at: "aliases[\(i)].alias", required: true)
                    if let targets = m["targets"].flatMap({ sequence($0, at: "aliases[\(i)].targets") }) {
                        let deployments = targets.enumerated().compactMap { j, t -> ModelAlias.Deployment? in
                            let at = "aliases[\(i)].targets[\(j)]"
                            if let s = t as? String { return ModelAlias.Deployment(target: s) }
                            guard let tm = mapping(t, at: at) else { return nil }
                            check(tm, at: at, allowed: ["model", "weight", "priority"])
                            let model = string(tm["model"], at: "\(at).model", required: true)
                            let weight = int(tm["weight"], at: "\(at).weight") ?? 1, priority = int(tm["priority"], at: "\(at).priority") ?? 0
                            return model.map { ModelAlias.Deployment(target: $0, weight: weight, priority: priority) }
                        }
                        return name.map { ModelAlias(alias: $0, deployments: deployments) }
                    }
                    guard let target = string(m["target"], at: "aliases[\(i)].target", required: true), let name else { return nil }
                    return ModelAlias(alias: name, target: target)
                }
            }
        }
        if let list = map["prices"].flatMap({ sequence($0, at: "prices") }) {
            config.prices = list.enumerated().compactMap { i, item in
                let at = "prices[\(i)]"
                guard let m = mapping(item, at: at) else { return nil }
                check(m, at: at, allowed: ["provider", "model", "input", "output", "cached_input", "cache_write", "aliases", "note"])
                let provider = string(m["provider"], at: "\(at).provider", required: true)
                let model = string(m["model"], at: "\(at).model", required: true)
                let input = decimal(m["input"], at: "\(at).input", required: true)
                let output = decimal(m["output"], at: "\(at).output", required: true)
                let cachedInput = decimal(m["cached_input"], at: "\(at).cached_input")
                let cacheWrite = decimal(m["cache_write"], at: "\(at).cache_write")
                guard let provider, let model, let input, let output else { return nil }
                return PriceTableFile.Entry(provider: provider, model: model, input: input, output: output,
                                            cached_input: cachedInput, cache_write: cacheWrite,
                                            aliases: (m["aliases"] as? [Any])?.compactMap { $0 as? String }, note: nil)
            }
        }
    }

    mutating func provider(_ item: Any, at path: String, environment: [String: String]) -> ProviderConfig? {
        guard let m = mapping(item, at: path) else { return nil }
        check(m, at: path, allowed: ["name", "kind", "base_url", "api_key", "api_key_env", "api_version", "headers",
                                     "price_provider", "mock_latency_ms", "mock_chunk_delay_ms"])
        // Every field is read before giving up, so one pass reports every mistake of the item.
        let name = string(m["name"], at: "\(path).name", required: true)
        let kindText = string(m["kind"], at: "\(path).kind", required: true)
        let kind = kindText.flatMap { ProviderConfig.Kind(rawValue: $0) }
        if let kindText, kind == nil {
            errors.append(.init(key: "\(path).kind", problem: "\"\(kindText)\" is not one of \(ProviderConfig.Kind.allCases.map(\.rawValue).joined(separator: ", "))"))
        }
        let baseURL = string(m["base_url"], at: "\(path).base_url", required: kind.map { ProviderConfig.defaultBaseURL(for: $0) == nil } ?? false)
            ?? kind.flatMap { ProviderConfig.defaultBaseURL(for: $0) }
        var apiKey = string(m["api_key"], at: "\(path).api_key")
        if let variable = string(m["api_key_env"], at: "\(path).api_key_env") {
            if let value = environment[variable], !value.isEmpty {
                apiKey = value
            } else {
                errors.append(.init(key: "\(path).api_key_env", problem: "environment variable \(variable) is not set"))
            }
        }
        var headers: [String: String] = [:]
        if let h = m["headers"].flatMap({ mapping($0, at: "\(path).headers") }) {
            for (k, v) in h { if let s = string(v, at: "\(path).headers.\(k)") { headers[k] = s } }
        }
        let apiVersion = string(m["api_version"], at: "\(path).api_version")
        let priceProvider = string(m["price_provider"], at: "\(path).price_provider")
        let mockLatency = int(m["mock_latency_ms"], at: "\(path).mock_latency_ms") ?? 0
        let mockChunkDelay = int(m["mock_chunk_delay_ms"], at: "\(path).mock_chunk_delay_ms") ?? 0
        guard let name, let kind, let baseURL else { return nil }
        return ProviderConfig(
            name: name, kind: kind, baseURL: baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL,
            apiKey: apiKey, apiVersion: apiVersion, headers: headers, priceProvider: priceProvider,
            mockLatencyMilliseconds: mockLatency, mockChunkDelayMilliseconds: mockChunkDelay)
    }

    // MARK: - Typed access with errors

    mutating func check(_ map: [String: Any], at path: String, allowed: Set<String>) {
        for key in map.keys.sorted() where !allowed.contains(key) {
            let full = path.isEmpty ? key : "\(path).\(key)"
            errors.append(.init(key: full, problem: "unknown key (expected one of: \(allowed.sorted().joined(separator: ", ")))"))
        }
    }

    mutating func mapping(_ value: Any, at path: String) -> [String: Any]? {
        if let m = value as? [String: Any] { return m }
        if let m = value as? [AnyHashable: Any] {
            return Dictionary(uniqueKeysWithValues: m.map { ("\($0.key)", $0.value) })
        }
        errors.append(.init(key: path, problem: "must be a mapping of keys to values"))
        return nil
    }

    mutating func sequence(_ value: Any, at path: String) -> [Any]? {
        if let s = value as? [Any] { return s }
        errors.append(.init(key: path, problem: "must be a list"))
        return nil
    }

    mutating func string(_ value: Any?, at path: String, required: Bool = false) -> String? {
        guard let value, !(value is NSNull) else {
            if required { errors.append(.init(key: path, problem: "is required")) }
            return nil
        }
        if let s = value as? String { return s }
        if let i = value as? Int { return String(i) }
        errors.append(.init(key: path, problem: "must be a string"))
        return nil
    }

    mutating func int(_ value: Any?, at path: String) -> Int? {
        guard let value, !(value is NSNull) else { return nil }
        if let i = value as? Int { return i }
        if let s = value as? String, let i = Int(s) { return i }
        errors.append(.init(key: path, problem: "must be a whole number"))
        return nil
    }

    /// Prices should be quoted strings; an unquoted number is accepted through its YAML text.
    mutating func decimal(_ value: Any?, at path: String, required: Bool = false) -> String? {
        guard let value, !(value is NSNull) else {
            if required { errors.append(.init(key: path, problem: "is required")) }
            return nil
        }
        if let s = value as? String { return s }
        if let i = value as? Int { return String(i) }
        if let d = value as? Double { return String(format: "%.6f", d) }
        errors.append(.init(key: path, problem: "must be a decimal number"))
        return nil
    }
}
