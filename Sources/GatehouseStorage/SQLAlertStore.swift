import Foundation
import GatehouseCore

/// Alert history, silences, deliveries, probe results, heartbeats and leases on any `SQLDriver`.
public final class SQLAlertStore: AlertStore {
    let driver: any SQLDriver
    private var dialect: any SQLDialect { driver.dialect }

    init(driver: any SQLDriver) { self.driver = driver }

    /// Rows go in statements of at most 500, all in one transaction: far below both databases' bind limits.
    private func insert(_ table: String, _ columns: [String], _ rows: [[SQLValue]]) async throws {
        guard !rows.isEmpty else { return }
        var statements: [SQLStatement] = []
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

    public func recordProbeResults(_ results: [ProbeResult]) async throws {
        try await insert("probe_results", ["probe", "ts", "up", "status", "latency_us", "error"], results.map {
            [.text($0.probe), .int($0.timestampMicros), .int($0.up ? 1 : 0), $0.status.map { .int(Int64($0)) } ?? .null, .int($0.latencyMicros),
             $0.error.map { .text(String($0.prefix(500))) } ?? .null]
        })
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
        let span = probeSpan(probes, fromMicros, toMicros, &b)
        let sql = """
            SELECT probe, \(bucket) AS bucket, COUNT(*) AS checks, \(dialect.sumInt("up")) AS up_checks,
                   AVG(CAST(latency_us AS DOUBLE PRECISION)) AS latency
            FROM probe_results WHERE \(span) GROUP BY probe, bucket ORDER BY probe, bucket
            """
        return try await driver.query(sql, b.binds).map { row in
            ProbeUptime(probe: row["probe"].text ?? "", bucketStartMicros: bucketMicros == nil ? nil : row["bucket"].int, checks: row["checks"].int ?? 0,
                        upChecks: row["up_checks"].int ?? 0, averageLatencyMicros: row["latency"].double ?? 0)
        }
    }

    public func probeIncidents(probes: [String], fromMicros: Int64, toMicros: Int64, limit: Int) async throws -> [ProbeIncident] {
        guard !probes.isEmpty else { return [] }
        var b = SQLBuilder(dialect: dialect)
        let span = probeSpan(probes, fromMicros, toMicros, &b)
        // Runs of equal `up` (a new run where `up` changes), each failing run with the start of
        // the run after it: the check that passed again.
        let sql = """
            WITH marked AS (
                SELECT id, probe, ts, up, CASE WHEN up = LAG(up) OVER (PARTITION BY probe ORDER BY ts, id) THEN 0 ELSE 1 END AS starts_run
                FROM probe_results WHERE \(span)
            ), numbered AS (
                SELECT id, probe, ts, up, starts_run,
                       SUM(starts_run) OVER (PARTITION BY probe ORDER BY ts, id ROWS UNBOUNDED PRECEDING) AS run
                FROM marked
            ), runs AS (
                SELECT probe, run, MIN(up) AS up, MIN(ts) AS started, MIN(CASE WHEN starts_run = 1 THEN id END) AS first_id, COUNT(*) AS checks
                FROM numbered GROUP BY probe, run
            ), spans AS (
                SELECT probe, up, started, first_id, checks, LEAD(started) OVER (PARTITION BY probe ORDER BY run) AS ended FROM runs
            )
            SELECT spans.probe, started, ended, checks, probe_results.error AS first_error
            FROM spans JOIN probe_results ON probe_results.id = spans.first_id
            WHERE spans.up = 0 ORDER BY started DESC, spans.probe LIMIT \(b.bind(.int(Int64(limit))))
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
        try await driver.transaction([SQLStatement("DELETE FROM probe_results WHERE ts < \(b.bind(.int(beforeMicros)))", b.binds)])
    }
}
