import Foundation
import Yams

/// A problem with the configuration, naming the key and what is wrong with it.
public struct ConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    public var key: String
    public var problem: String
    public init(key: String, problem: String) {
        self.key = key
        self.problem = problem
    }
    public var description: String { "\(key): \(problem)" }
}

/// All problems found at once, so a user fixes them in one pass.
public struct ConfigErrors: Error, CustomStringConvertible, Sendable {
    public var errors: [ConfigError]
    public init(errors: [ConfigError]) { self.errors = errors }
    public var description: String {
        "invalid configuration:\n" + errors.map { "  - \($0)" }.joined(separator: "\n")
    }
}

/// Values given on the command line; nil means "not given".
public struct ConfigOverrides: Sendable {
    public var host: String?
    public var port: Int?
    public var dataDirectory: String?
    public var databaseURL: String?
    public var logFormat: String?
    public var logLevel: String?
    public init(host: String? = nil, port: Int? = nil, dataDirectory: String? = nil, databaseURL: String? = nil,
                logFormat: String? = nil, logLevel: String? = nil) {
        self.host = host
        self.port = port
        self.dataDirectory = dataDirectory
        self.databaseURL = databaseURL
        self.logFormat = logFormat
        self.logLevel = logLevel
    }
}

public enum ConfigurationLoader {
    /// Builds the effective configuration. `yaml` is the config file's text, if any.
    public static func load(yaml: String?, environment: [String: String], overrides: ConfigOverrides) throws -> GatehouseConfig {
        var config = GatehouseConfig()
        var errors: [ConfigError] = []
        if let yaml, !yaml.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            do {
                let root = try Yams.load(yaml: yaml)
                if let root {
                    var reader = YAMLReader(errors: [])
                    reader.apply(root: root, to: &config, environment: environment)
                    errors += reader.errors
                }
            } catch {
                throw ConfigErrors(errors: [ConfigError(key: "(file)", problem: "not valid YAML: \(error)")])
            }
        }
        applyEnvironment(environment, to: &config, errors: &errors)
        applyOverrides(overrides, to: &config, errors: &errors)
        decryptProviderKeys(in: &config, errors: &errors)
        addDefaultProviders(to: &config, environment: environment)
        addBackupMonitor(to: &config)
        errors += validate(config)
        if !errors.isEmpty { throw ConfigErrors(errors: errors) }
        return config
    }

    static func applyEnvironment(_ env: [String: String], to config: inout GatehouseConfig, errors: inout [ConfigError]) {
        if let v = env["GATEHOUSE_HOST"] { config.host = v }
        if let v = env["GATEHOUSE_PORT"] {
            if let port = Int(v) { config.port = port } else { errors.append(.init(key: "GATEHOUSE_PORT", problem: "\"\(v)\" is not a port number")) }
        }
        if let v = env["GATEHOUSE_TLS_CERT_FILE"], !v.isEmpty { config.tlsCertFile = v }
        if let v = env["GATEHOUSE_TLS_KEY_FILE"], !v.isEmpty { config.tlsKeyFile = v }
        if let v = env["GATEHOUSE_DATA_DIR"] { config.dataDirectory = v }
        if let v = env["GATEHOUSE_DATABASE_URL"], !v.isEmpty { config.databaseURL = v }
        // Turns scheduled backups on with their defaults when the file has no `backups:`.
        if let v = BackupSettings.directory(in: env) {
            if config.backups == nil { config.backups = BackupSettings(directory: v) } else { config.backups?.directory = v }
        }
        if let v = env["GATEHOUSE_LOG_FORMAT"] { setEnum(v, key: "GATEHOUSE_LOG_FORMAT", into: &config.logFormat, errors: &errors) }
        if let v = env["GATEHOUSE_LOG_LEVEL"] { setEnum(v, key: "GATEHOUSE_LOG_LEVEL", into: &config.logLevel, errors: &errors) }
        if let v = env["GATEHOUSE_ENCRYPTION_KEY"], !v.isEmpty { config.encryptionKey = v }
        if let v = env["GATEHOUSE_ADMIN_TOKEN"], !v.isEmpty { config.controls.adminToken = v }
        setBool(env, "GATEHOUSE_METRICS_REQUIRE_TOKEN", into: &config.metrics.requireToken, errors: &errors)
        setBool(env, "GATEHOUSE_MIGRATE", into: &config.migrateOnStart, errors: &errors)
        if let v = env["GATEHOUSE_CORS_ORIGINS"], !v.isEmpty {
            config.corsAllowedOrigins = v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
    }

    static func applyOverrides(_ o: ConfigOverrides, to config: inout GatehouseConfig, errors: inout [ConfigError]) {
        if let v = o.host { config.host = v }
        if let v = o.port { config.port = v }
        if let v = o.dataDirectory { config.dataDirectory = v }
        if let v = o.databaseURL { config.databaseURL = v }
        if let v = o.logFormat { setEnum(v, key: "--log-format", into: &config.logFormat, errors: &errors) }
        if let v = o.logLevel { setEnum(v, key: "--log-level", into: &config.logLevel, errors: &errors) }
    }

    /// `enc:v1:` provider keys become plain text in memory only.
    static func decryptProviderKeys(in config: inout GatehouseConfig, errors: inout [ConfigError]) {
        for i in config.providers.indices {
            guard let value = config.providers[i].apiKey, SecretBox.isEncrypted(value) else { continue }
            let key = "providers[\(i)].api_key"
            guard let text = config.encryptionKey, let secret = EncryptionKeyParser.parse(text) else {
                errors.append(.init(key: key, problem: "is encrypted but GATEHOUSE_ENCRYPTION_KEY is not set to a valid key"))
                continue
            }
            do { config.providers[i].apiKey = try SecretBox.decrypt(value, key: secret) } catch {
                errors.append(.init(key: key, problem: "\(error)"))
            }
        }
    }

    /// A true/false environment variable; unset or empty leaves `target` as it is.
    static func setBool(_ env: [String: String], _ key: String, into target: inout Bool, errors: inout [ConfigError]) {
        guard let v = env[key], !v.isEmpty else { return }
        switch v.lowercased() {
        case "1", "true", "yes", "on": target = true
        case "0", "false", "no", "off": target = false
        default: errors.append(.init(key: key, problem: "\"\(v)\" is not true or false"))
        }
    }

    static func setEnum<E: RawRepresentable & CaseIterable>(_ text: String, key: String, into target: inout E, errors: inout [ConfigError]) where E.RawValue == String {
        if let value = E(rawValue: text.lowercased()) {
            target = value
        } else {
            errors.append(.init(key: key, problem: "\"\(text)\" is not one of \(E.allCases.map(\.rawValue).joined(separator: ", "))"))
        }
    }

    /// The built-in mock is always there; OpenAI and Anthropic appear on their own when their
    /// standard key variables are set and the file declares no provider of that name.
    static func addDefaultProviders(to config: inout GatehouseConfig, environment: [String: String]) {
        let names = Set(config.providers.map(\.name))
        if !names.contains("mock") { config.providers.append(.builtInMock) }
        if !names.contains("openai"), let key = environment["OPENAI_API_KEY"], !key.isEmpty {
            config.providers.append(ProviderConfig(name: "openai", kind: .openAI, baseURL: ProviderConfig.defaultBaseURL(for: .openAI)!, apiKey: key))
        }
        if !names.contains("anthropic"), let key = environment["ANTHROPIC_API_KEY"], !key.isEmpty {
            config.providers.append(ProviderConfig(name: "anthropic", kind: .anthropic, baseURL: ProviderConfig.defaultBaseURL(for: .anthropic)!, apiKey: key))
        }
    }

    // MARK: - Validation

    public static func validate(_ config: GatehouseConfig) -> [ConfigError] {
        var errors: [ConfigError] = []
        if config.host.isEmpty { errors.append(.init(key: "host", problem: "must not be empty")) }
        if !(0...65535).contains(config.port) { errors.append(.init(key: "port", problem: "\(config.port) is outside 0…65535")) }
        // Whether the files exist and pair up is checked where they are opened (TLSFiles), which
        // check-config and serve both run; here only that one is not given without the other.
        switch (config.tlsCertFile, config.tlsKeyFile) {
        case (.some, nil): errors.append(.init(key: "tls_key_file", problem: "is required when tls_cert_file is set (GATEHOUSE_TLS_KEY_FILE)"))
        case (nil, .some): errors.append(.init(key: "tls_cert_file", problem: "is required when tls_key_file is set (GATEHOUSE_TLS_CERT_FILE)"))
        default: break
        }
        if let url = config.databaseURL, DatabaseURL(url) == nil {
            errors.append(.init(key: "database_url", problem: "\(Redactor.redactURL(url)) is not a sqlite:// or postgres:// URL"))
        }
        if let key = config.encryptionKey, isPlaceholder(key) {
            errors.append(.init(key: "encryption_key", problem: "is an example's placeholder; generate one: openssl rand -base64 32, or leave it unset (GATEHOUSE_ENCRYPTION_KEY)"))
        } else if let key = config.encryptionKey, EncryptionKeyParser.parse(key) == nil {
            errors.append(.init(key: "encryption_key", problem: "must be 32 bytes, written as 44 base64 or 64 hex characters"))
        }
        let g = config.gateway
        if g.maxRequestBodyBytes < 1024 || g.maxRequestBodyBytes > 256 * 1024 * 1024 {
            errors.append(.init(key: "gateway.max_request_body_bytes", problem: "must be between 1024 and 268435456"))
        }
        if g.upstreamTimeoutSeconds < 1 || g.upstreamTimeoutSeconds > 86_400 {
            errors.append(.init(key: "gateway.upstream_timeout_seconds", problem: "must be between 1 and 86400"))
        }
        if g.streamIdleTimeoutSeconds < 1 || g.streamIdleTimeoutSeconds > 86_400 {
            errors.append(.init(key: "gateway.stream_idle_timeout_seconds", problem: "must be between 1 and 86400"))
        }
        if g.clientDisconnectGraceSeconds < 0 || g.clientDisconnectGraceSeconds > 3_600 {
            errors.append(.init(key: "gateway.client_disconnect_grace_seconds", problem: "must be between 0 and 3600"))
        }
        if g.connectTimeoutSeconds < 1 || g.connectTimeoutSeconds > 3_600 {
            errors.append(.init(key: "gateway.connect_timeout_seconds", problem: "must be between 1 and 3600"))
        }
        if g.clientIdleTimeoutSeconds < 1 || g.clientIdleTimeoutSeconds > 86_400 {
            errors.append(.init(key: "gateway.client_idle_timeout_seconds", problem: "must be between 1 and 86400"))
        }
        if g.captureMaxBytes < 1024 || g.captureMaxBytes > 16 * 1024 * 1024 {
            errors.append(.init(key: "gateway.capture_max_bytes", problem: "must be between 1024 and 16777216"))
        }
        if config.metrics.requireToken && config.controls.adminToken == nil {
            errors.append(.init(key: "metrics.require_token", problem: "is true but no admin token is set (admin_token or GATEHOUSE_ADMIN_TOKEN)"))
        }
        let r = config.recorder
        if r.capacity < 1 { errors.append(.init(key: "recorder.capacity", problem: "must be at least 1")) }
        if r.batchSize < 1 || r.batchSize > 10_000 { errors.append(.init(key: "recorder.batch_size", problem: "must be between 1 and 10000")) }
        if r.flushIntervalMilliseconds < 1 { errors.append(.init(key: "recorder.flush_interval_ms", problem: "must be at least 1")) }

        var seen = Set<String>()
        for (i, p) in config.providers.enumerated() {
            let key = "providers[\(i)]"
            if !seen.insert(p.name).inserted { errors.append(.init(key: "\(key).name", problem: "\"\(p.name)\" is used by another provider")) }
            if p.name.isEmpty || !p.name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }) {
                errors.append(.init(key: "\(key).name", problem: "\"\(p.name)\" must be letters, digits, '-', '_' or '.'"))
            }
            if p.kind != .mock {
                if let url = URL(string: p.baseURL), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil {
                    // fine
                } else {
                    errors.append(.init(key: "\(key).base_url", problem: "\"\(p.baseURL)\" is not an http(s) URL"))
                }
            }
            if let apiKey = p.apiKey {
                if apiKey.isEmpty || apiKey.contains(where: { $0.isWhitespace || !$0.isASCII }) {
                    errors.append(.init(key: "\(key).api_key", problem: "must be non-empty ASCII without spaces"))
                } else if p.kind == .anthropic && !apiKey.hasPrefix("sk-ant-") {
                    errors.append(.init(key: "\(key).api_key", problem: "an Anthropic key starts with \"sk-ant-\""))
                } else if p.kind == .openAI && !apiKey.hasPrefix("sk-") {
                    errors.append(.init(key: "\(key).api_key", problem: "an OpenAI key starts with \"sk-\""))
                }
            }
            if p.kind == .azure && p.apiVersion == nil {
                errors.append(.init(key: "\(key).api_version", problem: "is required for kind azure (e.g. 2024-10-21)"))
            }
            if p.mockLatencyMilliseconds < 0 || p.mockChunkDelayMilliseconds < 0 {
                errors.append(.init(key: "\(key).mock_latency_ms", problem: "must not be negative"))
            }
        }
        var aliasNames = Set<String>()
        for (i, a) in config.aliases.enumerated() {
            if !aliasNames.insert(a.alias).inserted { errors.append(.init(key: "aliases[\(i)].alias", problem: "\"\(a.alias)\" is defined twice")) }
            if a.deployments.isEmpty { errors.append(.init(key: "aliases[\(i)].targets", problem: "must name at least one provider/model")) }
            for (j, d) in a.deployments.enumerated() {
                let at = a.deployments.count == 1 ? "aliases[\(i)].target" : "aliases[\(i)].targets[\(j)]"
                let parts = d.target.split(separator: "/", maxSplits: 1)
                if parts.count != 2 || parts[1].isEmpty {
                    errors.append(.init(key: at, problem: "\"\(d.target)\" must be provider/model"))
                } else if !seen.contains(String(parts[0])) {
                    errors.append(.init(key: at, problem: "no provider named \"\(parts[0])\""))
                }
                if d.weight < 1 { errors.append(.init(key: "\(at).weight", problem: "must be at least 1")) }
            }
        }
        errors += validateControls(config.controls)
        errors += YAMLReader.validateTelemetry(config.telemetry)
        errors += YAMLReader.validateAlerts(config.alerts)
        errors += validateBackups(config)
        for origin in config.corsAllowedOrigins where origin != "*" && !(origin.hasPrefix("http://") || origin.hasPrefix("https://")) {
            errors.append(.init(key: "cors_allowed_origins", problem: "\"\(origin)\" is not an origin such as https://app.example.com (or *)"))
        }
        for (i, entry) in config.prices.enumerated() {
            do { _ = try PriceTable.modelPrice(from: entry) } catch {
                errors.append(.init(key: "prices[\(i)]", problem: "\(error)"))
            }
        }
        return errors
    }
}

extension ConfigurationLoader {
    /// The examples' stand-ins (`replace-with-…` in deploy/, `change-me`): long enough to pass the
    /// length check, so a copy left unedited would otherwise start with a secret everyone knows.
    static func isPlaceholder(_ secret: String) -> Bool {
        let lowered = secret.trimmingCharacters(in: .whitespaces).lowercased()
        return ["replace-with-", "change-me", "changeme", "change_me"].contains { lowered.hasPrefix($0) }
    }

    static func validateControls(_ c: ControlSettings) -> [ConfigError] {
        var errors: [ConfigError] = []
        if let token = c.adminToken, token.count < 16 {
            errors.append(.init(key: "admin_token", problem: "must be at least 16 characters (GATEHOUSE_ADMIN_TOKEN)"))
        } else if let token = c.adminToken, isPlaceholder(token) {
            errors.append(.init(key: "admin_token", problem: "is an example's placeholder; generate one: openssl rand -hex 32 (GATEHOUSE_ADMIN_TOKEN)"))
        }
        var ids = Set<String>()
        for (i, rule) in (c.rateLimits + c.budgets).enumerated() where !ids.insert(rule.id).inserted {
            errors.append(.init(key: i < c.rateLimits.count ? "rate_limits[\(i)].name" : "budgets[\(i - c.rateLimits.count)].name",
                                problem: "two rules share the name \"\(rule.id)\"; give each a distinct name"))
        }
        let r = c.retry
        if r.maxAttempts < 1 || r.maxAttempts > 10 { errors.append(.init(key: "retries.max_attempts", problem: "must be between 1 and 10")) }
        if r.initialBackoffMilliseconds < 0 || r.maxBackoffMilliseconds < r.initialBackoffMilliseconds {
            errors.append(.init(key: "retries.max_backoff_ms", problem: "must be at least initial_backoff_ms, which must not be negative"))
        }
        if r.totalDeadlineSeconds < 1 { errors.append(.init(key: "retries.total_deadline_seconds", problem: "must be at least 1")) }
        if c.breaker.failureThreshold < 1 { errors.append(.init(key: "circuit_breaker.failure_threshold", problem: "must be at least 1")) }
        if c.breaker.openSeconds < 1 { errors.append(.init(key: "circuit_breaker.open_seconds", problem: "must be at least 1")) }
        if c.cache.ttlSeconds < 1 { errors.append(.init(key: "cache.ttl_seconds", problem: "must be at least 1")) }
        if c.cache.maxEntries < 1 { errors.append(.init(key: "cache.max_entries", problem: "must be at least 1")) }
        for route in c.cache.routes where GatewayRoute(rawValue: route) == nil {
            errors.append(.init(key: "cache.routes", problem: "\"\(route)\" is not a gateway route"))
        }
        if c.syncIntervalMilliseconds < 10 || c.syncIntervalMilliseconds > 60_000 {
            errors.append(.init(key: "controls.sync_interval_ms", problem: "must be between 10 and 60000"))
        }
        if !(c.leaseFraction > 0 && c.leaseFraction <= 1) { errors.append(.init(key: "controls.lease_fraction", problem: "must be above 0 and at most 1")) }
        if c.defaultOutputTokenEstimate < 1 { errors.append(.init(key: "controls.default_output_token_estimate", problem: "must be at least 1")) }
        return errors
    }
}

/// A parsed `database_url`.
public enum DatabaseURL: Equatable, Sendable {
    case sqlite(path: String)
    case postgres(url: String)

    public init?(_ text: String) {
        if text.hasPrefix("sqlite://") {
            let path = String(text.dropFirst("sqlite://".count))
            guard !path.isEmpty else { return nil }
            self = .sqlite(path: path)
        } else if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            guard let url = URL(string: text), url.host != nil else { return nil }
            self = .postgres(url: text)
        } else {
            return nil
        }
    }
}

public enum EncryptionKeyParser {
    /// 32 raw bytes from 64 hex characters or standard base64.
    public static func parse(_ text: String) -> [UInt8]? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.count == 64, trimmed.allSatisfy(\.isHexDigit) {
            var bytes: [UInt8] = []
            var index = trimmed.startIndex
            while index < trimmed.endIndex {
                let next = trimmed.index(index, offsetBy: 2)
                guard let byte = UInt8(trimmed[index..<next], radix: 16) else { return nil }
                bytes.append(byte)
                index = next
            }
            return bytes
        }
        if let data = Data(base64Encoded: trimmed), data.count == 32 { return [UInt8](data) }
        return nil
    }
}
