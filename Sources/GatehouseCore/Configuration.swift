import Foundation

/// Everything `gatehouse serve` needs, after defaults, the YAML file, `GATEHOUSE_*` environment
/// variables and command-line flags have been applied, in that order of increasing precedence.
public struct GatehouseConfig: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// PEM certificate chain and its private key. Both set: Gatehouse serves HTTPS itself and
    /// rereads them on SIGHUP; neither: plain HTTP (for a proxy that terminates TLS).
    public var tlsCertFile: String?
    public var tlsKeyFile: String?
    /// Both files set (loading refuses one without the other).
    public var servesHTTPS: Bool { tlsCertFile != nil && tlsKeyFile != nil }
    public var dataDirectory = "./gatehouse-data"
    /// `sqlite:///path/file.sqlite` or `postgres://user:pass@host:port/db`; nil means SQLite in `dataDirectory`.
    public var databaseURL: String?
    public var logFormat: LogFormat = .auto
    public var logLevel: LogLevel = .info
    /// 32 bytes, base64 or hex; encrypts provider keys at rest.
    public var encryptionKey: String?
    /// `serve` applies pending schema migrations before it listens. Off where a separate step
    /// runs `gatehouse migrate` (a Kubernetes Job): then a server on an older schema refuses to start.
    public var migrateOnStart = true
    public var gateway = GatewaySettings()
    public var recorder = RecorderSettings()
    public var controls = ControlSettings()
    public var telemetry = TelemetrySettings()
    public var alerts = AlertSettings()
    public var metrics = MetricsSettings()
    /// Scheduled backups of the SQLite store (`backups:`); nil: none.
    public var backups: BackupSettings?
    /// Browser origins allowed to call Gatehouse (CORS); empty: no CORS headers at all.
    public var corsAllowedOrigins: [String] = []
    public var providers: [ProviderConfig] = []
    public var aliases: [ModelAlias] = []
    public var prices: [PriceTableFile.Entry] = []

    public init() {}

    public enum LogFormat: String, Sendable, CaseIterable {
        /// JSON when standard error is not a terminal, readable text when it is.
        case auto, json, text
    }

    public enum LogLevel: String, Sendable, CaseIterable {
        case trace, debug, info, notice, warning, error, critical
    }

    public struct GatewaySettings: Sendable, Equatable {
        /// Largest request body accepted on the gateway routes.
        public var maxRequestBodyBytes = 10 * 1024 * 1024
        /// Longest a whole upstream call may take, streaming included.
        public var upstreamTimeoutSeconds = 600
        /// Longest a response stream may go without a byte once it has started; then it is cut.
        public var streamIdleTimeoutSeconds = 120
        /// How long the provider's answer is still read after the client hangs up, for its usage;
        /// then the call is charged an estimate and the upstream request is cancelled.
        public var clientDisconnectGraceSeconds = 10
        public var connectTimeoutSeconds = 10
        /// Take the client's address from `X-Forwarded-For` (its first entry) or `X-Real-IP`
        /// instead of the TCP peer (read once per request, `GatehouseHTTP/ClientAddress.swift`;
        /// used by the `ip` rate-limit scope, the console sign-in throttle and the audit log).
        /// Only behind a proxy that sets them: clients can forge them.
        public var trustForwardedFor = false
        /// A client connection that sends nothing for this long (between requests, or in the
        /// middle of a request's head or body) is closed.
        public var clientIdleTimeoutSeconds = 60
        /// Store each call's request and response bodies (masked, capped) for its console page.
        /// Off by default; a key's `capture_bodies` and a call's `Gatehouse-Capture` header override it.
        public var captureBodies = false
        /// The most of each captured body kept, after masking; longer ones are cut and marked.
        public var captureMaxBytes = 64 * 1024
        public init() {}
    }

    /// `/metrics`.
    public struct MetricsSettings: Sendable, Equatable {
        /// Require the admin token (`Authorization: Bearer …`) on `/metrics`. Off by default, as
        /// Prometheus users expect; scrape configs can send it with `authorization: {credentials: …}`.
        public var requireToken = false
        public init() {}
    }

    public struct RecorderSettings: Sendable, Equatable {
        /// Records held in memory at most before the `whenFull` policy applies.
        public var capacity = 50_000
        public var batchSize = 1_000
        public var flushIntervalMilliseconds = 250
        public var whenFull: OverflowPolicy = .drop
        public init() {}
    }

    public enum OverflowPolicy: String, Sendable, CaseIterable {
        /// Drop the new record, count it in `gatehouse_recorder_dropped_records_total` and log once.
        case drop
        /// Wait up to `blockTimeoutMilliseconds` for room, then drop.
        case block
    }

    /// The store to open.
    public var resolvedDatabaseURL: String {
        databaseURL ?? "sqlite://" + (dataDirectory as NSString).appendingPathComponent("gatehouse.sqlite")
    }
}

/// One upstream an AI call can go to.
public struct ProviderConfig: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case openAI = "openai"
        case anthropic
        /// Any server speaking OpenAI's API: vLLM, Ollama, OpenRouter, LM Studio, Together…
        case openAICompatible = "openai-compatible"
        /// Azure OpenAI: `{base_url}/openai/deployments/{deployment}/…?api-version=…`, `api-key` header.
        case azure
        /// Built-in offline provider with deterministic answers.
        case mock
    }

    public var name: String
    public var kind: Kind
    /// Root of the API including its version segment, e.g. `https://api.openai.com/v1`.
    public var baseURL: String
    /// The provider key. When absent the caller's own credential is passed through.
    public var apiKey: String?
    public var apiVersion: String?
    /// Extra headers sent upstream on every call (e.g. OpenRouter's `HTTP-Referer`).
    public var headers: [String: String]
    /// Which provider's prices apply (`openai`, `anthropic`, …); defaults by kind.
    public var priceProvider: String?
    /// Mock only: added latency before the first byte, and between streamed events.
    public var mockLatencyMilliseconds: Int
    public var mockChunkDelayMilliseconds: Int

    public init(name: String, kind: Kind, baseURL: String, apiKey: String? = nil, apiVersion: String? = nil,
                headers: [String: String] = [:], priceProvider: String? = nil,
                mockLatencyMilliseconds: Int = 0, mockChunkDelayMilliseconds: Int = 0) {
        self.name = name
        self.kind = kind
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.apiVersion = apiVersion
        self.headers = headers
        self.priceProvider = priceProvider
        self.mockLatencyMilliseconds = mockLatencyMilliseconds
        self.mockChunkDelayMilliseconds = mockChunkDelayMilliseconds
    }

    public static func defaultBaseURL(for kind: Kind) -> String? {
        switch kind {
        case .openAI: "https://api.openai.com/v1"
        case .anthropic: "https://api.anthropic.com/v1"
        case .mock: "mock://local"
        case .openAICompatible, .azure: nil
        }
    }

    public var effectivePriceProvider: String {
        if let priceProvider { return priceProvider }
        switch kind {
        case .anthropic: return "anthropic"
        case .mock: return "mock"
        case .openAI, .azure: return "openai"
        case .openAICompatible: return name
        }
    }

    /// The built-in `mock` provider, always present unless the configuration names its own `mock`.
    public static let builtInMock = ProviderConfig(name: "mock", kind: .mock, baseURL: "mock://local")
}

/// A friendly model name that routes to one or more deployments (`provider/model`): the first
/// tier is load-balanced by weight, later tiers are fallbacks.
public struct ModelAlias: Sendable, Equatable {
    public var alias: String
    public var deployments: [Deployment]

    public struct Deployment: Sendable, Equatable {
        /// `provider/model`.
        public var target: String
        public var weight: Int
        /// Lower tiers are tried first; deployments in one tier share load by weight.
        public var priority: Int
        public init(target: String, weight: Int = 1, priority: Int = 0) {
            self.target = target
            self.weight = weight
            self.priority = priority
        }
    }

    public init(alias: String, target: String) {
        self.alias = alias
        self.deployments = [Deployment(target: target)]
    }

    public init(alias: String, deployments: [Deployment]) {
        self.alias = alias
        self.deployments = deployments
    }

    /// The first deployment's target.
    public var target: String { deployments.first?.target ?? "" }
}

extension PriceTableFile.Entry: Equatable {
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.provider == rhs.provider && lhs.model == rhs.model && lhs.input == rhs.input && lhs.output == rhs.output
            && lhs.cached_input == rhs.cached_input && lhs.cache_write == rhs.cache_write && lhs.aliases == rhs.aliases
    }
}
