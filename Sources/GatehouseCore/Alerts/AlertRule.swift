/// How urgent an alert is: critical (page now), high (within the hour), medium (today), low (this week).
public enum AlertSeverity: String, Sendable, CaseIterable, Comparable {
    case critical, high, medium, low

    var rank: Int {
        switch self {
        case .critical: 4
        case .high: 3
        case .medium: 2
        case .low: 1
        }
    }

    public static func < (a: AlertSeverity, b: AlertSeverity) -> Bool { a.rank < b.rank }
}

/// What a rule measures. Ratios are 0…1 (`1%` is 0.01), latencies milliseconds, spend dollars.
public enum AlertSignal: String, Sendable, CaseIterable {
    /// Failed AI calls / all AI calls in the window (argument: a filter over AI requests).
    case errorRate = "error_rate"
    /// AI calls per second over the window.
    case requestRate = "request_rate"
    /// AI calls in the window.
    case requests
    case latencyP50 = "latency_p50", latencyP95 = "latency_p95", latencyP99 = "latency_p99"
    /// Input + output tokens in the window.
    case tokens
    /// Dollars spent in the window.
    case spend
    /// The most used budget's share of its limit (0…1); `by budget` for one alert per budget.
    case budgetUse = "budget_use"
    /// Issues first seen in the window.
    case newIssues = "new_issues"
    /// Issues marked regressed whose last event is in the window.
    case regressedIssues = "regressed_issues"
    /// Error events in the window (argument: a filter over issues).
    case errors
    /// Log lines matching the argument (a query) in the window.
    case count
    /// Log lines flagged slow in the window (argument: an extra filter).
    case slowOperations = "slow_operations"
    /// 1 while a probe or heartbeat is down, else 0 (argument: its name; none: each, by probe).
    case probeDown = "probe_down"
    /// The fullest kind's rows against its retention row limit (0…1); `by kind` for each.
    case storageUse = "storage_use"
    /// A percentile of transaction durations in the window (argument: a query over spans, such as
    /// `name:"GET /api/tasks"`; `by transaction` for one alert per transaction name).
    case transactionP50 = "transaction_p50", transactionP95 = "transaction_p95", transactionP99 = "transaction_p99"
    /// How much slower the transactions' p95 is than over the same window a day (or, with
    /// `against 1w`, a week) earlier, as a share: 0.5 is 50% slower. No value without a baseline.
    case transactionRegression = "transaction_regression"

    /// Signals over a time window need `over <duration>`.
    public var needsWindow: Bool { ![.budgetUse, .probeDown, .storageUse].contains(self) }
    /// What `by …` may name.
    public var groupings: [String] {
        switch self {
        case .errorRate, .requestRate, .requests, .latencyP50, .latencyP95, .latencyP99, .tokens, .spend:
            ["model", "provider", "route", "key", "user", "status", "property.<name>"]
        case .budgetUse: ["budget"]
        case .probeDown: ["probe"]
        case .storageUse: ["kind"]
        case .transactionP50, .transactionP95, .transactionP99, .transactionRegression: ["transaction"]
        default: []
        }
    }
    /// The unit a threshold is written in, for messages.
    public var unit: AlertUnit {
        switch self {
        case .errorRate, .budgetUse, .storageUse, .transactionRegression: .ratio
        case .latencyP50, .latencyP95, .latencyP99, .transactionP50, .transactionP95, .transactionP99: .milliseconds
        case .spend: .dollars
        case .requestRate: .perSecond
        default: .count
        }
    }
}

public enum AlertUnit: Sendable {
    case ratio, milliseconds, dollars, perSecond, count

    /// A value as people read it: `1.3%`, `512 ms`, `$4.20`, `3.5/s`, `12`.
    public func format(_ v: Double) -> String {
        func trimmed(_ x: Double, _ digits: Int) -> String {
            var s = String(format: "%.\(digits)f", x)
            while s.contains("."), s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
            return s
        }
        switch self {
        case .ratio: return trimmed(v * 100, 2) + "%"
        case .milliseconds: return trimmed(v, 1) + " ms"
        case .dollars: return "$" + String(format: "%.2f", v)
        case .perSecond: return trimmed(v, 2) + "/s"
        case .count: return trimmed(v, 2)
        }
    }
}

/// `error_rate over 5m > 1%`, `count(level:error service:api) over 5m > 10`,
/// `latency_p95(route:/v1/chat/completions) over 10m by model > 500ms`, `budget_use > 80%`.
public struct AlertExpression: Sendable, Equatable {
    public var signal: AlertSignal
    /// The text in parentheses: a query-language filter, or a probe name for `probe_down`.
    public var argument: String?
    public var windowMicros: Int64?
    /// `transaction_regression … against 1w`: how far back the baseline window lies (default a day).
    public var baselineOffsetMicros: Int64?
    public var groupBy: [String]
    public var comparison: Comparison
    /// In the signal's unit (ratios 0…1, milliseconds, dollars).
    public var threshold: Double

    public init(signal: AlertSignal, argument: String? = nil, windowMicros: Int64? = nil, baselineOffsetMicros: Int64? = nil,
                groupBy: [String] = [], comparison: Comparison, threshold: Double) {
        self.signal = signal
        self.argument = argument
        self.windowMicros = windowMicros
        self.baselineOffsetMicros = baselineOffsetMicros
        self.groupBy = groupBy
        self.comparison = comparison
        self.threshold = threshold
    }

    public func holds(_ value: Double) -> Bool {
        switch comparison {
        case .greater: value > threshold
        case .greaterOrEqual: value >= threshold
        case .less: value < threshold
        case .lessOrEqual: value <= threshold
        }
    }

    public var thresholdText: String { "\(comparison.rawValue) \(signal.unit.format(threshold))" }
}

/// One rule from the configuration.
public struct AlertRule: Sendable, Equatable {
    public var name: String
    /// The expression as written, shown in notifications as "the query behind it".
    public var expressionText: String
    public var expression: AlertExpression
    /// How long the condition must hold before the alert fires (0: at once).
    public var forMicros: Int64
    public var severity: AlertSeverity
    public var labels: [String: String]
    /// `summary`, `description`, `runbook_url`…: carried into notifications.
    public var annotations: [String: String]

    public init(name: String, expressionText: String, expression: AlertExpression, forMicros: Int64 = 0, severity: AlertSeverity,
                labels: [String: String] = [:], annotations: [String: String] = [:]) {
        self.name = name
        self.expressionText = expressionText
        self.expression = expression
        self.forMicros = forMicros
        self.severity = severity
        self.labels = labels
        self.annotations = annotations
    }
}
