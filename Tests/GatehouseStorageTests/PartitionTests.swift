import Foundation
import GatehouseCore
import Logging
import Testing
@testable import GatehouseStorage

/// Day partitions on PostgreSQL (`DayPartitions`): where rows land, reads across a day boundary,
/// retention dropping whole days, hourly maintenance, and the migration of a store that had none.
/// The reads across a boundary run on SQLite too (plain tables there).
@Suite struct PartitionTests {
    static let day = TimeExpressions.microsPerDay
    /// Midnight UTC starting today: maintenance has made today's partitions and a week's after.
    static var today: Int64 { (TimeExpressions.nowMicros() / day) * day }

    /// The partition each row of `table` is in, by a key column.
    static func placement(_ driver: any SQLDriver, _ table: String, key: String) async throws -> [String: String] {
        let rows = try await driver.query("SELECT CAST(\(key) AS TEXT) AS key, CAST(tableoid::regclass AS TEXT) AS part FROM \(table)", [])
        return Dictionary(uniqueKeysWithValues: rows.map { ($0["key"].text ?? "", $0["part"].text ?? "") })
    }

    static func tableExists(_ driver: any SQLDriver, _ name: String) async throws -> Bool {
        try await driver.query("SELECT COUNT(*) AS n FROM pg_class WHERE relname = $1", [.text(name)]).first?["n"].int == 1
    }

    @Test func partitionNamesAreUTCDays() {
        #expect(DayPartitions.name("requests", day: 0) == "requests_p19700101")
        #expect(DayPartitions.name("logs", day: base / Self.day) == "logs_p20261122")
        #expect(DayPartitions.name("error_events", day: 11_016) == "error_events_p20000229", "a leap day")
    }

    @Test func recordsLandInTheirDaysPartitions() async throws {
        try await withTelemetryStore(.postgres) { telemetry, store in
            let driver = store.driver
            let today = Self.today
            for table in ["requests", "logs", "error_events"] {
                let days = try await DayPartitions.partitions(of: table, driver: driver)
                #expect(days.map(\.from) == (0...DayPartitions.daysAhead).map { today + $0 * Self.day }, "\(table): today and a week ahead")
                #expect(try await Self.tableExists(driver, "\(table)_default"))
            }
            // Just before and at midnight, the next day, and a clock three weeks off.
            let times = [today + Self.day - 1, today + Self.day, today + 2 * Self.day + 5, today + 21 * Self.day]
            try await store.insert(times.enumerated().map { makeRecord($0.offset, at: $0.element) })
            try await telemetry.insertLogs(times.enumerated().map { makeLine($0.offset, at: $0.element, message: "m\($0.offset)") })
            try await telemetry.insertErrorEvents(times.enumerated().map { makeEvent("e\($0.offset)", issue: "i", at: $0.element) })
            let expected = [DayPartitions.name("requests", day: today / Self.day), DayPartitions.name("requests", day: today / Self.day + 1),
                            DayPartitions.name("requests", day: today / Self.day + 2), "requests_default"]
            let requests = try await Self.placement(driver, "requests", key: "id")
            #expect((0..<4).map { requests[String(format: "req_%08d", $0)] } == expected)
            let logs = try await Self.placement(driver, "logs", key: "message")
            #expect((0..<4).map { logs["m\($0)"] } == expected.map { $0.replacingOccurrences(of: "requests", with: "logs") })
            let events = try await Self.placement(driver, "error_events", key: "event_id")
            #expect((0..<4).map { events["e\($0)"] } == expected.map { $0.replacingOccurrences(of: "requests", with: "error_events") })
            // The rollup trigger on the parent counted the calls routed to every partition, once.
            try await store.insert(times.enumerated().map { makeRecord($0.offset, at: $0.element) })
            let rolled = try await driver.query("SELECT CAST(SUM(requests) AS BIGINT) AS n FROM request_rollups WHERE level = 1", []).first?["n"].int
            #expect(rolled == 4)
            #expect(try await driver.query("SELECT COUNT(*) AS n FROM requests", []).first?["n"].int == 4)
        }
    }

    /// A record written again (the recorder's retry after an ambiguous failure) stays one record,
    /// and an error event sent again stays one event, whichever partition holds it.
    @Test func retriedRecordsAndEventsAreStoredOnce() async throws {
        try await withTelemetryStore(.postgres) { telemetry, store in
            let at = [Self.today + 5, base, Self.today + Self.day + 7]  // a day partition, the default one, another day
            let records = at.enumerated().map { makeRecord($0.offset, at: $0.element) }
            try await store.insert(records)
            try await store.insert(records)
            try await store.insert([records[1]])
            #expect(try await store.driver.query("SELECT COUNT(*) AS n FROM requests", []).first?["n"].int == 3)
            let events = at.enumerated().map { makeEvent("e\($0.offset)", issue: "i", at: $0.element) }
            try await telemetry.insertErrorEvents(events)
            try await telemetry.insertErrorEvents(events)
            #expect(try await telemetry.issue(id: "i")?.count == 3)
            #expect(try await store.driver.query("SELECT COUNT(*) AS n FROM error_events", []).first?["n"].int == 3)
        }
    }

    /// Usage totals, a request list paged by cursor and a log search, each over a range spanning
    /// midnight (two partitions on PostgreSQL), answer as if the rows were in one table.
    @Test(arguments: Backend.allCases)
    func queriesAcrossADayBoundary(_ backend: Backend) async throws {
        try await withTelemetryStore(backend) { telemetry, store in
            let midnight = Self.today + Self.day
            // 40 calls a minute apart either side of midnight, and 40 log lines.
            let times = (0..<80).map { midnight + Int64($0 - 40) * 60_000_000 + 17 }
            try await store.insert(times.enumerated().map { makeRecord($0.offset, at: $0.element, model: $0.offset % 3 == 0 ? "a" : "b", cost: Int64($0.offset)) })
            try await telemetry.insertLogs(times.enumerated().map { makeLine($0.offset, at: $0.element, level: $0.offset % 2 == 0 ? .error : .info) })
            let query = UsageQuery(fromMicros: midnight - 2 * hour, toMicros: midnight + 2 * hour, intervalMicros: hour, groupBy: .model)
            let rollups = SQLRequestStore(driver: store.driver, useRollups: true)
            let calls = SQLRequestStore(driver: store.driver, useRollups: false)
            let usage = try await rollups.usage(query)
            #expect(sameReport(usage, try await calls.usage(query)))
            #expect(usage.totals.requests == 80 && usage.totals.cost == MicroDollars(Int64((0..<80).reduce(0, +))))
            let halfHourEachSide = try await store.usage(UsageQuery(fromMicros: midnight - 30 * 60_000_000, toMicros: midnight + 30 * 60_000_000))
            #expect(halfHourEachSide.totals.requests == 60)

            var listed: [String] = [], cursor: String?
            repeat {
                let page = try await store.requests(RequestListQuery(fromMicros: midnight - hour, toMicros: midnight + hour, limit: 7, cursor: cursor))
                listed += page.records.map(\.id)
                cursor = page.nextCursor
            } while cursor != nil
            #expect(listed == (0..<80).reversed().map { String(format: "req_%08d", $0) }, "newest first, each once, across midnight")

            let errors = try QueryParser.parse("level:error").filter
            var lines: [Int64] = []
            var logCursor: String?
            repeat {
                let page = try await telemetry.logs(LogListQuery(filter: errors, fromMicros: midnight - hour, toMicros: midnight + hour, limit: 6, cursor: logCursor))
                lines += page.lines.map(\.timestampMicros)
                logCursor = page.nextCursor
            } while logCursor != nil
            #expect(lines == times.enumerated().filter { $0.offset % 2 == 0 }.map(\.element).reversed())
            #expect(try await telemetry.countLogs(filter: errors, fromMicros: midnight - 10 * 60_000_000, toMicros: midnight + 10 * 60_000_000) == 10)
        }
    }

    /// Retention drops each day partition wholly before the cutoff (gone from pg_class), deleting
    /// first the older rows the default partition holds; kept days are untouched, and the rollups
    /// go with the calls, so usage still reads the same both ways.
    @Test func retentionDropsWholeDays() async throws {
        try await withBothWays(.postgres) { rollups, calls, _, opened in
            let driver = opened.store.driver
            let first = Self.today - 10 * Self.day
            try await DayPartitions.ensure(driver: driver, nowMicros: first)
            let telemetry = opened.telemetry
            // Four days of calls, logs and events, 6 each a day, and one call and line a year before (default partition).
            let times = (0..<24).map { first + Int64($0 / 6) * Self.day + Int64($0 % 6) * 3 * hour + 11 }
            let ancient = first - 365 * Self.day
            try await rollups.insert(times.enumerated().map { makeRecord($0.offset, at: $0.element, cost: 1) } + [makeRecord(99, at: ancient, cost: 1)])
            try await telemetry.insertLogs((times + [ancient]).enumerated().map { makeLine($0.offset, at: $0.element) })
            try await telemetry.insertErrorEvents(times.enumerated().map { makeEvent("e\($0.offset)", issue: "i", at: $0.element) })
            #expect(try await Self.placement(driver, "requests", key: "id")["req_00000099"] == "requests_default")

            // The retention service's cutoff: two days ago, rounded down to midnight on PostgreSQL.
            #expect(telemetry.retentionStepMicros(.requests) == Self.day && telemetry.retentionStepMicros(.bodies) == 1)
            let cutoff = first + 2 * Self.day
            var removed = 0
            while true {
                let n = try await telemetry.prune(.requests, beforeMicros: cutoff, batch: 1000)
                removed += n
                if n == 0 { break }
            }
            #expect(removed == 13, "two days of 6 calls, and the one a year old")
            #expect(try await telemetry.prune(.logs, beforeMicros: cutoff, batch: 1000) == 13)
            #expect(try await telemetry.prune(.errors, beforeMicros: cutoff, batch: 1000) == 12)
            // The events' ids (kept apart to refuse a retried event) go with them.
            #expect(try await driver.query("SELECT COUNT(*) AS n FROM error_event_ids", []).first?["n"].int == 12)
            for table in ["requests", "logs", "error_events"] {
                for day in 0..<2 { #expect(try await !Self.tableExists(driver, DayPartitions.name(table, day: first / Self.day + Int64(day)))) }
                for day in 2..<4 { #expect(try await Self.tableExists(driver, DayPartitions.name(table, day: first / Self.day + Int64(day)))) }
            }
            let kept = try await driver.query("SELECT id FROM requests ORDER BY ts", []).compactMap { $0["id"].text }
            #expect(kept == (12..<24).map { String(format: "req_%08d", $0) })
            // Rollups: the dropped days' slots are gone; what is left sums the calls left.
            let query = UsageQuery(fromMicros: first - 400 * Self.day, toMicros: first + 5 * Self.day, intervalMicros: Self.day, groupBy: .model)
            let usage = try await rollups.usage(query)
            #expect(sameReport(usage, try await calls.usage(query)) && usage.totals.requests == 12)
            let oldestSlot = try await driver.query("SELECT MIN(slot) AS slot FROM request_rollups", []).first?["slot"].int
            #expect((oldestSlot ?? 0) >= cutoff)
            let rolled = try await driver.query("SELECT CAST(SUM(requests) AS BIGINT) AS n FROM request_rollups WHERE level = 4", []).first?["n"].int
            #expect(rolled == 12)
            // A cutoff inside a day (row limits, a prune by hand) deletes that day's rows before it.
            #expect(try await telemetry.prune(.requests, beforeMicros: cutoff + 4 * hour, batch: 1000) == 2)
            #expect(try await Self.tableExists(driver, DayPartitions.name("requests", day: cutoff / Self.day)))
            #expect(try await telemetry.trim(.logs, keep: 3, batch: 1000) == 9)
            let usageAfter = try await rollups.usage(query)
            #expect(sameReport(usageAfter, try await calls.usage(query)) && usageAfter.totals.requests == 10)
        }
    }

    /// Maintenance run again, and from two connections at once, creates each partition once and
    /// fails nowhere; a day about to get its partition takes the rows the default partition held
    /// for it, without counting the calls again.
    @Test func maintenanceIsIdempotentAndSafeFromTwoInstances() async throws {
        let url = try Backend.postgres.databaseURL()
        try await StoreFactory.withOpenedStore(databaseURL: url, logger: Logger(label: "test")) { one in
            try await StoreFactory.withOpenedStore(databaseURL: url, logger: Logger(label: "test")) { two in
                let drivers = [one.store.driver, two.store.driver]
                // A call and a line from a clock nine days fast: no partition yet, so the default one.
                let skewed = Self.today + 9 * Self.day + 123
                try await one.store.insert([makeRecord(1, at: skewed), makeRecord(2, at: Self.today + 1)])
                try await one.telemetry.insertLogs([makeLine(1, at: skewed, message: "skewed")])
                #expect(try await Self.placement(drivers[0], "requests", key: "id")["req_00000001"] == "requests_default")
                // Three days later, from both instances at once, several times.
                let later = Self.today + 3 * Self.day
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for i in 0..<6 { group.addTask { try await DayPartitions.ensure(driver: drivers[i % 2], nowMicros: later) } }
                    try await group.waitForAll()
                }
                #expect(try await DayPartitions.ensure(driver: drivers[1], nowMicros: later).isEmpty, "nothing left to create")
                for table in ["requests", "logs", "error_events"] {
                    let days = try await DayPartitions.partitions(of: table, driver: drivers[0]).map(\.from)
                    #expect(days == (0...(3 + DayPartitions.daysAhead)).map { Self.today + $0 * Self.day }, "\(table)")
                }
                let skewedDay = DayPartitions.name("requests", day: skewed / Self.day)
                #expect(try await Self.placement(drivers[0], "requests", key: "id")["req_00000001"] == skewedDay)
                #expect(try await Self.placement(drivers[0], "logs", key: "message")["skewed"] == skewedDay.replacingOccurrences(of: "requests", with: "logs"))
                let rolled = try await drivers[0].query("SELECT CAST(SUM(requests) AS BIGINT) AS n FROM request_rollups WHERE level = 1", []).first?["n"].int
                #expect(rolled == 2, "moving rows out of the default partition counts nothing again")
                // Moved rows keep their indexes' service: found by id and by time.
                #expect(try await one.store.request(id: "req_00000001")?.timestampMicros == skewed)
            }
        }
    }

    /// A day partition that cannot be created at start (a long read holds its table: creating
    /// one locks the parent and the default partition exclusively) is a warning, not a failed
    /// start or `gatehouse migrate`: the default partition takes that day's rows meanwhile, and
    /// once the read is over maintenance creates it.
    @Test func aPartitionBlockedByALongReadDoesNotFailTheMigration() async throws {
        let url = try Backend.postgres.databaseURL()
        try await StoreFactory.withOpenedStore(databaseURL: url, logger: Logger(label: "test")) { opened in
            try await StoreFactory.withOpenedStore(databaseURL: url, logger: Logger(label: "test"), migrating: false) { reader in
                let driver = opened.store.driver
                let lastDay = DayPartitions.name("requests", day: Self.today / Self.day + DayPartitions.daysAhead)
                try await driver.transaction([SQLStatement("DROP TABLE \(lastDay)")])
                // A console query or pg_dump: longer than the partition lock's 5 s timeout.
                let read = Task {
                    try await reader.store.driver.transaction([SQLStatement("SELECT count(*) FROM requests"), SQLStatement("SELECT pg_sleep(7)")])
                }
                try await Task.sleep(for: .milliseconds(500))
                // What `gatehouse migrate` and a migrating `serve` run.
                let run = try await StoreFactory.migrate(databaseURL: url, logger: Logger(label: "test"))
                #expect(run.applied.isEmpty)
                #expect(try await !Self.tableExists(driver, lastDay))
                try await read.value
                #expect(try await DayPartitions.ensure(driver: driver) == [lastDay])
                #expect(try await Self.tableExists(driver, lastDay))
            }
        }
    }

    /// Rows of a day about to get its partition are moved out of the default partition while
    /// another instance is inserting that day's rows (committed after the move began): the
    /// partition is created all the same, every row is kept once, and the calls are counted once.
    @Test func rowsInsertedWhileTheirPartitionIsCreatedAreMovedOnce() async throws {
        let url = try Backend.postgres.databaseURL()
        try await StoreFactory.withOpenedStore(databaseURL: url, logger: Logger(label: "test")) { opened in
            try await StoreFactory.withOpenedStore(databaseURL: url, logger: Logger(label: "test"), migrating: false) { other in
                let driver = opened.store.driver
                let day = Self.today / Self.day + DayPartitions.daysAhead
                let at = day * Self.day + hour
                for table in ["requests", "logs"] { try await driver.transaction([SQLStatement("DROP TABLE \(DayPartitions.name(table, day: day))")]) }
                try await opened.store.insert((0..<1000).map { makeRecord($0, at: at + Int64($0)) })
                try await opened.telemetry.insertLogs((0..<1000).map { makeLine($0, at: at + Int64($0)) })
                #expect(try await driver.query("SELECT COUNT(*) AS n FROM logs_default", []).first?["n"].int == 1000)
                // Another instance's batch of that day, committed 3 s later.
                let held = Task {
                    try await other.store.driver.transaction([
                        SQLStatement("""
                            INSERT INTO requests SELECT (json_populate_record(NULL::requests, jsonb_set(to_jsonb(r), '{id}', '"held"')::json)).*
                            FROM requests r WHERE id = 'req_00000000'
                            """),
                        SQLStatement("INSERT INTO logs (ts, project, severity, message) VALUES (\(at + 5000), 'web', 3, 'held')"),
                        SQLStatement("SELECT pg_sleep(3)"),
                    ])
                }
                try await Task.sleep(for: .milliseconds(500))
                let created = try await DayPartitions.ensure(driver: driver)
                try await held.value
                #expect(Set(created) == [DayPartitions.name("requests", day: day), DayPartitions.name("logs", day: day)])
                for table in ["requests", "logs"] {
                    #expect(try await Self.tableExists(driver, DayPartitions.name(table, day: day)), "\(table)")
                    #expect(try await driver.query("SELECT COUNT(*) AS n FROM \(table)", []).first?["n"].int == 1001, "\(table)")
                    #expect(try await driver.query("SELECT COUNT(*) AS n FROM \(DayPartitions.defaultName(table))", []).first?["n"].int == 0, "\(table)")
                }
                let rolled = try await driver.query("SELECT CAST(SUM(requests) AS BIGINT) AS n FROM request_rollups WHERE level = 1", []).first?["n"].int
                #expect(rolled == 1001, "moved calls are not counted again")
            }
        }
    }

    /// An error event without a timestamp takes the time it was received, so an SDK's retry
    /// (another instance, or the same one before the first is stored) has another `ts`: it is
    /// still stored once, and counted once in its issue.
    @Test(arguments: Backend.allCases)
    func concurrentRetriesOfAnEventAreStoredOnce(_ backend: Backend) async throws {
        try await withTelemetryStore(backend) { telemetry, store in
            let now = TimeExpressions.nowMicros()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<16 { group.addTask { try await telemetry.insertErrorEvents([makeEvent("retried", issue: "i", at: now + Int64(i) * 1000)]) } }
                try await group.waitForAll()
            }
            #expect(try await store.driver.query("SELECT COUNT(*) AS n FROM error_events", []).first?["n"].int == 1)
            #expect(try await telemetry.issue(id: "i")?.count == 1)
            // Sent again later, in a batch with a new one.
            try await telemetry.insertErrorEvents([makeEvent("retried", issue: "i", at: now + hour), makeEvent("new", issue: "i", at: now)])
            #expect(try await store.driver.query("SELECT COUNT(*) AS n FROM error_events", []).first?["n"].int == 2)
            #expect(try await telemetry.issue(id: "i")?.count == 2)
        }
    }

    /// A store from before version 10, with data, migrates: every row kept in its day's partition
    /// (or the default one), the rollups as they were, the log sequence going on, the same
    /// indexes, and duplicates still refused.
    @Test func aStoreWithoutPartitionsMigratesWithItsData() async throws {
        let opened = try await StoreFactory.open(databaseURL: try Backend.postgres.databaseURL(), logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for service in opened.services { group.addTask { try await service.run() } }
            defer { group.cancelAll() }
            do {
                let driver = opened.store.driver
                try await Migrations.apply(to: driver, migrations: Migrations.all.filter { $0.version <= 9 })
                #expect(try await driver.query("SELECT relkind::text AS kind FROM pg_class WHERE relname = 'requests'", []).first?["kind"].text == "r")
                let indexesBefore = try await Self.indexes(driver)
                let today = Self.today
                // Yesterday, today, tomorrow, 30 days ago; 2 years ago and a clock 30 days fast go to the default partition.
                let times = [today - Self.day + 5, today + 6, today + Self.day + 7, today - 30 * Self.day, today - 730 * Self.day, today + 30 * Self.day]
                try await opened.store.insert(times.enumerated().map { makeRecord($0.offset, at: $0.element, cost: Int64($0.offset + 1)) })
                try await opened.telemetry.insertLogs(times.enumerated().map { makeLine($0.offset, at: $0.element, message: "m\($0.offset)") })
                // Events as version 9 stored them (the store's code now claims ids in version 11's table).
                try await driver.transaction(times.enumerated().map { i, t in
                    SQLStatement("INSERT INTO error_events (event_id, project, issue_id, ts, severity, type, value, title, culprit, document) VALUES ('e\(i)', 'web', 'i', \(t), 5, 'E', 'v', 'E: v', 'c', '{}')")
                } + [SQLStatement("INSERT INTO issues (id, project, title, type, culprit, severity, status, first_seen, last_seen, event_count) VALUES ('i', 'web', 'E: v', 'E', 'c', 5, 'unresolved', \(times.min()!), \(times.max()!), 6)")])
                let rollupsBefore = try await Self.rollupSnapshot(driver)
                let lastSeq = try await opened.telemetry.latestLogSequence()

                try await opened.store.migrate()

                for table in ["requests", "logs", "error_events"] {
                    #expect(try await driver.query("SELECT relkind::text AS kind FROM pg_class WHERE relname = $1", [.text(table)]).first?["kind"].text == "p")
                    #expect(try await !Self.tableExists(driver, "\(table)_unpartitioned"))
                }
                let placed = try await Self.placement(driver, "requests", key: "id")
                let expected = times.map { t -> String in
                    let day = t / Self.day
                    return t < today - 400 * Self.day || t >= today + (DayPartitions.daysAhead + 1) * Self.day ? "requests_default" : DayPartitions.name("requests", day: day)
                }
                #expect((0..<6).map { placed[String(format: "req_%08d", $0)] } == expected)
                #expect(try await Self.placement(driver, "logs", key: "message").count == 6)
                #expect(try await Self.placement(driver, "error_events", key: "event_id").count == 6)
                #expect(try await Self.rollupSnapshot(driver) == rollupsBefore, "the copy is not counted again")
                #expect(try await Self.indexes(driver) == indexesBefore, "the same indexes by name and columns")
                #expect(try await opened.store.request(id: "req_00000003")?.cost == MicroDollars(4))

                // After the migration: a tail continues from the old sequence, duplicates are refused, new calls are rolled up.
                try await opened.telemetry.insertLogs([makeLine(9, at: today + 9, message: "after")])
                let tail = try await opened.telemetry.logs(after: lastSeq, filter: nil, limit: 10)
                #expect(tail.map(\.message) == ["after"])
                try await opened.store.insert(times.enumerated().map { makeRecord($0.offset, at: $0.element, cost: Int64($0.offset + 1)) } + [makeRecord(7, at: today + 8)])
                try await opened.telemetry.insertErrorEvents([makeEvent("e1", issue: "i", at: times[1])])
                #expect(try await driver.query("SELECT COUNT(*) AS n FROM requests", []).first?["n"].int == 7)
                #expect(try await opened.telemetry.issue(id: "i")?.count == 6, "the migration claimed the stored events' ids")
                #expect(try await driver.query("SELECT COUNT(*) AS n FROM error_events", []).first?["n"].int == 6)
                let query = UsageQuery(fromMicros: today - 800 * Self.day, toMicros: today + 40 * Self.day)
                let usage = try await SQLRequestStore(driver: driver, useRollups: true).usage(query)
                #expect(sameReport(usage, try await SQLRequestStore(driver: driver, useRollups: false).usage(query)) && usage.totals.requests == 7)
                try await opened.close()
            } catch {
                try? await opened.close()
                throw error
            }
        }
    }

    /// Index name and definition of the three tables, the table name left out.
    static func indexes(_ driver: any SQLDriver) async throws -> [String] {
        try await driver.query("""
            SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('requests', 'logs', 'error_events') AND indexname NOT LIKE '%pkey'
            """, []).map { row in
            let definition = (row["indexdef"].text ?? "").replacingOccurrences(of: #"ON (ONLY )?\S+ USING"#, with: "USING", options: .regularExpression)
                .replacingOccurrences(of: "CREATE UNIQUE INDEX", with: "CREATE INDEX")
            return "\(row["indexname"].text ?? ""): \(definition.replacingOccurrences(of: "CREATE INDEX \(row["indexname"].text ?? "") ", with: ""))"
        }.sorted()
    }

    static func rollupSnapshot(_ driver: any SQLDriver) async throws -> [String] {
        try await driver.query("SELECT * FROM request_rollups", []).map { row in
            row.values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        }.sorted()
    }
}
