import Foundation
import GatehouseCore
import Logging
import Testing
@testable import GatehouseStorage

/// The indexes of the day-partitioned tables on PostgreSQL, against the same tables on SQLite.
///
/// An index a migration creates on a partitioned table reaches every partition by itself (the
/// existing ones, and those `DayPartitions.ensure` makes or attaches later), so a new migration
/// needs no copy per partition. What can part the databases is a list written twice: version 10
/// rebuilt the three tables on PostgreSQL and spelled their indexes out again, and every
/// migration has a SQLite and a PostgreSQL list. `PartitionTests.aStoreWithoutPartitionsMigratesWithItsData`
/// holds version 10's list to what versions 1–9 made; this holds the result of every migration
/// to SQLite's: a later index (or a later rebuild) written for one database and not the other
/// fails here, by name or by columns. Then it checks each partition carries all its table's indexes.
@Suite struct PartitionIndexTests {
    /// On PostgreSQL only: GIN indexes over the JSONB columns (SQLite keeps that JSON as text).
    static let postgresOnly: Set<String> = ["requests_properties", "logs_attributes"]
    static let tables = DayPartitions.tables.map(\.name)

    @Test func partitionedTablesHaveTheIndexesSQLiteHas() async throws {
        let logger = Logger(label: "test")
        let sqlite = try await StoreFactory.withStore(databaseURL: try Backend.sqlite.databaseURL(), logger: logger) { store in
            try await Self.sqliteIndexes(store.driver)
        }
        try await withTelemetryStore(.postgres) { telemetry, store in
            let driver = store.driver
            let postgres = try await Self.postgresIndexes(driver)
            for table in Self.tables {
                #expect(!(sqlite[table] ?? []).isEmpty, "\(table) has indexes on SQLite")
                #expect(postgres[table, default: []].filter { !Self.postgresOnly.contains($0.name) }.map(\.description) == sqlite[table, default: []].map(\.description),
                        "\(table): the same indexes, by name and columns, on both databases")
            }
            // A day whose rows wait in the default partition gets its partition by ATTACH: that
            // one must carry the indexes too.
            let today = TimeExpressions.floorMicros(TimeExpressions.nowMicros(), toMultipleOf: TimeExpressions.microsPerDay)
            try await telemetry.insertLogs([makeLine(1, at: today + 10 * TimeExpressions.microsPerDay + 5)])
            let created = try await DayPartitions.ensure(driver: driver, nowMicros: today + 3 * TimeExpressions.microsPerDay)
            #expect(created.contains(DayPartitions.name("logs", day: TimeExpressions.utcDay(micros: today) + 10)))
            for table in Self.tables {
                let parent = try await driver.query("SELECT COUNT(*) AS n FROM pg_index WHERE indrelid = to_regclass($1)", [.text(table)]).first?["n"].int ?? 0
                // Each partition's indexes that are attached to one of its table's.
                let partitions = try await driver.query("""
                    SELECT CAST(c.relname AS TEXT) AS name, COUNT(ii.inhparent) AS n
                    FROM pg_inherits t JOIN pg_class c ON c.oid = t.inhrelid
                    LEFT JOIN pg_index x ON x.indrelid = c.oid
                    LEFT JOIN pg_inherits ii ON ii.inhrelid = x.indexrelid
                        AND ii.inhparent IN (SELECT indexrelid FROM pg_index WHERE indrelid = to_regclass($1))
                    WHERE t.inhparent = to_regclass($1) GROUP BY c.relname
                    """, [.text(table)])
                #expect(partitions.count >= Int(DayPartitions.daysAhead) + 2, "\(table): day partitions and the default one")
                for partition in partitions {
                    #expect(partition["n"].int == parent, "\(partition["name"].text ?? "?") has every index of \(table)")
                }
            }
        }
    }

    struct TableIndex: CustomStringConvertible, Comparable {
        var name: String
        /// The column list, lowercased and without spaces: `(lower(service),ts)`.
        var columns: String
        var description: String { "\(name) \(columns)" }
        static func < (a: TableIndex, b: TableIndex) -> Bool { a.name < b.name }
    }

    static func normalized(_ columns: some StringProtocol) -> String {
        columns.lowercased().filter { !$0.isWhitespace }
    }

    /// The indexes SQLite's migrations wrote, from their SQL (its primary keys' automatic indexes have none).
    static func sqliteIndexes(_ driver: any SQLDriver) async throws -> [String: [TableIndex]] {
        var result: [String: [TableIndex]] = [:]
        for row in try await driver.query("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL", []) {
            guard let name = row["name"].text, let table = row["tbl_name"].text, tables.contains(table), let sql = row["sql"].text,
                  let on = sql.range(of: " ON \(table) ") else { continue }
            result[table, default: []].append(TableIndex(name: name, columns: normalized(sql[on.upperBound...])))
        }
        return result.mapValues { $0.sorted() }
    }

    /// The indexes of the partitioned tables themselves (`ON ONLY requests`), primary keys left
    /// out: theirs carry `ts` on PostgreSQL by design (`DayPartitions.tables`).
    static func postgresIndexes(_ driver: any SQLDriver) async throws -> [String: [TableIndex]] {
        var result: [String: [TableIndex]] = [:]
        for row in try await driver.query("""
            SELECT CAST(indexname AS TEXT) AS name, CAST(tablename AS TEXT) AS tbl, indexdef FROM pg_indexes
            WHERE schemaname = current_schema() AND indexname NOT LIKE '%pkey'
            """, []) {
            // `CREATE INDEX requests_ts ON ONLY public.requests USING btree (ts, latency_us)`
            guard let name = row["name"].text, let table = row["tbl"].text, tables.contains(table), let definition = row["indexdef"].text,
                  let using = definition.range(of: #"USING \w+ "#, options: .regularExpression) else { continue }
            result[table, default: []].append(TableIndex(name: name, columns: normalized(definition[using.upperBound...])))
        }
        return result.mapValues { $0.sorted() }
    }
}
