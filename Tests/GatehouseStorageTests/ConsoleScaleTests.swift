import Foundation
import GatehouseCore
import Logging
import PostgresNIO
import Synchronization
import Testing
@testable import GatehouseStorage

/// A driver that runs every statement on another and keeps its SQL: tests read what a store asked.
final class RecordingDriver: SQLDriver {
    let inner: any SQLDriver
    private let seen = Mutex<[String]>([])
    init(_ inner: any SQLDriver) { self.inner = inner }

    var dialect: any SQLDialect { inner.dialect }
    var statements: [String] { seen.withLock { $0 } }
    func reset() { seen.withLock { $0 = [] } }

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        seen.withLock { $0.append(sql) }
        return try await inner.query(sql, binds)
    }

    func transaction(_ statements: [SQLStatement]) async throws {
        seen.withLock { $0 += statements.map(\.sql) }
        try await inner.transaction(statements)
    }

    func withMigrationLock(_ body: @escaping @Sendable (any SQLDriver) async throws -> Void) async throws {
        try await inner.withMigrationLock(body)
    }

    func close() async throws {}
}

/// Pauses a PostgreSQL transaction between its first and second insert of calls, so a test can
/// let another writer in between two statements of one batch.
final class PausingDriver: SQLDriver {
    static let marker = "gatehouse_test_pause"
    let inner: any SQLDriver
    init(_ inner: any SQLDriver) { self.inner = inner }

    var dialect: any SQLDialect { inner.dialect }
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] { try await inner.query(sql, binds) }

    func transaction(_ statements: [SQLStatement]) async throws {
        var statements = statements
        if let first = statements.firstIndex(where: { $0.sql.hasPrefix("INSERT INTO requests") }) {
            statements.insert(SQLStatement("SELECT pg_sleep(1.5) AS \(Self.marker)"), at: first + 1)
        }
        try await inner.transaction(statements)
    }

    func withMigrationLock(_ body: @escaping @Sendable (any SQLDriver) async throws -> Void) async throws {
        try await inner.withMigrationLock(body)
    }

    func close() async throws {}
}

/// A small deterministic generator, so a failure can be replayed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Calls over `minutes` (by default a little more than three hours around `base`), across every rollup dimension: keys
/// absent and '', users, two models and providers, routes, statuses, failures with status 200,
/// latencies from microseconds to minutes with ties, and a property.
func scaleRecords(_ count: Int, seed: UInt64 = 11, from start: Int64 = base - 35 * 60_000_000, minutes: Int64 = 215, firstID: Int = 0) -> [RequestRecord] {
    var rng = SplitMix(state: seed)
    return (0..<count).map { n in
        let model = ["gpt-4o", "claude-sonnet-4-5", "gpt-4o-mini"].randomElement(using: &rng)!
        let status = [200, 200, 200, 200, 429, 500].randomElement(using: &rng)!
        let error: ErrorClass? = status == 429 ? .upstreamRateLimited : status == 500 ? .upstreamServerError
            : (Int.random(in: 0..<20, using: &rng) == 0 ? .streamIncomplete : nil)
        let latency: Int64 = switch Int.random(in: 0..<10, using: &rng) {
        case 0: Int64.random(in: 0..<40, using: &rng)
        case 1: 250_000  // ties
        case 2: Int64.random(in: 1_000_000..<200_000_000, using: &rng)
        default: Int64.random(in: 40_000..<3_000_000, using: &rng)
        }
        var record = makeRecord(firstID + n, at: start + Int64.random(in: 0..<(minutes * 60_000_000), using: &rng), model: model,
                                provider: model.hasPrefix("gpt") ? "openai" : "anthropic", latency: latency,
                                input: Int.random(in: 0..<5000, using: &rng), output: Int.random(in: 0..<900, using: &rng),
                                cost: Int64.random(in: 0..<90_000, using: &rng), customer: ["acme", "globex", nil].randomElement(using: &rng)!,
                                user: ["u-1", "u-2", "", nil].randomElement(using: &rng)!, error: error, status: status)
        record.keyID = ["k-1", "k-2", "", nil].randomElement(using: &rng)!
        record.route = [.chatCompletions, .chatCompletions, .embeddings, .messages].randomElement(using: &rng)!
        return record
    }
}

/// The request store on the same database both ways: with rollups (histogram percentiles from a
/// single call) and without.
func withBothWays(_ backend: Backend, _ body: @Sendable (_ rollups: SQLRequestStore, _ calls: SQLRequestStore, _ recorder: RecordingDriver,
                                                         _ opened: OpenedStore) async throws -> Void) async throws {
    try await StoreFactory.withOpenedStore(databaseURL: try backend.databaseURL(), logger: Logger(label: "test")) { opened in
        let recorder = RecordingDriver(opened.store.driver)
        try await body(SQLRequestStore(driver: recorder, useRollups: true, histogramPercentilesFrom: 1),
                       SQLRequestStore(driver: opened.store.driver, useRollups: false), recorder, opened)
    }
}

/// Percentiles computed two ways (PostgreSQL's own arithmetic and Swift's) may differ in the last bits.
func sameLatency(_ a: LatencyPercentiles?, _ b: LatencyPercentiles?) -> Bool {
    guard let a, let b else { return a == nil && b == nil }
    return abs(a.p50 - b.p50) < 1e-6 && abs(a.p95 - b.p95) < 1e-6 && abs(a.p99 - b.p99) < 1e-6
}

func sameStats(_ a: UsageStats, _ b: UsageStats) -> Bool {
    var x = a, y = b
    let latency = sameLatency(x.latency, y.latency)
    x.latency = nil
    y.latency = nil
    return x == y && latency
}

func sameReport(_ a: UsageReport, _ b: UsageReport) -> Bool {
    sameStats(a.totals, b.totals) && a.groups.count == b.groups.count && zip(a.groups, b.groups).allSatisfy { $0.key == $1.key && sameStats($0.stats, $1.stats) }
        && a.series.count == b.series.count && zip(a.series, b.series).allSatisfy { $0.startMicros == $1.startMicros && sameStats($0.stats, $1.stats) }
}

@Suite struct ConsoleScaleTests {
    static let minute: Int64 = 60_000_000

    /// Every query the rollups can answer gives the calls' answer: sums, groups, series and the
    /// exact latency percentiles, with part-slots at either end of the range.
    @Test(arguments: Backend.allCases)
    func rollupsAnswerExactlyAsTheCallsDo(_ backend: Backend) async throws {
        try await withBothWays(backend) { rollups, calls, recorder, _ in
            let records = scaleRecords(900)
            try await rollups.insert(records)
            let m = Self.minute
            let ranges: [(Int64, Int64)] = [(base - 20 * m, base + 190 * m), (base, base + 3 * hour), (base + 10 * m, base + 50 * m),
                                           (base - 40 * m, base + 4 * hour), (base + 61 * m, base + 3 * hour - 1)]
            let filters = [RequestFilter(), RequestFilter(model: "gpt-4o"), RequestFilter(provider: "anthropic"), RequestFilter(keyID: "k-1"),
                           RequestFilter(keyID: ""), RequestFilter(status: 500), RequestFilter(failed: true), RequestFilter(failed: false),
                           RequestFilter(route: .embeddings), RequestFilter(model: "gpt-4o", keyID: "k-2"), RequestFilter(userID: "")]
            let groupings: [UsageGrouping?] = [nil, .model, .provider, .key, .route, .status, .user, .property("customer")]
            var readRollups = 0
            for (from, to) in ranges {
                for filter in filters {
                    let shapes = groupings.map { ($0, nil as Int64?) } + [(nil, hour), (nil, 30 * m), (.key, 3 * hour)]
                    for (grouping, interval) in shapes {
                        let query = UsageQuery(fromMicros: from, toMicros: to, intervalMicros: interval, groupBy: grouping, filter: filter)
                        recorder.reset()
                        let fast = try await rollups.usage(query)
                        if recorder.statements.contains(where: { $0.contains("request_rollups") }) { readRollups += 1 }
                        let slow = try await calls.usage(query)
                        #expect(sameReport(fast, slow), "\(query)")
                    }
                }
            }
            #expect(readRollups > 150, "most of these queries read the rollups")

            // And the calls' answer is the records' own.
            let query = UsageQuery(fromMicros: base - 20 * m, toMicros: base + 190 * m)
            let inRange = records.filter { $0.timestampMicros >= query.fromMicros && $0.timestampMicros < query.toMicros }
            let expected = try #require(LatencyPercentiles.compute(sorted: inRange.map(\.latencyMicros).sorted()))
            let report = try await rollups.usage(query)
            #expect(report.totals.requests == Int64(inRange.count) && sameLatency(report.totals.latency, expected))
            #expect(report.totals.cost.value == inRange.reduce(0) { $0 + $1.cost.value })
        }
    }

    /// Over days, whole days come from the daily rows, the hours around them from the hourly
    /// ones, and series (whose buckets may be shorter than a day) from hours only.
    @Test(arguments: Backend.allCases)
    func dailyRollupsAnswerExactlyAsTheCallsDo(_ backend: Backend) async throws {
        try await withBothWays(backend) { rollups, calls, recorder, _ in
            try await rollups.insert(scaleRecords(1500, seed: 23, from: base - 30 * hour, minutes: 4 * 24 * 60))
            let ranges: [(Int64, Int64)] = [(base - 20 * hour - 7 * Self.minute, base + 50 * hour + 3 * Self.minute), (base, base + 48 * hour),
                                           (base - 31 * hour, base + 80 * hour)]
            var readDays = 0
            for (from, to) in ranges {
                for filter in [RequestFilter(), RequestFilter(model: "gpt-4o"), RequestFilter(keyID: "k-2"), RequestFilter(failed: true)] {
                    for (grouping, interval) in [(nil, nil), (.model, nil), (.key, nil), (nil, hour), (nil, 12 * hour), (.status, 24 * hour)] as [(UsageGrouping?, Int64?)] {
                        let query = UsageQuery(fromMicros: from, toMicros: to, intervalMicros: interval, groupBy: grouping, filter: filter)
                        recorder.reset()
                        let fast = try await rollups.usage(query)
                        if recorder.statements.contains(where: { $0.contains("request_rollups") }) { readDays += 1 }
                        #expect(sameReport(fast, try await calls.usage(query)), "\(query)")
                    }
                }
            }
            #expect(readDays > 50)
        }
    }

    /// A batch written again (after an ambiguous failure) and an id twice in one batch count once.
    @Test(arguments: Backend.allCases)
    func rollupsCountACallOnce(_ backend: Backend) async throws {
        try await withBothWays(backend) { rollups, calls, _, _ in
            let records = scaleRecords(500, seed: 5)
            try await rollups.insert(Array(records[0..<300]))
            try await rollups.insert(Array(records[200..<400]) + Array(records[250..<260]))
            try await rollups.insert(Array(records[400..<500]) + Array(records[0..<50]))
            let query = UsageQuery(fromMicros: base - hour, toMicros: base + 4 * hour, intervalMicros: hour, groupBy: .key)
            let fast = try await rollups.usage(query), slow = try await calls.usage(query)
            #expect(fast.totals.requests == 500 && sameReport(fast, slow))
        }
    }

    /// Retention deletes the calls before a moment in batches; the rollups follow, and usage
    /// still matches the calls left, also while a prune is half done.
    @Test(arguments: Backend.allCases)
    func rollupsFollowRetention(_ backend: Backend) async throws {
        try await withBothWays(backend) { rollups, calls, _, opened in
            try await rollups.insert(scaleRecords(600, seed: 7))
            let cutoff = base + 75 * Self.minute
            let query = UsageQuery(fromMicros: base - 2 * hour, toMicros: base + 5 * hour, intervalMicros: hour, groupBy: .model)
            _ = try await opened.telemetry.prune(.requests, beforeMicros: cutoff, batch: 20)
            #expect(sameReport(try await rollups.usage(query), try await calls.usage(query)), "part-way through a prune")
            while try await opened.telemetry.prune(.requests, beforeMicros: cutoff, batch: 50) > 0 {}
            #expect(sameReport(try await rollups.usage(query), try await calls.usage(query)))
            let driver = opened.store.driver
            let hours = try await driver.query("SELECT MIN(slot) AS slot FROM request_rollups WHERE level IN (1, 2, 3)", []).first?["slot"].int
            let days = try await driver.query("SELECT MIN(slot) AS slot FROM request_rollups WHERE level IN (4, 5, 6)", []).first?["slot"].int
            let oldest = try #require(try await driver.query("SELECT MIN(ts) AS ts FROM requests", []).first?["ts"].int)
            let slot = RequestRollups.slotMicros
            #expect(oldest >= cutoff && hours == (oldest / slot) * slot, "slots before the oldest call's are gone; the one it cuts stays")
            #expect(days == (oldest / (24 * hour)) * 24 * hour)
        }
    }

    /// The migration fills the rollups from the calls already stored, and the body sizes from the bodies.
    @Test(arguments: Backend.allCases)
    func theMigrationBackfillsRollupsAndBodySizes(_ backend: Backend) async throws {
        let opened = try await StoreFactory.open(databaseURL: try backend.databaseURL(), logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for service in opened.services { group.addTask { try await service.run() } }
            defer { group.cancelAll() }
            do {
                let driver = opened.store.driver
                try await Migrations.apply(to: driver, migrations: Migrations.all.filter { $0.version <= 8 })
                let records = scaleRecords(400, seed: 3)
                // Written as version 8 wrote them: calls without rollups, bodies without sizes.
                try await driver.transaction([opened.store.insertStatement(Array(records[0..<200])), opened.store.insertStatement(Array(records[200...]))])
                let d = driver.dialect
                try await driver.transaction([SQLStatement("""
                    INSERT INTO request_bodies (request_id, ts, request_body, request_truncated, response_body, response_truncated, response_reassembled)
                    VALUES (\(d.placeholder(1)), \(d.placeholder(2)), \(d.placeholder(3)), 0, \(d.placeholder(4)), 0, 0)
                    """, [.text("req_1"), .int(base), .text("héllo ✓"), .text("€")])])
                let checks = (0..<300).map { (i: Int) -> ProbeResult in
                    let minute = Int64(i)
                    return ProbeResult(probe: i % 3 == 0 ? "a" : "b", timestampMicros: base + minute * 60_000_000, up: i % 7 != 0, status: 200,
                                       latencyMicros: minute * 1000, error: nil)
                }
                try await SQLAlertStore(driver: driver).recordProbeResults(checks)
                try await Migrations.apply(to: driver)
                let probes = (SQLAlertStore(driver: driver), SQLAlertStore(driver: driver, useRollups: false))
                for bucket in [nil, hour] as [Int64?] {
                    let a = try await probes.0.probeUptime(probes: ["a", "b"], fromMicros: base - 1, toMicros: base + 5 * hour + 7, bucketMicros: bucket)
                    let b = try await probes.1.probeUptime(probes: ["a", "b"], fromMicros: base - 1, toMicros: base + 5 * hour + 7, bucketMicros: bucket)
                    #expect(a == b && !a.isEmpty)
                }
                #expect(try await driver.query("SELECT COUNT(*) AS n FROM probe_rollups", []).first?["n"].int == 10)
                // Calls written after the migration, by the store or any other writer, are rolled up too.
                try await opened.store.insert(scaleRecords(50, seed: 4, from: base + 5 * hour, minutes: 90, firstID: 1000))
                let rollups = SQLRequestStore(driver: driver, useRollups: true, histogramPercentilesFrom: 1)
                let calls = SQLRequestStore(driver: driver, useRollups: false)
                let query = UsageQuery(fromMicros: base - hour, toMicros: base + 4 * hour, intervalMicros: hour, groupBy: .status)
                #expect(sameReport(try await rollups.usage(query), try await calls.usage(query)))
                for level in [1, 2, 3, 4, 5, 6] {
                    let calls = try await driver.query("SELECT CAST(SUM(requests) AS BIGINT) AS n FROM request_rollups WHERE level = \(level)", []).first?["n"].int
                    #expect(calls == 450, "level \(level): the 400 calls stored before the migration and the 50 after")
                }
                let sizes = try await driver.query("SELECT request_bytes, response_bytes FROM request_bodies", []).first
                #expect(sizes?["request_bytes"].int == Int64("héllo ✓".utf8.count) && sizes?["response_bytes"].int == 3)
                try await opened.close()
            } catch {
                try? await opened.close()
                throw error
            }
        }
    }

    /// Readers that show no latency do not rank the calls' latencies (a sort of every call in the
    /// range); those that do get the same figures as ordering them all.
    @Test(arguments: Backend.allCases)
    func usageWithoutLatencyRanksNothing(_ backend: Backend) async throws {
        try await withBothWays(backend) { _, calls, _, opened in
            let recorder = RecordingDriver(opened.store.driver)
            let store = SQLRequestStore(driver: recorder, useRollups: false)
            let records = scaleRecords(300, seed: 9)
            try await calls.insert(records)
            let query = UsageQuery(fromMicros: base - hour, toMicros: base + 4 * hour, intervalMicros: hour, groupBy: .model, includeLatency: false)
            let report = try await store.usage(query)
            #expect(report.totals.requests == 300 && report.totals.latency == nil && report.groups.allSatisfy { $0.stats.latency == nil })
            #expect(!recorder.statements.contains { $0.contains("latency_us") }, "\(recorder.statements)")

            var withLatency = query
            withLatency.includeLatency = true
            let ranked = try await store.usage(withLatency)
            let expected = LatencyPercentiles.compute(sorted: records.map(\.latencyMicros).sorted())
            #expect(sameLatency(ranked.totals.latency, expected))
            for group in ranked.groups {
                let own = records.filter { $0.model == group.key }.map(\.latencyMicros).sorted()
                #expect(sameLatency(group.stats.latency, LatencyPercentiles.compute(sorted: own)), "\(group.key ?? "")")
            }
            // Small sets: one call, two calls, and ranks that land exactly on a call.
            for (i, n) in [1, 2, 21, 101].enumerated() {
                let start = base + Int64(10 + i) * hour
                let few = (0..<n).map { makeRecord(10_000 * (i + 1) + $0, at: start + Int64($0), latency: Int64(($0 * 7919) % 1000 + 1)) }
                try await calls.insert(few)
                let r = try await store.usage(UsageQuery(fromMicros: start, toMicros: start + hour))
                #expect(sameLatency(r.totals.latency, LatencyPercentiles.compute(sorted: few.map(\.latencyMicros).sorted())), "\(n) calls")
            }
        }
    }

    /// A long unfiltered range sorted by cost or latency walks that column's index and stops
    /// after a page, rather than ordering the whole range (on SQLite, whose planner has no
    /// statistics to choose it); short or filtered lists keep the planner's choice.
    @Test func longListsSortedByCostWalkTheirIndex() async throws {
        try await withBothWays(.sqlite) { rollups, _, recorder, _ in
            try await rollups.insert(scaleRecords(50, seed: 2))
            for (sort, index, from, filter, hinted) in [
                (RequestSort(.cost), "requests_cost_sort", base - 30 * 24 * hour, RequestFilter(), true),
                (RequestSort(.latency, descending: false), "requests_latency_sort", base - 7 * 24 * hour, RequestFilter(), true),
                (RequestSort(.cost), "requests_cost_sort", base + 2 * hour, RequestFilter(), false),
                (RequestSort(.cost), "requests_cost_sort", base - 30 * 24 * hour, RequestFilter(model: "gpt-4o"), false),
            ] {
                recorder.reset()
                let page = try await rollups.requests(RequestListQuery(filter: filter, fromMicros: from, toMicros: base + 5 * hour, limit: 10, sort: sort))
                #expect(page.records.count == 10)
                #expect(recorder.statements.contains { $0.contains("INDEXED BY \(index)") } == hinted, "\(sort.name) from \(from)")
            }
        }
    }

    /// Storage use reads no row's contents beyond a sample: bodies are summed from their stored
    /// sizes (bytes, not characters), other kinds from the newest rows' average size.
    @Test(arguments: Backend.allCases)
    func storageUseReadsSizesNotContents(_ backend: Backend) async throws {
        try await StoreFactory.withOpenedStore(databaseURL: try backend.databaseURL(), logger: Logger(label: "test")) { opened in
            let bodies = (0..<12).map { i in
                CapturedBodies(requestID: "req_\(i)", timestampMicros: base + Int64(i), request: String(repeating: "é", count: i + 1),
                               requestTruncated: false, response: "€ \(i)", responseTruncated: false, responseReassembled: false)
            }
            try await opened.store.insertBodies(bodies)
            try await opened.telemetry.insertLogs((0..<30).map { makeLine($0, at: base + Int64($0), message: "line \($0)") })
            let recorder = RecordingDriver(opened.store.driver)
            let telemetry = SQLTelemetryStore(driver: recorder)
            let use = Dictionary(uniqueKeysWithValues: try await telemetry.storageUse().map { ($0.kind, $0) })
            #expect(use[.bodies]?.rows == 12)
            #expect(use[.bodies]?.approximateBytes == bodies.reduce(0) { $0 + 64 + Int64($1.request.utf8.count) + Int64($1.response.utf8.count) })
            #expect(use[.logs]?.rows == 30 && (use[.logs]?.approximateBytes ?? 0) > 30 * 64)
            #expect(!recorder.statements.contains { $0.contains("SUM(") && $0.contains("LENGTH(") }, "no sum of every row's length")
            #expect(!recorder.statements.contains { $0.contains("request_body") }, "bodies are never read")
        }
    }

    /// Tags come from an issue's newest 1,000 events, not every event it ever had.
    @Test(arguments: Backend.allCases)
    func issueTagsReadTheNewestThousandEvents(_ backend: Backend) async throws {
        try await withTelemetryStore(backend) { store, _ in
            // Five old events from staging, then 1,000 newer ones from prod.
            let events = (0..<1005).map { i in
                var event = makeEvent(String(format: "e%05d", i), issue: "busy", at: base + Int64(i), release: i < 5 ? "1.0" : "2.0")
                event.environment = i < 5 ? "staging" : "prod"
                return event
            }
            try await store.insertErrorEvents(events)
            let tags = try await store.issueTagValues(issueID: "busy", valuesPerKey: 5)
            #expect(tags.filter { $0.key == "environment" } == [IssueTagValue(key: "environment", value: "prod", count: 1000, keyTotal: 1000)])
            #expect(tags.filter { $0.key == "release" }.map(\.value) == ["2.0"])
        }
    }

    /// Several counter windows in one read: what each window's own read gives, in one statement.
    @Test(arguments: Backend.allCases)
    func quotaCountsOfManyWindowsInOneRead(_ backend: Backend) async throws {
        try await withControls(backend) { controls, _ in
            for (counter, window) in [("budget:a|x", base), ("budget:a|y", base), ("budget:a|x", base - hour), ("key:k1:budget/day", base),
                                      ("key:k10:budget/day", base), ("budget:b|z", base + hour)] {
                _ = try await controls.claimQuota(counter: counter, windowStartMicros: window, want: 5, need: 1, limit: 100)
            }
            let windows = [QuotaWindowQuery(counterPrefix: "budget:a|", windowStartMicros: base), QuotaWindowQuery(counterPrefix: "key:k1:budget/day", windowStartMicros: base),
                           QuotaWindowQuery(counterPrefix: "budget:b|", windowStartMicros: base), QuotaWindowQuery(counterPrefix: "budget:a|", windowStartMicros: base)]
            let recorder = RecordingDriver(controls.driver)
            let counts = try await SQLControlStore(driver: recorder).quotaCounts(windows: windows)
            #expect(Set(counts.map(\.counter)) == ["budget:a|x", "budget:a|y", "key:k1:budget/day"])
            #expect(counts.allSatisfy { $0.windowStartMicros == base && $0.granted == 5 })
            #expect(recorder.statements.count == 1, "\(recorder.statements)")
        }
    }

    /// Uptime from the hourly probe rollups (whole hours) and the results (part-hours) is what
    /// the results alone give, also after pruning.
    @Test(arguments: Backend.allCases)
    func probeRollupsAnswerAsTheResultsDo(_ backend: Backend) async throws {
        try await StoreFactory.withOpenedStore(databaseURL: try backend.databaseURL(), logger: Logger(label: "test")) { opened in
            let recorder = RecordingDriver(opened.store.driver)
            let rollups = SQLAlertStore(driver: recorder), results = SQLAlertStore(driver: opened.store.driver, useRollups: false)
            var rng = SplitMix(state: 31)
            let checks = (0..<1500).map { _ in
                ProbeResult(probe: ["a", "b", "c"].randomElement(using: &rng)!, timestampMicros: base - 20 * hour + Int64.random(in: 0..<(70 * hour), using: &rng),
                            up: Int.random(in: 0..<7, using: &rng) > 0, status: 200, latencyMicros: Int64.random(in: 1..<9_000_000, using: &rng), error: nil)
            }
            for batch in stride(from: 0, to: checks.count, by: 100) { try await rollups.recordProbeResults(Array(checks[batch..<min(batch + 100, checks.count)])) }
            func compare(_ label: String) async throws {
                for (from, to) in [(base - 21 * hour, base + 51 * hour), (base - 7 * hour - 5 * Self.minute, base + 30 * hour + 1), (base + 10 * Self.minute, base + 50 * Self.minute)] {
                    for bucket in [nil, 30 * Self.minute, hour, 12 * hour, 24 * hour] as [Int64?] {
                        let fast = try await rollups.probeUptime(probes: ["a", "c"], fromMicros: from, toMicros: to, bucketMicros: bucket)
                        let slow = try await results.probeUptime(probes: ["a", "c"], fromMicros: from, toMicros: to, bucketMicros: bucket)
                        #expect(fast == slow, "\(label) \(from)–\(to) by \(bucket ?? 0)")
                    }
                }
            }
            try await compare("stored")
            #expect(recorder.statements.contains { $0.contains("FROM probe_rollups") }, "whole hours come from the rollups")
            try await rollups.pruneProbeResults(beforeMicros: base - 3 * hour - 17 * Self.minute)
            try await compare("pruned")
        }
    }

    /// Incidents from the failed checks alone: the same runs as walking every result, and a plan
    /// that starts from the index of failed checks rather than ranking every check in the span.
    @Test(arguments: Backend.allCases)
    func incidentsMatchTheResultsAndStartFromFailedChecks(_ backend: Backend) async throws {
        try await StoreFactory.withOpenedStore(databaseURL: try backend.databaseURL(), logger: Logger(label: "test")) { opened in
            var rng = SplitMix(state: 17)
            var results: [ProbeResult] = []
            for probe in ["a", "b"] {
                var up = true
                for i in 0..<400 {
                    if Int.random(in: 0..<12, using: &rng) == 0 { up.toggle() }
                    results.append(ProbeResult(probe: probe, timestampMicros: base + Int64(i) * Self.minute, up: up, status: up ? 200 : nil,
                                               latencyMicros: 100, error: up ? nil : "down \(i)"))
                }
            }
            try await opened.alerts.recordProbeResults(results.shuffled(using: &rng))
            for (from, to, limit) in [(base, base + 400 * Self.minute, 1000), (base + 37 * Self.minute, base + 301 * Self.minute, 1000),
                                      (base, base + 400 * Self.minute, 4)] {
                let stored = results.filter { $0.timestampMicros >= from && $0.timestampMicros < to }
                let expected = (ProbeIncident.runs(stored.filter { $0.probe == "a" }) + ProbeIncident.runs(stored.filter { $0.probe == "b" }))
                    .sorted { ($0.startedMicros, $1.probe) > ($1.startedMicros, $0.probe) }.prefix(limit)
                let incidents = try await opened.alerts.probeIncidents(probes: ["a", "b"], fromMicros: from, toMicros: to, limit: limit)
                #expect(incidents == Array(expected))
            }
            if backend == .sqlite {
                let recorder = RecordingDriver(opened.store.driver)
                _ = try await SQLAlertStore(driver: recorder).probeIncidents(probes: ["a"], fromMicros: base, toMicros: base + hour, limit: 5)
                let sql = try #require(recorder.statements.first)
                let plan = try await opened.store.driver.query("EXPLAIN QUERY PLAN " + sql,
                                                               [.text("a"), .int(base), .int(base + hour), .int(5)]).compactMap { $0["detail"].text }
                #expect(plan.contains { $0.contains("probe_results_down") }, "\(plan)")
            }
        }
    }

    /// Two instances storing batches at once: a batch is several statements and each statement's
    /// trigger locks rollup rows, so a second writer slipping in between two of them could hold a
    /// row the batch wanted while waiting for one it held: a deadlock (40P01), which the recorder
    /// took for an outage.
    @Test(arguments: Backend.allCases)
    func twoWritersStoringBatchesAtOnceDoNotDeadlock(_ backend: Backend) async throws {
        try await StoreFactory.withOpenedStore(databaseURL: try backend.databaseURL(), logger: Logger(label: "test")) { opened in
            let driver = opened.store.driver
            let first = SQLRequestStore(driver: backend == .postgres ? PausingDriver(driver) : driver)
            // The batch's first statement locks model b's rows, the key's and the latency bucket's;
            // its second wants model a's, which the other writer locks before waiting for the key's.
            let batch = (0..<200).map { makeRecord($0, at: base, model: "b") } + [makeRecord(200, at: base, model: "a")]
            async let firstWriter: Void = first.insert(batch)
            if backend == .postgres {
                var paused = false
                for _ in 0..<200 where !paused {
                    let rows = try await driver.query("SELECT COUNT(*) AS n FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state = 'active' AND query LIKE '%\(PausingDriver.marker)%'", [])
                    paused = (rows.first?["n"].int ?? 0) > 0
                    if !paused { try await Task.sleep(for: .milliseconds(20)) }
                }
                #expect(paused, "the first writer paused between its statements")
            }
            try await opened.store.insert([makeRecord(201, at: base, model: "a")])
            try await firstWriter
            let report = try await opened.store.usage(UsageQuery(fromMicros: base - hour, toMicros: base + hour, groupBy: .model))
            #expect(report.totals.requests == 202 && report.groups.map(\.key) == ["b", "a"])
        }
    }

    /// Grouped latency on SQLite ranks every call in the range in SQL: the row limit holds for it
    /// too, also when the totals' percentiles come from the histogram (that path skipped it).
    @Test(arguments: Backend.allCases)
    func groupedPercentilesStayWithinTheRowLimit(_ backend: Backend) async throws {
        try await StoreFactory.withOpenedStore(databaseURL: try backend.databaseURL(), logger: Logger(label: "test")) { opened in
            let store = SQLRequestStore(driver: opened.store.driver, histogramPercentilesFrom: 1, percentileRowLimit: 100)
            try await store.insert(scaleRecords(600))
            let totals = UsageQuery(fromMicros: base - hour, toMicros: base + 4 * hour)
            var grouped = totals
            grouped.groupBy = .model
            // The histogram locates the totals' percentiles without ranking every call.
            #expect(try await store.usage(totals).totals.latency != nil)
            if backend == .sqlite {
                await #expect(throws: UsageQueryTooLarge.self) { try await store.usage(grouped) }
            } else {
                #expect(try await store.usage(grouped).groups.allSatisfy { $0.stats.latency != nil })
            }
        }
    }
}
