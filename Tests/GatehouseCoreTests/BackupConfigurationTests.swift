import Foundation
import Testing
import Yams
@testable import GatehouseCore

/// `backups: {dir, interval, keep}`: how it is read and checked, and the heartbeat and rule it brings.
@Suite struct BackupConfigurationTests {
    static func load(_ yaml: String, environment: [String: String] = [:], overrides: ConfigOverrides = ConfigOverrides()) throws -> GatehouseConfig {
        try ConfigurationLoader.load(yaml: yaml, environment: environment, overrides: overrides)
    }

    /// The problems `check-config` would print, one per line.
    static func problems(_ yaml: String, environment: [String: String] = [:], overrides: ConfigOverrides = ConfigOverrides()) -> [String] {
        do {
            _ = try load(yaml, environment: environment, overrides: overrides)
            return []
        } catch let errors as ConfigErrors {
            return errors.errors.map(\.description)
        } catch {
            return ["\(error)"]
        }
    }

    @Test func theBlockBringsItsHeartbeatAndRule() throws {
        let config = try Self.load("backups: {dir: /backups, interval: 6h, keep: 3}")
        #expect(config.backups == BackupSettings(directory: "/backups", intervalSeconds: 21_600, keep: 3))
        let heartbeat = try #require(config.alerts.heartbeats.first { $0.name == "gatehouse-backup" })
        #expect(heartbeat.isBuiltIn && heartbeat.intervalSeconds == 21_600 && heartbeat.graceSeconds == 3600 && heartbeat.token == nil)
        let rule = try #require(config.alerts.rules.first { $0.name == "GatehouseBackupMissing" })
        #expect(rule.expression == (try AlertExpressionParser.parse(rule.expressionText)), "the rule reads as it is printed")
        #expect(rule.expressionText == "probe_down(gatehouse-backup) > 0" && rule.severity == .high && rule.forMicros == 0)
        let printed = config.redactedYAML()
        #expect(printed.contains(#"backups: {dir: "/backups", interval: 6h, keep: 3}"#), "\(printed)")
        #expect(printed.contains("GatehouseBackupMissing") && printed.contains(#"name: "gatehouse-backup""#))

        let defaults = try Self.load("backups: {dir: ./b}")
        #expect(defaults.backups == BackupSettings(directory: "./b", intervalSeconds: 86_400, keep: 7))
        let none = try Self.load("")
        #expect(none.backups == nil && none.alerts.heartbeats.isEmpty && none.alerts.rules.isEmpty)
        #expect(none.redactedYAML().contains("backups: null  # no scheduled backups"))
        // The short end is 10 s, to try it out; the grace never drops below 10 s.
        let quick = try Self.load("backups: {dir: /b, interval: 10s, keep: 1}")
        #expect(quick.backups?.intervalSeconds == 10 && quick.backups?.graceSeconds == 10)
        #expect(try Self.load("backups: {dir: /b, interval: 1h}").backups?.graceSeconds == 1800)
    }

    @Test func mistakesAreNamedWithTheirKey() {
        #expect(Self.problems("backups: {interval: 1d}") == ["backups.dir: is required"])
        #expect(Self.problems(#"backups: {dir: "  "}"#) == ["backups.dir: must not be empty"])
        #expect(Self.problems("backups: {dir: /b, interval: 5s}") == ["backups.interval: must be between 10s and 31d"])
        #expect(Self.problems("backups: {dir: /b, interval: 32d}") == ["backups.interval: must be between 10s and 31d"])
        for text in ["daily", "3600", "1.5s", "-1h"] {
            #expect(Self.problems("backups: {dir: /b, interval: \"\(text)\"}")
                == ["backups.interval: \"\(text)\" is not a whole number of seconds written as a duration, such as 6h or 1d"], "\(text)")
        }
        #expect(Self.problems("backups: {dir: /b, keep: 0}") == ["backups.keep: must be between 1 and 1000"])
        #expect(Self.problems("backups: {dir: /b, keep: 1001}") == ["backups.keep: must be between 1 and 1000"])
        #expect(Self.problems("backups: {dir: /b, keep: many}") == ["backups.keep: must be a whole number"])
        #expect(Self.problems("backups: {dir: /b, every: 1d}").first?.hasPrefix("backups.every: unknown key") == true)
        #expect(Self.problems("backups: /b") == ["backups: must be a mapping of keys to values"])
    }

    /// A PostgreSQL store is refused, pointing at pg_dump and PITR, however the URL is given.
    @Test func postgreSQLIsRefusedWithThePointer() {
        let url = "postgres://gatehouse:secret-pass@db.internal:5432/gatehouse"
        let inFile = Self.problems("database_url: \(url)\nbackups: {dir: /b}")
        let byFlag = Self.problems("backups: {dir: /b}", overrides: ConfigOverrides(databaseURL: url))
        let byEnvironment = Self.problems("", environment: ["GATEHOUSE_DATABASE_URL": url, "GATEHOUSE_BACKUP_DIR": "/b"])
        for problems in [inFile, byFlag, byEnvironment] {
            #expect(problems.count == 1 && problems[0].hasPrefix("backups: scheduled backups are for the SQLite store"), "\(problems)")
            #expect(problems.first?.contains("pg_dump") == true && problems.first?.contains("docs/operations.md") == true)
            #expect(problems.first?.contains("secret-pass") == false)
        }
    }

    /// `GATEHOUSE_BACKUP_DIR` turns backups on with the defaults, or moves the file's.
    @Test func theEnvironmentSetsTheDirectory() throws {
        let onlyEnvironment = try Self.load("", environment: ["GATEHOUSE_BACKUP_DIR": "/mnt/backups"])
        #expect(onlyEnvironment.backups == BackupSettings(directory: "/mnt/backups"))
        #expect(onlyEnvironment.alerts.heartbeats.map(\.name) == ["gatehouse-backup"])
        let moved = try Self.load("backups: {dir: /b, interval: 12h, keep: 2}", environment: ["GATEHOUSE_BACKUP_DIR": "/mnt/backups"])
        #expect(moved.backups == BackupSettings(directory: "/mnt/backups", intervalSeconds: 43_200, keep: 2))
        #expect(try Self.load("", environment: ["GATEHOUSE_BACKUP_DIR": ""]).backups == nil)
    }

    /// The heartbeat's name is taken; a rule of one's own on it replaces the built-in rule.
    @Test func theHeartbeatNameIsReservedAndRulesMayUseIt() throws {
        let taken = Self.problems("""
            backups: {dir: /b}
            alerts:
              heartbeats:
                - {name: gatehouse-backup, interval_seconds: 60}
            """)
        #expect(taken == [#"alerts.heartbeats: "gatehouse-backup" is the scheduled backups' own heartbeat; give yours another name"#], "\(taken)")
        // Without backups the name is free.
        #expect(Self.problems("alerts:\n  heartbeats:\n    - {name: gatehouse-backup, interval_seconds: 60}").isEmpty)

        let own = try Self.load("""
            backups: {dir: /b}
            alerts:
              rules:
                - {name: BackupLate, expr: "probe_down(gatehouse-backup) > 0", severity: critical}
            """)
        #expect(own.alerts.rules.map(\.name) == ["BackupLate"], "the configured rule covers it")
        let everyProbe = try Self.load("backups: {dir: /b}\nalerts:\n  rules:\n    - {name: AnyDown, expr: \"probe_down > 0\"}")
        #expect(everyProbe.alerts.rules.map(\.name) == ["AnyDown"])
        let environmentOnly = try Self.load("alerts:\n  rules:\n    - {name: BackupLate, expr: \"probe_down(gatehouse-backup) > 0\"}",
                                            environment: ["GATEHOUSE_BACKUP_DIR": "/b"])
        #expect(environmentOnly.alerts.rules.map(\.name) == ["BackupLate"])
        #expect(Self.problems("alerts:\n  rules:\n    - {name: BackupLate, expr: \"probe_down(gatehouse-backup) > 0\"}")
            == [#"alerts.rules[0].expr: no probe or heartbeat is named "gatehouse-backup""#], "without backups there is no such heartbeat")
    }

    /// Only a rule that fires when the backup heartbeat is down replaces the built-in one; a
    /// rule that merely takes the built-in rule's name is a mistake, not a replacement.
    @Test func onlyARuleThatFiresOnTheMissingBackupReplacesTheBuiltInOne() throws {
        func rules(_ expr: String) throws -> [String] {
            try Self.load("backups: {dir: /b}\nalerts:\n  rules:\n    - {name: Mine, expr: \"\(expr)\"}").alerts.rules.map(\.name)
        }
        for covering in ["probe_down > 0", "probe_down >= 1", "probe_down(gatehouse-backup) > 0", "probe_down(gatehouse-backup) >= 1"] {
            #expect(try rules(covering) == ["Mine"], "\(covering)")
        }
        for notCovering in ["probe_down > 3", "probe_down >= 2", "probe_down < 1", "probe_down(gatehouse-backup) > 1"] {
            #expect(try rules(notCovering) == ["Mine", "GatehouseBackupMissing"], "\(notCovering)")
        }
        let clash = Self.problems("backups: {dir: /b}\nalerts:\n  rules:\n    - {name: GatehouseBackupMissing, expr: \"error_rate over 5m > 1%\"}")
        #expect(clash == [#"alerts.rules: "GatehouseBackupMissing" is the scheduled backups' own rule; give yours another name"#], "\(clash)")
    }
}
