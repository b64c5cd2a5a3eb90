import Foundation

/// The states of one alert (a rule and one set of label values).
public enum AlertState: String, Sendable, CaseIterable {
    /// The condition holds, but not yet for the rule's `for` duration.
    case pending
    case firing
    /// It was firing and the condition no longer holds.
    case resolved
    /// It was pending and the condition stopped holding before `for` passed: nothing is sent.
    case inactive
}

/// A change of an alert's state, as kept in the history.
public struct AlertTransition: Sendable, Equatable {
    public var timestampMicros: Int64
    public var rule: String
    /// Stable id of the rule and its label values.
    public var fingerprint: String
    public var labels: [String: String]
    public var state: AlertState
    public var value: Double
    public var severity: AlertSeverity
    /// The value and threshold as people read them (`1.3% > 1%`).
    public var summary: String

    public init(timestampMicros: Int64, rule: String, fingerprint: String, labels: [String: String], state: AlertState, value: Double,
                severity: AlertSeverity, summary: String) {
        self.timestampMicros = timestampMicros
        self.rule = rule
        self.fingerprint = fingerprint
        self.labels = labels
        self.state = state
        self.value = value
        self.severity = severity
        self.summary = summary
    }
}

/// Mutes notifications for alerts whose labels match, until `endsAtMicros`.
public struct Silence: Sendable, Equatable {
    public struct Matcher: Sendable, Equatable {
        public enum Operator: String, Sendable, CaseIterable { case equal = "=", notEqual = "!=" }
        public var label: String
        public var op: Operator
        public var value: String
        public init(label: String, op: Operator, value: String) {
            self.label = label
            self.op = op
            self.value = value
        }

        /// `alertname=HighErrorRate`, `severity!=low`.
        public init?(_ text: String) {
            let op: Operator = text.contains("!=") ? .notEqual : .equal
            let parts = text.components(separatedBy: op.rawValue)
            guard parts.count == 2 else { return nil }
            let label = parts[0].trimmingCharacters(in: .whitespaces), value = parts[1].trimmingCharacters(in: .whitespaces)
                .trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
            guard !label.isEmpty, label.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." }) else { return nil }
            self.init(label: label, op: op, value: value)
        }

        public func matches(_ labels: [String: String]) -> Bool {
            switch op {
            case .equal: labels[label] == value
            case .notEqual: labels[label] != value
            }
        }

        public var description: String { "\(label)\(op.rawValue)\(value)" }
    }

    public var id: String
    public var matchers: [Matcher]
    public var startsAtMicros: Int64
    public var endsAtMicros: Int64
    public var createdBy: String
    public var comment: String

    public init(id: String, matchers: [Matcher], startsAtMicros: Int64, endsAtMicros: Int64, createdBy: String, comment: String) {
        self.id = id
        self.matchers = matchers
        self.startsAtMicros = startsAtMicros
        self.endsAtMicros = endsAtMicros
        self.createdBy = createdBy
        self.comment = comment
    }

    public func isActive(at now: Int64) -> Bool { startsAtMicros <= now && now < endsAtMicros }
    public func mutes(_ labels: [String: String], at now: Int64) -> Bool { isActive(at: now) && matchers.allSatisfy { $0.matches(labels) } }
}

/// One attempt, or the final outcome, of sending a notification.
public struct DeliveryRecord: Sendable, Equatable {
    public enum Outcome: String, Sendable { case delivered, retrying, failed }
    public var timestampMicros: Int64
    public var receiver: String
    public var groupKey: String
    /// `firing` or `resolved`.
    public var status: String
    public var attempt: Int
    public var outcome: Outcome
    public var detail: String

    public init(timestampMicros: Int64, receiver: String, groupKey: String, status: String, attempt: Int, outcome: Outcome, detail: String) {
        self.timestampMicros = timestampMicros
        self.receiver = receiver
        self.groupKey = groupKey
        self.status = status
        self.attempt = attempt
        self.outcome = outcome
        self.detail = detail
    }
}

/// One probe check.
public struct ProbeResult: Sendable, Equatable {
    public var probe: String
    public var timestampMicros: Int64
    public var up: Bool
    public var status: Int?
    public var latencyMicros: Int64
    public var error: String?

    public init(probe: String, timestampMicros: Int64, up: Bool, status: Int?, latencyMicros: Int64, error: String?) {
        self.probe = probe
        self.timestampMicros = timestampMicros
        self.up = up
        self.status = status
        self.latencyMicros = latencyMicros
        self.error = error
    }
}

/// The last failure the job behind a built-in heartbeat reported.
public struct HeartbeatFailure: Sendable, Equatable {
    public var name: String
    public var atMicros: Int64
    public var error: String

    public init(name: String, atMicros: Int64, error: String) {
        self.name = name
        self.atMicros = atMicros
        self.error = error
    }
}

/// Where alert history, silences, deliveries, probe results and heartbeats live.
public protocol AlertStore: Sendable {
    func recordTransitions(_ transitions: [AlertTransition]) async throws
    func alertHistory(limit: Int, rule: String?) async throws -> [AlertTransition]
    func silences() async throws -> [Silence]
    func addSilence(_ silence: Silence) async throws
    /// Ends a silence now; false when there is no such silence.
    func expireSilence(id: String, atMicros: Int64) async throws -> Bool
    func recordDelivery(_ delivery: DeliveryRecord) async throws
    func deliveries(limit: Int) async throws -> [DeliveryRecord]
    func recordProbeResults(_ results: [ProbeResult]) async throws
    func probeResults(probe: String, fromMicros: Int64, limit: Int) async throws -> [ProbeResult]
    func recordHeartbeat(name: String, atMicros: Int64) async throws
    func heartbeats() async throws -> [String: Int64]
    /// A built-in heartbeat's job failed (a scheduled backup): the heartbeat is DOWN from then
    /// until a newer ping. Stored, so a restart does not forget a failed backup.
    func recordHeartbeatFailure(_ failure: HeartbeatFailure) async throws
    /// The newest failure of each heartbeat that has one.
    func heartbeatFailures() async throws -> [String: HeartbeatFailure]
    /// Takes or renews the named lease for `holder`; true when `holder` has it. Only the holder
    /// evaluates rules and sends notifications, so instances sharing PostgreSQL notify once.
    func acquireLease(name: String, holder: String, nowMicros: Int64, durationMicros: Int64) async throws -> Bool
    func pruneProbeResults(beforeMicros: Int64) async throws
    /// Each of `probes`' checks in [from, to), whole or per `bucketMicros` (buckets start at its
    /// multiples), counted in the store: uptime and the response-time series.
    func probeUptime(probes: [String], fromMicros: Int64, toMicros: Int64, bucketMicros: Int64?) async throws -> [ProbeUptime]
    /// Runs of failed checks of `probes` among the checks in [from, to), newest first, found in the store.
    func probeIncidents(probes: [String], fromMicros: Int64, toMicros: Int64, limit: Int) async throws -> [ProbeIncident]
}

/// A probe's checks over a span, or over one bucket of it: how many, how many passed, how fast.
public struct ProbeUptime: Sendable, Equatable {
    public var probe: String
    /// The bucket's start (a multiple of the bucket width) for figures per bucket; nil for the whole span.
    public var bucketStartMicros: Int64?
    public var checks: Int64
    public var upChecks: Int64
    public var averageLatencyMicros: Double

    public init(probe: String, bucketStartMicros: Int64?, checks: Int64, upChecks: Int64, averageLatencyMicros: Double) {
        self.probe = probe
        self.bucketStartMicros = bucketStartMicros
        self.checks = checks
        self.upChecks = upChecks
        self.averageLatencyMicros = averageLatencyMicros
    }

    /// Passed checks / checks; nil without checks (unknown is not 0% or 100%).
    public var fraction: Double? { checks > 0 ? Double(upChecks) / Double(checks) : nil }

    /// The figures of `results` (one probe's), whole or per bucket: what the stores compute in SQL.
    public static func summarize(_ results: [ProbeResult], bucketMicros: Int64?) -> [ProbeUptime] {
        var byKey: [String: [Int64?: (checks: Int64, up: Int64, latency: Int64)]] = [:]
        for r in results {
            let bucket = bucketMicros.map { r.timestampMicros / $0 * $0 }
            var figures = byKey[r.probe, default: [:]][bucket] ?? (0, 0, 0)
            figures.checks += 1
            figures.up += r.up ? 1 : 0
            figures.latency += r.latencyMicros
            byKey[r.probe, default: [:]][bucket] = figures
        }
        return byKey.flatMap { probe, buckets in
            buckets.map { ProbeUptime(probe: probe, bucketStartMicros: $0.key, checks: $0.value.checks, upChecks: $0.value.up,
                                      averageLatencyMicros: Double($0.value.latency) / Double($0.value.checks)) }
        }.sorted { ($0.probe, $0.bucketStartMicros ?? 0) < ($1.probe, $1.bucketStartMicros ?? 0) }
    }
}

/// A run of failed checks of one probe: from its first failed check to the next check that
/// passed (nil while it has not).
public struct ProbeIncident: Sendable, Equatable {
    public var probe: String
    public var startedMicros: Int64
    public var endedMicros: Int64?
    public var failedChecks: Int64
    /// Why the run's first check failed.
    public var firstError: String?

    public init(probe: String, startedMicros: Int64, endedMicros: Int64?, failedChecks: Int64, firstError: String?) {
        self.probe = probe
        self.startedMicros = startedMicros
        self.endedMicros = endedMicros
        self.failedChecks = failedChecks
        self.firstError = firstError
    }

    /// The runs of failed checks in `results` (one probe's, any order), newest first: what the
    /// stores compute in SQL.
    public static func runs(_ results: [ProbeResult]) -> [ProbeIncident] {
        var incidents: [ProbeIncident] = []
        var open: ProbeIncident?
        for r in results.sorted(by: { $0.timestampMicros < $1.timestampMicros }) {
            if r.up {
                if var run = open {
                    run.endedMicros = r.timestampMicros
                    incidents.append(run)
                    open = nil
                }
            } else if open == nil {
                open = ProbeIncident(probe: r.probe, startedMicros: r.timestampMicros, endedMicros: nil, failedChecks: 1, firstError: r.error)
            } else {
                open?.failedChecks += 1
            }
        }
        if let open { incidents.append(open) }
        return incidents.reversed()
    }
}

extension AlertStore {
    /// For a store without its own aggregation: from `probeResults`, which suits only a few results.
    public func probeUptime(probes: [String], fromMicros: Int64, toMicros: Int64, bucketMicros: Int64?) async throws -> [ProbeUptime] {
        var figures: [ProbeUptime] = []
        for probe in probes { figures += ProbeUptime.summarize(try await results(probe, fromMicros, toMicros), bucketMicros: bucketMicros) }
        return figures
    }

    /// For a store without its own aggregation: from `probeResults`, which suits only a few results.
    public func probeIncidents(probes: [String], fromMicros: Int64, toMicros: Int64, limit: Int) async throws -> [ProbeIncident] {
        var incidents: [ProbeIncident] = []
        for probe in probes { incidents += ProbeIncident.runs(try await results(probe, fromMicros, toMicros)) }
        return Array(incidents.sorted { $0.startedMicros > $1.startedMicros }.prefix(limit))
    }

    private func results(_ probe: String, _ fromMicros: Int64, _ toMicros: Int64) async throws -> [ProbeResult] {
        try await probeResults(probe: probe, fromMicros: fromMicros, limit: .max).filter { $0.timestampMicros < toMicros }
    }
}
