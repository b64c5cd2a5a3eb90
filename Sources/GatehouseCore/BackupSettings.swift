import Foundation

/// The `backups:` section: the server writes a compressed snapshot of its SQLite store into
/// `directory` every `interval`, keeps the newest `keep` of those it wrote, and reports each
/// success to the built-in heartbeat `gatehouse-backup`.
public struct BackupSettings: Sendable, Equatable {
    public var directory: String
    public var intervalSeconds = 86_400
    public var keep = 7

    public init(directory: String, intervalSeconds: Int = 86_400, keep: Int = 7) {
        self.directory = directory
        self.intervalSeconds = intervalSeconds
        self.keep = keep
    }

    /// Below this a backup could not finish before the next one is due on any real store; the
    /// low bound exists so the feature can be tried (and tested) in seconds.
    public static let intervalRange = 10...(31 * 86_400)
    public static let keepRange = 1...1000

    /// Turns backups on with their defaults, or moves the file's `backups.dir`.
    public static let directoryVariable = "GATEHOUSE_BACKUP_DIR"

    /// Whether backups are on: asked while the file is read (before the environment is
    /// applied), so its rules may name the built-in heartbeat.
    static func requested(inFile: Bool, environment: [String: String]) -> Bool {
        inFile || directory(in: environment) != nil
    }

    /// `GATEHOUSE_BACKUP_DIR`, when set and not empty.
    static func directory(in environment: [String: String]) -> String? {
        environment[directoryVariable].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The heartbeat every successful scheduled backup pings, and the rule that alerts on it.
    public static let heartbeatName = "gatehouse-backup"
    public static let alertName = "GatehouseBackupMissing"

    /// Time allowed past `interval` before a missing backup counts as missed: half the interval,
    /// from 10 s to an hour, for a backup that ran longer than the one before it.
    public var graceSeconds: Int { min(max(intervalSeconds / 2, 10), 3600) }

    /// The heartbeat scheduled backups report to. Only Gatehouse pings it (`isBuiltIn`): a job
    /// calling in over HTTP could otherwise hide a failing backup.
    public var heartbeat: HeartbeatConfig {
        var heartbeat = HeartbeatConfig(name: Self.heartbeatName, intervalSeconds: intervalSeconds, graceSeconds: graceSeconds)
        heartbeat.isBuiltIn = true
        return heartbeat
    }

    /// Fires at once when a backup fails, or when none succeeded within interval + grace.
    public var alertRule: AlertRule {
        let text = "probe_down(\(Self.heartbeatName)) > 0"
        return AlertRule(
            name: Self.alertName, expressionText: text,
            expression: AlertExpression(signal: .probeDown, argument: Self.heartbeatName, comparison: .greater, threshold: 0),
            severity: .high, labels: [:],
            annotations: ["summary": "The scheduled backup into \(directory) failed or is late; the server's log says why (\"scheduled backup failed\")"])
    }
}

extension YAMLReader {
    /// `backups: {dir, interval, keep}`; `interval` is a duration (`6h`, `1d`).
    mutating func readBackups(_ value: Any) -> BackupSettings? {
        guard let map = mapping(value, at: "backups") else { return nil }
        check(map, at: "backups", allowed: ["dir", "interval", "keep"])
        let directory = string(map["dir"], at: "backups.dir", required: true)
        var settings = BackupSettings(directory: directory ?? "")
        if let text = string(map["interval"], at: "backups.interval") {
            if let micros = TimeExpressions.durationMicros(text), micros % 1_000_000 == 0 {
                settings.intervalSeconds = Int(clamping: micros / 1_000_000)
            } else {
                errors.append(.init(key: "backups.interval", problem: "\"\(text)\" is not a whole number of seconds written as a duration, such as 6h or 1d"))
            }
        }
        if let v = int(map["keep"], at: "backups.keep") { settings.keep = v }
        return directory == nil ? nil : settings
    }
}

extension ConfigurationLoader {
    /// Bounds, the store it works on, and the built-in heartbeat's name.
    static func validateBackups(_ config: GatehouseConfig) -> [ConfigError] {
        guard let b = config.backups else { return [] }
        var errors: [ConfigError] = []
        if b.directory.trimmingCharacters(in: .whitespaces).isEmpty { errors.append(.init(key: "backups.dir", problem: "must not be empty")) }
        let range = BackupSettings.intervalRange
        if !range.contains(b.intervalSeconds) {
            errors.append(.init(key: "backups.interval", problem: "must be between \(range.lowerBound)s and \(range.upperBound / 86_400)d"))
        }
        if !BackupSettings.keepRange.contains(b.keep) {
            errors.append(.init(key: "backups.keep", problem: "must be between \(BackupSettings.keepRange.lowerBound) and \(BackupSettings.keepRange.upperBound)"))
        }
        // Several instances share a PostgreSQL store, so no one instance should copy it; its own
        // tools take consistent backups of the whole cluster and restore to any moment.
        if case .postgres = DatabaseURL(config.resolvedDatabaseURL) {
            errors.append(.init(key: "backups", problem: "scheduled backups are for the SQLite store; back up PostgreSQL with pg_dump or "
                + "point-in-time recovery (docs/operations.md#postgresql-pg_dump-and-point-in-time-recovery) and remove this section"))
        }
        let user = config.alerts.heartbeats.filter { !$0.isBuiltIn }.map(\.name) + config.alerts.probes.map(\.name)
        if user.contains(BackupSettings.heartbeatName) {
            errors.append(.init(key: "alerts.heartbeats", problem: "\"\(BackupSettings.heartbeatName)\" is the scheduled backups' own heartbeat; give yours another name"))
        }
        // A rule of one's own under the built-in rule's name would be taken for it (or hide it).
        if config.alerts.rules.contains(where: { $0.name == BackupSettings.alertName && $0 != b.alertRule }) {
            errors.append(.init(key: "alerts.rules", problem: "\"\(BackupSettings.alertName)\" is the scheduled backups' own rule; give yours another name"))
        }
        return errors
    }

    /// With backups on, their heartbeat is watched like any other, and a rule alerts on it
    /// unless the configuration has its own `probe_down` rule covering it.
    static func addBackupMonitor(to config: inout GatehouseConfig) {
        // An interval out of bounds is reported once, as `backups.interval`, not again as the heartbeat's.
        guard let backups = config.backups, BackupSettings.intervalRange.contains(backups.intervalSeconds) else { return }
        let monitors = config.alerts.heartbeats.map(\.name) + config.alerts.probes.map(\.name)
        guard !monitors.contains(BackupSettings.heartbeatName) else { return }
        config.alerts.heartbeats.append(backups.heartbeat)
        // Covered only by a rule that fires when this one heartbeat is down (probe_down is then
        // 1, for it alone or as the count of every probe down): `probe_down > 3` would stay quiet.
        let covered = config.alerts.rules.contains { rule in
            rule.expression.signal == .probeDown && rule.expression.holds(1)
                && (rule.expression.argument == nil || rule.expression.argument == BackupSettings.heartbeatName)
        }
        // A rule that takes the built-in rule's name is reported by `validateBackups`, once.
        if !covered && !config.alerts.rules.contains(where: { $0.name == BackupSettings.alertName }) {
            config.alerts.rules.append(backups.alertRule)
        }
    }
}
