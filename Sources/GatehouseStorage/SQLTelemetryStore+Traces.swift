import Foundation
import GatehouseCore

/// Trace spans on either database: one table, `spans`, kept and pruned like logs (on PostgreSQL
/// in day partitions, `DayPartitions.tables`).
extension SQLTelemetryStore: TraceStore {
    /// Schema version 13. On PostgreSQL the table is partitioned by day from the start. The
    /// primary key is (trace_id, span_id, project, ts) on both: a retried batch repeats `ts`
    /// unchanged, and another project's span with the same ids is kept beside this one's. The trace read is served
    /// by the primary key (trace_id first); the other indexes serve the transactions summary
    /// (roots by time, one name by time), correlation and time-ordered search and retention.
    static func spanMigration(sqlite: Bool) -> [String] {
        let bigint = sqlite ? "INTEGER" : "BIGINT", flag = sqlite ? "INTEGER" : "SMALLINT"
        let json = sqlite ? "TEXT NOT NULL DEFAULT '{}'" : "JSONB NOT NULL DEFAULT '{}'::jsonb"
        // The project is part of the key: ids travel in `traceparent` headers to third parties, and
        // a span another project sent first must not stand in for this one's.
        // With the start, as PostgreSQL's partitions need it: both stores keep the same spans once.
        let key = "PRIMARY KEY (trace_id, span_id, project, ts)"
        let table = """
            CREATE TABLE spans (
                trace_id TEXT NOT NULL,
                span_id TEXT NOT NULL,
                parent_span_id TEXT,
                project TEXT NOT NULL,
                source TEXT NOT NULL,
                service TEXT,
                name TEXT NOT NULL,
                op TEXT,
                transaction_name TEXT,
                is_transaction \(flag) NOT NULL,
                ts \(bigint) NOT NULL,
                duration_us \(bigint) NOT NULL,
                status TEXT NOT NULL,
                is_error \(flag) NOT NULL,
                environment TEXT,
                release TEXT,
                correlation_id TEXT,
                attributes \(json),
                \(key)
            )\(sqlite ? "" : " PARTITION BY RANGE (ts)")
            """
        return [table] + (sqlite ? [] : ["CREATE TABLE \(DayPartitions.defaultName("spans")) PARTITION OF spans DEFAULT"]) + [
            "CREATE INDEX spans_ts ON spans (ts)",
            "CREATE INDEX spans_transactions_ts ON spans (is_transaction, ts)",
            "CREATE INDEX spans_transaction_name_ts ON spans (transaction_name, ts)",
            "CREATE INDEX spans_correlation ON spans (correlation_id)",
        ]
    }

    static let spanColumns = ["trace_id", "span_id", "parent_span_id", "project", "source", "service", "name", "op", "transaction_name",
                              "is_transaction", "ts", "duration_us", "status", "is_error", "environment", "release", "correlation_id", "attributes"]
    /// 18 binds a span keeps a statement far below both databases' bind limits.
    static let spanRowsPerStatement = 500

    private var spanSelect: String {
        "SELECT " + Self.spanColumns.map { $0 == "attributes" ? "\(driver.dialect.jsonAsText("attributes")) AS attributes" : $0 }.joined(separator: ", ")
            + " FROM spans"
    }

    public func insertSpans(_ spans: [Span]) async throws {
        guard !spans.isEmpty else { return }
        let dialect = driver.dialect
        var statements: [SQLStatement] = []
        var start = 0
        while start < spans.count {
            let chunk = spans[start..<min(start + Self.spanRowsPerStatement, spans.count)]
            var b = SQLBuilder(dialect: dialect)
            let rows = chunk.map { s -> String in
                let values: [String] = [
                    b.bind(.text(s.traceID)), b.bind(.text(s.spanID)), b.bind(Self.text(s.parentSpanID)), b.bind(.text(s.project)),
                    b.bind(.text(s.source.rawValue)), b.bind(Self.text(s.service)), b.bind(.text(s.name)), b.bind(Self.text(s.op)),
                    b.bind(Self.text(s.transaction)), b.bind(.int(s.isTransaction ? 1 : 0)), b.bind(.int(s.startMicros)),
                    b.bind(.int(s.durationMicros)), b.bind(.text(s.status)), b.bind(.int(s.isError ? 1 : 0)), b.bind(Self.text(s.environment)),
                    b.bind(Self.text(s.release)), b.bind(Self.text(s.correlationID)), dialect.jsonValue(b.bind(.text(s.attributesJSON))),
                ]
                return "(" + values.joined(separator: ", ") + ")"
            }
            // A batch the recorder retries after a failed commit is stored once.
            statements.append(SQLStatement("INSERT INTO spans (\(Self.spanColumns.joined(separator: ", "))) VALUES \(rows.joined(separator: ", ")) ON CONFLICT DO NOTHING",
                                           b.binds))
            start += Self.spanRowsPerStatement
        }
        try await driver.transaction(statements)
    }

    public func spans(traceID: String, limit: Int) async throws -> [Span] {
        var b = SQLBuilder(dialect: driver.dialect)
        let sql = "\(spanSelect) WHERE trace_id = \(b.bind(.text(traceID))) ORDER BY ts, span_id LIMIT \(b.bind(.int(Int64(max(1, limit)))))"
        return try await driver.query(sql, b.binds).map(Self.decodeSpan)
    }

    public func searchSpans(_ query: SpanSearchQuery) async throws -> [Span] {
        var b = SQLBuilder(dialect: driver.dialect)
        var conditions: [String] = []
        if let filter = query.filter { conditions.append(try QueryCompiler(schema: .spans).compile(filter, &b)) }
        if let from = query.fromMicros { conditions.append("ts >= \(b.bind(.int(from)))") }
        if let to = query.toMicros { conditions.append("ts < \(b.bind(.int(to)))") }
        let limit = max(1, min(query.limit, 1000))
        let sql = "\(spanSelect)\(SQLBuilder.whereClause(conditions)) ORDER BY ts DESC, span_id LIMIT \(b.bind(.int(Int64(limit))))"
        return try await driver.query(sql, b.binds).map(Self.decodeSpan)
    }

    // MARK: - Transactions

    public func transactionSummaries(_ query: TransactionSummaryQuery) async throws -> [TransactionSummary] {
        let length = max(0, query.toMicros - query.fromMicros)
        guard length > 0 else { return [] }
        // The busiest names of the window; the previous window is read for those names only.
        var b = SQLBuilder(dialect: driver.dialect)
        let conditions = try transactionConditions(query, from: query.fromMicros, to: query.toMicros, &b)
        let counted = try await driver.query("""
            SELECT name, COUNT(*) AS n, \(driver.dialect.sumInt("is_error")) AS errors FROM spans\(SQLBuilder.whereClause(conditions))
            GROUP BY name ORDER BY n DESC, name LIMIT \(b.bind(.int(Int64(TransactionSummaryQuery.maxNames))))
            """, b.binds)
        guard !counted.isEmpty else { return [] }
        let names = counted.compactMap { $0["name"].text }
        let current = try await transactionPercentiles(query, names: names, from: query.fromMicros, to: query.toMicros)
        let previous = try await transactionPercentiles(query, names: names, from: query.fromMicros - length, to: query.fromMicros)
        return counted.compactMap { row in
            guard let name = row["name"].text, let durations = current[name]?.percentiles else { return nil }
            return TransactionSummary(name: name, count: row["n"].int ?? 0, errorCount: row["errors"].int ?? 0, durations: durations,
                                      previousCount: previous[name]?.count ?? 0, previousP95: previous[name]?.percentiles.p95)
        }
    }

    /// What selects a summary's transactions (root spans) in `[from, to)`.
    private func transactionConditions(_ query: TransactionSummaryQuery, from: Int64, to: Int64, _ b: inout SQLBuilder) throws -> [String] {
        var conditions = ["is_transaction = 1", "ts >= \(b.bind(.int(from)))", "ts < \(b.bind(.int(to)))"]
        if let project = query.project { conditions.append("project = \(b.bind(.text(project)))") }
        if let environment = query.environment { conditions.append("environment = \(b.bind(.text(environment)))") }
        if let filter = query.filter { conditions.append(try QueryCompiler(schema: .spans).compile(filter, &b)) }
        return conditions
    }

    /// Each transaction name's count and duration percentiles in `[from, to)`: PostgreSQL's
    /// `percentile_cont`; on SQLite the database ranks each name's durations and hands back only
    /// the values at the ranks the interpolation reads, interpolated as `percentile_cont` does
    /// (`SQLDriver.rankedPercentiles`, which usage's grouped percentiles use too).
    /// Only `names` (the busiest, at most `maxNames`) are ranked: a window of a million distinct
    /// names reads no more than a thousand names' worth.
    private func transactionPercentiles(_ query: TransactionSummaryQuery, names: [String], from: Int64, to: Int64) async throws
        -> [String: (count: Int64, percentiles: LatencyPercentiles)] {
        var b = SQLBuilder(dialect: driver.dialect)
        var conditions = try transactionConditions(query, from: from, to: to, &b)
        conditions.append("name IN (" + names.map { b.bind(.text($0)) }.joined(separator: ", ") + ")")
        var result: [String: (count: Int64, percentiles: LatencyPercentiles)] = [:]
        if driver.dialect.hasPercentiles {
            let sql = """
                SELECT name, COUNT(*) AS n, percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_us) AS p50,
                       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_us) AS p95, percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_us) AS p99
                FROM spans\(SQLBuilder.whereClause(conditions)) GROUP BY name
                """
            for row in try await driver.query(sql, b.binds) {
                guard let name = row["name"].text, let p50 = row["p50"].double, let p95 = row["p95"].double, let p99 = row["p99"].double else { continue }
                result[name] = (row["n"].int ?? 0, LatencyPercentiles(p50: p50, p95: p95, p99: p99))
            }
            return result
        }
        return try await driver.rankedPercentiles(keyed: "SELECT name AS group_key, duration_us AS v FROM spans\(SQLBuilder.whereClause(conditions))", &b)
    }

    static func decodeSpan(_ row: SQLRow) throws -> Span {
        guard let trace = row["trace_id"].text, let span = row["span_id"].text, let ts = row["ts"].int else {
            throw StoreError.corrupt("span row without trace_id, span_id or ts")
        }
        return Span(
            traceID: trace, spanID: span, parentSpanID: row["parent_span_id"].text, project: row["project"].text ?? "",
            source: row["source"].text.flatMap(Span.Source.init(rawValue:)) ?? .sentry, service: row["service"].text,
            name: row["name"].text ?? "", op: row["op"].text, transaction: row["transaction_name"].text, isTransaction: row["is_transaction"].int == 1,
            startMicros: ts, durationMicros: row["duration_us"].int ?? 0, status: row["status"].text ?? "ok", isError: row["is_error"].int == 1,
            environment: row["environment"].text, release: row["release"].text, correlationID: row["correlation_id"].text,
            attributesJSON: row["attributes"].text ?? "{}")
    }
}
