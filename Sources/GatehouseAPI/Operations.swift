/// Answers of the operations routes: `GET /health`, `GET /api/v1/health`, `GET /ready` and
/// `GET /api/v1/ai/health` (described in `OpenAPI/operations.yaml`).

/// Gatehouse's version, written once: `/health` reports it, `gatehouse --version` prints it, and
/// the OpenAPI document's `info.version` must equal it (a test checks).
public enum GatehouseVersion {
    public static let current = "0.1.0"
}

/// `GET /health` and `GET /api/v1/health`: the process is up.
public struct HealthReport: Codable, Sendable, Equatable {
    /// Always `ok`: a process that cannot answer does not answer at all.
    public var status: String
    public var version: String
    public var uptimeSeconds: Int

    public init(status: String, version: String, uptimeSeconds: Int) {
        self.status = status
        self.version = version
        self.uptimeSeconds = uptimeSeconds
    }

    enum CodingKeys: String, CodingKey {
        case status, version
        case uptimeSeconds = "uptime_seconds"
    }
}

/// `GET /ready`: whether the store answers. 200 `{"status": "ready", "store": …}`, or 503
/// `{"status": "unavailable", "store": …, "error": …}`.
public struct ReadinessReport: Codable, Sendable, Equatable {
    /// `ready` or `unavailable`.
    public var status: String
    /// The store's kind: `sqlite` or `postgres`.
    public var store: String
    /// Why the store did not answer (secrets scrubbed); only on a 503.
    public var error: String?

    public init(status: String, store: String, error: String? = nil) {
        self.status = status
        self.store = store
        self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case status, store, error
    }
}

/// `GET /api/v1/ai/health`: each provider's recent calls and the circuit breakers that have
/// counted a failure since their last success. Answered with 503 when every provider called
/// lately is down.
public struct ProviderHealthReport: Codable, Sendable, Equatable {
    /// `ok`, `degraded` or `down`, over the providers called lately.
    public var status: String
    /// How many of each provider's latest calls are counted.
    public var windowCalls: Int
    public var providers: [ProviderHealthView]
    public var circuitBreakers: [CircuitBreakerView]

    public init(status: String, windowCalls: Int, providers: [ProviderHealthView], circuitBreakers: [CircuitBreakerView]) {
        self.status = status
        self.windowCalls = windowCalls
        self.providers = providers
        self.circuitBreakers = circuitBreakers
    }

    enum CodingKeys: String, CodingKey {
        case status
        case windowCalls = "window_calls"
        case providers
        case circuitBreakers = "circuit_breakers"
    }
}

/// One configured provider's recent outcomes.
public struct ProviderHealthView: Codable, Sendable, Equatable {
    public var name: String
    /// The provider's kind (`openai`, `anthropic`, …).
    public var kind: String
    /// `ok` (≥ 95% success), `degraded` (≥ 50%), `down`, or `unknown` (no calls yet).
    public var status: String
    public var calls: Int
    public var failures: Int
    /// 0…1; nil before the first call.
    @Nullable public var successRate: Double?
    @Nullable public var p50LatencyMs: Double?
    @Nullable public var p95LatencyMs: Double?
    @Nullable public var lastError: String?
    /// RFC 3339; nil before the first call.
    @Nullable public var lastCallAt: String?

    public init(name: String, kind: String, status: String, calls: Int, failures: Int, successRate: Double?, p50LatencyMs: Double?,
                p95LatencyMs: Double?, lastError: String?, lastCallAt: String?) {
        self.name = name
        self.kind = kind
        self.status = status
        self.calls = calls
        self.failures = failures
        self.successRate = successRate
        self.p50LatencyMs = p50LatencyMs
        self.p95LatencyMs = p95LatencyMs
        self.lastError = lastError
        self.lastCallAt = lastCallAt
    }

    enum CodingKeys: String, CodingKey {
        case name, kind, status, calls, failures
        case successRate = "success_rate"
        case p50LatencyMs = "p50_latency_ms"
        case p95LatencyMs = "p95_latency_ms"
        case lastError = "last_error"
        case lastCallAt = "last_call_at"
    }
}

/// A circuit breaker that has counted a failure since its last success: open, half-open, or still
/// closed below its failure threshold.
public struct CircuitBreakerView: Codable, Sendable, Equatable {
    /// The deployment it guards (`provider/model` of one route target).
    public var deployment: String
    /// `closed`, `open` or `half_open`.
    public var state: String
    public var consecutiveFailures: Int

    public init(deployment: String, state: String, consecutiveFailures: Int) {
        self.deployment = deployment
        self.state = state
        self.consecutiveFailures = consecutiveFailures
    }

    enum CodingKeys: String, CodingKey {
        case deployment, state
        case consecutiveFailures = "consecutive_failures"
    }
}
