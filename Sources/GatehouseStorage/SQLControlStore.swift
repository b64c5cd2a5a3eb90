import Foundation
import GatehouseCore

/// The controls' shared state on SQLite or PostgreSQL. Keys and switches are stored as JSON
/// documents (they are read whole and cached in memory); counters are plain rows updated with
/// single atomic statements so concurrent instances never lose an increment.
public final class SQLControlStore: ControlStore {
    let driver: any SQLDriver
    private var d: any SQLDialect { driver.dialect }

    init(driver: any SQLDriver) { self.driver = driver }

    private func p(_ i: Int) -> String { d.placeholder(i) }

    private static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    // MARK: Keys

    public func insertKey(_ key: VirtualKey) async throws {
        let document = String(decoding: try Self.encoder.encode(key), as: UTF8.self)
        try await driver.transaction([
            SQLStatement("INSERT INTO virtual_keys (id, hash, document, updated_at) VALUES (\(p(1)), \(p(2)), \(p(3)), \(p(4)))",
                         [.text(key.id), .text(key.hash), .text(document), .int(key.updatedAtMicros)]),
            bump("keys"),
        ])
    }

    public func updateKey(_ key: VirtualKey) async throws {
        let document = String(decoding: try Self.encoder.encode(key), as: UTF8.self)
        try await driver.transaction([
            SQLStatement("UPDATE virtual_keys SET hash = \(p(1)), document = \(p(2)), updated_at = \(p(3)) WHERE id = \(p(4))",
                         [.text(key.hash), .text(document), .int(key.updatedAtMicros), .text(key.id)]),
            bump("keys"),
        ])
    }

    public func key(id: String) async throws -> VirtualKey? {
        try await driver.query("SELECT document FROM virtual_keys WHERE id = \(p(1))", [.text(id)]).first.map(Self.decodeKey)
    }

    public func allKeys() async throws -> [VirtualKey] {
        try await driver.query("SELECT document FROM virtual_keys ORDER BY id", []).map(Self.decodeKey)
    }

    static func decodeKey(_ row: SQLRow) throws -> VirtualKey {
        guard let text = row["document"].text else { throw StoreError.corrupt("virtual key without document") }
        return try JSONDecoder().decode(VirtualKey.self, from: Data(text.utf8))
    }

    public func keysVersion() async throws -> String { try await version("keys") }

    /// A counter per kind of shared document, bumped in the same transaction as each change, so
    /// instances notice changes with one cheap read.
    private func bump(_ name: String) -> SQLStatement {
        SQLStatement("INSERT INTO control_versions (name, version) VALUES (\(p(1)), 1) ON CONFLICT (name) DO UPDATE SET version = control_versions.version + 1",
                     [.text(name)])
    }

    private func version(_ name: String) async throws -> String {
        let rows = try await driver.query("SELECT version FROM control_versions WHERE name = \(p(1))", [.text(name)])
        return rows.first?["version"].text ?? "0"
    }

    // MARK: Switches

    public func setSwitch(_ s: KillSwitch) async throws {
        let document = String(decoding: try Self.encoder.encode(s), as: UTF8.self)
        try await driver.transaction([
            SQLStatement("""
                INSERT INTO kill_switches (kind, value, document, updated_at) VALUES (\(p(1)), \(p(2)), \(p(3)), \(p(4)))
                ON CONFLICT (kind, value) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at
                """, [.text(s.kind.rawValue), .text(s.value), .text(document), .int(TimeExpressions.nowMicros())]),
            bump("switches"),
        ])
    }

    public func removeSwitch(kind: KillSwitch.Kind, value: String) async throws -> Bool {
        let existing = try await driver.query("SELECT kind FROM kill_switches WHERE kind = \(p(1)) AND value = \(p(2))", [.text(kind.rawValue), .text(value)])
        guard !existing.isEmpty else { return false }
        try await driver.transaction([
            SQLStatement("DELETE FROM kill_switches WHERE kind = \(p(1)) AND value = \(p(2))", [.text(kind.rawValue), .text(value)]),
            bump("switches"),
        ])
        return true
    }

    public func allSwitches() async throws -> [KillSwitch] {
        try await driver.query("SELECT document FROM kill_switches ORDER BY kind, value", []).map { row in
            guard let text = row["document"].text else { throw StoreError.corrupt("switch without document") }
            return try JSONDecoder().decode(KillSwitch.self, from: Data(text.utf8))
        }
    }

    public func switchesVersion() async throws -> String { try await version("switches") }

    // MARK: Audit

    public func appendAudit(_ entry: AuditEntry) async throws {
        _ = try await driver.query("INSERT INTO audit_log (ts, actor, action, target, details) VALUES (\(p(1)), \(p(2)), \(p(3)), \(p(4)), \(p(5)))",
                                   [.int(entry.timestampMicros), .text(entry.actor), .text(entry.action), .text(entry.target), .text(entry.details)])
    }

    public func audit(limit: Int, before: Int64?, matching filter: AuditFilter) async throws -> [AuditEntry] {
        var conditions: [String] = []
        var binds: [SQLValue] = []
        func bind(_ value: SQLValue) -> String {
            binds.append(value)
            return p(binds.count)
        }
        if let before { conditions.append("id < \(bind(.int(before)))") }
        // LOWER on both sides: SQLite's LIKE ignores ASCII case, PostgreSQL's does not.
        let patterns = [("actor", "%" + QueryCompiler.escapeLike(filter.actor.lowercased()) + "%", filter.actor),
                        ("action", QueryCompiler.escapeLike(filter.action.lowercased()) + "%", filter.action),
                        ("target", "%" + QueryCompiler.escapeLike(filter.target.lowercased()) + "%", filter.target)]
        for (column, pattern, text) in patterns where !text.isEmpty {
            conditions.append("LOWER(\(column)) LIKE \(bind(.text(pattern))) ESCAPE '\\'")
        }
        var sql = "SELECT id, ts, actor, action, target, details FROM audit_log"
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        sql += " ORDER BY id DESC LIMIT \(bind(.int(Int64(limit))))"
        return try await driver.query(sql, binds).map { row in
            AuditEntry(id: row["id"].int ?? 0, timestampMicros: row["ts"].int ?? 0, actor: row["actor"].text ?? "",
                       action: row["action"].text ?? "", target: row["target"].text ?? "", details: row["details"].text ?? "{}")
        }
    }

    // MARK: Quota counters

    public func claimQuota(counter: String, windowStartMicros: Int64, want: Int64, need: Int64, limit: Int64) async throws -> (granted: Int64, total: Int64) {
        var ask = min(want, limit)
        // Contended counters may need a second try with what is left.
        for _ in 0..<4 {
            guard ask >= need, ask > 0 else { break }
            let rows = try await driver.query("""
                INSERT INTO quota_counters (counter, window_start, granted, used, limit_value, updated_at)
                VALUES (\(p(1)), \(p(2)), \(p(3)), 0, \(p(4)), \(p(5)))
                ON CONFLICT (counter, window_start) DO UPDATE
                    SET granted = quota_counters.granted + excluded.granted, limit_value = excluded.limit_value, updated_at = excluded.updated_at
                    WHERE quota_counters.granted + excluded.granted <= excluded.limit_value
                RETURNING granted
                """, [.text(counter), .int(windowStartMicros), .int(ask), .int(limit), .int(TimeExpressions.nowMicros())])
            if let total = rows.first?["granted"].int { return (ask, total) }
            let current = try await granted(counter: counter, windowStartMicros: windowStartMicros)
            ask = min(ask, limit - current)
            if ask < need { return (0, current) }
        }
        return (0, try await granted(counter: counter, windowStartMicros: windowStartMicros))
    }

    private func granted(counter: String, windowStartMicros: Int64) async throws -> Int64 {
        try await driver.query("SELECT granted FROM quota_counters WHERE counter = \(p(1)) AND window_start = \(p(2))",
                               [.text(counter), .int(windowStartMicros)]).first?["granted"].int ?? 0
    }

    public func settleQuota(_ changes: [QuotaChange]) async throws -> [QuotaCount] {
        var results: [QuotaCount] = []
        for change in changes where change.released != 0 || change.used != 0 {
            let rows = try await driver.query("""
                INSERT INTO quota_counters (counter, window_start, granted, used, limit_value, updated_at)
                VALUES (\(p(1)), \(p(2)), 0, \(p(3)), \(p(4)), \(p(5)))
                ON CONFLICT (counter, window_start) DO UPDATE
                    SET granted = CASE WHEN quota_counters.granted - \(p(6)) < 0 THEN 0 ELSE quota_counters.granted - \(p(6)) END,
                        used = quota_counters.used + excluded.used, updated_at = excluded.updated_at
                RETURNING granted, used, limit_value
                """, [.text(change.counter), .int(change.windowStartMicros), .int(change.used), .int(change.limit), .int(TimeExpressions.nowMicros()),
                      .int(change.released)])
            if let row = rows.first {
                results.append(QuotaCount(counter: change.counter, windowStartMicros: change.windowStartMicros, granted: row["granted"].int ?? 0,
                                          used: row["used"].int ?? 0, limit: row["limit_value"].int ?? change.limit))
            }
        }
        return results
    }

    public func quotaCounts(counterPrefix: String, sinceWindowMicros: Int64) async throws -> [QuotaCount] {
        let escaped = QueryCompiler.escapeLike(counterPrefix)
        return try await driver.query("""
            SELECT counter, window_start, granted, used, limit_value FROM quota_counters
            WHERE counter LIKE \(p(1)) ESCAPE '\\' AND window_start >= \(p(2)) ORDER BY counter, window_start
            """, [.text(escaped + "%"), .int(sinceWindowMicros)]).map { row in
            QuotaCount(counter: row["counter"].text ?? "", windowStartMicros: row["window_start"].int ?? 0, granted: row["granted"].int ?? 0,
                       used: row["used"].int ?? 0, limit: row["limit_value"].int ?? 0)
        }
    }

    /// Windows per statement: two binds each keeps far below both databases' bind limits.
    static let windowsPerStatement = 200

    public func quotaCounts(windows: [QuotaWindowQuery]) async throws -> [QuotaCount] {
        let distinct = Array(Set(windows)).sorted { ($0.counterPrefix, $0.windowStartMicros) < ($1.counterPrefix, $1.windowStartMicros) }
        var seen: Set<String> = [], result: [QuotaCount] = []
        var start = 0
        while start < distinct.count {
            var b = SQLBuilder(dialect: d)
            let terms = distinct[start..<min(start + Self.windowsPerStatement, distinct.count)].map { w in
                "(counter LIKE \(b.bind(.text(QueryCompiler.escapeLike(w.counterPrefix) + "%"))) ESCAPE '\\' AND window_start = \(b.bind(.int(w.windowStartMicros))))"
            }
            let rows = try await driver.query("""
                SELECT counter, window_start, granted, used, limit_value FROM quota_counters
                WHERE \(terms.joined(separator: " OR ")) ORDER BY counter, window_start
                """, b.binds)
            for row in rows {
                let count = QuotaCount(counter: row["counter"].text ?? "", windowStartMicros: row["window_start"].int ?? 0, granted: row["granted"].int ?? 0,
                                       used: row["used"].int ?? 0, limit: row["limit_value"].int ?? 0)
                if seen.insert(count.counter + "\u{0}\(count.windowStartMicros)").inserted { result.append(count) }
            }
            start += Self.windowsPerStatement
        }
        return result
    }

    // MARK: Budget events

    public func recordBudgetEvent(_ e: BudgetEvent) async throws -> Bool {
        let rows = try await driver.query("""
            INSERT INTO budget_events (counter, window_start, threshold_percent, used, limit_value, ts)
            VALUES (\(p(1)), \(p(2)), \(p(3)), \(p(4)), \(p(5)), \(p(6)))
            ON CONFLICT (counter, window_start, threshold_percent) DO NOTHING RETURNING ts
            """, [.text(e.counter), .int(e.windowStartMicros), .int(Int64(e.thresholdPercent)), .int(e.usedMicros), .int(e.limitMicros),
                  .int(e.timestampMicros)])
        return !rows.isEmpty
    }

    public func budgetEvents(sinceMicros: Int64, limit: Int) async throws -> [BudgetEvent] {
        try await driver.query("""
            SELECT counter, window_start, threshold_percent, used, limit_value, ts FROM budget_events
            WHERE ts >= \(p(1)) ORDER BY ts DESC LIMIT \(p(2))
            """, [.int(sinceMicros), .int(Int64(limit))]).map { row in
            BudgetEvent(counter: row["counter"].text ?? "", windowStartMicros: row["window_start"].int ?? 0,
                        thresholdPercent: Int(row["threshold_percent"].int ?? 0), usedMicros: row["used"].int ?? 0,
                        limitMicros: row["limit_value"].int ?? 0, timestampMicros: row["ts"].int ?? 0)
        }
    }

    // MARK: Cache

    public func cachedResponse(key: String, nowMicros: Int64) async throws -> CachedResponse? {
        guard let row = try await driver.query("""
            SELECT key, status, content_type, body, model, provider, usage, cost_micros, created_at, expires_at
            FROM cache_entries WHERE key = \(p(1)) AND expires_at > \(p(2))
            """, [.text(key), .int(nowMicros)]).first,
            let body = row["body"].text.flatMap({ Data(base64Encoded: $0) }) else { return nil }
        let usage = row["usage"].text.flatMap { try? JSONDecoder().decode(TokenUsage.self, from: Data($0.utf8)) } ?? .zero
        return CachedResponse(key: key, status: Int(row["status"].int ?? 200), contentType: row["content_type"].text ?? "application/json",
                              body: [UInt8](body), model: row["model"].text ?? "", provider: row["provider"].text ?? "", usage: usage,
                              cost: MicroDollars(row["cost_micros"].int ?? 0), createdAtMicros: row["created_at"].int ?? 0,
                              expiresAtMicros: row["expires_at"].int ?? 0)
    }

    public func storeCachedResponses(_ entries: [CachedResponse]) async throws {
        guard !entries.isEmpty else { return }
        try await driver.transaction(entries.map { e in
            SQLStatement("""
                INSERT INTO cache_entries (key, status, content_type, body, model, provider, usage, cost_micros, created_at, expires_at)
                VALUES (\(p(1)), \(p(2)), \(p(3)), \(p(4)), \(p(5)), \(p(6)), \(p(7)), \(p(8)), \(p(9)), \(p(10)))
                ON CONFLICT (key) DO UPDATE SET status = excluded.status, content_type = excluded.content_type, body = excluded.body,
                    model = excluded.model, provider = excluded.provider, usage = excluded.usage, cost_micros = excluded.cost_micros,
                    created_at = excluded.created_at, expires_at = excluded.expires_at
                """, [.text(e.key), .int(Int64(e.status)), .text(e.contentType), .text(Data(e.body).base64EncodedString()), .text(e.model),
                      .text(e.provider), .text(String(decoding: (try? Self.encoder.encode(e.usage)) ?? Data("{}".utf8), as: UTF8.self)),
                      .int(e.cost.value), .int(e.createdAtMicros), .int(e.expiresAtMicros)])
        })
    }

    public func pruneCache(nowMicros: Int64) async throws {
        _ = try await driver.query("DELETE FROM cache_entries WHERE expires_at <= \(p(1))", [.int(nowMicros)])
    }
}
