/// The probes API's answers: `/api/v1/probes`, `/api/v1/probes/{name}/results` and the heartbeat
/// pings `/api/v1/heartbeats/{name}` (described in `OpenAPI/probes.yaml`).

/// One HTTP probe or heartbeat and where it stands.
public struct ProbeView: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable, Equatable, CaseIterable {
        case up, down
        /// No check (or ping) has decided yet.
        case unknown
    }

    public var name: String
    /// `http` for a probe Gatehouse calls, `heartbeat` for a job that calls in.
    public var kind: String
    public var status: Status
    /// When the current status began; nil until a probe changes state (always nil for heartbeats).
    @Nullable public var since: String?
    /// The last check, or a heartbeat's last ping.
    @Nullable public var lastCheck: String?
    @Nullable public var lastLatencyMs: Double?
    @Nullable public var lastError: String?
    /// HTTP probes only: the share of the last 24 hours' checks that passed, in percent with two
    /// decimals; nil when there was no check. Written as `null` then, and left out for heartbeats.
    public var uptime24h: Double?
    /// HTTP probes only: how many checks the last 24 hours hold. Left out for heartbeats.
    public var checks24h: Int?

    public init(name: String, kind: String, status: Status, since: String?, lastCheck: String?, lastLatencyMs: Double?, lastError: String?,
                uptime24h: Double? = nil, checks24h: Int? = nil) {
        self.name = name
        self.kind = kind
        self.status = status
        self.since = since
        self.lastCheck = lastCheck
        self.lastLatencyMs = lastLatencyMs
        self.lastError = lastError
        self.uptime24h = uptime24h
        self.checks24h = checks24h
    }

    enum CodingKeys: String, CodingKey {
        case name, kind, status, since
        case lastCheck = "last_check"
        case lastLatencyMs = "last_latency_ms"
        case lastError = "last_error"
        case uptime24h = "uptime_24h"
        case checks24h = "checks_24h"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        kind = try container.decode(String.self, forKey: .kind)
        status = try container.decode(Status.self, forKey: .status)
        _since = try container.decode(Nullable<String>.self, forKey: .since)
        _lastCheck = try container.decode(Nullable<String>.self, forKey: .lastCheck)
        _lastLatencyMs = try container.decode(Nullable<Double>.self, forKey: .lastLatencyMs)
        _lastError = try container.decode(Nullable<String>.self, forKey: .lastError)
        uptime24h = try container.decodeIfPresent(Double.self, forKey: .uptime24h)
        checks24h = try container.decodeIfPresent(Int.self, forKey: .checks24h)
    }

    // The 24-hour figures come as a pair: both present for an HTTP probe (uptime `null` when there
    // was no check), both absent for a heartbeat.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(kind, forKey: .kind)
        try container.encode(status, forKey: .status)
        try container.encode(_since, forKey: .since)
        try container.encode(_lastCheck, forKey: .lastCheck)
        try container.encode(_lastLatencyMs, forKey: .lastLatencyMs)
        try container.encode(_lastError, forKey: .lastError)
        if let checks24h {
            try container.encode(checks24h, forKey: .checks24h)
            try container.encode(Nullable(wrappedValue: uptime24h), forKey: .uptime24h)
        }
    }
}

/// `GET /api/v1/probes`: the HTTP probes in configuration order, then the heartbeats.
public struct ProbeList: Codable, Sendable, Equatable {
    public var data: [ProbeView]

    public init(data: [ProbeView]) { self.data = data }

    enum CodingKeys: String, CodingKey {
        case data
    }
}

/// One check of an HTTP probe.
public struct ProbeResultView: Codable, Sendable, Equatable {
    public var timestamp: String
    public var up: Bool
    /// The HTTP status it answered; nil when no answer came (refused, timed out).
    @Nullable public var status: Int?
    public var latencyMs: Double
    /// Why the check failed; nil when it passed.
    @Nullable public var error: String?

    public init(timestamp: String, up: Bool, status: Int?, latencyMs: Double, error: String?) {
        self.timestamp = timestamp
        self.up = up
        self.status = status
        self.latencyMs = latencyMs
        self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case timestamp, up, status
        case latencyMs = "latency_ms"
        case error
    }
}

/// `GET /api/v1/probes/{name}/results`: the probe's checks, newest first.
public struct ProbeResultsAnswer: Codable, Sendable, Equatable {
    public var probe: String
    public var data: [ProbeResultView]

    public init(probe: String, data: [ProbeResultView]) {
        self.probe = probe
        self.data = data
    }

    enum CodingKeys: String, CodingKey {
        case probe, data
    }
}

/// `POST /api/v1/heartbeats/{name}` and `GET /api/v1/heartbeats/{name}/ping`: the ping was recorded.
public struct HeartbeatReceipt: Codable, Sendable, Equatable {
    public var name: String
    public var received: String

    public init(name: String, received: String) {
        self.name = name
        self.received = received
    }

    enum CodingKeys: String, CodingKey {
        case name, received
    }
}
