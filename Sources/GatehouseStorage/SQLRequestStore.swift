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

    init(driver: any SQLDriver) { self.driver = driver }

    public var databaseKind: String { dialect.name }

    static let columns = [
        "id", "ts", "route", "provider", "requested_model", "model", "status", "stream", "latency_us", "ttft_us",
        "input_tokens", "output_tokens", "cached_input_tokens", "cache_creation_input_tokens", "reasoning_tokens",
        "cost_micros", "key_id", "user_id", "properties", "correlation_id", "error_class", "error_message", "complete",
        "attempts", "cache_hit", "cost_saved_micros", "usage_estimated",
    ]

    public func insert(_ records: [RequestRecord]) async throws {
        guard !records.isEmpty else { return }
        var statements: [SQLStatement] = []
        var start = 0
        while start < records.count {
            let chunk = records[start..<min(start + Self.rowsPerStatement, records.count)]
            statements.append(insertStatement(Array(chunk)))
            start += Self.rowsPerStatement
        }
        try await driver.transaction(statements)
    }

    private func insertStatement(_ records: [RequestRecord]) -> SQLStatement {
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
                let values: [SQLValue] = [.text(b.requestID), .int(b.timestampMicros), .text(b.request), .int(b.requestTruncated ? 1 : 0),
                                          .text(b.response), .int(b.responseTruncated ? 1 : 0), .int(b.responseReassembled ? 1 : 0)]
                return "(" + values.map { builder.bind($0) }.joined(separator: ", ") + ")"
            }
            statements.append(SQLStatement("""
                INSERT INTO request_bodies (request_id, ts, request_body, request_truncated, response_body, response_truncated, response_reassembled)
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
        let sql = "SELECT \(selectColumns) FROM requests\(whereClause(conditions)) ORDER BY \(order) LIMIT \(builder.bind(.int(Int64(limit + 1))))"
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

    // MARK: - Usage

    public func usage(_ query: UsageQuery) async throws -> UsageReport {
        var totalsReport = try await aggregate(query, group: nil, bucket: nil)
        let totals = totalsReport.first?.stats ?? UsageStats()
        var groups: [UsageGroup] = []
        if let grouping = query.groupBy {
            groups = try await aggregate(query, group: grouping, bucket: nil).map { UsageGroup(key: $0.key, stats: $0.stats) }
            groups.sort { ($0.stats.cost, $0.stats.requests, $1.key ?? "") > ($1.stats.cost, $1.stats.requests, $0.key ?? "") }
        }
        var series: [UsageBucket] = []
        if let interval = query.intervalMicros {
            series = try await aggregate(query, group: nil, bucket: interval).compactMap { row in
                row.key.flatMap(Int64.init).map { UsageBucket(startMicros: $0, stats: row.stats) }
            }
            series.sort { $0.startMicros < $1.startMicros }
        }
        if !dialect.hasPercentiles {
            let percentiles = try await percentilesInSwift(query, group: query.groupBy)
            if var first = totalsReport.first {
                first.stats.latency = percentiles.total
                totalsReport[0] = first
            }
            for i in groups.indices { groups[i].stats.latency = percentiles.byGroup[groups[i].key ?? "\u{0}"] }
            return UsageReport(totals: totalsReport.first?.stats ?? totals, groups: groups, series: series)
        }
        return UsageReport(totals: totals, groups: groups, series: series)
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

    private func aggregate(_ query: UsageQuery, group: UsageGrouping?, bucket: Int64?) async throws -> [(key: String?, stats: UsageStats)] {
        var builder = SQLBuilder(dialect: dialect)
        var keyExpression: String?
        if let group { keyExpression = groupExpression(group, &builder) }
        if let bucket {
            let b1 = builder.bind(.int(bucket)), b2 = builder.bind(.int(bucket))
            keyExpression = "CAST(((ts / \(b1)) * \(b2)) AS TEXT)"
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
        if dialect.hasPercentiles && bucket == nil {
            select += [
                "percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_us) AS p50",
                "percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_us) AS p95",
                "percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_us) AS p99",
            ]
        }
        if let keyExpression { select.insert("\(keyExpression) AS group_key", at: 0) }
        var sql = "SELECT \(select.joined(separator: ", ")) FROM requests\(whereClause(conditions))"
        if keyExpression != nil { sql += " GROUP BY 1" }
        let rows = try await driver.query(sql, builder.binds)
        return rows.compactMap { row in
            var stats = UsageStats()
            stats.requests = row["requests"].int ?? 0
            if keyExpression == nil && stats.requests == 0 { return (nil, stats) }
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
            return (keyExpression == nil ? nil : row["group_key"].text, stats)
        }
    }

    /// Percentiles for SQLite: read latencies in order and interpolate like `percentile_cont`.
    private func percentilesInSwift(_ query: UsageQuery, group: UsageGrouping?) async throws
        -> (total: LatencyPercentiles?, byGroup: [String: LatencyPercentiles]) {
        var builder = SQLBuilder(dialect: dialect)
        let keyExpression = group.map { groupExpression($0, &builder) }
        var conditions = try filterConditions(query.filter, &builder)
        conditions.append("ts >= \(builder.bind(.int(query.fromMicros)))")
        conditions.append("ts < \(builder.bind(.int(query.toMicros)))")
        let countSQL = "SELECT COUNT(*) AS n FROM requests\(whereClause(conditions))"
        let count = try await driver.query(countSQL, builder.binds).first?["n"].int ?? 0
        if count > Self.maxPercentileRows { throw UsageQueryTooLarge(rows: count, limit: Self.maxPercentileRows) }
        let select = (keyExpression.map { "\($0) AS group_key, " } ?? "") + "latency_us"
        let sql = "SELECT \(select) FROM requests\(whereClause(conditions)) ORDER BY latency_us"
        let rows = try await driver.query(sql, builder.binds)
        var all: [Int64] = []
        all.reserveCapacity(rows.count)
        var grouped: [String: [Int64]] = [:]
        for row in rows {
            let latency = row["latency_us"].int ?? 0
            all.append(latency)
            if keyExpression != nil { grouped[row["group_key"].text ?? "\u{0}", default: []].append(latency) }
        }
        return (LatencyPercentiles.compute(sorted: all), grouped.compactMapValues { LatencyPercentiles.compute(sorted: $0) })
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
