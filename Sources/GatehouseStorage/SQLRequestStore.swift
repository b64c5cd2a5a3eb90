import Foundation
import GatehouseCore

/// The request store for any `SQLDriver`: the same SQL on SQLite and PostgreSQL, with the
/// few differences behind `SQLDialect`.
public final class SQLRequestStore: RequestStore {
    let driver: any SQLDriver
    private var dialect: any SQLDialect { driver.dialect }

    /// Rows per INSERT statement: 23 binds each stays far below both databases' bind limits.
    static let rowsPerStatement = 200
    /// Upper bound on rows read to compute percentiles where SQL cannot (SQLite); beyond it the
    /// usage API answers 422 and asks for a narrower range or filter.
    public static let maxPercentileRows = 2_000_000
    /// `maxPercentileRows`, lowered by tests.
    let percentileRowLimit: Int64

    /// Whether usage reads the rollups where they answer the query (tests compare both ways).
    let useRollups: Bool
    /// From how many calls an unfiltered range's latency percentiles are located through the
    /// rollups' latency histogram instead of ordering every call in the range (the answer is the
    /// same; only the work differs).
    let histogramPercentilesFrom: Int64

    init(driver: any SQLDriver, useRollups: Bool = true, histogramPercentilesFrom: Int64 = 20_000,
         percentileRowLimit: Int64 = Int64(maxPercentileRows)) {
        self.driver = driver
        self.percentileRowLimit = percentileRowLimit
        self.useRollups = useRollups
        self.histogramPercentilesFrom = histogramPercentilesFrom
    }

    public var databaseKind: String { dialect.name }

    static let columns = [
        "id", "ts", "route", "provider", "requested_model", "model", "status", "stream", "latency_us", "ttft_us",
        "input_tokens", "output_tokens", "cached_input_tokens", "cache_creation_input_tokens", "reasoning_tokens",
        "cost_micros", "key_id", "user_id", "properties", "correlation_id", "error_class", "error_message", "complete",
        "attempts", "cache_hit", "cost_saved_micros", "usage_estimated",
    ]

    /// Stores the calls in one transaction; the database's trigger adds those not stored
    /// before to the rollups in it (`RequestRollups.trigger`).
    public func insert(_ records: [RequestRecord]) async throws {
        guard !records.isEmpty else { return }
        var statements: [SQLStatement] = dialect.rollupWriteLock.map { [$0] } ?? []
        var start = 0
        while start < records.count {
            let chunk = records[start..<min(start + Self.rowsPerStatement, records.count)]
            statements.append(insertStatement(Array(chunk)))
            start += Self.rowsPerStatement
        }
        try await driver.transaction(statements)
    }

    func insertStatement(_ records: [RequestRecord]) -> SQLStatement {
        var builder = SQLBuilder(dialect: dialect)
        var rows: [String] = []
        rows.reserveCapacity(records.count)
        for r in records {
            let values: [SQLValue] = [
                .text(r.id), .int(r.timestampMicros), .text(r.route.rawValue), .text(r.provider), .text(r.requestedModel),
                .text(r.model), .int(Int64(r.status)), .int(r.stream ? 1 : 0), .int(r.latencyMicros),
                r.timeToFirstTokenMicros.map { .int($0) } ?? .null,
                .int(Int64(r.usage.inputTokens)), .int(Int64(r.usage.outputTokens)), .int(Int64(r.usage.cachedInputTokens)),
                .int(Int64(r.usage.cacheCreationInputTokens)), .int(Int64(r.usage.reasoningTokens)), .int(r.cost.value),
                r.keyID.map { .text($0) } ?? .null, r.userID.map { .text($0) } ?? .null,
                .text(Self.encodeProperties(r.properties)), .text(r.correlationID),
                r.errorClass.map { .text($0.rawValue) } ?? .null, r.errorMessage.map { .text($0) } ?? .null,
                .int(r.complete ? 1 : 0), r.attempts.isEmpty ? .null : .text(Self.encodeAttempts(r.attempts)),
                .int(r.cacheHit ? 1 : 0), .int(r.costSaved.value), .int(r.usageEstimated ? 1 : 0),
            ]
            let placeholders = values.enumerated().map { index, value in
                let p = builder.bind(value)
                return Self.columns[index] == "properties" ? dialect.jsonValue(p) : p
            }
            rows.append("(" + placeholders.joined(separator: ", ") + ")")
        }
        // A record id is unique: re-inserting a batch after an ambiguous failure must not duplicate.
        let sql = "INSERT INTO requests (\(Self.columns.joined(separator: ", "))) VALUES \(rows.joined(separator: ", ")) ON CONFLICT (id) DO NOTHING"
        return SQLStatement(sql, builder.binds)
    }

    static func encodeProperties(_ properties: [String: String]) -> String {
        guard !properties.isEmpty,
              let data = try? JSONSerialization.data(withJSONObject: properties, options: [.sortedKeys]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    static func encodeAttempts(_ attempts: [CallAttempt]) -> String {
        (try? JSONEncoder().encode(attempts)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
    }

    public func ping() async throws {
        _ = try await driver.query("SELECT 1 AS ok", [])
    }

    public func request(id: String) async throws -> RequestRecord? {
        var builder = SQLBuilder(dialect: dialect)
        let sql = "SELECT \(selectColumns) FROM requests WHERE id = \(builder.bind(.text(id)))"
        return try await driver.query(sql, builder.binds).first.map(Self.decode)
    }

    // MARK: - Captured bodies

    /// Rows per INSERT of bodies: few, since each row may carry two bodies of up to 16 MiB.
    static let bodiesPerStatement = 20

    public func insertBodies(_ bodies: [CapturedBodies]) async throws {
        guard !bodies.isEmpty else { return }
        var statements: [SQLStatement] = []
        var start = 0
        while start < bodies.count {
            var builder = SQLBuilder(dialect: dialect)
            let rows = bodies[start..<min(start + Self.bodiesPerStatement, bodies.count)].map { b in
                // Their sizes in bytes, stored beside them, so storage reports sum two integers instead of reading every body.
                let values: [SQLValue] = [.text(b.requestID), .int(b.timestampMicros), .text(b.request), .int(b.requestTruncated ? 1 : 0),
                                          .text(b.response), .int(b.responseTruncated ? 1 : 0), .int(b.responseReassembled ? 1 : 0),
                                          .int(Int64(b.request.utf8.count)), .int(Int64(b.response.utf8.count))]
                return "(" + values.map { builder.bind($0) }.joined(separator: ", ") + ")"
            }
            statements.append(SQLStatement("""
                INSERT INTO request_bodies (request_id, ts, request_body, request_truncated, response_body, response_truncated, response_reassembled,
                                            request_bytes, response_bytes)
                VALUES \(rows.joined(separator: ", ")) ON CONFLICT (request_id) DO NOTHING
                """, builder.binds))
            start += Self.bodiesPerStatement
        }
        try await driver.transaction(statements)
    }

    public func bodies(requestID: String) async throws -> CapturedBodies? {
        var builder = SQLBuilder(dialect: dialect)
        let sql = "SELECT * FROM request_bodies WHERE request_id = \(builder.bind(.text(requestID)))"
        guard let row = try await driver.query(sql, builder.binds).first, let ts = row["ts"].int else { return nil }
        return CapturedBodies(requestID: requestID, timestampMicros: ts, request: row["request_body"].text ?? "",
                              requestTruncated: row["request_truncated"].int == 1, response: row["response_body"].text ?? "",
                              responseTruncated: row["response_truncated"].int == 1, responseReassembled: row["response_reassembled"].int == 1)
    }

    private var selectColumns: String {
        Self.columns.map { $0 == "properties" ? "\(dialect.jsonAsText("properties")) AS properties" : $0 }.joined(separator: ", ")
    }

    // MARK: - Listing

    public func requests(_ query: RequestListQuery) async throws -> RequestPage {
        var builder = SQLBuilder(dialect: dialect)
        var conditions = try filterConditions(query.filter, &builder)
        if let from = query.fromMicros { conditions.append("ts >= \(builder.bind(.int(from)))") }
        if let to = query.toMicros { conditions.append("ts < \(builder.bind(.int(to)))") }
        let sort = query.sort
        let position = try query.cursor.map { try RequestCursor.decode($0, sort: sort) }
        // Paging back reads the rows before the cursor in reverse order, then turns them round.
        let backward = position?.backward ?? false
        let keyColumns = RequestCursor.keyColumns(sort.field)
        if let position {
            let placeholders = position.key.map { builder.bind($0) }
            let after = sort.descending != backward ? "<" : ">"
            // The bound on the first column alone is implied, but lets the planner use an index on it.
            conditions.append("\(keyColumns[0]) \(after)= \(builder.bind(position.key[0]))")
            conditions.append("(\(keyColumns.joined(separator: ", "))) \(after) (\(placeholders.joined(separator: ", ")))")
        }
        let direction = sort.descending != backward ? "DESC" : "ASC"
        let order = keyColumns.map { "\($0) \(direction)" }.joined(separator: ", ")
        let limit = max(1, min(query.limit, 1000))
        let sql = "SELECT \(selectColumns) FROM requests\(Self.sortIndexHint(query, dialect: dialect))\(whereClause(conditions)) ORDER BY \(order) LIMIT \(builder.bind(.int(Int64(limit + 1))))"
        let rows = try await driver.query(sql, builder.binds)
        var records = try rows.map(Self.decode)
        let more = records.count > limit
        if more { records.removeLast() }
        if backward { records.reverse() }
        let first = records.first.map { RequestCursor.encode($0, sort: sort, backward: true) }
        let last = records.last.map { RequestCursor.encode($0, sort: sort, backward: false) }
        // Forward: more rows mean a next page; a cursor means rows before. Backward: the reverse.
        return backward
            ? RequestPage(records: records, nextCursor: last, previousCursor: more ? first : nil)
            : RequestPage(records: records, nextCursor: more ? last : nil, previousCursor: position == nil ? nil : first)
    }

    /// Ranges at least this long are sorted by cost or latency through their index.
    static let sortIndexFromMicros: Int64 = 6 * 3_600_000_000

    /// On SQLite, an unfiltered list over a long range sorted by cost or latency walks that
    /// column's index and stops after a page; without statistics (nothing runs ANALYZE) SQLite
    /// would read the whole range by time and sort it (seconds over a month). A short range or a
    /// filter keeps the planner's choice: there the index walk could pass most of the table.
    static func sortIndexHint(_ query: RequestListQuery, dialect: any SQLDialect) -> String {
        guard dialect.name == "sqlite", query.filter == RequestFilter() else { return "" }
        let index = switch query.sort.field {
        case .cost: "requests_cost_sort"
        case .latency: "requests_latency_sort"
        case .time, .tokens: ""
        }
        guard !index.isEmpty else { return "" }
        if let from = query.fromMicros, (query.toMicros ?? TimeExpressions.nowMicros()) - from < sortIndexFromMicros { return "" }
        return " INDEXED BY \(index)"
    }

    // MARK: - Usage

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
            let day = RequestRollups.dayMicros
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
        guard f.userID == nil, f.correlationID == nil, f.properties.isEmpty, f.query == nil else { return nil }
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

    private func groupExpression(_ grouping: UsageGrouping, _ builder: inout SQLBuilder) -> String {
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

    private func aggregate(_ query: UsageQuery, plan: RollupPlan?, group: UsageGrouping?, bucket: Int64?, skip: Bool = false) async throws
        -> [(key: String?, stats: UsageStats)] {
        if skip { return [] }
        if let plan { return try await rollupAggregate(query, plan: plan, group: group, bucket: bucket) }
        var builder = SQLBuilder(dialect: dialect)
        var keyExpression: String?
        if let group { keyExpression = groupExpression(group, &builder) }
        if let bucket {
            let b1 = builder.bind(.int(bucket)), b2 = builder.bind(.int(bucket))
            // An integer key: grouping by its text made SQLite format and sort a string per call.
            keyExpression = "((ts / \(b1)) * \(b2))"
        }
        var conditions = try filterConditions(query.filter, &builder)
        conditions.append("ts >= \(builder.bind(.int(query.fromMicros)))")
        conditions.append("ts < \(builder.bind(.int(query.toMicros)))")
        var select = [
            "COUNT(*) AS requests",
            "\(dialect.sumInt("CASE WHEN error_class IS NULL THEN 0 ELSE 1 END")) AS errors",
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
        var sql = "SELECT \(select.joined(separator: ", ")) FROM requests\(whereClause(conditions))"
        if keyExpression != nil { sql += " GROUP BY 1" }
        return try await driver.query(sql, builder.binds).map { Self.decodeStats($0, grouped: keyExpression != nil) }
    }

    /// The sums of the rollups' whole slots and of the calls in the part-slots at either end, in
    /// one statement: both sides give the columns the aggregate reads, under the calls' names.
    private func rollupAggregate(_ query: UsageQuery, plan: RollupPlan, group: UsageGrouping?, bucket: Int64?) async throws
        -> [(key: String?, stats: UsageStats)] {
        var builder = SQLBuilder(dialect: dialect)
        var keyExpression: String?
        if let group { keyExpression = groupExpression(group, &builder) }
        if let bucket {
            let b1 = builder.bind(.int(bucket)), b2 = builder.bind(.int(bucket))
            // An integer key: grouping by its text made SQLite format and sort a string per call.
            keyExpression = "((ts / \(b1)) * \(b2))"
        }
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
                    FROM request_rollups\(whereClause(rollup)) GROUP BY slot
                    """)
            } else {
                parts.append("""
                    SELECT slot AS ts, model, provider, route, status, CASE WHEN has_key = 1 THEN key_id END AS key_id, requests, errors, \(sums)
                    FROM request_rollups\(whereClause(rollup))
                    """)
            }
        }
        for edge in plan.edges {
            var conditions = try filterConditions(query.filter, &builder)
            conditions.append("ts >= \(builder.bind(.int(edge.from)))")
            conditions.append("ts < \(builder.bind(.int(edge.to)))")
            parts.append("""
                SELECT ts, model, provider, route, status, key_id, 1 AS requests, CASE WHEN error_class IS NULL THEN 0 ELSE 1 END AS errors, \(sums)
                FROM requests\(whereClause(conditions))
                """)
        }
        var select = RequestRollups.sumColumns.map { "\(dialect.sumInt($0)) AS \($0)" }
        if let keyExpression { select.insert("\(keyExpression) AS group_key", at: 0) }
        var sql = "SELECT \(select.joined(separator: ", ")) FROM (\(parts.joined(separator: " UNION ALL "))) parts"
        if keyExpression != nil { sql += " GROUP BY 1" }
        return try await driver.query(sql, builder.binds).map { Self.decodeStats($0, grouped: keyExpression != nil) }
    }

    /// The filter on rollup rows of the plan's level (`rollupPlan` sends no other filter here).
    private func rollupConditions(_ filter: RequestFilter, _ builder: inout SQLBuilder) -> [String] {
        var c: [String] = []
        if let v = filter.model { c.append("model = \(builder.bind(.text(v)))") }
        if let v = filter.provider { c.append("provider = \(builder.bind(.text(v)))") }
        if let v = filter.route { c.append("route = \(builder.bind(.text(v.rawValue)))") }
        if let v = filter.status { c.append("status = \(builder.bind(.int(Int64(v))))") }
        if let failed = filter.failed { c.append("failed = \(failed ? 1 : 0)") }
        if let v = filter.keyID { c.append("has_key = 1 AND key_id = \(builder.bind(.text(v)))") }
        return c
    }

    private static func decodeStats(_ row: SQLRow, grouped: Bool) -> (key: String?, stats: UsageStats) {
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

    /// The key of calls without a group value in `percentilesInSQL`'s answer (a text value never has it).
    static let noGroup = "\u{0}"

    /// The 0-based ranks `LatencyPercentiles.compute` reads for `count` sorted values.
    static func percentileRanks(count: Int64) -> Set<Int64> {
        var ranks: Set<Int64> = []
        for p in [0.5, 0.95, 0.99] {
            let lower = Int64((p * Double(count - 1)).rounded(.down))
            ranks.insert(lower)
            ranks.insert(min(lower + 1, count - 1))
        }
        return ranks
    }

    /// Percentiles for SQLite, which has no `percentile_cont`: the database orders each group's
    /// latencies and hands back only the values at the ranks the interpolation reads (at most six
    /// per group), interpolated here exactly as `percentile_cont` does. `count` is the number of
    /// calls when there is no grouping (the totals already know it); with a grouping each group's
    /// count comes from a window over the group.
    private func percentilesInSQL(_ query: UsageQuery, group: UsageGrouping?, count: Int64?) async throws -> [String: LatencyPercentiles] {
        var builder = SQLBuilder(dialect: dialect)
        let keyExpression = group.map { groupExpression($0, &builder) } ?? "NULL"
        var conditions = try filterConditions(query.filter, &builder)
        conditions.append("ts >= \(builder.bind(.int(query.fromMicros)))")
        conditions.append("ts < \(builder.bind(.int(query.toMicros)))")
        let partition = group == nil ? "" : "PARTITION BY group_key "
        let inner: String
        let wanted: String
        if let count {
            inner = "SELECT latency_us, ROW_NUMBER() OVER (ORDER BY latency_us) - 1 AS position FROM requests\(whereClause(conditions))"
            wanted = "position IN (" + Self.percentileRanks(count: count).sorted().map { builder.bind(.int($0)) }.joined(separator: ", ") + ")"
        } else {
            // The same ranks as `percentileRanks`, from each group's own count (REAL arithmetic, as in Swift).
            inner = """
                SELECT group_key, latency_us, ROW_NUMBER() OVER (\(partition)ORDER BY latency_us) - 1 AS position,
                       COUNT(*) OVER (\(partition.trimmingCharacters(in: .whitespaces))) AS n
                FROM (SELECT \(keyExpression) AS group_key, latency_us FROM requests\(whereClause(conditions))) keyed
                """
            // p is bound, so the database multiplies the very double Swift does.
            wanted = [0.5, 0.95, 0.99].map { p in
                let lower = "CAST(\(builder.bind(.double(p))) * (n - 1) AS INTEGER)"
                return "position BETWEEN \(lower) AND \(lower) + 1"
            }.joined(separator: " OR ")
        }
        let sql = "SELECT \(group == nil ? "NULL AS group_key, " : "group_key, ")latency_us, position\(count == nil ? ", n" : "") FROM (\(inner)) ranked WHERE \(wanted)"
        var values: [String: (n: Int64, at: [Int64: Int64])] = [:]
        for row in try await driver.query(sql, builder.binds) {
            let key = row["group_key"].text ?? Self.noGroup
            let n = count ?? row["n"].int ?? 0
            values[key, default: (n, [:])].at[row["position"].int ?? 0] = row["latency_us"].int ?? 0
        }
        return values.compactMapValues { entry in
            func at(_ p: Double) -> Double? {
                let rank = p * Double(entry.n - 1)
                let lower = Int64(rank.rounded(.down)), upper = min(lower + 1, entry.n - 1)
                guard let low = entry.at[lower], let high = entry.at[upper] else { return nil }
                return Double(low) + (Double(high) - Double(low)) * (rank - Double(lower))
            }
            guard entry.n > 0, let p50 = at(0.5), let p95 = at(0.95), let p99 = at(0.99) else { return nil }
            return LatencyPercentiles(p50: p50, p95: p95, p99: p99)
        }
    }

    /// Percentiles over the calls themselves: PostgreSQL's `percentile_cont`, or the ranked
    /// read above on SQLite. `count` is the number of calls when ungrouped.
    private func rawPercentiles(_ query: UsageQuery, group: UsageGrouping?, count: Int64?) async throws -> [String: LatencyPercentiles] {
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
        let sql = "SELECT \(select) FROM requests\(whereClause(conditions))" + (keyExpression == nil ? "" : " GROUP BY 1")
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
    private func histogramPercentiles(_ query: UsageQuery, plan: RollupPlan, count: Int64) async throws -> LatencyPercentiles? {
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
        let percentiles = [0.5, 0.95, 0.99]
        let lowerRanks = Set(percentiles.map { Int64((($0) * Double(count - 1)).rounded(.down)) })
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
        func at(_ p: Double) -> Double? {
            let rank = p * Double(count - 1)
            let lower = Int64(rank.rounded(.down)), upper = min(lower + 1, count - 1)
            guard let low = values[lower], let high = values[upper] else { return nil }
            return Double(low) + (Double(high) - Double(low)) * (rank - Double(lower))
        }
        guard let p50 = at(0.5), let p95 = at(0.95), let p99 = at(0.99) else { return nil }
        return LatencyPercentiles(p50: p50, p95: p95, p99: p99)
    }

    // MARK: - Filters and decoding

    private func filterConditions(_ filter: RequestFilter, _ builder: inout SQLBuilder) throws -> [String] {
        var c: [String] = []
        if let v = filter.model { c.append("model = \(builder.bind(.text(v)))") }
        if let v = filter.provider { c.append("provider = \(builder.bind(.text(v)))") }
        if let v = filter.keyID { c.append("key_id = \(builder.bind(.text(v)))") }
        if let v = filter.userID { c.append("user_id = \(builder.bind(.text(v)))") }
        if let v = filter.route { c.append("route = \(builder.bind(.text(v.rawValue)))") }
        if let v = filter.status { c.append("status = \(builder.bind(.int(Int64(v))))") }
        if let v = filter.correlationID { c.append("correlation_id = \(builder.bind(.text(v)))") }
        if let failed = filter.failed { c.append(failed ? "error_class IS NOT NULL" : "error_class IS NULL") }
        for (name, value) in filter.properties.sorted(by: { $0.key < $1.key }) {
            let key = builder.bind(dialect.jsonKeyBind(name.lowercased()))
            c.append("\(dialect.jsonText(column: "properties", keyPlaceholder: key)) = \(builder.bind(.text(value)))")
        }
        if let node = filter.query { c.append(try QueryCompiler(schema: .requests).compile(node, &builder)) }
        return c
    }

    private func whereClause(_ conditions: [String]) -> String {
        conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
    }

    static func decode(_ row: SQLRow) throws -> RequestRecord {
        guard let id = row["id"].text, let ts = row["ts"].int,
              let routeText = row["route"].text, let route = GatewayRoute(rawValue: routeText) else {
            throw StoreError.corrupt("request row without id, ts or a known route")
        }
        var properties: [String: String] = [:]
        if let json = row["properties"].text, let data = json.data(using: .utf8),
           let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            for (k, v) in object { properties[k] = v as? String ?? "\(v)" }
        }
        return RequestRecord(
            id: id, timestampMicros: ts, route: route, provider: row["provider"].text ?? "",
            requestedModel: row["requested_model"].text ?? "", model: row["model"].text ?? "",
            status: Int(row["status"].int ?? 0), stream: row["stream"].int == 1, latencyMicros: row["latency_us"].int ?? 0,
            timeToFirstTokenMicros: row["ttft_us"].int,
            usage: TokenUsage(inputTokens: Int(row["input_tokens"].int ?? 0), outputTokens: Int(row["output_tokens"].int ?? 0),
                              cachedInputTokens: Int(row["cached_input_tokens"].int ?? 0),
                              cacheCreationInputTokens: Int(row["cache_creation_input_tokens"].int ?? 0),
                              reasoningTokens: Int(row["reasoning_tokens"].int ?? 0)),
            cost: MicroDollars(row["cost_micros"].int ?? 0), keyID: row["key_id"].text, userID: row["user_id"].text,
            properties: properties, correlationID: row["correlation_id"].text ?? "",
            errorClass: row["error_class"].text.flatMap(ErrorClass.init(rawValue:)), errorMessage: row["error_message"].text,
            complete: row["complete"].int != 0,
            attempts: row["attempts"].text.flatMap { try? JSONDecoder().decode([CallAttempt].self, from: Data($0.utf8)) } ?? [],
            cacheHit: row["cache_hit"].int == 1, costSaved: MicroDollars(row["cost_saved_micros"].int ?? 0),
            usageEstimated: row["usage_estimated"].int == 1)
    }
}

/// A keyset cursor over a sorted request list: which way it pages and the sort key of the row it
/// starts from (the sort column's value, the time and the id). The default order's forward
/// cursors keep the `PageCursor` form, so cursors the API handed out before sorting still work.
enum RequestCursor {
    struct Position {
        var backward: Bool
        var key: [SQLValue]
    }

    /// The columns a sort orders by, the sort column first; time and id break ties.
    static func keyColumns(_ field: RequestSort.Field) -> [String] {
        switch field {
        case .time: ["ts", "id"]
        case .cost: ["cost_micros", "ts", "id"]
        case .latency: ["latency_us", "ts", "id"]
        case .tokens: ["(input_tokens + output_tokens)", "ts", "id"]
        }
    }

    static func value(_ record: RequestRecord, _ field: RequestSort.Field) -> Int64 {
        switch field {
        case .time: record.timestampMicros
        case .cost: record.cost.value
        case .latency: record.latencyMicros
        case .tokens: Int64(record.usage.inputTokens) + Int64(record.usage.outputTokens)
        }
    }

    static func encode(_ record: RequestRecord, sort: RequestSort, backward: Bool) -> String {
        if sort == .newestFirst && !backward { return PageCursor.encode(ts: record.timestampMicros, id: record.id) }
        let payload = [prefix, sort.name, backward ? "back" : "next", String(value(record, sort.field)), String(record.timestampMicros), record.id]
        return base64URL(Data(payload.joined(separator: "|").utf8))
    }

    /// The position `cursor` names; a cursor of another sort (or none of ours) is invalid.
    static func decode(_ cursor: String, sort: RequestSort) throws -> Position {
        guard cursor.count <= 512 else { throw StoreError.invalidCursor }
        if let text = fromBase64URL(cursor), text.hasPrefix(prefix + "|") {
            let parts = text.split(separator: "|", maxSplits: 5, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 6, parts[1] == sort.name, ["back", "next"].contains(parts[2]),
                  let value = Int64(parts[3]), let ts = Int64(parts[4]), !parts[5].isEmpty else { throw StoreError.invalidCursor }
            let key: [SQLValue] = sort.field == .time ? [.int(ts), .text(parts[5])] : [.int(value), .int(ts), .text(parts[5])]
            return Position(backward: parts[2] == "back", key: key)
        }
        guard sort == .newestFirst, let (ts, id) = PageCursor.decode(cursor) else { throw StoreError.invalidCursor }
        return Position(backward: false, key: [.int(ts), .text(id)])
    }

    private static let prefix = "rc1"

    private static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    private static func fromBase64URL(_ text: String) -> String? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map { String(decoding: $0, as: UTF8.self) }
    }
}
