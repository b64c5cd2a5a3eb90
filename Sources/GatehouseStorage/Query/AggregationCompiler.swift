import Foundation
import GatehouseCore

/// Compiles a query's aggregation stage (`| p95(duration) by bin(5m), route`) over one table
/// into a single bound statement that runs the same on SQLite and PostgreSQL, and reads its rows
/// back as an `AggregationOutcome`.
///
/// Percentiles are computed by ranking each group's values with window functions and reading
/// the two values around the rank `p/100 · (n−1)`, interpolated as `percentile_cont` does; the
/// rank and its fraction are integer arithmetic, so both databases pick the same rows and
/// compute the same double.
struct AggregationCompiler {
    let schema: QuerySchema
    let table: String

    /// A compiled stage: the statement and how to read its rows.
    struct Compiled {
        var statement: SQLStatement
        var keys: [KeyReader]
        var unit: AggregationOutcome.Unit
        /// Divides the database's value into the answer's unit (µs → ms, micro-dollars → dollars);
        /// a division, so 237420 µs is exactly the double 237.42.
        var divisor: Double
        var limit: Int
        var ungrouped: Bool
        var function: Aggregation.Function
    }

    /// How one group column's cell becomes a key.
    struct KeyReader {
        enum Kind { case text, number, bool, level, bin }
        var name: String
        var kind: Kind

        func read(_ cell: SQLValue) -> AggregateKey {
            let value: AggregateKey.Value
            switch (kind, cell) {
            case (_, .null): value = .missing
            case (.text, _): value = cell.text.map(AggregateKey.Value.text) ?? .missing
            case (.number, _): value = cell.double.map(AggregateKey.Value.number) ?? .missing
            case (.bool, _): value = .bool(cell.int == 1)
            case (.level, _): value = cell.int.flatMap { LogLevel(severity: Int($0)) }.map { .text($0.rawValue) } ?? .missing
            case (.bin, _): value = cell.int.map { .time(micros: $0) } ?? .missing
            }
            return AggregateKey(name: name, value: value)
        }
    }

    /// `conditions` adds the caller's own conditions (a request list's structured filter) to the
    /// same builder, so their placeholders are numbered with the rest.
    func compile(_ query: AggregationQuery, dialect: any SQLDialect,
                 conditions extra: (inout SQLBuilder) throws -> [String] = { _ in [] }) throws -> Compiled {
        try query.validate()
        var b = SQLBuilder(dialect: dialect)
        let stage = query.aggregation

        var keyExpressions: [String] = []
        var keys: [KeyReader] = []
        var seen = Set<String>()
        for term in stage.groupBy {
            guard seen.insert(term.description.lowercased()).inserted else {
                throw QueryFieldError("`\(term)` appears twice after by")
            }
            let (sql, kind) = try groupExpression(term, &b)
            keyExpressions.append(sql)
            keys.append(KeyReader(name: term.description, kind: kind))
        }

        var unit = AggregationOutcome.Unit.count
        var divisor = 1.0
        var valueExpression: String?
        if let field = stage.function.field {
            let measure = try self.measure(field, function: stage.function.name, &b)
            valueExpression = measure.sql
            unit = measure.unit
            divisor = measure.divisor
        }

        let time = timeColumn
        var conditions = ["\(time) >= \(b.bind(.int(query.fromMicros)))", "\(time) < \(b.bind(.int(query.toMicros)))"]
        if let filter = query.filter { conditions.append(try QueryCompiler(schema: schema).compile(filter, &b)) }
        conditions += try extra(&b)

        let k = keyExpressions.indices.map { "k\($0)" }
        var selected = zip(keyExpressions, k).map { "\($0) AS \($1)" }
        if let valueExpression { selected.append("CAST(\(valueExpression) AS DOUBLE PRECISION) AS v") }
        if selected.isEmpty { selected.append("1 AS one") }
        var keyed = "SELECT \(selected.joined(separator: ", ")) FROM \(table)\(SQLBuilder.whereClause(conditions))"
        if valueExpression != nil {
            // Each value within ±1e300: a sum of two 1.5e308 attributes would be infinite, which
            // SQLite answers and JSON cannot hold, and PostgreSQL refuses as out of range.
            let keys = k.map { $0 + ", " }.joined()
            keyed = "SELECT \(keys)CASE WHEN v > 1e300 THEN 1e300 WHEN v < -1e300 THEN -1e300 ELSE v END AS v FROM (\(keyed)) unclamped"
        }
        let present = valueExpression == nil ? "" : " WHERE v IS NOT NULL"
        let keyList = k.joined(separator: ", ")
        let keyPrefix = k.isEmpty ? "" : keyList + ", "

        let sql: String
        switch stage.function {
        case .percentile(let p, _):
            let partition = k.isEmpty ? "" : "PARTITION BY \(keyList) "
            let rank = b.bind(.int(Int64(p)))
            // The rank p/100·(n−1) as its whole part `lo` and hundredths `fr`, in integers.
            let ranked = "SELECT \(keyPrefix)v, ROW_NUMBER() OVER (\(partition)ORDER BY v) - 1 AS pos, COUNT(*) OVER (\(partition.trimmingCharacters(in: .whitespaces))) AS n FROM (\(keyed)) keyed\(present)"
            let placed = "SELECT \(keyPrefix)v, pos, n, (\(rank) * (n - 1)) / 100 AS lo, (\(rank) * (n - 1)) % 100 AS fr FROM (\(ranked)) ranked"
            let picked = """
                SELECT \(keyPrefix)n, fr, MIN(CASE WHEN pos = lo THEN v END) AS lo_v, MIN(CASE WHEN pos = lo + 1 THEN v END) AS hi_v
                FROM (\(placed)) placed WHERE pos >= lo AND pos <= lo + 1 GROUP BY \(keyPrefix)n, fr
                """
            sql = "SELECT \(keyPrefix)n, lo_v + (COALESCE(hi_v, lo_v) - lo_v) * (CAST(fr AS DOUBLE PRECISION) / 100) AS value FROM (\(picked)) picked"
                + order(k, keys) + " LIMIT \(b.bind(.int(Int64(query.limit + 1))))"
        default:
            let aggregate = switch stage.function {
            case .count: "COUNT(*)"
            case .sum: "SUM(v)"
            case .avg: "AVG(v)"
            case .min: "MIN(v)"
            case .max: "MAX(v)"
            case .percentile: "NULL"
            }
            let grouping = k.isEmpty ? "" : " GROUP BY \(keyList)"
            sql = "SELECT \(keyPrefix)COUNT(*) AS n, \(aggregate) AS value FROM (\(keyed)) keyed\(present)\(grouping)"
                + (k.isEmpty ? "" : order(k, keys) + " LIMIT \(b.bind(.int(Int64(query.limit + 1))))")
        }
        return Compiled(statement: SQLStatement(sql, b.binds), keys: keys, unit: unit, divisor: divisor, limit: query.limit,
                        ungrouped: k.isEmpty, function: stage.function)
    }

    /// Bins in time order, then the largest value first; ties by count and key, so both
    /// databases answer the same order.
    private func order(_ k: [String], _ keys: [KeyReader]) -> String {
        var terms = zip(k, keys).filter { $0.1.kind == .bin }.map { "\($0.0) ASC" }
        terms += ["value DESC", "n DESC"]
        terms += zip(k, keys).filter { $0.1.kind != .bin }.flatMap { ["CASE WHEN \($0.0) IS NULL THEN 1 ELSE 0 END", $0.0] }
        return " ORDER BY " + terms.joined(separator: ", ")
    }

    /// Reads the statement's rows.
    static func outcome(_ compiled: Compiled, rows: [SQLRow]) -> AggregationOutcome {
        var groups: [AggregateGroup] = []
        for row in rows {
            let count = row["n"].int ?? 0
            let value: Double
            if let v = row["value"].double {
                // Finite whatever the database did: the answer is JSON.
                value = v.isFinite ? v / compiled.divisor : (v > 0 ? .greatestFiniteMagnitude : -.greatestFiniteMagnitude)
            } else {
                // Only an ungrouped sum over no records has no value: it is 0. avg, min, max and
                // percentiles of nothing have none, and answer no group.
                guard compiled.ungrouped, case .sum = compiled.function else { continue }
                value = 0
            }
            groups.append(AggregateGroup(key: compiled.keys.enumerated().map { $0.element.read(row["k\($0.offset)"]) },
                                         value: value, count: count))
        }
        let truncated = groups.count > compiled.limit
        return AggregationOutcome(unit: compiled.unit, groups: Array(groups.prefix(compiled.limit)), truncated: truncated)
    }

    var timeColumn: String { schema.columns[QuerySchema.normalize("timestamp")]?.sql ?? "ts" }

    private func groupExpression(_ term: Aggregation.GroupTerm, _ b: inout SQLBuilder) throws -> (String, KeyReader.Kind) {
        switch term {
        case .bin(let width):
            let w1 = b.bind(.int(width)), w2 = b.bind(.int(width))
            return ("(\(timeColumn) / \(w1)) * \(w2)", .bin)
        case .field(let name):
            if case .properties(let column) = schema.dynamic, name.lowercased().hasPrefix("property.") {
                let key = b.bind(b.dialect.jsonKeyBind(String(name.dropFirst("property.".count)).lowercased()))
                return (b.dialect.jsonText(column: column, keyPlaceholder: key), .text)
            }
            guard let column = schema.columns[QuerySchema.normalize(name)] else {
                if case .attributes(let column) = schema.dynamic {
                    let dialect = b.dialect
                    return ("CAST(\(try attributePath(column, name: name, &b) { dialect.jsonPathText(column: column, pathPlaceholder: $0) }) AS TEXT)", .text)
                }
                throw unknownField(name)
            }
            switch column.kind {
            case .text, .identifier: return (column.sql, .text)
            case .integer: return (column.sql, .number)
            case .boolean: return (column.sql, .bool)
            case .level: return (column.sql, .level)
            case .time: throw QueryFieldError("`\(name)` is a time: group by bin(1h) (or another width) instead")
            case .duration, .money:
                throw QueryFieldError("`\(name)` is a measure, not a group: aggregate it instead, e.g. | avg(\(name)) by …")
            }
        }
    }

    /// The number `function` reads, its unit and what divides it into that unit.
    private func measure(_ name: String, function: String, _ b: inout SQLBuilder) throws -> (sql: String, unit: AggregationOutcome.Unit, divisor: Double) {
        if case .properties = schema.dynamic, name.lowercased().hasPrefix("property.") {
            throw QueryFieldError("`\(function)(\(name))`: `\(name)` is text; \(function) needs a number field")
        }
        guard let column = schema.columns[QuerySchema.normalize(name)] else {
            if case .attributes(let column) = schema.dynamic {
                // Only JSON numbers count; a text value is left out, as absent.
                let dialect = b.dialect
                return (try attributePath(column, name: name, &b) { dialect.jsonPathNumber(column: column, pathPlaceholder: $0) }, .number, 1)
            }
            throw unknownField(name)
        }
        switch column.kind {
        case .integer: return (column.sql, .number, 1)
        case .duration: return (column.sql, .ms, 1000)
        case .money: return (column.sql, .usd, 1_000_000)
        case .text, .identifier: throw QueryFieldError("`\(function)(\(name))`: `\(name)` is text; \(function) needs a number field")
        case .boolean: throw QueryFieldError("`\(function)(\(name))`: `\(name)` is true or false; \(function) needs a number field")
        case .level: throw QueryFieldError("`\(function)(\(name))`: `\(name)` is a level; \(function) needs a number field")
        case .time: throw QueryFieldError("`\(function)(\(name))`: `\(name)` is a time; \(function) needs a number field")
        }
    }

    /// A dotted attribute path, read nested first and then as one flat key (`{"http.status": 503}`),
    /// as the filter reads it.
    private func attributePath(_ column: String, name: String, _ b: inout SQLBuilder, _ make: (String) -> String) throws -> String {
        let path = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard path.count <= 16, !path.contains(where: \.isEmpty) else { throw QueryFieldError("`\(name)` is not a field path (name.name…)") }
        let nested = make(b.bind(b.dialect.jsonPathBind(path)))
        guard path.count > 1 else { return nested }
        return "COALESCE(\(nested), \(make(b.bind(b.dialect.jsonPathBind([name])))))"
    }

    private func unknownField(_ name: String) -> QueryFieldError {
        let dynamic = if case .properties = schema.dynamic { " and property.<name>" } else { "" }
        return QueryFieldError("unknown field `\(name)`; fields here are \(schema.fieldNames.joined(separator: ", "))\(dynamic)")
    }
}

extension SQLDriver {
    /// Runs one aggregation over `table`; the driver's statement deadline bounds it like any query.
    /// On SQLite a stage that groups, ranks or reads a field first counts the records it would
    /// read and refuses more than `AggregationCompiler.maxRankedRowsOnSQLite`: SQLite sorts or
    /// hashes them all on one of its two reader connections, which a statement that outlives its
    /// deadline keeps busy (a plain `| count`, what alert rules run, is one index range).
    func aggregate(_ query: AggregationQuery, table: String, schema: QuerySchema, maxRankedRows: Int64 = AggregationCompiler.maxRankedRowsOnSQLite,
                   conditions: (inout SQLBuilder) throws -> [String] = { _ in [] }) async throws -> AggregationOutcome {
        let compiler = AggregationCompiler(schema: schema, table: table)
        let compiled = try compiler.compile(query, dialect: dialect, conditions: conditions)
        let stage = query.aggregation
        if !dialect.hasPercentiles, !stage.groupBy.isEmpty || stage.function.field != nil {
            var counting = query
            counting.aggregation = Aggregation(function: .count, groupBy: [])
            let counted = try compiler.compile(counting, dialect: dialect, conditions: conditions)
            let rows = AggregationCompiler.outcome(counted, rows: try await self.query(counted.statement.sql, counted.statement.binds)).groups.first?.count ?? 0
            guard rows <= maxRankedRows else {
                let what = if case .percentile = stage.function { "would rank" } else { "would read" }
                throw QueryFieldError("\(stage.function.name)\(stage.function.field.map { "(\($0))" } ?? "") \(what) \(rows) records; "
                    + "on SQLite a stage reads at most \(maxRankedRows): narrow the window or the filter")
            }
        }
        return AggregationCompiler.outcome(compiled, rows: try await self.query(compiled.statement.sql, compiled.statement.binds))
    }
}

extension AggregationCompiler {
    /// The most records one percentile ranks on SQLite (as many as usage's latency percentiles).
    static let maxRankedRowsOnSQLite = Int64(SQLRequestStore.maxPercentileRows)
}
