/// The alerting API's answers and request bodies: `/api/v1/alerts`, `/api/v1/alerts/rules`,
/// `/api/v1/alerts/deliveries` and `/api/v1/silences` (described in `OpenAPI/alerts.yaml`).
/// Times are RFC 3339 strings, as the server writes them.

/// How urgent an alert is: critical (page now), high (within the hour), medium (today), low (this week).
public enum AlertSeverityName: String, Codable, Sendable, Equatable, CaseIterable {
    case critical, high, medium, low
}

/// Where one alert (a rule and one set of label values) stands.
public enum AlertStateName: String, Codable, Sendable, Equatable, CaseIterable {
    /// The condition holds, but not yet for the rule's `for` duration.
    case pending
    case firing
    /// It was firing and the condition no longer holds.
    case resolved
    /// It was pending and the condition stopped holding before `for` passed.
    case inactive
}

/// One alert as the rules list shows it under its rule.
public struct AlertView: Codable, Sendable, Equatable {
    public var rule: String
    /// Stable id of the rule and its label values.
    public var fingerprint: String
    public var labels: [String: String]
    public var annotations: [String: String]
    public var severity: AlertSeverityName
    public var state: AlertStateName
    /// The signal's last value (0 when it was not a finite number).
    public var value: Double
    /// The value against the threshold as people read them (`1.3% > 1%`).
    public var summary: String
    public var expr: String
    public var activeSince: String
    /// nil while the alert is pending.
    @Nullable public var firedAt: String?

    public init(rule: String, fingerprint: String, labels: [String: String], annotations: [String: String], severity: AlertSeverityName,
                state: AlertStateName, value: Double, summary: String, expr: String, activeSince: String, firedAt: String?) {
        self.rule = rule
        self.fingerprint = fingerprint
        self.labels = labels
        self.annotations = annotations
        self.severity = severity
        self.state = state
        self.value = value
        self.summary = summary
        self.expr = expr
        self.activeSince = activeSince
        self.firedAt = firedAt
    }

    enum CodingKeys: String, CodingKey {
        case rule, fingerprint, labels, annotations, severity, state, value, summary, expr
        case activeSince = "active_since"
        case firedAt = "fired_at"
    }
}

/// A pending or firing alert in `GET /api/v1/alerts`: the alert's fields, flat, plus the silence
/// that mutes it.
public struct ActiveAlertView: Codable, Sendable, Equatable {
    public var alert: AlertView
    /// The id of the active silence that mutes its notifications, nil when none does.
    public var silencedBy: String?

    public init(alert: AlertView, silencedBy: String?) {
        self.alert = alert
        self.silencedBy = silencedBy
    }

    enum CodingKeys: String, CodingKey {
        case silencedBy = "silenced_by"
    }

    // The answer is one flat object, so the alert's keys and `silenced_by` share a container.
    public init(from decoder: any Decoder) throws {
        alert = try AlertView(from: decoder)
        silencedBy = try decoder.container(keyedBy: CodingKeys.self).decode(Nullable<String>.self, forKey: .silencedBy).wrappedValue
    }

    public func encode(to encoder: any Encoder) throws {
        try alert.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Nullable(wrappedValue: silencedBy), forKey: .silencedBy)
    }
}

/// One state change kept in the alert history.
public struct AlertHistoryEntry: Codable, Sendable, Equatable {
    public var timestamp: String
    public var rule: String
    public var fingerprint: String
    public var labels: [String: String]
    public var state: AlertStateName
    public var value: Double
    public var severity: AlertSeverityName
    public var summary: String

    public init(timestamp: String, rule: String, fingerprint: String, labels: [String: String], state: AlertStateName, value: Double,
                severity: AlertSeverityName, summary: String) {
        self.timestamp = timestamp
        self.rule = rule
        self.fingerprint = fingerprint
        self.labels = labels
        self.state = state
        self.value = value
        self.severity = severity
        self.summary = summary
    }

    enum CodingKeys: String, CodingKey {
        case timestamp, rule, fingerprint, labels, state, value, severity, summary
    }
}

/// `GET /api/v1/alerts`: alerts pending or firing now, and the latest history (newest first).
public struct AlertsAnswer: Codable, Sendable, Equatable {
    public var active: [ActiveAlertView]
    public var history: [AlertHistoryEntry]

    public init(active: [ActiveAlertView], history: [AlertHistoryEntry]) {
        self.active = active
        self.history = history
    }

    enum CodingKeys: String, CodingKey {
        case active, history
    }
}

/// One configured rule with where its alerts stand.
public struct AlertRuleView: Codable, Sendable, Equatable {
    /// `firing` when any of its alerts fires, `pending` when some are pending, else `inactive`.
    public enum State: String, Codable, Sendable, Equatable, CaseIterable {
        case inactive, pending, firing
    }

    public var name: String
    public var expr: String
    /// The signal it measures (`error_rate`, `count`, `probe_down`, …).
    public var signal: String
    /// The comparison and threshold as written in rules (`> 1%`).
    public var threshold: String
    /// The `over` window (`5m`); nil for signals that take none.
    @Nullable public var window: String?
    /// How long the condition must hold before the alert fires (`2m`, `0d` for at once).
    public var forDuration: String
    public var severity: AlertSeverityName
    public var labels: [String: String]
    public var annotations: [String: String]
    public var state: State
    public var alerts: [AlertView]
    /// Why the rule's last evaluation failed; nil when it succeeded.
    @Nullable public var lastError: String?

    public init(name: String, expr: String, signal: String, threshold: String, window: String?, forDuration: String, severity: AlertSeverityName,
                labels: [String: String], annotations: [String: String], state: State, alerts: [AlertView], lastError: String?) {
        self.name = name
        self.expr = expr
        self.signal = signal
        self.threshold = threshold
        self.window = window
        self.forDuration = forDuration
        self.severity = severity
        self.labels = labels
        self.annotations = annotations
        self.state = state
        self.alerts = alerts
        self.lastError = lastError
    }

    enum CodingKeys: String, CodingKey {
        case name, expr, signal, threshold, window
        case forDuration = "for"
        case severity, labels, annotations, state, alerts
        case lastError = "last_error"
    }
}

/// `GET /api/v1/alerts/rules`.
public struct AlertRulesAnswer: Codable, Sendable, Equatable {
    public var data: [AlertRuleView]
    public var evaluationIntervalSeconds: Int

    public init(data: [AlertRuleView], evaluationIntervalSeconds: Int) {
        self.data = data
        self.evaluationIntervalSeconds = evaluationIntervalSeconds
    }

    enum CodingKeys: String, CodingKey {
        case data
        case evaluationIntervalSeconds = "evaluation_interval_seconds"
    }
}

/// One attempt, or the final outcome, of sending a notification to a receiver.
public struct AlertDelivery: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable, Equatable, CaseIterable {
        case delivered, retrying, failed
    }

    public var timestamp: String
    public var receiver: String
    public var groupKey: String
    /// The notification's status: `firing` or `resolved`.
    public var status: String
    /// 1 for the first try.
    public var attempt: Int
    public var outcome: Outcome
    public var detail: String

    public init(timestamp: String, receiver: String, groupKey: String, status: String, attempt: Int, outcome: Outcome, detail: String) {
        self.timestamp = timestamp
        self.receiver = receiver
        self.groupKey = groupKey
        self.status = status
        self.attempt = attempt
        self.outcome = outcome
        self.detail = detail
    }

    enum CodingKeys: String, CodingKey {
        case timestamp, receiver
        case groupKey = "group_key"
        case status, attempt, outcome, detail
    }
}

/// `GET /api/v1/alerts/deliveries`, newest first.
public struct AlertDeliveriesAnswer: Codable, Sendable, Equatable {
    public var data: [AlertDelivery]

    public init(data: [AlertDelivery]) { self.data = data }

    enum CodingKeys: String, CodingKey {
        case data
    }
}

/// A silence: notifications for alerts whose labels match every matcher are muted until `ends_at`.
public struct SilenceView: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable, Equatable, CaseIterable {
        /// Not started yet.
        case pending
        case active
        /// Ended, by its time or `DELETE`.
        case expired
    }

    public var id: String
    /// `label=value` or `label!=value`.
    public var matchers: [String]
    public var startsAt: String
    public var endsAt: String
    public var createdBy: String
    public var comment: String
    public var state: State

    public init(id: String, matchers: [String], startsAt: String, endsAt: String, createdBy: String, comment: String, state: State) {
        self.id = id
        self.matchers = matchers
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.createdBy = createdBy
        self.comment = comment
        self.state = state
    }

    enum CodingKeys: String, CodingKey {
        case id, matchers
        case startsAt = "starts_at"
        case endsAt = "ends_at"
        case createdBy = "created_by"
        case comment, state
    }
}

/// `GET /api/v1/silences`.
public struct SilenceList: Codable, Sendable, Equatable {
    public var data: [SilenceView]

    public init(data: [SilenceView]) { self.data = data }

    enum CodingKeys: String, CodingKey {
        case data
    }
}

/// `POST /api/v1/silences`. Every field but `matchers` may be left out; an end is needed, as
/// `ends_at` or as `duration` after the start.
public struct SilenceRequest: Codable, Sendable, Equatable {
    /// 1 to 20 of `label=value` or `label!=value`.
    public var matchers: [String]?
    /// RFC 3339, a date, `now`, a relative time or Unix seconds; now when left out.
    public var startsAt: String?
    /// When it ends, in the same forms as `starts_at`; wins over `duration`.
    public var endsAt: String?
    /// How long after the start it ends: `30m`, `2h`, `1d`.
    public var duration: String?
    /// Why (up to 1000 characters are kept).
    public var comment: String?
    /// Who (up to 200 characters are kept); `api` when left out.
    public var createdBy: String?

    public init(matchers: [String]?, startsAt: String? = nil, endsAt: String? = nil, duration: String? = nil, comment: String? = nil,
                createdBy: String? = nil) {
        self.matchers = matchers
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.duration = duration
        self.comment = comment
        self.createdBy = createdBy
    }

    enum CodingKeys: String, CodingKey {
        case matchers
        case startsAt = "starts_at"
        case endsAt = "ends_at"
        case duration, comment
        case createdBy = "created_by"
    }
}

/// `DELETE /api/v1/silences/{id}`: the silence has ended.
public struct SilenceExpiry: Codable, Sendable, Equatable {
    public var id: String
    /// Always `expired`.
    public var state: SilenceView.State

    public init(id: String, state: SilenceView.State = .expired) {
        self.id = id
        self.state = state
    }

    enum CodingKeys: String, CodingKey {
        case id, state
    }
}
