import Foundation
import GatehouseCore
import Testing
@testable import GatehouseStorage

/// Query-language stages (`| count by function`) compiled to SQL, on SQLite and PostgreSQL.
@Suite struct AggregationTests {
    static let now = base + hour

    static func stage(_ q: String, from: Int64 = base - 24 * hour, to: Int64 = now, limit: Int = 100) throws -> AggregationQuery {
        let parsed = try QueryParser.parse(q, nowMicros: now)
        return AggregationQuery(aggregation: try #require(parsed.aggregation), filter: parsed.filter, fromMicros: from, toMicros: to, limit: limit)
    }

    /// Groups as `key values joined by "/" → value`, in the answer's order.
    static func pairs(_ outcome: AggregationOutcome) -> [String] {
        outcome.groups.map { group in
            let key = group.key.map { key -> String in
                switch key.value {
                case .text(let t): t
                case .number(let n): String(n)
                case .bool(let b): String(b)
                case .time(let micros): TimeExpressions.format(micros: micros)
                case .missing: "∅"
                }
            }.joined(separator: "/")
            return "\(key)=\(group.value)"
        }
    }

    static let guideLines: [LogRecord] = [
        makeLine(1, at: base + 1, level: .warn, message: "Slow query detected", function: "tasks.list", duration: 237_420,
                 attributes: #"{"dbCalls":15}"#),
        makeLine(2, at: base + 2, level: .error, message: "Task update failed", function: "tasks.list", duration: 1_000,
                 attributes: #"{"dbCalls":"many","http":{"status":503}}"#),
        makeLine(3, at: base + 3, level: .error, message: "Unauthenticated", function: "users.get", duration: 2_000,
                 attributes: #"{"dbCalls":60,"http.status":401}"#),
        makeLine(4, at: base - 2 * hour + 5, level: .error, message: "old failure", function: "tasks.list", duration: 4_000),
        makeLine(5, at: base + 4, level: .error, message: "again", function: "tasks.list", duration: 8_000, attributes: #"{"dbCalls":70}"#),
        makeLine(6, at: base + 5, level: .error, message: "no function", duration: 500, attributes: #"{"dbCalls":55}"#),
        makeLine(7, at: base + 6, level: .info, message: "fine", function: "users.get", duration: 3_000, attributes: #"{"dbCalls":51}"#),
    ]

    /// The ops guides' queries with a stage, and each function over a duration.
    @Test(arguments: Backend.allCases)
    func theGuidesQueriesWithStages(_ backend: Backend) async throws {
        try await withTelemetryStore(backend) { store, _ in
            try await store.insertLogs(Self.guideLines)
            func run(_ q: String) async throws -> [String] { Self.pairs(try await store.aggregate(.logs, try Self.stage(q))) }

            #expect(try await run("level:error timestamp:>-1h | count by function") == ["tasks.list=2.0", "users.get=1.0", "∅=1.0"])
            #expect(try await run(#"function:"tasks.list" level:error | count by bin(1h)"#)
                == ["2026-11-21T22:00:00.000Z=1.0", "2026-11-22T00:00:00.000Z=2.0"], "bins in time order")
            // users.get: 2 ms and 3 ms (dbCalls 60, 51): p95 = 2 + 0.95·1; tasks.list: only line 5 (8 ms); "many" is no number.
            #expect(try await run("dbCalls:>50 | p95(duration) by function") == ["tasks.list=8.0", "users.get=2.95", "∅=0.5"])

            let durations = try await store.aggregate(.logs, try Self.stage("| sum(duration)"))
            #expect(durations.unit == .ms && durations.groups.count == 1)
            #expect(durations.groups[0].value == 255.92 && durations.groups[0].count == 7)
            #expect(try await run("| avg(duration) by level") == ["warn=237.42", "error=3.1", "info=3.0"])
            #expect(try await run("| min(duration) by service") == ["worker=2.0", "api=0.5"])
            #expect(try await run("| max(duration) by service") == ["worker=237.42", "api=4.0"])
            #expect(try await run("| p50(duration)") == ["=3.0"])
            #expect(try await run("| count") == ["=7.0"])
            #expect(try await run("| max(dbCalls) by http.status") == ["∅=70.0", "401=60.0"], "attribute paths, nested or flat")
            #expect(try await store.aggregate(.logs, try Self.stage("| max(dbCalls)")).unit == .number)

            // Nothing matches: an ungrouped count and sum answer 0, the others no group.
            #expect(try await run("service:none | count") == ["=0.0"])
            #expect(try await run("service:none | sum(duration)") == ["=0.0"])
            #expect(try await run("service:none | avg(duration)") == [])
            #expect(try await run("service:none | count by function") == [])
        }
    }

    @Test(arguments: Backend.allCases)
    func requestsGroupByColumnsPropertiesAndBins(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.insert([
                makeRecord(1, at: base + 10, model: "gpt-4o", latency: 1_000, cost: 1_500_000, customer: "acme"),
                makeRecord(2, at: base + 20, model: "gpt-4o", latency: 3_000, cost: 500_000, customer: "acme"),
                makeRecord(3, at: base + 30, model: "gpt-4o-mini", latency: 2_000, cost: 250_000, customer: "globex"),
                makeRecord(4, at: base + hour / 2, model: "gpt-4o-mini", latency: 4_000, cost: 10, error: .upstreamRateLimited, status: 429),
                makeRecord(5, at: base - 30 * hour, model: "gpt-4o", cost: 9_000_000, customer: "acme"),
            ])
            func run(_ q: String, filter: RequestFilter = RequestFilter()) async throws -> [String] {
                Self.pairs(try await store.aggregate(try Self.stage(q), filter: filter))
            }
            let spend = try await store.aggregate(try Self.stage("| sum(cost) by property.customer"), filter: RequestFilter())
            #expect(spend.unit == .usd)
            #expect(Self.pairs(spend) == ["acme=2.0", "globex=0.25", "∅=1e-05"], "dollars; outside the window is left out")
            #expect(try await run("| count by model") == ["gpt-4o=2.0", "gpt-4o-mini=2.0"])
            #expect(try await run("| count by status") == ["200.0=3.0", "429.0=1.0"])
            #expect(try await run("| count by cache_hit") == ["false=4.0"])
            #expect(try await run("| p50(latency) by model") == ["gpt-4o-mini=3.0", "gpt-4o=2.0"])
            #expect(try await run("| sum(tokens) by model, property.customer") == ["gpt-4o/acme=30.0", "gpt-4o-mini/globex=15.0", "gpt-4o-mini/∅=15.0"])
            #expect(try await run("| count by bin(30m), model") == ["2026-11-22T00:00:00.000Z/gpt-4o=2.0", "2026-11-22T00:00:00.000Z/gpt-4o-mini=1.0",
                                                                    "2026-11-22T00:30:00.000Z/gpt-4o-mini=1.0"])
            // The list's structured parameters narrow the records like the stage's own filter.
            #expect(try await run("| sum(cost)", filter: RequestFilter(model: "gpt-4o")) == ["=2.0"])
            #expect(try await run("status:429 | count", filter: RequestFilter(model: "gpt-4o")) == ["=0.0"])
        }
    }

    @Test(arguments: Backend.allCases)
    func errorEventsAggregate(_ backend: Backend) async throws {
        try await withTelemetryStore(backend) { store, _ in
            try await store.insertErrorEvents([
                makeEvent("e1", issue: "i1", at: base + 1, release: "1.0"), makeEvent("e2", issue: "i1", at: base + 2, release: "1.1"),
                makeEvent("e3", issue: "i2", at: base + 3, release: "1.1"), makeEvent("e4", issue: "i2", at: base + 4),
            ])
            #expect(Self.pairs(try await store.aggregate(.errorEvents, try Self.stage("| count by release"))) == ["1.1=2.0", "1.0=1.0", "∅=1.0"])
            #expect(Self.pairs(try await store.aggregate(.errorEvents, try Self.stage("release:1.1 | count by issue"))) == ["i1=1.0", "i2=1.0"])
            // Alert rules' counts go through the same compiler.
            #expect(try await store.countErrorEvents(filter: try QueryParser.parse("release:1.1").filter, fromMicros: base, toMicros: base + hour) == 2)
            #expect(try await store.countErrorEvents(filter: nil, fromMicros: base, toMicros: base) == 0)
        }
    }

    @Test(arguments: Backend.allCases)
    func spansAggregateByColumnsAndAttributes(_ backend: Backend) async throws {
        try await withTelemetryStore(backend) { store, _ in
            func span(_ n: Int, name: String, op: String, duration: Int64, error: Bool = false, attributes: String = "{}") -> Span {
                Span(traceID: String(repeating: "a", count: 31) + String(n % 10), spanID: String(format: "%016d", n), project: "web",
                     source: .otlp, service: "api", name: name, op: op, isTransaction: false, startMicros: base + Int64(n),
                     durationMicros: duration, isError: error, attributesJSON: attributes)
            }
            try await store.insertSpans([
                span(1, name: "SELECT tasks", op: "db", duration: 4_000, attributes: #"{"db.system":"postgresql","rows":10}"#),
                span(2, name: "SELECT tasks", op: "db", duration: 6_000, attributes: #"{"db":{"system":"postgresql"},"rows":30}"#),
                span(3, name: "GET /tasks", op: "http.server", duration: 20_000, error: true),
                span(4, name: "SELECT users", op: "db", duration: 1_000, attributes: #"{"db.system":"sqlite","rows":2}"#),
            ])
            func run(_ q: String) async throws -> [String] { Self.pairs(try await store.aggregate(.spans, try Self.stage(q))) }
            #expect(try await run("op:db | p50(duration) by name") == ["SELECT tasks=5.0", "SELECT users=1.0"])
            #expect(try await run("| count by error") == ["false=3.0", "true=1.0"])
            #expect(try await run("| sum(rows) by db.system") == ["postgresql=40.0", "sqlite=2.0"])
            #expect(try await run("error:true | max(duration) by op") == ["http.server=20.0"])
        }
    }

    /// Explicit limits: groups beyond `limit` are cut (largest kept), too many bins and fields a
    /// function cannot take are refused with errors that say why.
    @Test(arguments: Backend.allCases)
    func limitsAndErrors(_ backend: Backend) async throws {
        try await withTelemetryStore(backend) { store, _ in
            try await store.insertLogs((0..<50).flatMap { n in (0...n % 7).map { _ in makeLine(n, at: base + Int64(n), function: "f\(n)") } })
            let cut = try await store.aggregate(.logs, try Self.stage("| count by function", limit: 3))
            #expect(cut.truncated && cut.groups.count == 3)
            #expect(cut.groups.map(\.value) == [7, 7, 7])
            #expect(cut.groups.map { $0.key[0].value } == [.text("f13"), .text("f20"), .text("f27")], "ties by key, the same on both stores")
            let all = try await store.aggregate(.logs, try Self.stage("| count by function", limit: 50))
            #expect(!all.truncated && all.groups.count == 50)
            #expect(try await store.countLogs(filter: nil, fromMicros: base, toMicros: base + hour) == all.groups.reduce(0) { $0 + $1.count })

            func message(_ q: String, from: Int64 = base - 24 * hour) async -> String {
                do {
                    _ = try await store.aggregate(.logs, try Self.stage(q, from: from))
                    return "ran"
                } catch let error as QueryFieldError {
                    return error.message
                } catch {
                    return "\(error)"
                }
            }
            #expect(await message("| count by bin(1m)").contains("at most 1000"))
            #expect(await message("| count by bin(1m)").contains("use a bin of at least 2m"))
            #expect(await message("| count by bin(1m)", from: base - 15 * hour) == "ran")
            #expect(await message("| sum(message)").contains("`message` is text"))
            #expect(await message("| avg(slow)").contains("`slow` is true or false"))
            #expect(await message("| p95(level)").contains("`level` is a level"))
            #expect(await message("| count by duration").contains("is a measure"))
            #expect(await message("| count by timestamp").contains("bin(1h)"))
            #expect(await message("| count by function, function").contains("appears twice"))
            #expect(await message("| count by a..b").contains("not a field path"))
            #expect(await message("| count", from: Self.now) .contains("window is empty"))
            // SQLite sorts every record a percentile ranks: bounded there (PostgreSQL has percentile_cont's cost model anyway).
            let ranked = try Self.stage("| p50(duration) by function")
            if backend == .sqlite {
                await #expect(throws: QueryFieldError.self) { try await store.driver.aggregate(ranked, table: "logs", schema: .logs, maxRankedRows: 10) }
            } else {
                // These lines carry no duration: it runs, and nothing has a value to rank.
                #expect(try await store.driver.aggregate(ranked, table: "logs", schema: .logs, maxRankedRows: 10).groups.isEmpty)
            }
            #expect(try await store.driver.aggregate(try Self.stage("service:none | p50(duration)"), table: "logs", schema: .logs, maxRankedRows: 10)
                .groups.isEmpty)
            // Review: grouping (a temporary B-tree of every distinct value) and sums read every record too.
            let grouped = try Self.stage("| count by function")
            if backend == .sqlite {
                await #expect(throws: QueryFieldError.self) { try await store.driver.aggregate(grouped, table: "logs", schema: .logs, maxRankedRows: 10) }
                await #expect(throws: QueryFieldError.self) {
                    try await store.driver.aggregate(try Self.stage("| sum(dbCalls)"), table: "logs", schema: .logs, maxRankedRows: 10)
                }
            } else {
                #expect(try await store.driver.aggregate(grouped, table: "logs", schema: .logs, maxRankedRows: 10).groups.isEmpty == false)
            }
            #expect(try await store.driver.aggregate(try Self.stage("| count"), table: "logs", schema: .logs, maxRankedRows: 10).groups.first?.count ?? 0 > 10,
                    "a plain count, what alert rules run, is not bounded")
            await #expect(throws: QueryFieldError.self) { try await store.aggregate(.errorEvents, try Self.stage("| count by nosuchfield")) }
            await #expect(throws: QueryFieldError.self) { try await store.aggregate(.errorEvents, try Self.stage("| sum(title)")) }
        }
    }

    /// Review: two attributes of 1.5e308 summed are no infinity (SQLite's answer, which JSON
    /// cannot hold) and no out-of-range error (PostgreSQL's): each value counts at most ±1e300.
    @Test(arguments: Backend.allCases)
    func hugeValuesSumToAFiniteNumber(_ backend: Backend) async throws {
        try await withTelemetryStore(backend) { store, _ in
            try await store.insertLogs((0..<2).map { makeLine($0, at: base + Int64($0), attributes: #"{"n":1.5e308}"#) })
            for q in ["| sum(n)", "| avg(n)", "| p50(n)", "| max(n)"] {
                let value = try #require(try await store.aggregate(.logs, try Self.stage(q)).groups.first?.value)
                #expect(value.isFinite && value > 0, "\(q): \(value)")
            }
        }
    }

    /// The bounds are checked without trapping at the ends of Int64, and a bin not from the parser is checked too.
    @Test func boundsHoldAtTheEndsOfTime() throws {
        func problem(_ groupBy: [Aggregation.GroupTerm], from: Int64, to: Int64, limit: Int = 10) -> String? {
            let query = AggregationQuery(aggregation: Aggregation(function: .count, groupBy: groupBy), filter: nil, fromMicros: from, toMicros: to, limit: limit)
            do { try query.validate(); return nil } catch { return error.message }
        }
        #expect(problem([.bin(micros: hour)], from: .min, to: .max)?.contains("at most 1000") == true)
        #expect(problem([.bin(micros: 1)], from: 0, to: hour)?.contains("from 1s to 1000d") == true)
        #expect(problem(["model"], from: .min, to: .max) == nil)
        #expect(problem([], from: 5, to: 5)?.contains("empty") == true)
        #expect(problem([], from: 0, to: 5, limit: 1001)?.contains("at most 1000 groups") == true)
        #expect(problem([.bin(micros: hour)], from: base, to: base + 1000 * hour) == nil, "exactly 1000 aligned bins")
        #expect(problem([.bin(micros: hour)], from: base + 1, to: base + 1000 * hour + 1)?.contains("1001 bins") == true)
    }

    /// Percentiles are exact (`percentile_cont`'s interpolation) and the same on both stores.
    @Test func percentilesAreExactAndEqualOnBothStores() async throws {
        var state: UInt64 = 42
        func next(_ n: UInt64) -> Int64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int64((state >> 33) % n)
        }
        let lines = (0..<600).map { n in
            makeLine(n, at: base + Int64(n), function: "f\(next(4))", duration: 1 + next(5_000_000),
                     attributes: #"{"dbCalls":\#(next(100)),"ratio":\#(Double(next(1000)) / 8)}"#)
        }
        @Sendable func expected(_ values: [Double], _ p: Int) -> Double {
            let sorted = values.sorted(), n = sorted.count
            let lo = p * (n - 1) / 100, fr = p * (n - 1) % 100
            let hi = lo + 1 < n ? sorted[lo + 1] : sorted[lo]
            return sorted[lo] + (hi - sorted[lo]) * (Double(fr) / 100)
        }
        var answers: [Backend: [String]] = [:]
        for backend in Backend.allCases {
            let collected = Collected()
            try await withTelemetryStore(backend) { store, _ in
                try await store.insertLogs(lines)
                for p in [1, 50, 95, 99] {
                    let byFunction = try await store.aggregate(.logs, try Self.stage("| p\(p)(duration) by function"))
                    for group in byFunction.groups {
                        guard case .text(let function) = group.key[0].value else { Issue.record("no key"); continue }
                        let mine = lines.filter { $0.function == function }
                        #expect(group.count == Int64(mine.count))
                        #expect(group.value == expected(mine.map { Double($0.durationMicros!) }, p) / 1000, "p\(p) of \(function) on \(backend)")
                    }
                    await collected.add(Self.pairs(byFunction))
                    await collected.add(Self.pairs(try await store.aggregate(.logs, try Self.stage("| p\(p)(ratio) by bin(1h), function"))))
                    await collected.add(Self.pairs(try await store.aggregate(.logs, try Self.stage("| p\(p)(dbCalls)"))))
                }
            }
            answers[backend] = await collected.values
        }
        #expect(answers[.sqlite] == answers[.postgres])
        #expect(answers[.sqlite]?.count ?? 0 >= 4 * 9)
    }

    /// Random stages over every table's fields: each one runs or is refused with a
    /// `QueryFieldError`; none reaches the database as SQL it rejects.
    @Test(arguments: Backend.allCases)
    func randomStagesRunOrAreRefusedClearly(_ backend: Backend) async throws {
        try await withTelemetryStore(backend) { telemetry, requests in
            try await telemetry.insertLogs(Self.guideLines)
            try await requests.insert([makeRecord(1, at: base + 1, customer: "acme"), makeRecord(2, at: base + 2, error: .upstreamRateLimited, status: 429)])
            try await telemetry.insertErrorEvents([makeEvent("e1", issue: "i1", at: base + 1, release: "1.0")])
            var state: UInt64 = 0xA66
            func next(_ n: Int) -> Int {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Int((state >> 33) % UInt64(n))
            }
            let attributes = ["dbCalls", "http.status", "a.b.c", "property.customer", "Ünïcode", "x-y"]
            let fields: [String: [String]] = [
                "logs": QuerySchema.logs.fieldNames + attributes,
                "error_events": QuerySchema.errorEvents.fieldNames + ["nosuch"],
                "spans": QuerySchema.spans.fieldNames + attributes,
                "requests": QuerySchema.requests.fieldNames + ["property.customer", "nosuch"],
            ]
            let widths: [Int64] = [1_000_000, 1_800_000_000, 3_600_000_000, 86_400_000_000]
            var ran = 0, refused = 0
            for _ in 0..<400 {
                let over = ["logs", "error_events", "spans", "requests"][next(4)]
                let names = fields[over]!
                let field = names[next(names.count)]
                let function: Aggregation.Function = switch next(6) {
                case 0: .count
                case 1: .sum(field)
                case 2: .avg(field)
                case 3: .min(field)
                case 4: .max(field)
                default: .percentile(1 + next(99), field)
                }
                var terms: [Aggregation.GroupTerm] = (0..<next(4)).map { _ in .field(names[next(names.count)]) }
                if next(3) == 0 { terms.append(.bin(micros: widths[next(widths.count)])) }
                let query = AggregationQuery(aggregation: Aggregation(function: function, groupBy: terms), filter: nil,
                                             fromMicros: base - 24 * hour, toMicros: Self.now, limit: 1 + next(5))
                do {
                    let outcome = switch over {
                    case "logs": try await telemetry.aggregate(.logs, query)
                    case "error_events": try await telemetry.aggregate(.errorEvents, query)
                    case "spans": try await telemetry.aggregate(.spans, query)
                    default: try await requests.aggregate(query, filter: RequestFilter())
                    }
                    #expect(outcome.groups.count <= query.limit)
                    ran += 1
                } catch is QueryFieldError {
                    refused += 1
                } catch {
                    Issue.record("\(over): | \(query.aggregation) failed in the database: \(error)")
                }
            }
            #expect(ran > 100 && refused > 50, "ran \(ran), refused \(refused)")
        }
    }

    actor Collected {
        var values: [String] = []
        func add(_ more: [String]) { values += more }
    }
}
