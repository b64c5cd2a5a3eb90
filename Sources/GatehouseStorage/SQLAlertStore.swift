import Foundation
import GatehouseCore

/// Alert history, silences, deliveries, probe results, heartbeats and leases on any `SQLDriver`.
public final class SQLAlertStore: AlertStore {
    let driver: any SQLDriver
    private var dialect: any SQLDialect { driver.dialect }

    /// Whether uptime reads the hourly probe rollups where they answer (tests compare both ways).
    let useRollups: Bool

    init(driver: any SQLDriver, useRollups: Bool = true) {
        self.driver = driver
        self.useRollups = useRollups
    }

    /// Probe results are summed per probe and hour in `probe_rollups`: uptime over 30 days reads
    /// 720 rows per probe instead of every check (issue 11). Whole hours come from there, the
    /// part-hours at either end from the results.
    static let probeSlotMicros: Int64 = 3_600_000_000

    /// Rows go in statements of at most 500, all in one transaction: far below both databases' bind limits.
    private func insert(_ table: String, _ columns: [String], _ rows: [[SQLValue]], rollups: Bool = false) async throws {
        guard !rows.isEmpty else { return }
        var statements: [SQLStatement] = rollups ? dialect.rollupWriteLock.map { [$0] } ?? [] : []
        var start = 0
        while start < rows.count {
            var b = SQLBuilder(dialect: dialect)
            let values = rows[start..<min(start + 500, rows.count)].map { row in "(" + row.map { b.bind($0) }.joined(separator: ", ") + ")" }
            statements.append(SQLStatement("INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES \(values.joined(separator: ", "))", b.binds))
            start += 500
        }
        try await driver.transaction(statements)
    }

    static func json(_ object: [String: String]) -> String {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func labels(_ text: String?) -> [String: String] {
        guard let text, let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String] else { return [:] }
        return object
    }

    public func recordTransitions(_ transitions: [AlertTransition]) async throws {
        try await insert("alert_history", ["ts", "rule", "fingerprint", "labels", "state", "value", "severity", "summary"], transitions.map {
            [.int($0.timestampMicros), .text($0.rule), .text($0.fingerprint), .text(Self.json($0.labels)), .text($0.state.rawValue),
             .double($0.value.isFinite ? $0.value : 0), .text($0.severity.rawValue), .text($0.summary)]
        })
    }

    public func alertHistory(limit: Int, rule: String?) async throws -> [AlertTransition] {
        var b = SQLBuilder(dialect: dialect)
        let condition = rule.map { " WHERE rule = \(b.bind(.text($0)))" } ?? ""
        let sql = "SELECT ts, rule, fingerprint, labels, state, value, severity, summary FROM alert_history\(condition) ORDER BY ts DESC, id DESC LIMIT \(b.bind(.int(Int64(limit))))"
        return try await driver.query(sql, b.binds).map { row in
            AlertTransition(timestampMicros: row["ts"].int ?? 0, rule: row["rule"].text ?? "", fingerprint: row["fingerprint"].text ?? "",
                            labels: Self.labels(row["labels"].text), state: row["state"].text.flatMap(AlertState.init(rawValue:)) ?? .inactive,
                            value: row["value"].double ?? 0, severity: row["severity"].text.flatMap(AlertSeverity.init(rawValue:)) ?? .medium,
                            summary: row["summary"].text ?? "")
        }
    }

    public func silences() async throws -> [Silence] {
        try await driver.query("SELECT id, matchers, starts_at, ends_at, created_by, comment FROM silences ORDER BY ends_at DESC", []).map { row in
            let matchers = (row["matchers"].text.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String] } ?? [])
                .compactMap(Silence.Matcher.init)
            return Silence(id: row["id"].text ?? "", matchers: matchers, startsAtMicros: row["starts_at"].int ?? 0, endsAtMicros: row["ends_at"].int ?? 0,
                           createdBy: row["created_by"].text ?? "", comment: row["comment"].text ?? "")
        }
    }

    public func addSilence(_ s: Silence) async throws {
        let matchers = (try? JSONSerialization.data(withJSONObject: s.matchers.map(\.description))).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
        try await insert("silences", ["id", "matchers", "starts_at", "ends_at", "created_by", "comment"],
                         [[.text(s.id), .text(matchers), .int(s.startsAtMicros), .int(s.endsAtMicros), .text(s.createdBy), .text(s.comment)]])
    }

    public func expireSilence(id: String, atMicros: Int64) async throws -> Bool {
        var b = SQLBuilder(dialect: dialect)
        let exists = try await driver.query("SELECT id FROM silences WHERE id = \(b.bind(.text(id)))", b.binds)
        guard !exists.isEmpty else { return false }
        var u = SQLBuilder(dialect: dialect)
        let at = u.bind(.int(atMicros)), at2 = u.bind(.int(atMicros))
        try await driver.transaction([SQLStatement(
            "UPDATE silences SET ends_at = \(dialect.least("ends_at", at)), starts_at = \(dialect.least("starts_at", at2)) WHERE id = \(u.bind(.text(id)))", u.binds)])
        return true
    }

    public func recordDelivery(_ d: DeliveryRecord) async throws {
        try await insert("alert_deliveries", ["ts", "receiver", "group_key", "status", "attempt", "outcome", "detail"],
                         [[.int(d.timestampMicros), .text(d.receiver), .text(d.groupKey), .text(d.status), .int(Int64(d.attempt)),
                           .text(d.outcome.rawValue), .text(String(d.detail.prefix(2000)))]])
    }

    public func deliveries(limit: Int) async throws -> [DeliveryRecord] {
        var b = SQLBuilder(dialect: dialect)
        let sql = "SELECT ts, receiver, group_key, status, attempt, outcome, detail FROM alert_deliveries ORDER BY ts DESC, id DESC LIMIT \(b.bind(.int(Int64(limit))))"
        return try await driver.query(sql, b.binds).map { row in
            DeliveryRecord(timestampMicros: row["ts"].int ?? 0, receiver: row["receiver"].text ?? "", groupKey: row["group_key"].text ?? "",
                           status: row["status"].text ?? "", attempt: Int(row["attempt"].int ?? 0),
                           outcome: row["outcome"].text.flatMap(DeliveryRecord.Outcome.init(rawValue:)) ?? .failed, detail: row["detail"].text ?? "")
        }
    }

    /// Stores the results; the database's trigger adds them to `probe_rollups` (`probeRollupMigration`).
    public func recordProbeResults(_ results: [ProbeResult]) async throws {
        try await insert("probe_results", ["probe", "ts", "up", "status", "latency_us", "error"], results.map {
            [.text($0.probe), .int($0.timestampMicros), .int($0.up ? 1 : 0), $0.status.map { .int(Int64($0)) } ?? .null, .int($0.latencyMicros),
             $0.error.map { .text(String($0.prefix(500))) } ?? .null]
        }, rollups: true)
    }

    /// The hourly probe rollups: the table, a trigger that adds every result inserted (by
    /// anyone) in its transaction, and the sums of the results already stored. On PostgreSQL the
    /// results are locked against writes first, so none lands between the fill and the trigger.
    static func probeRollupMigration(sqlite: Bool) -> [String] {
        let bigint = sqlite ? "INTEGER" : "BIGINT", slot = probeSlotMicros
        let onConflict = """
            ON CONFLICT (probe, slot) DO UPDATE SET checks = probe_rollups.checks + excluded.checks,
                up_checks = probe_rollups.up_checks + excluded.up_checks, latency_sum = probe_rollups.latency_sum + excluded.latency_sum
            """
        let sums = "SELECT probe, (ts / \(slot)) * \(slot), COUNT(*), SUM(up), SUM(latency_us)"
        let trigger = sqlite ? [
            """
            CREATE TRIGGER probe_results_rollup AFTER INSERT ON probe_results BEGIN
            INSERT INTO probe_rollups (probe, slot, checks, up_checks, latency_sum) VALUES (NEW.probe, (NEW.ts / \(slot)) * \(slot), 1, NEW.up, NEW.latency_us)
            \(onConflict);
            END
            """,
        ] : [
            """
            CREATE FUNCTION probe_rollups_add() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO probe_rollups (probe, slot, checks, up_checks, latency_sum)
                \(sums) FROM inserted GROUP BY 1, 2 ORDER BY 1, 2
                \(onConflict);
                RETURN NULL;
            END
            $$
            """,
            "CREATE TRIGGER probe_results_rollup AFTER INSERT ON probe_results REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION probe_rollups_add()",
        ]
        return (sqlite ? [] : ["LOCK TABLE probe_results IN SHARE ROW EXCLUSIVE MODE"]) + [
            """
            CREATE TABLE probe_rollups (
                probe TEXT NOT NULL, slot \(bigint) NOT NULL, checks \(bigint) NOT NULL, up_checks \(bigint) NOT NULL, latency_sum \(bigint) NOT NULL,
                PRIMARY KEY (probe, slot)
            )
            """,
        ] + trigger + ["INSERT INTO probe_rollups (probe, slot, checks, up_checks, latency_sum) \(sums) FROM probe_results WHERE 1 = 1 GROUP BY 1, 2"]
    }

    public func probeResults(probe: String, fromMicros: Int64, limit: Int) async throws -> [ProbeResult] {
        var b = SQLBuilder(dialect: dialect)
        let sql = "SELECT probe, ts, up, status, latency_us, error FROM probe_results WHERE probe = \(b.bind(.text(probe))) AND ts >= \(b.bind(.int(fromMicros))) ORDER BY ts DESC LIMIT \(b.bind(.int(Int64(limit))))"
        return try await driver.query(sql, b.binds).map { row in
            ProbeResult(probe: row["probe"].text ?? "", timestampMicros: row["ts"].int ?? 0, up: row["up"].int == 1, status: row["status"].int.map { Int($0) },
                        latencyMicros: row["latency_us"].int ?? 0, error: row["error"].text)
        }
    }

    /// `probe IN (…)` over bound names, and the span [from, to).
    private func probeSpan(_ probes: [String], _ fromMicros: Int64, _ toMicros: Int64, _ b: inout SQLBuilder) -> String {
        "probe IN (\(probes.map { b.bind(.text($0)) }.joined(separator: ", "))) AND ts >= \(b.bind(.int(fromMicros))) AND ts < \(b.bind(.int(toMicros)))"
    }

    public func probeUptime(probes: [String], fromMicros: Int64, toMicros: Int64, bucketMicros: Int64?) async throws -> [ProbeUptime] {
        guard !probes.isEmpty else { return [] }
        var b = SQLBuilder(dialect: dialect)
        let bucket = bucketMicros.map { "(ts / \(b.bind(.int($0)))) * \(b.bind(.int($0)))" } ?? "NULL"
        // Each part gives (probe, ts, checks, up_checks, latency_sum): rollup hours or single results.
        var parts: [String] = []
        var raw: [(from: Int64, to: Int64)] = [(fromMicros, toMicros)]
        if let hours = try await rollupHours(fromMicros: fromMicros, toMicros: toMicros, bucketMicros: bucketMicros) {
            parts.append("""
                SELECT probe, slot AS ts, checks, up_checks, latency_sum FROM probe_rollups
                WHERE probe IN (\(probes.map { b.bind(.text($0)) }.joined(separator: ", "))) AND slot >= \(b.bind(.int(hours.from))) AND slot < \(b.bind(.int(hours.to)))
                """)
            raw = [(fromMicros, hours.from), (hours.to, toMicros)].filter { $0.0 < $0.1 }
        }
        for span in raw {
            parts.append("SELECT probe, ts, 1 AS checks, up AS up_checks, latency_us AS latency_sum FROM probe_results WHERE \(probeSpan(probes, span.from, span.to, &b))")
        }
        guard !parts.isEmpty else { return [] }
        // The average as the sum over the count: exact, as an average of the checks' latencies is.
        let sql = """
            SELECT probe, \(bucket) AS bucket, \(dialect.sumInt("checks")) AS checks, \(dialect.sumInt("up_checks")) AS up_checks,
                   CAST(SUM(latency_sum) AS DOUBLE PRECISION) / CAST(SUM(checks) AS DOUBLE PRECISION) AS latency
            FROM (\(parts.joined(separator: " UNION ALL "))) parts GROUP BY probe, bucket HAVING SUM(checks) > 0 ORDER BY probe, bucket
            """
        return try await driver.query(sql, b.binds).map { row in
            ProbeUptime(probe: row["probe"].text ?? "", bucketStartMicros: bucketMicros == nil ? nil : row["bucket"].int, checks: row["checks"].int ?? 0,
                        upChecks: row["up_checks"].int ?? 0, averageLatencyMicros: row["latency"].double ?? 0)
        }
    }

    /// The whole hours of [from, to) that the rollups answer (nil when none do, or when buckets
    /// are not whole hours). The hour holding the oldest result stays with the results: pruning
    /// may have taken part of it.
    private func rollupHours(fromMicros: Int64, toMicros: Int64, bucketMicros: Int64?) async throws -> (from: Int64, to: Int64)? {
        let slot = Self.probeSlotMicros
        guard useRollups, bucketMicros.map({ $0 % slot == 0 }) ?? true else { return nil }
        let to = (toMicros / slot) * slot
        let from = fromMicros % slot == 0 ? fromMicros : (fromMicros / slot + (fromMicros > 0 ? 1 : 0)) * slot
        guard from < to, let oldest = try await driver.query("SELECT MIN(ts) AS oldest FROM probe_results", []).first?["oldest"].int else { return nil }
        let start = max(from, (oldest / slot) * slot + slot)
        return start < to ? (start, to) : nil
    }

    public func probeIncidents(probes: [String], fromMicros: Int64, toMicros: Int64, limit: Int) async throws -> [ProbeIncident] {
        guard !probes.isEmpty else { return [] }
        var b = SQLBuilder(dialect: dialect)
        let names = probes.map { b.bind(.text($0)) }.joined(separator: ", ")
        let from = b.bind(.int(fromMicros)), to = b.bind(.int(toMicros)), count = b.bind(.int(Int64(max(0, limit))))
        // An incident is a run of failed checks (in time, then id order, within the span): it
        // starts at a failed check whose previous check in the span passed (or that has none),
        // ends at the next passing check, and counts the failed checks between. Only failed
        // checks are visited (`probe_results_down` holds just those), each start's neighbours
        // are single index lookups, and only the newest `limit` starts are followed to their end:
        // ranking every check of a month took over a second.
        let after = { (alias: String, ts: String, id: String) in "(\(alias).ts > \(ts) OR (\(alias).ts = \(ts) AND \(alias).id > \(id)))" }
        let sql = """
            SELECT probe, started, ended, first_error,
                   (SELECT COUNT(*) FROM probe_results p WHERE p.probe = runs.probe AND p.up = 0 AND p.ts >= runs.started AND p.ts < \(to)
                        AND (p.ts > runs.started OR p.id >= runs.first_id)
                        AND (runs.ended IS NULL OR p.ts < runs.ended OR (p.ts = runs.ended AND p.id < runs.ended_id))) AS checks
            FROM (
                SELECT probe, started, first_id, first_error,
                       (SELECT p.ts FROM probe_results p WHERE p.probe = starts.probe AND p.up = 1 AND p.ts >= starts.started AND p.ts < \(to)
                            AND \(after("p", "starts.started", "starts.first_id")) ORDER BY p.ts, p.id LIMIT 1) AS ended,
                       (SELECT p.id FROM probe_results p WHERE p.probe = starts.probe AND p.up = 1 AND p.ts >= starts.started AND p.ts < \(to)
                            AND \(after("p", "starts.started", "starts.first_id")) ORDER BY p.ts, p.id LIMIT 1) AS ended_id
                FROM (
                    SELECT d.probe, d.ts AS started, d.id AS first_id, d.error AS first_error FROM probe_results d
                    WHERE d.probe IN (\(names)) AND d.ts >= \(from) AND d.ts < \(to) AND d.up = 0
                      AND COALESCE((SELECT p.up FROM probe_results p WHERE p.probe = d.probe AND p.ts >= \(from) AND p.ts <= d.ts
                                        AND (p.ts < d.ts OR p.id < d.id) ORDER BY p.ts DESC, p.id DESC LIMIT 1), 1) = 1
                    ORDER BY d.ts DESC, d.probe LIMIT \(count)
                ) starts
            ) runs
            ORDER BY started DESC, probe
            """
        return try await driver.query(sql, b.binds).map { row in
            ProbeIncident(probe: row["probe"].text ?? "", startedMicros: row["started"].int ?? 0, endedMicros: row["ended"].int,
                          failedChecks: row["checks"].int ?? 0, firstError: row["first_error"].text)
        }
    }

    public func recordHeartbeat(name: String, atMicros: Int64) async throws {
        var b = SQLBuilder(dialect: dialect)
        let n = b.bind(.text(name)), t = b.bind(.int(atMicros))
        try await driver.transaction([SQLStatement(
            "INSERT INTO heartbeats (name, last_ping) VALUES (\(n), \(t)) ON CONFLICT (name) DO UPDATE SET last_ping = \(dialect.greatest("heartbeats.last_ping", "excluded.last_ping"))", b.binds)])
    }

    public func heartbeats() async throws -> [String: Int64] {
        var result: [String: Int64] = [:]
        for row in try await driver.query("SELECT name, last_ping FROM heartbeats", []) {
            if let name = row["name"].text, let t = row["last_ping"].int { result[name] = t }
        }
        return result
    }

    public func recordHeartbeatFailure(_ failure: HeartbeatFailure) async throws {
        var b = SQLBuilder(dialect: dialect)
        let n = b.bind(.text(failure.name)), t = b.bind(.int(failure.atMicros)), e = b.bind(.text(String(failure.error.prefix(500))))
        // An older report arriving late does not replace a newer one.
        try await driver.transaction([SQLStatement("""
            INSERT INTO heartbeat_failures (name, failed_at, error) VALUES (\(n), \(t), \(e))
            ON CONFLICT (name) DO UPDATE SET failed_at = excluded.failed_at, error = excluded.error
            WHERE excluded.failed_at >= heartbeat_failures.failed_at
            """, b.binds)])
    }

    public func heartbeatFailures() async throws -> [String: HeartbeatFailure] {
        var result: [String: HeartbeatFailure] = [:]
        for row in try await driver.query("SELECT name, failed_at, error FROM heartbeat_failures", []) {
            if let name = row["name"].text, let t = row["failed_at"].int {
                result[name] = HeartbeatFailure(name: name, atMicros: t, error: row["error"].text ?? "")
            }
        }
        return result
    }

    /// Failures of built-in heartbeats' jobs (scheduled backups), so DOWN survives a restart.
    static func heartbeatFailureMigration(sqlite: Bool) -> [String] {
        ["CREATE TABLE heartbeat_failures (name TEXT PRIMARY KEY, failed_at \(sqlite ? "INTEGER" : "BIGINT") NOT NULL, error TEXT NOT NULL)"]
    }

    public func acquireLease(name: String, holder: String, nowMicros: Int64, durationMicros: Int64) async throws -> Bool {
        var b = SQLBuilder(dialect: dialect)
        let n = b.bind(.text(name)), h = b.bind(.text(holder)), expires = b.bind(.int(nowMicros + durationMicros)), now = b.bind(.int(nowMicros))
        // Insert, or take over when expired, or renew our own; then read who holds it.
        try await driver.transaction([SQLStatement("""
            INSERT INTO leases (name, holder, expires_at) VALUES (\(n), \(h), \(expires))
            ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
            WHERE leases.holder = excluded.holder OR leases.expires_at < \(now)
            """, b.binds)])
        var r = SQLBuilder(dialect: dialect)
        let row = try await driver.query("SELECT holder FROM leases WHERE name = \(r.bind(.text(name)))", r.binds).first
        return row?["holder"].text == holder
    }

    public func pruneProbeResults(beforeMicros: Int64) async throws {
        var b = SQLBuilder(dialect: dialect)
        var r = SQLBuilder(dialect: dialect)
        let slot = Self.probeSlotMicros
        let cutoff = r.bind(.int((beforeMicros / slot) * slot)), w1 = r.bind(.int(slot)), w2 = r.bind(.int(slot))
        // Rollup hours go once no result is left in them; the hour the cutoff cuts stays (uptime reads it from the results).
        try await driver.transaction([
            SQLStatement("DELETE FROM probe_results WHERE ts < \(b.bind(.int(beforeMicros)))", b.binds),
            SQLStatement("""
                DELETE FROM probe_rollups WHERE slot < \(cutoff) AND slot < COALESCE((SELECT (MIN(ts) / \(w1)) * \(w2) FROM probe_results), \(cutoff))
                """, r.binds),
        ])
    }
}
