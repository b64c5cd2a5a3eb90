import GatehouseCore

/// Half-hourly and daily sums of request records, so usage over days reads a few thousand rows
/// instead of every call (a 30-day overview read a million).
///
/// One table, `request_rollups`, holds three levels, each per half hour and per day, each with its
/// own dimensions (the others are '' or 0). The `level` column holds level and grain together
/// (`stored(_:_:)`): 1–3 are the levels per half hour, 4–6 the same per UTC day.
/// 1. **calls**: model, provider, route, status, failed: unfiltered usage, the model, provider,
///    route and status groupings, and filters on those;
/// 2. **keys**: the key (with `has_key`, since a call without a key and a key '' differ):
///    usage grouped by key or filtered to one key;
/// 3. **latency**: a log-scale latency histogram (`bucket`), which finds where a percentile
///    falls; the exact value is then read from `requests_latency_sort` (see `SQLRequestStore`).
///
/// User ids, properties and query-language filters have no rollup (user ids can be as many as
/// the calls): such queries read the calls. Each level carries every sum, so any level answers
/// totals. Reads are planned in `SQLRequestStore+Rollups.swift`; pruning is in
/// `SQLTelemetryStore.pruneRollups`.
///
/// What keeps them equal to the calls (each test in `ConsoleScaleTests` checks one):
/// - rows are added only by the trigger, in the transaction that stores their calls, from the
///   calls actually inserted (a batch written twice counts once), whoever writes them; the
///   migration that made the table filled it from the calls already stored;
/// - nothing updates a stored call, and calls are deleted only by retention, oldest first;
/// - retention then deletes every slot before the slot of the oldest call left, and that slot
///   (which may have lost calls) is always read from the calls, never from its rollup row;
/// - on PostgreSQL each batch holds `SQLDialect.rollupWriteLock`, so instances writing at once
///   cannot deadlock on the rows their triggers update.
/// Deleting or updating calls by hand breaks the second rule: `docs/operations.md` says how to
/// rebuild the table.
enum RequestRollups {
    /// Half an hour: the console's 24-hour charts have half-hour buckets, and an hour or a day is
    /// a whole number of slots.
    static let slotMicros: Int64 = 1_800_000_000

    /// Which dimensions a rollup row keeps.
    enum Level: Int64, CaseIterable {
        case calls = 1, keys = 2, latency = 3
    }

    /// Each level is kept per slot and per UTC day: a month's totals read thirty days, not 1,440
    /// slots. Series read slots (their buckets are often shorter than a day).
    enum Grain: CaseIterable {
        case slot, day
        var micros: Int64 { self == .slot ? slotMicros : TimeExpressions.microsPerDay }
    }

    /// The `level` column of a level at a grain: 1–3 per slot, 4–6 per day.
    static func stored(_ level: Level, _ grain: Grain) -> Int64 { level.rawValue + (grain == .day ? 3 : 0) }

    static let keyColumns = ["level", "slot", "model", "provider", "route", "status", "failed", "key_id", "has_key", "bucket"]
    static let sumColumns = ["requests", "errors", "input_tokens", "output_tokens", "cached_input_tokens", "cache_creation_input_tokens",
                             "reasoning_tokens", "cost_micros"]

    static func createTable(bigint: String, withoutRowID: Bool) -> String {
        """
        CREATE TABLE request_rollups (
            level SMALLINT NOT NULL,
            slot \(bigint) NOT NULL,
            model TEXT NOT NULL,
            provider TEXT NOT NULL,
            route TEXT NOT NULL,
            status INTEGER NOT NULL,
            failed SMALLINT NOT NULL,
            key_id TEXT NOT NULL,
            has_key SMALLINT NOT NULL,
            bucket INTEGER NOT NULL,
            \(sumColumns.map { "\($0) \(bigint) NOT NULL" }.joined(separator: ",\n    "))
            , PRIMARY KEY (\(keyColumns.joined(separator: ", ")))
        )\(withoutRowID ? " WITHOUT ROWID" : "")
        """
    }

    /// Each level's key columns for one call, its columns spelled by `column` (`NEW.ts` in a
    /// row trigger, `ts` over a table).
    /// 1 for a failed call, 0 otherwise: the `failed` dimension and the `errors` sum.
    static func failedSQL(_ errorClass: String) -> String { "CASE WHEN \(errorClass) IS NULL THEN 0 ELSE 1 END" }

    static func levelKeys(_ column: (String) -> String) -> [String] {
        let failed = failedSQL(column("error_class"))
        return Grain.allCases.flatMap { grain in
            let slot = "((\(column("ts")) / \(grain.micros)) * \(grain.micros))"
            return [
                "\(stored(.calls, grain)), \(slot), \(column("model")), \(column("provider")), \(column("route")), \(column("status")), \(failed), '', 0, 0",
                "\(stored(.keys, grain)), \(slot), '', '', '', 0, 0, COALESCE(\(column("key_id")), ''), CASE WHEN \(column("key_id")) IS NULL THEN 0 ELSE 1 END, 0",
                "\(stored(.latency, grain)), \(slot), '', '', '', 0, 0, '', 0, \(latencyBucketSQL(column("latency_us")))",
            ]
        }
    }

    /// The rollup rows of the calls in `source` (a table, or a trigger's transition table),
    /// every level, in key order so that concurrent writers lock rows in the same order.
    static func select(from source: String, dialect: any SQLDialect) -> String {
        let failed = failedSQL("error_class")
        let sums = "COUNT(*), \(dialect.sumInt(failed)), " + sumColumns.dropFirst(2).map { dialect.sumInt($0) }.joined(separator: ", ")
        let groupBy = (1...keyColumns.count).map(String.init).joined(separator: ", ")
        // `WHERE 1 = 1`: SQLite reads an upsert after a bare SELECT … FROM as a join's ON.
        return levelKeys { $0 }.map { "SELECT \($0), \(sums) FROM \(source) WHERE 1 = 1 GROUP BY \(groupBy)" }.joined(separator: "\nUNION ALL\n")
            + "\nORDER BY \(groupBy)"
    }

    static var insertColumns: String { (keyColumns + sumColumns).joined(separator: ", ") }

    /// Adds to rows that exist, creates the others.
    static var onConflict: String {
        "ON CONFLICT (\(keyColumns.joined(separator: ", "))) DO UPDATE SET "
            + sumColumns.map { "\($0) = request_rollups.\($0) + excluded.\($0)" }.joined(separator: ", ")
    }

    /// Keeps the rollups in step with `requests` in the database itself, in the transaction that
    /// inserts the calls, from the rows actually inserted (a batch written again, whose rows
    /// conflict and are skipped, adds nothing), whoever inserts them. SQLite has row triggers
    /// only: one upsert per level and call. PostgreSQL sums each INSERT statement's new rows
    /// (a transition table) and upserts them in key order, so concurrent instances lock rollup
    /// rows in the same order.
    static func trigger(sqlite: Bool) -> [String] {
        if sqlite {
            let failed = failedSQL("NEW.error_class")
            let sums = "1, \(failed), " + sumColumns.dropFirst(2).map { "NEW.\($0)" }.joined(separator: ", ")
            let upserts = levelKeys { "NEW." + $0 }.map { "INSERT INTO request_rollups (\(insertColumns)) VALUES (\($0), \(sums)) \(onConflict);" }
            return ["CREATE TRIGGER requests_rollup AFTER INSERT ON requests BEGIN\n\(upserts.joined(separator: "\n"))\nEND"]
        }
        return [
            """
            CREATE FUNCTION request_rollups_add() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO request_rollups (\(insertColumns))
                \(select(from: "inserted", dialect: PostgresDialect()))
                \(onConflict);
                RETURN NULL;
            END
            $$
            """,
            "CREATE TRIGGER requests_rollup AFTER INSERT ON requests REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION request_rollups_add()",
        ]
    }

    /// Creates the table, fills it from every call already stored, and keeps it filled. On
    /// PostgreSQL the calls are locked against writes first (other instances wait for the
    /// migration), so no call lands between the fill and the trigger.
    static func migration(sqlite: Bool) -> [String] {
        let dialect: any SQLDialect = sqlite ? SQLiteDialect() : PostgresDialect()
        return (sqlite ? [] : ["LOCK TABLE requests IN SHARE ROW EXCLUSIVE MODE"])
            + [createTable(bigint: sqlite ? "INTEGER" : "BIGINT", withoutRowID: sqlite)]
            + trigger(sqlite: sqlite)
            + ["INSERT INTO request_rollups (\(insertColumns)) \(select(from: "requests", dialect: dialect))"]
    }

    // MARK: Latency buckets

    /// A latency's histogram bucket: values below 16 µs are their own bucket; above, 16 buckets
    /// per power of two (each about 4–6% wide). Buckets grow with the latency they hold.
    static func latencyBucket(_ latency: Int64) -> Int64 {
        let x = max(latency, 0)
        if x < 16 { return x }
        let exponent = Int64(63 - x.leadingZeroBitCount)
        return exponent * 16 + ((x >> (exponent - 4)) & 15)
    }

    /// The smallest latency in `bucket`.
    static func lowerBound(ofBucket bucket: Int64) -> Int64 {
        if bucket < 16 { return max(bucket, 0) }
        let exponent = bucket / 16, sub = bucket % 16
        return (16 + sub) << (exponent - 4)
    }

    /// `latencyBucket` in SQL (both databases): the exponent by binary search over the powers
    /// of two (six comparisons), then the four bits below the leading one.
    static func latencyBucketSQL(_ column: String) -> String {
        func exponent(_ low: Int, _ high: Int) -> String {
            if high - low == 1 { return String(low) }
            let middle = (low + high) / 2
            return "CASE WHEN \(column) >= \(Int64(1) << middle) THEN \(exponent(middle, high)) ELSE \(exponent(low, middle)) END"
        }
        let e = exponent(4, 63)
        return "(CASE WHEN \(column) < 0 THEN 0 WHEN \(column) < 16 THEN \(column) ELSE (\(e)) * 16 + ((\(column) >> ((\(e)) - 4)) & 15) END)"
    }
}
