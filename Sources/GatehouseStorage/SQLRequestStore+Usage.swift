import Foundation
import GatehouseCore

/// Usage: sums, groups and series of the calls in a range, from the rollups where they answer.
extension SQLRequestStore {
    public func usage(_ query: UsageQuery) async throws -> UsageReport {
        let plan = try await rollupPlan(query)
        // Series buckets that are not whole slots cannot come from the rollups, and days do not split into buckets.
        let seriesPlan = query.intervalMicros.flatMap { $0 % RequestRollups.slotMicros == 0 ? plan?.bySlot : nil }
        // The three aggregates are independent: on SQLite they run on the two reader connections side by side.
        async let totalsRows = aggregate(query, plan: plan, group: nil, bucket: nil)
        async let groupRows = aggregate(query, plan: plan, group: query.groupBy, bucket: nil, skip: query.groupBy == nil)
        async let seriesRows = aggregate(query, plan: seriesPlan, group: nil, bucket: query.intervalMicros, skip: query.intervalMicros == nil)
        var totals = try await totalsRows.first?.stats ?? UsageStats()
        var groups = try await groupRows.map { UsageGroup(key: $0.key, stats: $0.stats) }
        groups.sort { ($0.stats.cost, $0.stats.requests, $1.key ?? "") > ($1.stats.cost, $1.stats.requests, $0.key ?? "") }
        let series = try await seriesRows.compactMap { row in
            row.key.flatMap(Int64.init).map { UsageBucket(startMicros: $0, stats: row.stats) }
        }.sorted { $0.startMicros < $1.startMicros }
        // PostgreSQL's raw aggregates carry their percentiles already; everything else is ranked here.
        let inlinePercentiles = plan == nil && dialect.hasPercentiles
        if query.includeLatency && totals.requests > 0 && !inlinePercentiles {
            // Ranking calls where SQL has no percentiles reads every call in the range: bounded.
            let tooManyToRank = !dialect.hasPercentiles && totals.requests > percentileRowLimit
            let tooLarge = UsageQueryTooLarge(rows: totals.requests, limit: Int(percentileRowLimit))
            if query.groupBy != nil && tooManyToRank { throw tooLarge }
            if let plan, query.filter == RequestFilter(), totals.requests >= histogramPercentilesFrom,
               let latency = try await histogramPercentiles(query, plan: plan, count: totals.requests) {
                totals.latency = latency
            } else {
                if tooManyToRank { throw tooLarge }
                totals.latency = try await rawPercentiles(query, group: nil, count: totals.requests)[Self.noGroup]
            }
            if query.groupBy != nil {
                let byGroup = try await rawPercentiles(query, group: query.groupBy, count: nil)
                for i in groups.indices { groups[i].stats.latency = byGroup[groups[i].key ?? Self.noGroup] }
            }
        }
        return UsageReport(totals: totals, groups: groups, series: series)
    }

    func groupExpression(_ grouping: UsageGrouping, _ builder: inout SQLBuilder) -> String {
        switch grouping {
        case .model: "model"
        case .provider: "provider"
        case .key: "key_id"
        case .user: "user_id"
        case .route: "route"
        case .status: "CAST(status AS TEXT)"
        case .property(let name): dialect.jsonText(column: "properties", keyPlaceholder: builder.bind(dialect.jsonKeyBind(name)))
        }
    }

    /// What an aggregate groups by: a grouping's column, a time bucket's start, or nothing.
    func aggregateKey(group: UsageGrouping?, bucket: Int64?, _ builder: inout SQLBuilder) -> String? {
        if let bucket {
            let b1 = builder.bind(.int(bucket)), b2 = builder.bind(.int(bucket))
            // An integer key: grouping by its text made SQLite format and sort a string per call.
            return "((ts / \(b1)) * \(b2))"
        }
        return group.map { groupExpression($0, &builder) }
    }

    func aggregate(_ query: UsageQuery, plan: RollupPlan?, group: UsageGrouping?, bucket: Int64?, skip: Bool = false) async throws
        -> [(key: String?, stats: UsageStats)] {
        if skip { return [] }
        if let plan { return try await rollupAggregate(query, plan: plan, group: group, bucket: bucket) }
        var builder = SQLBuilder(dialect: dialect)
        let keyExpression = aggregateKey(group: group, bucket: bucket, &builder)
        var conditions = try filterConditions(query.filter, &builder)
        conditions.append("ts >= \(builder.bind(.int(query.fromMicros)))")
        conditions.append("ts < \(builder.bind(.int(query.toMicros)))")
        var select = [
            "COUNT(*) AS requests",
            "\(dialect.sumInt(RequestRollups.failedSQL("error_class"))) AS errors",
            "\(dialect.sumInt("input_tokens")) AS input_tokens",
            "\(dialect.sumInt("output_tokens")) AS output_tokens",
            "\(dialect.sumInt("cached_input_tokens")) AS cached_input_tokens",
            "\(dialect.sumInt("cache_creation_input_tokens")) AS cache_creation_input_tokens",
            "\(dialect.sumInt("reasoning_tokens")) AS reasoning_tokens",
            "\(dialect.sumInt("cost_micros")) AS cost_micros",
        ]
        // Series buckets carry no percentiles: one sort per bucket is not worth it there.
        if dialect.hasPercentiles && bucket == nil && query.includeLatency {
            select += [
                "percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_us) AS p50",
                "percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_us) AS p95",
                "percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_us) AS p99",
            ]
        }
        if let keyExpression { select.insert("\(keyExpression) AS group_key", at: 0) }
        var sql = "SELECT \(select.joined(separator: ", ")) FROM requests\(SQLBuilder.whereClause(conditions))"
        if keyExpression != nil { sql += " GROUP BY 1" }
        return try await driver.query(sql, builder.binds).map { Self.decodeStats($0, grouped: keyExpression != nil) }
    }

    static func decodeStats(_ row: SQLRow, grouped: Bool) -> (key: String?, stats: UsageStats) {
        var stats = UsageStats()
        stats.requests = row["requests"].int ?? 0
        if !grouped && stats.requests == 0 { return (nil, stats) }
        stats.errors = row["errors"].int ?? 0
        stats.usage.inputTokens = row["input_tokens"].int ?? 0
        stats.usage.outputTokens = row["output_tokens"].int ?? 0
        stats.usage.cachedInputTokens = row["cached_input_tokens"].int ?? 0
        stats.usage.cacheCreationInputTokens = row["cache_creation_input_tokens"].int ?? 0
        stats.usage.reasoningTokens = row["reasoning_tokens"].int ?? 0
        stats.cost = MicroDollars(row["cost_micros"].int ?? 0)
        if let p50 = row["p50"].double, let p95 = row["p95"].double, let p99 = row["p99"].double {
            stats.latency = LatencyPercentiles(p50: p50, p95: p95, p99: p99)
        }
        return (grouped ? row["group_key"].text : nil, stats)
    }
}
