import Foundation
import GatehouseCore

/// The request store for any `SQLDriver`: the same SQL on SQLite and PostgreSQL, with the
/// few differences behind `SQLDialect`.
public final class SQLRequestStore: RequestStore {
    let driver: any SQLDriver
    var dialect: any SQLDialect { driver.dialect }

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
        // A record is unique (by id; on PostgreSQL by id and time, its day partitions' key, which a
        // retry carries unchanged): re-inserting a batch after an ambiguous failure must not duplicate.
        let sql = "INSERT INTO requests (\(Self.columns.joined(separator: ", "))) VALUES \(rows.joined(separator: ", ")) ON CONFLICT DO NOTHING"
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
        let sql = "SELECT \(selectColumns) FROM requests\(Self.sortIndexHint(query, dialect: dialect))\(SQLBuilder.whereClause(conditions)) ORDER BY \(order) LIMIT \(builder.bind(.int(Int64(limit + 1))))"
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

    // MARK: - Filters and decoding

    func filterConditions(_ filter: RequestFilter, _ builder: inout SQLBuilder) throws -> [String] {
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
