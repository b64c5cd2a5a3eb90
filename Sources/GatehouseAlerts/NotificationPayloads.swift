import Foundation
import GatehouseCore

/// The bodies each receiver expects, built from one notification. Pure functions, so tests
/// can check them against the services' documented formats.
public enum NotificationPayloads {
    /// Slack incoming webhook: a fallback `text` and Block Kit blocks — a header, each alert's
    /// value against its threshold, labels, the expression behind it, and a link back.
    /// https://api.slack.com/messaging/webhooks
    public static func slack(_ n: AlertNotification) -> [String: Any] {
        let firing = n.alerts.filter { $0.state == .firing }
        let icon = n.status == "resolved" ? "✅" : (firing.contains { $0.severity == .critical } ? "🚨" : "⚠️")
        let title = "\(icon) [\(n.status.uppercased())\(firing.isEmpty ? "" : ":\(firing.count)")] \(n.groupLabels["alertname"] ?? n.alerts.first?.rule ?? "alerts")"
        var blocks: [[String: Any]] = [["type": "header", "text": ["type": "plain_text", "text": String(title.prefix(150)), "emoji": true]]]
        for alert in n.alerts.prefix(20) {
            let state = alert.state == .resolved ? "resolved" : "firing"
            var text = "*\(alert.rule)* — \(state), severity *\(alert.severity.rawValue)*\n*Value:* \(alert.summary)"
            if let summary = alert.annotations["summary"] { text += "\n\(summary)" }
            let labels = alert.labels.filter { !["alertname", "severity"].contains($0.key) }.sorted { $0.key < $1.key }
            if !labels.isEmpty { text += "\n*Labels:* " + labels.map { "`\($0.key)=\($0.value)`" }.joined(separator: " ") }
            text += "\n*Query:* `\(alert.expression)`"
            blocks.append(["type": "section", "text": ["type": "mrkdwn", "text": String(text.prefix(2900))]])
        }
        if n.alerts.count > 20 { blocks.append(["type": "context", "elements": [["type": "mrkdwn", "text": "…and \(n.alerts.count - 20) more"]]]) }
        var links = "<\(consoleURL(n.externalURL, rule: firing.first?.rule ?? n.alerts.first?.rule))|Open in Gatehouse>"
        if let runbook = n.alerts.compactMap({ $0.annotations["runbook_url"] }).first { links += " · <\(runbook)|Runbook>" }
        blocks.append(["type": "context", "elements": [["type": "mrkdwn", "text": links]]])
        return ["text": title + " — " + n.alerts.map { "\($0.rule): \($0.summary)" }.joined(separator: "; "), "blocks": blocks]
    }

    /// PagerDuty Events API v2: one event for the group, `trigger` while firing and `resolve`
    /// after, with a stable `dedup_key` so PagerDuty keeps one incident.
    /// https://developer.pagerduty.com/docs/events-api-v2/trigger-events/
    public static func pagerDuty(_ n: AlertNotification, routingKey: String) -> [String: Any] {
        let dedup = dedupKey(n.groupKey)
        if n.status == "resolved" {
            return ["routing_key": routingKey, "event_action": "resolve", "dedup_key": dedup]
        }
        let firing = n.alerts.filter { $0.state == .firing }
        let worst = firing.map(\.severity).max() ?? .medium
        let console = consoleURL(n.externalURL, rule: firing.first?.rule)
        let summary = firing.map { "\($0.rule): \($0.summary)" }.joined(separator: "; ")
        var details: [String: Any] = ["firing": firing.count, "expression": firing.first?.expression ?? ""]
        for alert in firing.prefix(20) { details[alert.rule + (alert.labels.count > 2 ? " " + alert.fingerprint : "")] = alert.summary }
        return [
            "routing_key": routingKey, "event_action": "trigger", "dedup_key": dedup, "client": "Gatehouse", "client_url": console,
            "payload": [
                "summary": String(("[\(worst.rawValue.uppercased())] " + summary).prefix(1024)), "source": "gatehouse",
                "severity": pagerDutySeverity(worst), "timestamp": TimeExpressions.format(micros: n.nowMicros),
                "component": firing.first?.labels["service"] ?? firing.first?.labels["model"] ?? "gatehouse",
                "group": n.groupLabels["alertname"] ?? "", "class": firing.first?.expression.split(separator: " ").first.map(String.init) ?? "",
                "custom_details": details,
            ] as [String: Any],
            "links": [["href": console, "text": "Gatehouse alerts"]],
        ]
    }

    /// The console's alerts page, at the rule's row (each row's `id` is its rule's name); the
    /// page itself when there is no rule.
    public static func consoleURL(_ externalURL: String, rule: String?) -> String {
        let page = externalURL + "/alerts"
        guard let rule, !rule.isEmpty else { return page }
        // Only unreserved ASCII stays as it is: `|` and `>` would end a Slack link, and a
        // browser decodes the rest before it looks for the row.
        return page + "#" + (rule.addingPercentEncoding(withAllowedCharacters: fragmentSafe) ?? "")
    }

    private static let fragmentSafe = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// critical → critical, high → error, medium → warning, low → info.
    public static func pagerDutySeverity(_ s: AlertSeverity) -> String {
        switch s {
        case .critical: "critical"
        case .high: "error"
        case .medium: "warning"
        case .low: "info"
        }
    }

    /// 32 hex digits: PagerDuty allows 255 characters, but a digest stays stable and readable.
    public static func dedupKey(_ groupKey: String) -> String {
        "gatehouse-" + AlertEvaluator.fingerprint(["group": groupKey])
    }

    /// Alertmanager's webhook payload, version 4, so tools written for Alertmanager work as they are.
    /// https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
    public static func webhook(_ n: AlertNotification) -> [String: Any] {
        func common(_ pick: (ActiveAlert) -> [String: String]) -> [String: String] {
            guard let first = n.alerts.first else { return [:] }
            return pick(first).filter { key, value in n.alerts.allSatisfy { pick($0)[key] == value } }
        }
        return [
            "version": "4", "groupKey": n.groupKey, "truncatedAlerts": 0, "status": n.status, "receiver": n.receiver.name,
            "groupLabels": n.groupLabels, "commonLabels": common(\.labels), "commonAnnotations": common(\.annotations),
            "externalURL": n.externalURL,
            "alerts": n.alerts.map { a -> [String: Any] in
                var annotations = a.annotations
                annotations["value"] = a.summary
                annotations["expression"] = a.expression
                return [
                    "status": a.state == .firing ? "firing" : "resolved", "labels": a.labels, "annotations": annotations,
                    "startsAt": TimeExpressions.format(micros: a.firedAtMicros ?? a.activeSinceMicros),
                    "endsAt": a.resolvedAtMicros.map { TimeExpressions.format(micros: $0) } ?? "0001-01-01T00:00:00Z",
                    "generatorURL": consoleURL(n.externalURL, rule: a.rule), "fingerprint": a.fingerprint,
                ]
            },
        ]
    }
}
