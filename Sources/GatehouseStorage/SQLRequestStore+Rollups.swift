import Foundation
import GatehouseCore

/// Reading the rollups (`RequestRollups`): which slots a usage query can take from them, and the
/// statement that adds their sums to the calls' in the part-slots at either end.
extension SQLRequestStore {
    /// Where a usage query reads the rollups: whole slots (half hours) from `slotFrom` to
    /// `slotTo` at `level` (the whole days among them from the daily rows), and the calls
    /// themselves in `edges` (the part-slots at either end).
    struct RollupPlan: Sendable {
        var level: RequestRollups.Level
        var slotFrom: Int64
        var slotTo: Int64
        var edges: [(from: Int64, to: Int64)]
        var useDays = true

        /// The same span from slot rows only (series buckets need not be whole days).
        var bySlot: RollupPlan {
            var plan = self
            plan.useDays = false
            return plan
        }

        /// The rollup rows to read: `level` column values with their [from, to) slots.
        func parts(_ level: RequestRollups.Level) -> [(stored: Int64, from: Int64, to: Int64)] {
            let day = TimeExpressions.microsPerDay
            let slot = RequestRollups.stored(level, .slot)
            let dayFrom = slotFrom % day == 0 ? slotFrom : (slotFrom / day + 1) * day, dayTo = (slotTo / day) * day
            guard useDays, dayFrom < dayTo else { return [(slot, slotFrom, slotTo)] }
            return [(slot, slotFrom, dayFrom), (RequestRollups.stored(level, .day), dayFrom, dayTo), (slot, dayTo, slotTo)].filter { $0.1 < $0.2 }
        }
    }

    /// The rollup level that answers `query`, or nil when only the calls can (a user, property,
    /// correlation or query-language filter, a user or property grouping, a key together with
    /// call dimensions, or a range without a whole slot).
    func rollupPlan(_ query: UsageQuery) async throws -> RollupPlan? {
        guard useRollups else { return nil }
        let f = query.filter
        // The filter rebuilt from the fields the rollups keep (`rollupConditions`) differs from it
        // when any other field is set, including one added to `RequestFilter` later.
        let kept = RequestFilter(model: f.model, provider: f.provider, keyID: f.keyID, route: f.route, status: f.status, failed: f.failed)
        guard f == kept else { return nil }
        let callFilter = f.model != nil || f.provider != nil || f.route != nil || f.status != nil || f.failed != nil
        let level: RequestRollups.Level
        switch query.groupBy {
        case nil: level = f.keyID == nil ? .calls : .keys
        case .model?, .provider?, .route?, .status?: level = .calls
        case .key?: level = .keys
        case .user?, .property?: return nil
        }
        guard level == .keys ? !callFilter : f.keyID == nil else { return nil }
        let slot = RequestRollups.slotMicros
        func ceilSlot(_ t: Int64) -> Int64 { t % slot == 0 ? t : (t / slot + (t > 0 ? 1 : 0)) * slot }
        let to = (query.toMicros / slot) * slot
        guard ceilSlot(query.fromMicros) < to else { return nil }
        // Retention deletes the oldest calls first, and a slot only once no call is left in it:
        // the slot holding the oldest call may have lost some, so it is read from the calls.
        guard let oldest = try await driver.query("SELECT MIN(ts) AS oldest FROM requests", []).first?["oldest"].int else { return nil }
        let from = max(ceilSlot(query.fromMicros), (oldest / slot) * slot + slot)
        guard from < to else { return nil }
        let edges = [(query.fromMicros, from), (to, query.toMicros)].filter { $0.0 < $0.1 }
        return RollupPlan(level: level, slotFrom: from, slotTo: to, edges: edges)
    }

    /// The sums of the rollups' whole slots and of the calls in the part-slots at either end, in
    /// one statement: both sides give the columns the aggregate reads, under the calls' names.
    func rollupAggregate(_ query: UsageQuery, plan: RollupPlan, group: UsageGrouping?, bucket: Int64?) async throws
        -> [(key: String?, stats: UsageStats)] {
        var builder = SQLBuilder(dialect: dialect)
        let keyExpression = aggregateKey(group: group, bucket: bucket, &builder)
        let sums = RequestRollups.sumColumns.dropFirst(2).joined(separator: ", ")
        var parts: [String] = []
        for part in plan.parts(plan.level) {
            var rollup = ["level = \(builder.bind(.int(part.stored)))", "slot >= \(builder.bind(.int(part.from)))", "slot < \(builder.bind(.int(part.to)))"]
            rollup += rollupConditions(query.filter, &builder)
            if group == nil {
                // Summed per slot first: the primary key hands rows over in slot order, so this
                // needs no sort, and the outer grouping sorts one row per slot, not per rollup row.
                let summed = RequestRollups.sumColumns.map { "SUM(\($0)) AS \($0)" }.joined(separator: ", ")
                parts.append("""
                    SELECT slot AS ts, CAST(NULL AS TEXT) AS model, CAST(NULL AS TEXT) AS provider, CAST(NULL AS TEXT) AS route,
                           CAST(NULL AS INTEGER) AS status, CAST(NULL AS TEXT) AS key_id, \(summed)
                    FROM request_rollups\(SQLBuilder.whereClause(rollup)) GROUP BY slot
                    """)
            } else {
                parts.append("""
                    SELECT slot AS ts, model, provider, route, status, CASE WHEN has_key = 1 THEN key_id END AS key_id, requests, errors, \(sums)
                    FROM request_rollups\(SQLBuilder.whereClause(rollup))
                    """)
            }
        }
        for edge in plan.edges {
            var conditions = try filterConditions(query.filter, &builder)
            conditions.append("ts >= \(builder.bind(.int(edge.from)))")
            conditions.append("ts < \(builder.bind(.int(edge.to)))")
            parts.append("""
                SELECT ts, model, provider, route, status, key_id, 1 AS requests, \(RequestRollups.failedSQL("error_class")) AS errors, \(sums)
                FROM requests\(SQLBuilder.whereClause(conditions))
                """)
        }
        var select = RequestRollups.sumColumns.map { "\(dialect.sumInt($0)) AS \($0)" }
        if let keyExpression { select.insert("\(keyExpression) AS group_key", at: 0) }
        var sql = "SELECT \(select.joined(separator: ", ")) FROM (\(parts.joined(separator: " UNION ALL "))) parts"
        if keyExpression != nil { sql += " GROUP BY 1" }
        return try await driver.query(sql, builder.binds).map { Self.decodeStats($0, grouped: keyExpression != nil) }
    }

    /// The filter on rollup rows of the plan's level (`rollupPlan` sends no other filter here).
    func rollupConditions(_ filter: RequestFilter, _ builder: inout SQLBuilder) -> [String] {
        var c: [String] = []
        if let v = filter.model { c.append("model = \(builder.bind(.text(v)))") }
        if let v = filter.provider { c.append("provider = \(builder.bind(.text(v)))") }
        if let v = filter.route { c.append("route = \(builder.bind(.text(v.rawValue)))") }
        if let v = filter.status { c.append("status = \(builder.bind(.int(Int64(v))))") }
        if let failed = filter.failed { c.append("failed = \(failed ? 1 : 0)") }
        if let v = filter.keyID { c.append("has_key = 1 AND key_id = \(builder.bind(.text(v)))") }
        return c
    }
}
