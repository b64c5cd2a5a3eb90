import Foundation
import GatehouseCore
import GatehouseTestSupport
import Logging
import ServiceLifecycle
import Testing
@testable import GatehouseStorage

enum Backend: String, CaseIterable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }

    func databaseURL() throws -> String {
        switch self {
        case .sqlite: "sqlite://" + (try TestEnvironment.temporaryDirectory().appendingPathComponent("store.sqlite").path)
        case .postgres: try TestEnvironment.freshPostgresDatabase()
        }
    }
}

func withStore(_ backend: Backend, _ body: @Sendable (SQLRequestStore) async throws -> Void) async throws {
    let url = try backend.databaseURL()
    try await StoreFactory.withStore(databaseURL: url, logger: Logger(label: "test")) { store in try await body(store) }
}

let hour: Int64 = 3_600_000_000
let base: Int64 = 1_795_305_600_000_000  // 2026-11-22T00:00:00Z

func makeRecord(_ n: Int, at ts: Int64, model: String = "gpt-4o-mini", provider: String = "openai", latency: Int64 = 1000,
                input: Int = 10, output: Int = 5, cost: Int64 = 7, customer: String? = nil, user: String? = nil,
                error: ErrorClass? = nil, status: Int = 200) -> RequestRecord {
    RequestRecord(
        id: String(format: "req_%08d", n), timestampMicros: ts, route: .chatCompletions, provider: provider, requestedModel: "\(provider)/\(model)",
        model: model, status: status, stream: n % 2 == 0, latencyMicros: latency, timeToFirstTokenMicros: n % 3 == 0 ? nil : latency / 2,
        usage: TokenUsage(inputTokens: input, outputTokens: output, cachedInputTokens: input / 2, cacheCreationInputTokens: 1, reasoningTokens: 2),
        cost: MicroDollars(cost), keyID: "sk-…abc", userID: user, properties: customer.map { ["customer": $0] } ?? [:],
        correlationID: "corr-\(n)", errorClass: error, errorMessage: error.map { "failed: \($0.rawValue)" }, complete: error == nil)
}

@Suite struct StoreTests {
    @Test(arguments: Backend.allCases)
    func recordsRoundTripExactly(backend: Backend) async throws {
        try await withStore(backend) { store in
            var record = makeRecord(1, at: base + 123_456, customer: "acme \"quoted\" ü", user: "u-1", error: .upstreamRateLimited, status: 429)
            record.properties["feature"] = "chat"
            try await store.insert([record])
            let loaded = try await store.request(id: record.id)
            #expect(loaded == record)
            #expect(try await store.request(id: "req_missing") == nil)
        }
    }

    @Test(arguments: Backend.allCases)
    func reinsertingABatchDoesNotDuplicate(backend: Backend) async throws {
        try await withStore(backend) { store in
            let batch = (0..<450).map { makeRecord($0, at: base + Int64($0)) }
            try await store.insert(batch)
            try await store.insert(Array(batch[100..<200]))
            let report = try await store.usage(UsageQuery(fromMicros: base, toMicros: base + hour))
            #expect(report.totals.requests == 450)
        }
    }

    @Test(arguments: Backend.allCases)
    func usageTotalsGroupsSeriesAndPercentiles(backend: Backend) async throws {
        try await withStore(backend) { store in
            var records: [RequestRecord] = []
            for i in 0..<30 {
                let model = i % 3 == 0 ? "gpt-4o" : "claude-sonnet-4-5"
                records.append(makeRecord(i, at: base + Int64(i % 3) * hour + Int64(i), model: model, provider: i % 3 == 0 ? "openai" : "anthropic",
                                          latency: Int64(1000 * (i + 1)), input: 100 + i, output: 10, cost: Int64(1000 + i),
                                          customer: i % 2 == 0 ? "acme" : "globex", error: i % 10 == 9 ? .upstreamServerError : nil))
            }
            try await store.insert(records)
            let report = try await store.usage(UsageQuery(fromMicros: base, toMicros: base + 3 * hour, intervalMicros: hour, groupBy: .model))
            #expect(report.totals.requests == 30)
            #expect(report.totals.errors == 3)
            #expect(report.totals.usage.inputTokens == Int64((0..<30).reduce(0) { $0 + 100 + $1 }))
            #expect(report.totals.usage.outputTokens == 300)
            #expect(report.totals.cost == MicroDollars(Int64((0..<30).reduce(0) { $0 + 1000 + $1 })))
            let expected = try #require(LatencyPercentiles.compute(sorted: (1...30).map { Int64($0 * 1000) }))
            let latency = try #require(report.totals.latency)
            #expect(abs(latency.p50 - expected.p50) < 0.001 && abs(latency.p95 - expected.p95) < 0.001 && abs(latency.p99 - expected.p99) < 0.001)

            #expect(report.groups.map(\.key) == ["claude-sonnet-4-5", "gpt-4o"], "ordered by cost, highest first")
            #expect(report.groups.map(\.stats.requests) == [20, 10])
            let gptLatency = try #require(report.groups[1].stats.latency)
            let gptExpected = try #require(LatencyPercentiles.compute(sorted: stride(from: 1, through: 28, by: 3).map { Int64($0 * 1000) }))
            #expect(abs(gptLatency.p95 - gptExpected.p95) < 0.001)

            #expect(report.series.map(\.startMicros) == [base, base + hour, base + 2 * hour])
            #expect(report.series.map(\.stats.requests) == [10, 10, 10])

            let byCustomer = try await store.usage(UsageQuery(fromMicros: base, toMicros: base + 3 * hour, groupBy: .property("customer"),
                                                              filter: RequestFilter(model: "claude-sonnet-4-5")))
            #expect(Dictionary(uniqueKeysWithValues: byCustomer.groups.map { ($0.key ?? "", $0.stats.requests) }) == ["acme": 10, "globex": 10])
            let acmeOnly = try await store.usage(UsageQuery(fromMicros: base, toMicros: base + 3 * hour, filter: RequestFilter(properties: ["customer": "acme"])))
            #expect(acmeOnly.totals.requests == 15)
            let empty = try await store.usage(UsageQuery(fromMicros: base - 10 * hour, toMicros: base - 9 * hour, groupBy: .user))
            #expect(empty.totals.requests == 0 && empty.totals.latency == nil && empty.groups.isEmpty)
        }
    }

    @Test(arguments: Backend.allCases)
    func cursorPaginationWalksEveryRecordOnceNewestFirst(backend: Backend) async throws {
        try await withStore(backend) { store in
            // Several records share a timestamp: the cursor must still not skip or repeat.
            let records = (0..<37).map { makeRecord($0, at: base + Int64($0 / 4)) }
            try await store.insert(records)
            var seen: [String] = []
            var cursor: String?
            repeat {
                let page = try await store.requests(RequestListQuery(limit: 10, cursor: cursor))
                seen += page.records.map(\.id)
                cursor = page.nextCursor
            } while cursor != nil
            let expected = records.sorted { ($0.timestampMicros, $0.id) > ($1.timestampMicros, $1.id) }.map(\.id)
            #expect(seen == expected)
            let failed = try await store.requests(RequestListQuery(filter: RequestFilter(correlationID: "corr-5")))
            #expect(failed.records.map(\.id) == [records[5].id])
            await #expect(throws: StoreError.invalidCursor) { try await store.requests(RequestListQuery(cursor: "not-a-cursor!")) }
        }
    }

    @Test(arguments: Backend.allCases)
    func everySortPagesForwardAndBackWithoutSkippingOrRepeating(backend: Backend) async throws {
        try await withStore(backend) { store in
            // Few distinct values, so most rows tie on the sort column and on time: the tie-breaks decide.
            let records = (0..<43).map { n in
                makeRecord(n, at: base + Int64(n % 7), latency: Int64(1000 * (n % 4)), input: 10 * (n % 3), output: n % 5, cost: Int64(n % 6))
            }
            try await store.insert(records.shuffled())
            let inRange = records.filter { $0.timestampMicros < base + 6 }
            for field in RequestSort.Field.allCases {
                for descending in [true, false] {
                    let sort = RequestSort(field, descending: descending)
                    func key(_ r: RequestRecord) -> (Int64, Int64, String) { (RequestCursor.value(r, field), r.timestampMicros, r.id) }
                    let expected = inRange.sorted { descending ? key($0) > key($1) : key($0) < key($1) }.map(\.id)
                    var pages: [[String]] = []
                    var page = try await store.requests(RequestListQuery(toMicros: base + 6, limit: 8, sort: sort))
                    #expect(page.previousCursor == nil, "\(sort.name): the first page has nothing before it")
                    pages.append(page.records.map(\.id))
                    while let next = page.nextCursor {
                        page = try await store.requests(RequestListQuery(toMicros: base + 6, limit: 8, cursor: next, sort: sort))
                        pages.append(page.records.map(\.id))
                    }
                    #expect(pages.flatMap { $0 } == expected, "\(sort.name) forward")
                    // From the last page back to the first, each page exactly as it was going forward.
                    var back: [[String]] = [page.records.map(\.id)]
                    while let previous = page.previousCursor {
                        page = try await store.requests(RequestListQuery(toMicros: base + 6, limit: 8, cursor: previous, sort: sort))
                        back.insert(page.records.map(\.id), at: 0)
                    }
                    #expect(back == pages, "\(sort.name) backward")
                    #expect(page.nextCursor != nil, "\(sort.name): a page reached going back leads forward again")
                }
            }
            let costPage = try await store.requests(RequestListQuery(limit: 5, sort: RequestSort(.cost)))
            let costCursor = try #require(costPage.nextCursor)
            await #expect(throws: StoreError.invalidCursor, "a cursor belongs to its sort") {
                try await store.requests(RequestListQuery(cursor: costCursor, sort: RequestSort(.latency)))
            }
            await #expect(throws: StoreError.invalidCursor) { try await store.requests(RequestListQuery(cursor: costCursor)) }
            #expect(RequestSort("-cost") == RequestSort(.cost) && RequestSort("tokens") == RequestSort(.tokens, descending: false))
            #expect(RequestSort("-name") == nil && RequestSort.newestFirst.name == "-time")
        }
    }

    @Test(arguments: Backend.allCases)
    func migrationsAreIdempotentAndSafeToRunConcurrently(backend: Backend) async throws {
        let url = try backend.databaseURL()
        // Two processes starting together on one database: both migrate, one schema results.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    try await StoreFactory.withStore(databaseURL: url, logger: Logger(label: "test")) { store in
                        try await store.migrate()
                        try await store.ping()
                    }
                }
            }
            try await group.waitForAll()
        }
        try await StoreFactory.withStore(databaseURL: url, logger: Logger(label: "test")) { store in
            let rows = try await store.driver.query("SELECT COUNT(*) AS n FROM gatehouse_migrations", [])
            #expect(rows.first?["n"].int == Int64(Migrations.all.count))
        }
    }
}

@Suite struct RecorderTests {
    @Test(arguments: Backend.allCases)
    func gracefulShutdownFlushesEveryQueuedRecord(backend: Backend) async throws {
        try await withStore(backend) { store in
            var settings = GatehouseConfig.RecorderSettings()
            settings.flushIntervalMilliseconds = 60_000  // only a full batch or shutdown writes
            settings.batchSize = 1000
            let recorder = Recorder(store: store, settings: settings, logger: Logger(label: "test"))
            let group = ServiceGroup(configuration: .init(services: [.init(service: recorder)], logger: Logger(label: "test")))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                for i in 0..<2500 { await recorder.record(makeRecord(i, at: base + Int64(i))) }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            let report = try await store.usage(UsageQuery(fromMicros: base, toMicros: base + hour))
            #expect(report.totals.requests == 2500)
        }
    }

    @Test func aFullQueueDropsAndCountsInsteadOfBlockingTheCaller() async throws {
        var settings = GatehouseConfig.RecorderSettings()
        settings.capacity = 10
        settings.batchSize = 5
        let recorder = Recorder(store: UnavailableStore(), settings: settings, logger: Logger(label: "test"))
        var accepted = 0
        for i in 0..<25 where await recorder.record(makeRecord(i, at: base)) { accepted += 1 }
        #expect(accepted == 10)
        #expect(recorder.queueDepth == 10)
    }
}

/// A store whose database is down: every call fails. Exercises the recorder's overflow path.
struct UnavailableStore: RequestStore {
    func insert(_ records: [RequestRecord]) async throws { throw StoreError.unavailable("down") }
    func usage(_ query: UsageQuery) async throws -> UsageReport { throw StoreError.unavailable("down") }
    func requests(_ query: RequestListQuery) async throws -> RequestPage { throw StoreError.unavailable("down") }
    func aggregate(_ query: AggregationQuery, filter: RequestFilter) async throws -> AggregationOutcome { throw StoreError.unavailable("down") }
    func request(id: String) async throws -> RequestRecord? { throw StoreError.unavailable("down") }
    func bodies(requestID: String) async throws -> CapturedBodies? { throw StoreError.unavailable("down") }
    func insertBodies(_ bodies: [CapturedBodies]) async throws { throw StoreError.unavailable("down") }
    func ping() async throws { throw StoreError.unavailable("down") }
}

/// A record the store refuses must not block the ones behind it; an outage must not lose any.
@Suite struct RecorderRefusedRecordTests {
    actor Written {
        var values: [Int] = []
        var storeUp = true
        func add(_ v: [Int]) { values += v }
        func setUp(_ up: Bool) { storeUp = up }
    }

    struct Refused: Error {}

    @Test func oneRefusedRecordIsDroppedAndTheRestWritten() async throws {
        let written = Written()
        var settings = GatehouseConfig.RecorderSettings()
        settings.batchSize = 100
        let recorder = Recorder<Int>(kind: "test", settings: settings, logger: Logger(label: "test")) { batch in
            guard await written.storeUp, !batch.contains(13) else { throw Refused() }
            await written.add(batch)
        }
        _ = recorder.recordAll(Array(0..<100))
        await recorder.flushAvailable(final: true)
        #expect(await written.values.sorted() == Array(0..<100).filter { $0 != 13 })
        #expect(recorder.queueDepth == 0)
    }

    @Test func anOutageDropsNothing() async throws {
        let written = Written()
        await written.setUp(false)
        let recorder = Recorder<Int>(kind: "test", settings: GatehouseConfig.RecorderSettings(), logger: Logger(label: "test")) { batch in
            guard await written.storeUp else { throw Refused() }
            await written.add(batch)
        }
        _ = recorder.recordAll(Array(0..<50))
        #expect(await recorder.isolateRefusedRecords(Array(0..<50)) == false, "nothing could be written: nothing is dropped")
        #expect(recorder.queueDepth == 50)
        await written.setUp(true)
        await recorder.flushAvailable(final: true)
        #expect(await written.values.sorted() == Array(0..<50))
    }
}
