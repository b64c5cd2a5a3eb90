import Foundation
import GatehouseCore

/// On PostgreSQL the tables that grow with traffic (`requests`, `logs`, `error_events`, `spans`)
/// are partitioned by range of `ts` (µs), one partition per UTC day: `requests_p20261202` holds
/// [2026-12-02 00:00, 2026-12-03 00:00) UTC. Each also has a default partition
/// (`requests_default`) for rows whose day has no partition (a client clock far off), so that an
/// insert never fails for its time.
///
/// - Gatehouse creates today's partition and `daysAhead` more at start-up (after migrating)
///   and every hour (`PartitionMaintenance`), under an advisory lock, so instances doing it at
///   once create each partition once. Rows the default partition holds for a day about to get its
///   partition are moved into it in the same transaction (PostgreSQL refuses the partition
///   otherwise). A partition that cannot be created (a long read holds the table) is a warning,
///   never a failed start: its rows go to the default partition, and it is tried again a minute
///   later. Senders' timestamps far in the future are replaced at ingest (`LogIngest`), so the
///   default partition stays small.
/// - Retention drops a day's partition once the whole day is older than the cutoff
///   (`SQLTelemetryStore.prune`), and deletes rows only in the default partition (and, for a
///   cutoff inside a day, as row limits and explicit prunes ask, in that day's partition).
/// - Nothing deletes or updates rows otherwise, so the request rollups stay equal to the calls:
///   dropping a partition is retention deleting the oldest calls, and the rollups follow as they
///   do a DELETE (`SQLTelemetryStore.pruneRollups`). Moving rows out of the default partition
///   inserts into a table not yet attached, so the rollup trigger does not count them twice.
///
/// SQLite keeps plain tables: one file, one writer, no vacuum storms to avoid.
///
/// Here: the layout (tables, names, day bounds) and retention's drop. Creating partitions
/// (`ensure`) and the hourly service are in `PartitionMaintenance.swift`; the migration that
/// partitions the tables (version 10) is in `Migrations+Partitions.swift`.
enum DayPartitions {
    /// The partitioned tables, with the primary key each has on PostgreSQL: a partitioned
    /// table's unique keys must include its partition key, so `ts` joins each. Records are
    /// written again only by the recorder's retry, with the same `ts`, so (id, ts) keeps a
    /// retried call stored once. An error event sent again may have another `ts` (one without a
    /// timestamp takes the time it was received), so its id is claimed first in
    /// `error_event_ids`, which is not partitioned (`SQLTelemetryStore.insertErrorEvents`).
    static let tables: [(name: String, primaryKey: String)] = partitionedByVersion10 + [
        // Created partitioned by version 13; a trace is read by trace_id alone.
        (SQLTelemetryStore.table(.spans).name, "trace_id, span_id, project, ts"),
    ]

    /// The tables version 10 turned into partitioned ones (its SQL is released: this list stays).
    static let partitionedByVersion10: [(name: String, primaryKey: String)] = [
        (SQLTelemetryStore.table(.requests).name, "id, ts"),
        (SQLTelemetryStore.table(.logs).name, "seq, ts"),
        // event_id first: an event is looked up by id alone.
        (SQLTelemetryStore.table(.errors).name, "event_id, project, ts"),
    ]

    /// Whether `kind` is kept in day partitions (on PostgreSQL).
    static func isPartitioned(_ kind: TelemetryKind) -> Bool { tables.contains { $0.name == SQLTelemetryStore.table(kind).name } }

    /// Partitions exist from today to this many days ahead: a week of hourly chances to create
    /// each one before it is needed.
    static let daysAhead: Int64 = 7
    /// Held (to the end of the transaction) while partitions are created or dropped; a key of its
    /// own beside the migration lock's and `rollupWriteLock`'s.
    static let lock = SQLStatement("SELECT pg_advisory_xact_lock(7263591036)")
    /// Creating or dropping a partition locks its parent exclusively; behind a long read it would
    /// hold back every insert queued after it. It gives up instead and is tried again later.
    static let lockTimeout = SQLStatement("SET LOCAL lock_timeout = '5s'")

    /// The partition of `table` holding UTC day `day` (days since 1970-01-01): `requests_p20261202`.
    static func name(_ table: String, day: Int64) -> String {
        let (y, m, d) = TimeExpressions.civilFromDays(day)
        func pad(_ n: Int64, _ width: Int) -> String { String(repeating: "0", count: max(0, width - String(n).count)) + String(n) }
        return "\(table)_p\(pad(y, 4))\(pad(m, 2))\(pad(d, 2))"
    }

    static func defaultName(_ table: String) -> String { "\(table)_default" }

    // MARK: Partitions

    /// A table's day partitions: name and [from, to) bounds in µs, oldest first. The default
    /// partition and any partition not one whole day are left out.
    static func partitions(of table: String, driver: any SQLDriver) async throws -> [(name: String, from: Int64, to: Int64)] {
        let rows = try await driver.query("""
            SELECT CAST(c.relname AS TEXT) AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(\(driver.dialect.placeholder(1)))
            """, [.text(table)])
        return rows.compactMap { row -> (name: String, from: Int64, to: Int64)? in
            // `FOR VALUES FROM ('1795305600000000') TO ('1795392000000000')`, or `DEFAULT`.
            guard let name = row["name"].text, let bound = row["bound"].text else { return nil }
            let numbers = bound.split(whereSeparator: { !$0.isNumber && $0 != "-" }).compactMap { Int64($0) }
            guard numbers.count == 2, numbers[1] - numbers[0] == TimeExpressions.microsPerDay, numbers[0] % TimeExpressions.microsPerDay == 0 else { return nil }
            return (name, numbers[0], numbers[1])
        }.sorted { $0.from < $1.from }
    }

    /// Drops the day partitions of `table` that end at or before `beforeMicros`, oldest first,
    /// after deleting (in batches of `batch`) any row older than each that another partition
    /// holds (the default one), so what is left is always newer than what went. Returns the rows
    /// that went: a partition's count, or above `SQLTelemetryStore.estimatedRowsAbove` the
    /// planner's estimate.
    static func dropPartitions(of table: String, before beforeMicros: Int64, batch: Int,
                               driver: any SQLDriver, deleteBefore: (Int64) async throws -> Int) async throws -> Int {
        var removed = 0
        for partition in try await partitions(of: table, driver: driver) where partition.to <= beforeMicros {
            let older = try await deleteBefore(partition.from)
            removed += older
            // More older rows than a batch: the caller comes back for the rest first.
            if older >= batch { return removed }
            let d = driver.dialect
            let estimate = try await driver.query("SELECT CAST(reltuples AS BIGINT) AS n FROM pg_class WHERE oid = to_regclass(\(d.placeholder(1)))",
                                                  [.text(partition.name)]).first?["n"].int ?? -1
            var rows = estimate
            if estimate <= SQLTelemetryStore.estimatedRowsAbove {
                // Through the parent by range: no error if another instance dropped it meanwhile.
                rows = try await driver.query("SELECT COUNT(*) AS n FROM \(table) WHERE ts >= \(d.placeholder(1)) AND ts < \(d.placeholder(2))",
                                              [.int(partition.from), .int(partition.to)]).first?["n"].int ?? 0
            }
            try await driver.transaction([lock, lockTimeout, SQLStatement("DROP TABLE IF EXISTS \(partition.name)")])
            removed += Int(rows)
        }
        return removed
    }
}
