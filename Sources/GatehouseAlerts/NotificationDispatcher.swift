import Foundation
import GatehouseCore

/// A notification for one group of alerts, ready for a receiver.
public struct AlertNotification: Sendable, Equatable {
    public var receiver: AlertReceiver
    /// Stable for the group: PagerDuty's `dedup_key`, Alertmanager's `groupKey`.
    public var groupKey: String
    public var groupLabels: [String: String]
    /// `firing` while any alert of the group fires, else `resolved`.
    public var status: String
    /// The group's firing alerts, and those resolved since the last notification.
    public var alerts: [ActiveAlert]
    public var externalURL: String
    public var nowMicros: Int64
}

/// Groups alerts Alertmanager's way and decides when each group is told: after `group_wait`
/// for a new group, after `group_interval` when it changed, after `repeat_interval` while it
/// keeps firing, and once more when it is resolved. Silenced alerts are left out.
public actor NotificationDispatcher {
    struct Group {
        var receiver: AlertReceiver
        var labels: [String: String]
        var firstSeenMicros: Int64
        var lastSentMicros: Int64?
        /// Fingerprints in the last notification that were firing.
        var lastSentFiring: Set<String> = []
        var firing: [String: ActiveAlert] = [:]
        var resolved: [String: ActiveAlert] = [:]
    }

    let settings: AlertSettings
    private var groups: [String: Group] = [:]

    public init(settings: AlertSettings) { self.settings = settings }

    /// The receivers an alert goes to: matching routes in order (until one without `continue`), else the default.
    func receivers(for alert: ActiveAlert) -> [AlertReceiver] {
        var names: [String] = []
        for route in settings.routes where route.matches(severity: alert.severity, labels: alert.labels) {
            names.append(route.receiver)
            if !route.continueMatching { break }
        }
        if names.isEmpty, let d = settings.defaultReceiver { names = [d] }
        return names.compactMap { name in settings.receivers.first { $0.name == name } }
    }

    /// Takes this round's alerts (firing, and those resolved this round) and returns the
    /// notifications due now.
    public func update(_ alerts: [ActiveAlert], silences: [Silence], nowMicros now: Int64) -> [AlertNotification] {
        for alert in alerts {
            let muted = silences.contains { $0.mutes(alert.labels, at: now) }
            for receiver in receivers(for: alert) {
                let groupLabels = Dictionary(uniqueKeysWithValues: settings.groupBy.compactMap { key in alert.labels[key].map { (key, $0) } })
                let key = Self.groupKey(receiver: receiver.name, labels: groupLabels)
                var group = groups[key] ?? Group(receiver: receiver, labels: groupLabels, firstSeenMicros: now)
                if alert.state == .firing && !muted {
                    group.firing[alert.fingerprint] = alert
                    group.resolved[alert.fingerprint] = nil
                } else if muted {
                    // Silenced: left out of notifications (as Alertmanager does), neither firing nor resolved.
                    group.firing[alert.fingerprint] = nil
                } else if group.firing.removeValue(forKey: alert.fingerprint) != nil || group.lastSentFiring.contains(alert.fingerprint) {
                    // Resolved after being told: say so in the next notification.
                    group.resolved[alert.fingerprint] = alert
                }
                if !group.firing.isEmpty || !group.resolved.isEmpty || groups[key] != nil { groups[key] = group }
            }
        }
        // Alerts that were firing but are absent this round are no longer firing (evaluated away).
        let present = Set(alerts.map(\.fingerprint))
        let mutedNow = Set(alerts.filter { a in silences.contains { $0.mutes(a.labels, at: now) } }.map(\.fingerprint))
        for (key, var group) in groups {
            for (fingerprint, alert) in group.firing where !present.contains(fingerprint) && !mutedNow.contains(fingerprint) {
                group.firing[fingerprint] = nil
                var gone = alert
                gone.state = .resolved
                gone.resolvedAtMicros = now
                group.resolved[fingerprint] = gone
            }
            groups[key] = group
        }
        return due(now)
    }

    private func due(_ now: Int64) -> [AlertNotification] {
        var out: [AlertNotification] = []
        let second: Int64 = 1_000_000
        for (key, var group) in groups {
            let firing = Set(group.firing.keys)
            var send = false
            if firing.isEmpty && group.resolved.isEmpty {
                groups[key] = nil  // nothing left to say (its alerts were silenced, or resolved before anyone was told)
                continue
            }
            if let last = group.lastSentMicros {
                let changed = firing != group.lastSentFiring
                if changed && now - last >= Int64(settings.groupIntervalSeconds) * second { send = true }
                if !changed && !firing.isEmpty && now - last >= Int64(settings.repeatIntervalSeconds) * second { send = true }
                if firing.isEmpty && !settings.sendResolved && changed { groups[key] = nil; continue }
            } else if !firing.isEmpty && now - group.firstSeenMicros >= Int64(settings.groupWaitSeconds) * second {
                send = true
            } else if firing.isEmpty {
                groups[key] = nil  // resolved before anyone was told: nothing to say
                continue
            }
            guard send else { continue }
            let alerts = group.firing.values.sorted { $0.fingerprint < $1.fingerprint } + group.resolved.values.sorted { $0.fingerprint < $1.fingerprint }
            out.append(AlertNotification(receiver: group.receiver, groupKey: key, groupLabels: group.labels, status: firing.isEmpty ? "resolved" : "firing",
                                         alerts: alerts, externalURL: settings.externalURL, nowMicros: now))
            group.lastSentMicros = now
            group.lastSentFiring = firing
            group.resolved = [:]
            groups[key] = firing.isEmpty ? nil : group
        }
        return out.sorted { $0.groupKey < $1.groupKey }
    }

    static func groupKey(receiver: String, labels: [String: String]) -> String {
        "\(receiver):{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ",") + "}"
    }
}
