import Foundation
import GatehouseCore

/// Latency percentiles where SQL has no `percentile_cont` (SQLite), and through the rollups'
/// latency histogram for long ranges on either database.
extension SQLRequestStore {
    /// The key of calls without a group value in `percentilesInSQL`'s answer (a text value never has it).
    static let noGroup = "\u{0}"

    /// Percentiles for SQLite, which has no `percentile_cont`: the database orders each group's
    /// latencies and hands back only the values at the ranks the interpolation reads (at most six
    /// per group), interpolated here exactly as `percentile_cont` does. `count` is the number of
    /// calls when there is no grouping (the totals already know it); with a grouping each group's
    /// count comes from a window over the group.
    func percentilesInSQL(_ query: UsageQuery, group: UsageGrouping?, count: Int64?) async throws -> [String: LatencyPercentiles] {
        var builder = SQLBuilder(dialect: dialect)
        let keyExpression = group.map { groupExpression($0, &builder) } ?? "NULL"
        var conditions = try filterConditions(query.filter, &builder)
        conditions.append("ts >= \(builder.bind(.int(query.fromMicros)))")
        conditions.append("ts < \(builder.bind(.int(query.toMicros)))")
        guard let count else {
            let keyed = "SELECT \(keyExpression) AS group_key, latency_us AS v FROM requests\(SQLBuilder.whereClause(conditions))"
            return try await driver.rankedPercentiles(keyed: keyed, &builder, nullKey: Self.noGroup).mapValues(\.percentiles)
        }
        // Ungrouped with the count known: only the ranks it reads, without a window to count.
        let inner = "SELECT latency_us, ROW_NUMBER() OVER (ORDER BY latency_us) - 1 AS position FROM requests\(SQLBuilder.whereClause(conditions))"
        let wanted = "position IN (" + LatencyPercentiles.ranks(count: count).sorted().map { builder.bind(.int($0)) }.joined(separator: ", ") + ")"
        var at: [Int64: Int64] = [:]
        for row in try await driver.query("SELECT latency_us, position FROM (\(inner)) ranked WHERE \(wanted)", builder.binds) {
            at[row["position"].int ?? 0] = row["latency_us"].int ?? 0
        }
        return LatencyPercentiles.compute(count: count) { at[$0] }.map { [Self.noGroup: $0] } ?? [:]
    }

    /// Percentiles over the calls themselves: PostgreSQL's `percentile_cont`, or the ranked
    /// read above on SQLite. `count` is the number of calls when ungrouped.
    func rawPercentiles(_ query: UsageQuery, group: UsageGrouping?, count: Int64?) async throws -> [String: LatencyPercentiles] {
        guard dialect.hasPercentiles else { return try await percentilesInSQL(query, group: group, count: group == nil ? count : nil) }
        var builder = SQLBuilder(dialect: dialect)
        let keyExpression = group.map { groupExpression($0, &builder) }
        var conditions = try filterConditions(query.filter, &builder)
        conditions.append("ts >= \(builder.bind(.int(query.fromMicros)))")
        conditions.append("ts < \(builder.bind(.int(query.toMicros)))")
        let select = (keyExpression.map { "\($0) AS group_key, " } ?? "") + """
            percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_us) AS p50, percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_us) AS p95,
            percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_us) AS p99
            """
        let sql = "SELECT \(select) FROM requests\(SQLBuilder.whereClause(conditions))" + (keyExpression == nil ? "" : " GROUP BY 1")
        var result: [String: LatencyPercentiles] = [:]
        for row in try await driver.query(sql, builder.binds) {
            guard let p50 = row["p50"].double, let p95 = row["p95"].double, let p99 = row["p99"].double else { continue }
            result[row["group_key"].text ?? Self.noGroup] = LatencyPercentiles(p50: p50, p95: p95, p99: p99)
        }
        return result
    }

    /// Exact percentiles of an unfiltered range without ordering all its calls: the rollups'
    /// latency histogram (whole slots) and the calls of the part-slots give each bucket's count,
    /// which places every rank the interpolation needs in one bucket; the value at that rank is
    /// then read by walking `requests_latency_sort` from the bucket's lower bound, which passes
    /// only that bucket's calls. Nil when the histogram does not add up to `count` (the rollups
    /// disagree with the calls), so the caller ranks the calls instead.
    func histogramPercentiles(_ query: UsageQuery, plan: RollupPlan, count: Int64) async throws -> LatencyPercentiles? {
        var builder = SQLBuilder(dialect: dialect)
        var parts = plan.parts(.latency).map { part in
            """
            SELECT bucket, requests FROM request_rollups WHERE level = \(builder.bind(.int(part.stored)))
                AND slot >= \(builder.bind(.int(part.from))) AND slot < \(builder.bind(.int(part.to)))
            """
        }
        for edge in plan.edges {
            parts.append("""
                SELECT \(RequestRollups.latencyBucketSQL("latency_us")) AS bucket, 1 AS requests FROM requests
                WHERE ts >= \(builder.bind(.int(edge.from))) AND ts < \(builder.bind(.int(edge.to)))
                """)
        }
        let sql = "SELECT bucket, \(dialect.sumInt("requests")) AS n FROM (\(parts.joined(separator: " UNION ALL "))) parts GROUP BY bucket ORDER BY bucket"
        let histogram = try await driver.query(sql, builder.binds).map { (bucket: $0["bucket"].int ?? 0, n: $0["n"].int ?? 0) }
        guard histogram.reduce(0, { $0 + $1.n }) == count else { return nil }
        // The lower ranks of the three percentiles; each read also gives the rank after it.
        let lowerRanks = LatencyPercentiles.lowerRanks(count: count)
        var located: [(rank: Int64, bucket: Int64, offset: Int64)] = []
        var before: Int64 = 0
        for entry in histogram {
            for rank in lowerRanks where rank >= before && rank < before + entry.n {
                located.append((rank, entry.bucket, rank - before))
            }
            before += entry.n
        }
        guard located.count == lowerRanks.count else { return nil }
        // SQLite's planner, without statistics, would order the range by the time index instead.
        let hint = dialect.name == "sqlite" ? " INDEXED BY requests_latency_sort" : ""
        var values: [Int64: Int64] = [:]
        try await withThrowingTaskGroup(of: [(Int64, Int64)].self) { tasks in
            for (rank, bucket, offset) in located {
                tasks.addTask { [driver] in
                    var b = SQLBuilder(dialect: driver.dialect)
                    let sql = """
                        SELECT latency_us FROM requests\(hint) WHERE latency_us >= \(b.bind(.int(RequestRollups.lowerBound(ofBucket: bucket))))
                            AND ts >= \(b.bind(.int(query.fromMicros))) AND ts < \(b.bind(.int(query.toMicros)))
                        ORDER BY latency_us LIMIT 2 OFFSET \(b.bind(.int(offset)))
                        """
                    return try await driver.query(sql, b.binds).enumerated().map { (rank + Int64($0.offset), $0.element["latency_us"].int ?? 0) }
                }
            }
            for try await pairs in tasks { for (rank, value) in pairs { values[rank] = value } }
        }
        return LatencyPercentiles.compute(count: count) { values[$0] }
    }
}
