/// The `alerts:` section: rules, where notifications go, and how they are grouped and repeated.
public struct AlertSettings: Sendable, Equatable {
    public var rules: [AlertRule] = []
    public var receivers: [AlertReceiver] = []
    /// Checked in order; the first match (and every later one after a match with `continue`) is used.
    public var routes: [AlertRoute] = []
    /// Where alerts no route matched go; nil: they are recorded but not sent.
    public var defaultReceiver: String?
    public var evaluationIntervalSeconds = 15
    /// Alerts sharing these labels' values go out in one notification.
    public var groupBy: [String] = ["alertname"]
    /// Wait this long after a group's first alert, so alerts firing together go out together.
    public var groupWaitSeconds = 30
    /// Wait at least this long before telling a group's changes (new or resolved alerts).
    public var groupIntervalSeconds = 300
    /// Tell a group that is still firing again after this long.
    public var repeatIntervalSeconds = 4 * 3600
    public var sendResolved = true
    /// Gatehouse's address as people reach it, for links in notifications.
    public var externalURL = "http://127.0.0.1:8080"
    /// Attempts per notification before it is given up (and recorded as failed).
    public var deliveryAttempts = 8
    public var probes: [ProbeConfig] = []
    public var heartbeats: [HeartbeatConfig] = []
    public init() {}

    /// The probes and heartbeats marked `public: true`: the only ones `/status` shows.
    public var publicMonitorNames: Set<String> {
        Set(probes.filter(\.isPublic).map(\.name) + heartbeats.filter(\.isPublic).map(\.name))
    }
}

public struct AlertReceiver: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A Slack incoming webhook.
        case slack(webhookURL: String)
        /// PagerDuty Events API v2; `url` is PagerDuty's unless changed.
        case pagerDuty(routingKey: String, url: String)
        /// Any HTTP endpoint, sent Alertmanager's webhook payload (version 4).
        case webhook(url: String, headers: [String: String])
    }

    public var name: String
    public var kind: Kind
    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    public static let pagerDutyEventsURL = "https://events.pagerduty.com/v2/enqueue"
}

public struct AlertRoute: Sendable, Equatable {
    public var receiver: String
    /// Empty: any severity.
    public var severities: [AlertSeverity]
    /// Every label here must have this value.
    public var match: [String: String]
    public var continueMatching: Bool
    public init(receiver: String, severities: [AlertSeverity] = [], match: [String: String] = [:], continueMatching: Bool = false) {
        self.receiver = receiver
        self.severities = severities
        self.match = match
        self.continueMatching = continueMatching
    }

    public func matches(severity: AlertSeverity, labels: [String: String]) -> Bool {
        (severities.isEmpty || severities.contains(severity)) && match.allSatisfy { labels[$0.key] == $0.value }
    }
}

/// An HTTP check of one of the app's endpoints.
public struct ProbeConfig: Sendable, Equatable {
    public var name: String
    public var url: String
    public var method = "GET"
    public var headers: [String: String] = [:]
    /// Sent as the request body (with `Content-Type: application/json` unless a header says otherwise).
    public var body: String?
    public var intervalSeconds = 30
    public var timeoutMilliseconds = 5000
    /// Acceptable statuses; empty: any 2xx.
    public var expectedStatus: [Int] = []
    /// Text the body must contain.
    public var expectedBody: String?
    /// A dotted path into a JSON body and the value it must have (`status` = `ok`).
    public var expectedJSONPath: String?
    public var expectedJSONValue: String?
    /// Failures in a row before the probe is DOWN (a blip does not count).
    public var retries = 1
    /// A response slower than this fails too (0: only the timeout).
    public var maxResponseMilliseconds = 0
    /// Shown on the public status page (`/status`): name, up/down, uptime and incidents only.
    public var isPublic = false

    public init(name: String, url: String) {
        self.name = name
        self.url = url
    }
}

/// A job that calls in (`POST /api/v1/heartbeats/{name}`); DOWN when it misses `interval + grace`.
public struct HeartbeatConfig: Sendable, Equatable {
    public var name: String
    public var intervalSeconds: Int
    public var graceSeconds: Int
    /// Required as `?token=` or a bearer token on the ping, so only the job can call in.
    public var token: String?
    /// Shown on the public status page (`/status`): name and up/down only.
    public var isPublic: Bool
    /// Pinged by Gatehouse itself (scheduled backups), never over HTTP.
    public var isBuiltIn = false
    public init(name: String, intervalSeconds: Int, graceSeconds: Int = 60, token: String? = nil, isPublic: Bool = false) {
        self.name = name
        self.intervalSeconds = intervalSeconds
        self.graceSeconds = graceSeconds
        self.token = token
        self.isPublic = isPublic
    }
}
