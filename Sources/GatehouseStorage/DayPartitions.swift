import Foundation
import GatehouseCore
import Logging
import ServiceLifecycle

/// On PostgreSQL the three tables that grow with traffic (`requests`, `logs`, `error_events`)
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
public enum DayPartitions {
    /// The partitioned tables, with the primary key each has on PostgreSQL: a partitioned
    /// table's unique keys must include its partition key, so `ts` joins each. Records are
    /// written again only by the recorder's retry, with the same `ts`, so (id, ts) keeps a
    /// retried call stored once. An error event sent again may have another `ts` (one without a
    /// timestamp takes the time it was received), so its id is claimed first in
    /// `error_event_ids`, which is not partitioned (`SQLTelemetryStore.insertErrorEvents`).
    static let tables: [(name: String, primaryKey: String)] = [
        (SQLTelemetryStore.table(.requests).name, "id, ts"),
        (SQLTelemetryStore.table(.logs).name, "seq, ts"),
        // event_id first: an event is looked up by id alone.
        (SQLTelemetryStore.table(.errors).name, "event_id, project, ts"),
    ]

    /// Whether `kind` is kept in day partitions (on PostgreSQL).
    static func isPartitioned(_ kind: TelemetryKind) -> Bool { tables.contains { $0.name == SQLTelemetryStore.table(kind).name } }

    public static let dayMicros: Int64 = 86_400_000_000
    /// Partitions exist from today to this many days ahead: a week of hourly chances to create
    /// each one before it is needed.
    public static let daysAhead: Int64 = 7
    /// The migration gives a partition of its own to each day of stored data from this many days
    /// back (a year and some: every retention up to it keeps whole days); rows outside that
    /// window (and beyond `daysAhead`) go to the default partition, which retention empties by
    /// DELETE as they age.
    static let migrationDaysBack: Int64 = 400
    /// Held (to the end of the transaction) while partitions are created or dropped; a key of its
    /// own beside the migration lock's and `rollupWriteLock`'s.
    static let lock = SQLStatement("SELECT pg_advisory_xact_lock(7263591036)")
    /// Creating or dropping a partition locks its parent exclusively; behind a long read it would
    /// hold back every insert queued after it. It gives up instead and is tried again later.
    static let lockTimeout = SQLStatement("SET LOCAL lock_timeout = '5s'")

    /// The partition of `table` holding UTC day `day` (days since 1970-01-01): `requests_p20261202`.
    public static func name(_ table: String, day: Int64) -> String {
        let (y, m, d) = TimeExpressions.civilFromDays(day)
        func pad(_ n: Int64, _ width: Int) -> String { String(repeating: "0", count: max(0, width - String(n).count)) + String(n) }
        return "\(table)_p\(pad(y, 4))\(pad(m, 2))\(pad(d, 2))"
    }

    public static func defaultName(_ table: String) -> String { "\(table)_default" }

    // MARK: Migration

    /// Schema version 10 on PostgreSQL: each table is replaced by a partitioned one with the same
    /// columns (and, for logs, the same sequence, so a tail's position stays valid), its rows
    /// copied into day partitions, then its keys and indexes built once over the copy. The rollup
    /// trigger is created after the copy, so the calls are not counted again.
    static func migration() -> [String] {
        var statements = ["LOCK TABLE \(tables.map(\.name).joined(separator: ", ")) IN ACCESS EXCLUSIVE MODE"]
        for (table, primaryKey) in tables {
            let old = "\(table)_unpartitioned"
            statements += [
                "ALTER TABLE \(table) RENAME TO \(old)",
                "CREATE TABLE \(table) (LIKE \(old) INCLUDING DEFAULTS) PARTITION BY RANGE (ts)",
                // The day's name as `name(_:day:)` spells it, so maintenance finds it.
                """
                DO $$
                DECLARE day BIGINT;
                DECLARE today BIGINT := floor(extract(epoch FROM now()) / 86400)::bigint;
                BEGIN
                    FOR day IN SELECT DISTINCT ts / \(dayMicros) FROM \(old)
                               WHERE ts >= (today - \(migrationDaysBack)) * \(dayMicros) AND ts < (today + \(daysAhead + 1)) * \(dayMicros) LOOP
                        EXECUTE format('CREATE TABLE %I PARTITION OF \(table) FOR VALUES FROM (%s) TO (%s)',
                                       '\(table)_p' || to_char(to_timestamp(day * 86400) AT TIME ZONE 'UTC', 'YYYYMMDD'),
                                       day * \(dayMicros), (day + 1) * \(dayMicros));
                    END LOOP;
                END $$
                """,
                "CREATE TABLE \(defaultName(table)) PARTITION OF \(table) DEFAULT",
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

    // MARK: Maintenance

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
            guard numbers.count == 2, numbers[1] - numbers[0] == dayMicros, numbers[0] % dayMicros == 0 else { return nil }
            return (name, numbers[0], numbers[1])
        }.sorted { $0.from < $1.from }
    }

    /// Creates the partitions of today (the UTC day of `nowMicros`) and `daysAhead` days after it
    /// that do not exist yet, and the default partitions if one is missing; returns the names it
    /// found missing. Idempotent, and safe from several instances at once: each missing one is
    /// created in a transaction of its own under an advisory lock, only if still missing then.
    ///
    /// Each transaction first locks the parent table exclusively (`lockTimeout` bounds the wait):
    /// an insert holds the parent from its first row to its commit, so once the lock is granted
    /// no row can reach the default partition until the day's rows have been moved out of it and
    /// the partition exists. Without it, a row committed after the move made PostgreSQL refuse the
    /// partition (23514). One transaction a partition, so one that fails (a long read holding the
    /// table) leaves the others created; the rest of that table's days are left for the next try,
    /// each would wait out the same lock. Throws `PartitionsNotCreated` after trying every table.
    @discardableResult
    public static func ensure(driver: any SQLDriver, nowMicros: Int64 = TimeExpressions.nowMicros()) async throws -> [String] {
        guard driver.dialect.name == "postgres" else { return [] }
        let today = nowMicros >= 0 ? nowMicros / dayMicros : (nowMicros + 1) / dayMicros - 1
        var created: [String] = [], notCreated: [String] = [], firstError: (any Error)?
        for (table, _) in tables {
            let existing = Set(try await partitions(of: table, driver: driver).map(\.name))
            let defaultPartition = defaultName(table)
            var missing: [(name: String, block: String)] = []
            if try await driver.query("SELECT to_regclass(\(driver.dialect.placeholder(1)))::text AS name", [.text(defaultPartition)]).first?["name"].text == nil {
                missing.append((defaultPartition, "CREATE TABLE \(defaultPartition) PARTITION OF \(table) DEFAULT;"))
            }
            for day in today...(today + daysAhead) where !existing.contains(name(table, day: day)) {
                let partition = name(table, day: day)
                let from = day * dayMicros, to = from + dayMicros
                let inRange = "ts >= \(from) AND ts < \(to)"
                missing.append((partition, """
                    IF EXISTS (SELECT 1 FROM \(defaultPartition) WHERE \(inRange)) THEN
                        CREATE TABLE \(partition) (LIKE \(table) INCLUDING DEFAULTS);
                        WITH moved AS (DELETE FROM \(defaultPartition) WHERE \(inRange) RETURNING *) INSERT INTO \(partition) SELECT * FROM moved;
                        ALTER TABLE \(table) ATTACH PARTITION \(partition) FOR VALUES FROM (\(from)) TO (\(to));
                    ELSE
                        CREATE TABLE \(partition) PARTITION OF \(table) FOR VALUES FROM (\(from)) TO (\(to));
                    END IF;
                    """))
            }
            for (index, partition) in missing.enumerated() {
                do {
                    try await driver.transaction([
                        lock, lockTimeout, SQLStatement("LOCK TABLE ONLY \(table) IN ACCESS EXCLUSIVE MODE"),
                        SQLStatement("DO $$\nBEGIN\nIF to_regclass('\(partition.name)') IS NULL THEN\n\(partition.block)\nEND IF;\nEND $$"),
                    ])
                    created.append(partition.name)
                } catch {
                    notCreated += missing[index...].map(\.name)
                    if firstError == nil { firstError = error }
                    break
                }
            }
        }
        if let firstError { throw PartitionsNotCreated(partitions: notCreated, cause: "\(firstError)") }
        return created
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

/// Day partitions that `DayPartitions.ensure` could not create (most often: a long read held
/// the table past `lockTimeout`). Not fatal: the default partition takes those days' rows
/// until a later attempt creates them, and moves them in then.
public struct PartitionsNotCreated: Error, CustomStringConvertible, Sendable {
    public var partitions: [String]
    public var cause: String
    public var description: String {
        "day partitions not created yet (\(partitions.joined(separator: ", "))): \(cause); "
            + "their rows go to the default partition until a later attempt creates them"
    }
}

/// Creates the coming days' partitions at start and then every hour (`DayPartitions.ensure`),
/// a minute after an attempt that left some missing. Migrating (`SQLRequestStore.migrate`, also
/// `gatehouse migrate`) tries as well, so a migrated store normally has today's before anything
/// writes.
public struct PartitionMaintenance: Service {
    let driver: any SQLDriver
    let interval: Duration
    let retryInterval: Duration
    let logger: Logger

    init(driver: any SQLDriver, interval: Duration = .seconds(3600), retryInterval: Duration = .seconds(60), logger: Logger) {
        self.driver = driver
        self.interval = interval
        self.retryInterval = retryInterval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var wait: Duration?
            while !Task.isCancelled {
                if let wait { do { try await Task.sleep(for: wait) } catch { break } }
                do {
                    let created = try await DayPartitions.ensure(driver: driver)
                    if !created.isEmpty { logger.info("created day partitions", metadata: ["partitions": "\(created.joined(separator: ", "))"]) }
                    wait = interval
                } catch {
                    if Task.isCancelled { break }
                    // A week of partitions exists ahead, and the default one takes rows meanwhile:
                    // soon is early enough, and leaves a long read (pg_dump) time to end.
                    logger.warning("creating day partitions failed; will retry in a minute", metadata: ["error": "\(error)"])
                    wait = retryInterval
                }
            }
        }
    }
}

extension SQLRequestStore {
    /// The hourly creation of day partitions, for the server's service group; nil on SQLite.
    public func partitionMaintenance(logger: Logger) -> (any Service)? {
        dialect.name == "postgres" ? PartitionMaintenance(driver: driver, logger: logger) : nil
    }
}
