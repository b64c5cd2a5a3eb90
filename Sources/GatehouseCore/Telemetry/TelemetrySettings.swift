/// The `telemetry:` section: who may send logs and error reports, what counts as slow, how long
/// data is kept, and the limits on what one request may carry.
public struct TelemetrySettings: Sendable, Equatable {
    /// With none configured, ingest runs open (any project id, no key) for local use, and says so at start-up.
    public var projects: [TelemetryProject] = []
    public var slow = SlowThresholds()
    public var retention = Retention()
    public var limits = IngestLimits()
    /// Where spans are also sent over OTLP/HTTP; nil: nowhere.
    public var otlpExport: OTLPExportSettings?
    public init() {}

    public func project(forKey key: String) -> TelemetryProject? { projects.first { ConstantTime.equal($0.key, key) } }
    public func project(id: String) -> TelemetryProject? { projects.first { $0.id == id || $0.name == id } }
}

/// A project: where its logs and errors are filed, and the key it sends them with (the public
/// key of its Sentry DSN, `http://KEY@host:port/ID`, and the bearer key of `/api/v1/logs`).
public struct TelemetryProject: Sendable, Equatable {
    public var name: String
    /// The DSN's project id (digits, as Sentry's are).
    public var id: String
    public var key: String
    /// Error events and log lines accepted per minute before 429 (0: no quota).
    public var eventsPerMinute: Int
    public init(name: String, id: String, key: String, eventsPerMinute: Int = 0) {
        self.name = name
        self.id = id
        self.key = key
        self.eventsPerMinute = eventsPerMinute
    }
}

/// By default an operation is slow over 100 ms, 10 DB calls or 10,000 documents scanned.
public struct SlowThresholds: Sendable, Equatable {
    public var durationMilliseconds: Double = 100
    public var dbCalls: Double = 10
    public var docsScanned: Double = 10_000
    public init() {}
}

/// How long each kind of data is kept: by age, by row count, or both (0 turns a bound off).
public struct Retention: Sendable, Equatable {
    public var days: [TelemetryKind: Int] = [.requests: 90, .logs: 30, .errors: 90, .bodies: 14, .spans: 30]
    public var maxRows: [TelemetryKind: Int] = [.requests: 0, .logs: 10_000_000, .errors: 1_000_000, .bodies: 200_000, .spans: 10_000_000]
    /// How often the pruner runs.
    public var intervalSeconds = 300
    public init() {}
}

public struct IngestLimits: Sendable, Equatable {
    /// Largest request body, after decompression.
    public var maxBodyBytes = 10 * 1024 * 1024
    /// Largest single log line (one JSON object).
    public var maxLineBytes = 256 * 1024
    /// Most lines one request may carry.
    public var maxLinesPerRequest = 10_000
    /// Attributes kept per line (top-level keys beyond the well-known fields); more is an error for that line.
    public var maxAttributes = 200
    /// Longest message kept; longer ones are cut and marked.
    public var maxMessageBytes = 32 * 1024
    /// Largest error event, after decompression.
    public var maxEventBytes = 1024 * 1024
    public init() {}
}
