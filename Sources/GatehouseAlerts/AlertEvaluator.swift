import Crypto
import Foundation
import GatehouseCore

/// One alert: a rule and one set of label values, with where it stands.
public struct ActiveAlert: Sendable, Equatable {
    public var rule: String
    public var fingerprint: String
    public var labels: [String: String]
    public var annotations: [String: String]
    public var severity: AlertSeverity
    public var state: AlertState
    public var value: Double
    /// `1.3% > 1%`: the value against the threshold, as people read them.
    public var summary: String
    public var expression: String
    /// When the condition started to hold, and when the alert fired and resolved.
    public var activeSinceMicros: Int64
    public var firedAtMicros: Int64?
    public var resolvedAtMicros: Int64?
}

/// Evaluates rules and moves each alert through pending → firing → resolved. It keeps the state
/// in memory (the history goes to the store) and hands changes to the dispatcher.
public actor AlertEvaluator {
    public let rules: [AlertRule]
    let reader: any SignalSource
    private var alerts: [String: ActiveAlert] = [:]
    /// Rules whose last evaluation failed, with the error (shown by `/api/v1/alerts/rules`).
    private(set) var failures: [String: String] = [:]

    public init(rules: [AlertRule], reader: any SignalSource) {
        self.rules = rules
        self.reader = reader
    }

    /// Evaluates every rule at `now`; returns the transitions and every alert that is firing or
    /// was resolved in this round.
    public func evaluate(nowMicros now: Int64) async -> (transitions: [AlertTransition], current: [ActiveAlert]) {
        var transitions: [AlertTransition] = []
        var resolvedNow: [ActiveAlert] = []
        for rule in rules {
            let values: [SignalValue]
            do {
                values = try await reader.read(rule.expression, nowMicros: now)
                failures[rule.name] = nil
            } catch {
                // A failed read leaves this rule's alerts as they are: no flapping on a store hiccup.
                failures[rule.name] = "\(error)"
                continue
            }
            var seen = Set<String>()
            for v in values where rule.expression.holds(v.value) {
                let labels = Self.labels(rule, v.labels)
                let fingerprint = Self.fingerprint(labels)
                seen.insert(fingerprint)
                let summary = "\(rule.expression.signal.unit.format(v.value)) \(rule.expression.thresholdText)"
                var alert = alerts[fingerprint] ?? ActiveAlert(
                    rule: rule.name, fingerprint: fingerprint, labels: labels, annotations: rule.annotations, severity: rule.severity,
                    state: .inactive, value: v.value, summary: summary, expression: rule.expressionText, activeSinceMicros: now)
                alert.value = v.value
                alert.summary = summary
                if alert.state == .inactive || alert.state == .resolved {
                    alert.state = .pending
                    alert.activeSinceMicros = now
                    alert.firedAtMicros = nil
                    alert.resolvedAtMicros = nil
                    transitions.append(transition(alert, now))
                }
                if alert.state == .pending && now - alert.activeSinceMicros >= rule.forMicros {
                    alert.state = .firing
                    alert.firedAtMicros = now
                    transitions.append(transition(alert, now))
                }
                alerts[fingerprint] = alert
            }
            for (fingerprint, var alert) in alerts where alert.rule == rule.name && !seen.contains(fingerprint) {
                if alert.state == .firing {
                    alert.state = .resolved
                    alert.resolvedAtMicros = now
                    if let v = values.first(where: { Self.fingerprint(Self.labels(rule, $0.labels)) == fingerprint }) {
                        alert.value = v.value
                        alert.summary = "\(rule.expression.signal.unit.format(v.value)), no longer \(rule.expression.thresholdText)"
                    }
                    transitions.append(transition(alert, now))
                    resolvedNow.append(alert)
                } else if alert.state == .pending {
                    alert.state = .inactive
                    transitions.append(transition(alert, now))
                }
                alerts[fingerprint] = nil
            }
        }
        return (transitions, alerts.values.filter { $0.state == .firing } + resolvedNow)
    }

    /// Alerts pending or firing now.
    public func active() -> [ActiveAlert] { alerts.values.sorted { ($0.rule, $0.fingerprint) < ($1.rule, $1.fingerprint) } }
    public func ruleFailures() -> [String: String] { failures }

    private func transition(_ a: ActiveAlert, _ now: Int64) -> AlertTransition {
        AlertTransition(timestampMicros: now, rule: a.rule, fingerprint: a.fingerprint, labels: a.labels, state: a.state, value: a.value,
                        severity: a.severity, summary: a.summary)
    }

    static func labels(_ rule: AlertRule, _ group: [String: String]) -> [String: String] {
        var labels = rule.labels
        for (k, v) in group { labels[k] = v }
        labels["alertname"] = rule.name
        labels["severity"] = rule.severity.rawValue
        return labels
    }

    /// 16 hex digits of SHA-256 over the sorted labels: stable across restarts and instances.
    public static func fingerprint(_ labels: [String: String]) -> String {
        let text = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\u{1}")
        return Hex.sha256(text, bytes: 8)
    }
}
