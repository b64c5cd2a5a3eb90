import GatehouseCore

// Version 10 (PostgreSQL only): `requests`, `logs` and `error_events` become tables partitioned
// by UTC day (`DayPartitions`). Its SQL is released: it is never edited, later changes are new
// migrations (an index a later migration creates on a partitioned table reaches every partition,
// the existing ones and those made later, by itself).

extension Migrations {
    /// The migration gives a partition of its own to each day of stored data from this many days
    /// back (a year and some: every retention up to it keeps whole days); rows outside that
    /// window (and beyond `DayPartitions.daysAhead`) go to the default partition, which retention
    /// empties by DELETE as they age.
    static let partitionDaysBack: Int64 = 400

    /// Schema version 10 on PostgreSQL: each table is replaced by a partitioned one with the same
    /// columns (and, for logs, the same sequence, so a tail's position stays valid), its rows
    /// copied into day partitions, then its keys and indexes built once over the copy. The rollup
    /// trigger is created after the copy, so the calls are not counted again.
    static func partitionByDay() -> [String] {
        let tables = DayPartitions.partitionedByVersion10, daysAhead = DayPartitions.daysAhead
        let dayMicros = TimeExpressions.microsPerDay, daySeconds = TimeExpressions.microsPerDay / 1_000_000
        var statements = ["LOCK TABLE \(tables.map(\.name).joined(separator: ", ")) IN ACCESS EXCLUSIVE MODE"]
        for (table, primaryKey) in tables {
            let old = "\(table)_unpartitioned"
            statements += [
                "ALTER TABLE \(table) RENAME TO \(old)",
                "CREATE TABLE \(table) (LIKE \(old) INCLUDING DEFAULTS) PARTITION BY RANGE (ts)",
                // The day's name as `DayPartitions.name(_:day:)` spells it, so maintenance finds it.
                """
                DO $$
                DECLARE day BIGINT;
                DECLARE today BIGINT := floor(extract(epoch FROM now()) / \(daySeconds))::bigint;
                BEGIN
                    FOR day IN SELECT DISTINCT ts / \(dayMicros) FROM \(old)
                               WHERE ts >= (today - \(partitionDaysBack)) * \(dayMicros) AND ts < (today + \(daysAhead + 1)) * \(dayMicros) LOOP
                        EXECUTE format('CREATE TABLE %I PARTITION OF \(table) FOR VALUES FROM (%s) TO (%s)',
                                       '\(table)_p' || to_char(to_timestamp(day * \(daySeconds)) AT TIME ZONE 'UTC', 'YYYYMMDD'),
                                       day * \(dayMicros), (day + 1) * \(dayMicros));
                    END LOOP;
                END $$
                """,
                "CREATE TABLE \(DayPartitions.defaultName(table)) PARTITION OF \(table) DEFAULT",
                "INSERT INTO \(table) SELECT * FROM \(old)",
            ]
            // The sequence belongs to the old table's column: it would go with it.
            if table == "logs" { statements.append("ALTER SEQUENCE logs_seq_seq OWNED BY logs.seq") }
            statements += ["DROP TABLE \(old)", "ALTER TABLE \(table) ADD PRIMARY KEY (\(primaryKey))"]
        }
        return statements + [
            // The indexes versions 1, 3 and 9 left, by the same names.
            "CREATE INDEX requests_ts ON requests (ts, latency_us)",
            "CREATE INDEX requests_correlation ON requests (correlation_id)",
            "CREATE INDEX requests_model_ts ON requests (model, ts)",
            "CREATE INDEX requests_key_ts ON requests (key_id, ts)",
            "CREATE INDEX requests_properties ON requests USING GIN (properties jsonb_path_ops)",
            "CREATE INDEX requests_cost_sort ON requests (cost_micros, ts, id)",
            "CREATE INDEX requests_latency_sort ON requests (latency_us, ts, id)",
            "CREATE INDEX logs_ts ON logs (ts)",
            "CREATE INDEX logs_severity_ts ON logs (severity, ts)",
            "CREATE INDEX logs_service_ts ON logs (LOWER(service), ts)",
            "CREATE INDEX logs_function_ts ON logs (LOWER(function), ts)",
            "CREATE INDEX logs_correlation ON logs (correlation_id, ts)",
            "CREATE INDEX logs_attributes ON logs USING GIN (attributes jsonb_path_ops)",
            "CREATE INDEX error_events_issue_ts ON error_events (issue_id, ts)",
            "CREATE INDEX error_events_correlation ON error_events (correlation_id)",
            "CREATE INDEX error_events_ts ON error_events (ts)",
            "CREATE INDEX error_events_issue_user ON error_events (issue_id, user_key)",
            // A statement trigger with a transition table on the parent sees the rows of every
            // partition an INSERT routes them to.
            "CREATE TRIGGER requests_rollup AFTER INSERT ON requests REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION request_rollups_add()",
        ]
    }
}
