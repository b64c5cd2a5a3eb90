/// How severe a log line is. Incoming spellings vary by library (`warning`, `WARN`, `err`,
/// `critical`, OpenTelemetry's severity numbers); all are folded into these six.
public enum LogLevel: String, Sendable, CaseIterable, Comparable {
    case trace, debug, info, warn, error, fatal

    /// 1…6, for `level:>=warn` comparisons in SQL.
    public var severity: Int {
        switch self {
        case .trace: 1
        case .debug: 2
        case .info: 3
        case .warn: 4
        case .error: 5
        case .fatal: 6
        }
    }

    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.severity < b.severity }

    /// The level stored as `severity`; nil for a number no level has.
    public init?(severity: Int) {
        guard let level = LogLevel.allCases.first(where: { $0.severity == severity }) else { return nil }
        self = level
    }

    /// Reads the usual spellings of a level; nil when `text` is none of them.
    public init?(loose text: String) {
        switch text.lowercased() {
        case "trace", "verbose", "finest": self = .trace
        case "debug", "fine", "finer": self = .debug
        case "info", "information", "informational", "notice", "log": self = .info
        case "warn", "warning": self = .warn
        case "error", "err", "exception", "severe": self = .error
        case "fatal", "critical", "crit", "panic", "emergency", "alert", "emerg": self = .fatal
        default: return nil
        }
    }

    /// OpenTelemetry's SeverityNumber (1–24, four per level).
    public init(openTelemetrySeverity n: Int) {
        switch n {
        case ...4: self = .trace
        case 5...8: self = .debug
        case 9...12: self = .info
        case 13...16: self = .warn
        case 17...20: self = .error
        default: self = .fatal
        }
    }
}

/// One application log line as stored: the well-known fields as columns (indexed where queries
/// need them) and everything else as a JSON object of attributes.
public struct LogRecord: Sendable, Equatable {
    /// Insertion order, assigned by the store; nil before the line is stored.
    public var sequence: Int64?
    public var timestampMicros: Int64
    public var project: String
    public var level: LogLevel
    public var message: String
    public var service: String?
    public var environment: String?
    public var correlationID: String?
    public var function: String?
    public var durationMicros: Int64?
    /// A JSON object (text); `{}` when there are none. Nested objects are kept as they came.
    public var attributesJSON: String
    /// Over one of the slow-operation thresholds (duration, DB calls, documents scanned).
    public var slow: Bool

    public init(sequence: Int64? = nil, timestampMicros: Int64, project: String, level: LogLevel, message: String,
                service: String? = nil, environment: String? = nil, correlationID: String? = nil, function: String? = nil,
                durationMicros: Int64? = nil, attributesJSON: String = "{}", slow: Bool = false) {
        self.sequence = sequence
        self.timestampMicros = timestampMicros
        self.project = project
        self.level = level
        self.message = message
        self.service = service
        self.environment = environment
        self.correlationID = correlationID
        self.function = function
        self.durationMicros = durationMicros
        self.attributesJSON = attributesJSON
        self.slow = slow
    }
}
