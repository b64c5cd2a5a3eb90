import GatehouseCore

extension SQLDriver {
    /// p50, p95 and p99 of each group for a database without `percentile_cont` (SQLite): the
    /// database orders each group's values and hands back only the values at the ranks the
    /// interpolation reads (at most six per group), interpolated here exactly as
    /// `percentile_cont` does. `keyed` selects `group_key` (text; NULL counts as `nullKey`) and
    /// `v` (an integer) with its binds in `builder`; each group's count comes from a window over it.
    func rankedPercentiles(keyed: String, _ builder: inout SQLBuilder, nullKey: String = "")
        async throws -> [String: (count: Int64, percentiles: LatencyPercentiles)] {
        // The same ranks as `LatencyPercentiles.ranks`, from each group's own count (REAL
        // arithmetic, as in Swift); p is bound, so the database multiplies the very double Swift does.
        let wanted = [0.5, 0.95, 0.99].map { p in
            let lower = "CAST(\(builder.bind(.double(p))) * (n - 1) AS INTEGER)"
            return "position BETWEEN \(lower) AND \(lower) + 1"
        }.joined(separator: " OR ")
        let sql = """
            SELECT group_key, v, position, n FROM (
                SELECT group_key, v, ROW_NUMBER() OVER (PARTITION BY group_key ORDER BY v) - 1 AS position,
                       COUNT(*) OVER (PARTITION BY group_key) AS n
                FROM (\(keyed)) keyed
            ) ranked WHERE \(wanted)
            """
        var values: [String: (n: Int64, at: [Int64: Int64])] = [:]
        for row in try await query(sql, builder.binds) {
            values[row["group_key"].text ?? nullKey, default: (row["n"].int ?? 0, [:])].at[row["position"].int ?? 0] = row["v"].int ?? 0
        }
        return values.compactMapValues { entry in
            LatencyPercentiles.compute(count: entry.n) { entry.at[$0] }.map { (entry.n, $0) }
        }
    }
}
