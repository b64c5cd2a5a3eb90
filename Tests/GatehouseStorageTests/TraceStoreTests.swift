import Foundation
import GatehouseCore
import Logging
import Testing
@testable import GatehouseStorage

/// Ids with a letter first: the query language reads an all-digit value as a number (quote it: `trace_id:"0123…"`).
func traceHex(_ n: Int) -> String { "abc" + String(format: "%029x", n) }
func spanHex(_ n: Int) -> String { "abc" + String(format: "%013x", n) }

/// A span of trace `trace` (a number, as 32 hex digits); `span` and `parent` likewise as 16.
func makeSpan(trace: Int, span: Int, parent: Int? = nil, name: String, op: String? = nil, transaction: String? = nil, root: Bool = false,
              at ts: Int64, durationMs: Int64, status: String = "ok", project: String = "web", environment: String? = "prod",
              correlation: String? = nil, attributes: String = "{}") -> Span {
    Span(traceID: traceHex(trace), spanID: spanHex(span), parentSpanID: parent.map(spanHex),
         project: project, source: .sentry, service: "api-1", name: name, op: op, transaction: transaction ?? (root ? name : nil), isTransaction: root,
         startMicros: ts, durationMicros: durationMs * 1000, status: status, isError: status != "ok", environment: environment, release: "app@1",
         correlationID: correlation, attributesJSON: attributes)
}

@Suite struct TraceStoreTests {
    /// A trace comes back whole, by start; a batch written twice is stored once; search speaks
    /// the query language over columns and attributes.
    @Test(arguments: Backend.allCases)
    func tracesAreStoredOnceAndSearched(_ backend: Backend) async throws {
        try await withTelemetryStore(backend) { store, _ in
            let trace = [
                makeSpan(trace: 1, span: 1, name: "GET /api/tasks", op: "http.server", root: true, at: base, durationMs: 250,
                         attributes: #"{"http.status_code":200,"route":"tasks"}"#),
                makeSpan(trace: 1, span: 3, parent: 2, name: "SELECT tasks", op: "db.query", transaction: "GET /api/tasks", at: base + 20_000, durationMs: 120,
                         attributes: #"{"db":{"system":"postgresql"}}"#),
                makeSpan(trace: 1, span: 2, parent: 1, name: "load tasks", op: "function", transaction: "GET /api/tasks", at: base + 10_000, durationMs: 200),
                makeSpan(trace: 1, span: 4, parent: 1, name: "POST https://up.example/v1", op: "http.client", transaction: "GET /api/tasks",
                         at: base + 215_000, durationMs: 30, status: "internal_error", attributes: #"{"http.status_code":503}"#),
            ]
            try await store.insertSpans(trace)
            try await store.insertSpans(trace)  // the recorder's retry after a lost commit
            try await store.insertSpans([makeSpan(trace: 2, span: 9, name: "other", root: true, at: base + hour, durationMs: 5)])
            let read = try await store.spans(traceID: traceHex(1), limit: 100)
            // PostgreSQL's JSONB writes the attributes back in its own spacing: compared as JSON.
            func withoutAttributes(_ spans: [Span]) -> [Span] { spans.map { var s = $0; s.attributesJSON = ""; return s } }
            func attributes(_ spans: [Span]) -> [NSDictionary] {
                spans.map { (try? JSONSerialization.jsonObject(with: Data($0.attributesJSON.utf8))) as? NSDictionary ?? [:] }
            }
            let sent = trace.sorted { $0.startMicros < $1.startMicros }
            #expect(withoutAttributes(read) == withoutAttributes(sent), "every field comes back, in start order, once")
            #expect(attributes(read) == attributes(sent))
            #expect(try await store.spans(traceID: traceHex(1), limit: 2).count == 2)
            #expect(try await store.spans(traceID: traceHex(7), limit: 100).isEmpty)

            func names(_ q: String) async throws -> [String] {
                let query = try QueryParser.parse(q, nowMicros: base + 2 * hour)
                return try await store.searchSpans(SpanSearchQuery(filter: query.filter, limit: 100)).map(\.name)
            }
            #expect(try await names("op:db.query") == ["SELECT tasks"])
            #expect(try await names("duration:>150ms") == ["load tasks", "GET /api/tasks"], "newest first")
            #expect(try await names("error:true") == ["POST https://up.example/v1"])
            #expect(try await names("http.status_code:>=500") == ["POST https://up.example/v1"])
            #expect(try await names("db.system:postgresql") == ["SELECT tasks"])
            #expect(try await names("trace_id:\(traceHex(2))") == ["other"])
            // Review: an id of decimal digits only (1 in 2,000 span ids) is matched as written, not as a number.
            try await store.insertSpans([makeSpan(trace: 3, span: 1, name: "digits", root: true, at: base - hour, durationMs: 5)].map {
                var s = $0
                s.traceID = "01234567890123456789012345678901"
                s.spanID = "0123456789012345"
                return s
            })
            #expect(try await names("trace_id:01234567890123456789012345678901") == ["digits"])
            #expect(try await names("span_id:0123456789012345") == ["digits"])
            #expect(try await names("parent:\(spanHex(1))") == ["POST https://up.example/v1", "load tasks"])
            #expect(try await names("transaction:\"GET /api/tasks\" -op:http.client").count == 3)
            #expect(try await store.searchSpans(SpanSearchQuery(fromMicros: base + hour, limit: 10)).map(\.name) == ["other"])
            #expect(try await store.searchSpans(SpanSearchQuery(limit: 2)).map(\.name) == ["other", "POST https://up.example/v1"])
            await #expect(throws: QueryFieldError.self) { try await names("duration:>abc") }
        }
    }

    /// Per-name counts, errors and percentiles (interpolated as PostgreSQL's `percentile_cont`,
    /// on SQLite too), the previous window's count and p95, and the filters.
    @Test(arguments: Backend.allCases)
    func transactionSummariesAndPercentiles(_ backend: Backend) async throws {
        try await withTelemetryStore(backend) { store, _ in
            let window = hour
            var spans: [Span] = []
            // "checkout": 20 in the window (durations 10…200 ms, 2 failed), 4 in the window before.
            for i in 0..<20 {
                spans.append(makeSpan(trace: 100 + i, span: 1, name: "checkout", root: true, at: base + Int64(i) * 1000, durationMs: Int64(10 * (i + 1)),
                                      status: i < 2 ? "internal_error" : "ok"))
                // A child span is no transaction: it is never counted.
                spans.append(makeSpan(trace: 100 + i, span: 2, parent: 1, name: "checkout", transaction: "checkout", at: base + Int64(i) * 1000, durationMs: 1))
            }
            for i in 0..<4 {
                spans.append(makeSpan(trace: 200 + i, span: 1, name: "checkout", root: true, at: base - window + Int64(i), durationMs: Int64(100 * (i + 1))))
            }
            // "search": 3 in the window, one in staging, one in another project.
            spans.append(makeSpan(trace: 300, span: 1, name: "search", op: "http.server", root: true, at: base + 5, durationMs: 40))
            spans.append(makeSpan(trace: 301, span: 1, name: "search", op: "http.server", root: true, at: base + 6, durationMs: 60, environment: "staging"))
            spans.append(makeSpan(trace: 302, span: 1, name: "search", op: "http.server", root: true, at: base + 7, durationMs: 80, project: "mobile"))
            try await store.insertSpans(spans)

            let all = try await store.transactionSummaries(TransactionSummaryQuery(fromMicros: base, toMicros: base + window))
            #expect(all.map(\.name) == ["checkout", "search"], "busiest first")
            let checkout = try #require(all.first)
            let expected = try #require(LatencyPercentiles.compute(sorted: (1...20).map { Int64($0) * 10_000 }))
            #expect(checkout.count == 20 && checkout.errorCount == 2)
            #expect(abs(checkout.durations.p50 - expected.p50) < 0.001 && abs(checkout.durations.p95 - expected.p95) < 0.001
                    && abs(checkout.durations.p99 - expected.p99) < 0.001, "\(checkout.durations) vs \(expected)")
            let before = try #require(LatencyPercentiles.compute(sorted: [100_000, 200_000, 300_000, 400_000]))
            #expect(checkout.previousCount == 4 && abs((checkout.previousP95 ?? 0) - before.p95) < 0.001)
            let search = try #require(all.last)
            #expect(search.count == 3 && search.previousCount == 0 && search.previousP95 == nil && search.errorCount == 0)

            let prod = try await store.transactionSummaries(TransactionSummaryQuery(fromMicros: base, toMicros: base + window, project: "web", environment: "prod"))
            #expect(prod.first { $0.name == "search" }?.count == 1)
            let filtered = try await store.transactionSummaries(TransactionSummaryQuery(fromMicros: base, toMicros: base + window,
                                                                                      filter: try QueryParser.parse("op:http.server").filter))
            #expect(filtered.map(\.name) == ["search"] && filtered.first?.durations.p50 == 60_000)
            #expect(try await store.transactionSummaries(TransactionSummaryQuery(fromMicros: base + 2 * window, toMicros: base + 3 * window)).isEmpty)

        }
    }

    /// Spans have a retention of their own: pruned by age and trimmed by count like logs, and
    /// counted in storage use; on PostgreSQL they live in day partitions, dropped whole.
    @Test(arguments: Backend.allCases)
    func spansArePrunedTrimmedAndCounted(_ backend: Backend) async throws {
        try await withTelemetryStore(backend) { store, requests in
            try await store.insertSpans((0..<30).map { makeSpan(trace: 500 + $0, span: 1, name: "job", root: true, at: base + Int64($0), durationMs: 1) })
            #expect(try await store.prune(.spans, beforeMicros: base + 10, batch: 100) == 10)
            #expect(try await store.trim(.spans, keep: 15, batch: 100) == 5)
            let use = Dictionary(try await store.storageUse().map { ($0.kind, $0) }, uniquingKeysWith: { a, _ in a })
            #expect(use[.spans]?.rows == 15 && use[.spans]?.oldestMicros == base + 15 && (use[.spans]?.approximateBytes ?? 0) > 0)
            if backend == .postgres {
                #expect(store.retentionStepMicros(.spans) == TimeExpressions.microsPerDay)
                let driver = requests.driver
                let today = TimeExpressions.utcDay(micros: TimeExpressions.nowMicros())
                let partitions = try await DayPartitions.partitions(of: "spans", driver: driver).map(\.name)
                #expect(partitions.contains(DayPartitions.name("spans", day: today)), "today's partition was made at migration")
                // Rows of a day that has its partition go there; a whole day before the cutoff is dropped.
                let day = today - 2, at = day * TimeExpressions.microsPerDay
                try await driver.transaction([SQLStatement("CREATE TABLE \(DayPartitions.name("spans", day: day)) PARTITION OF spans FOR VALUES FROM (\(at)) TO (\(at + TimeExpressions.microsPerDay))")])
                try await store.insertSpans((0..<5).map { makeSpan(trace: 900 + $0, span: 1, name: "old", root: true, at: at + Int64($0), durationMs: 1) })
                #expect(try await store.prune(.spans, beforeMicros: (day + 1) * TimeExpressions.microsPerDay, batch: 1000) == 20)
                #expect(try await DayPartitions.partitions(of: "spans", driver: driver).allSatisfy { $0.from > at }, "the day's partition was dropped")
            }
        }
    }

    /// Review: span ids travel to third parties in `traceparent`; another project's span with the
    /// same ids is stored beside this one's, not instead of it. Retention deletes exactly as many
    /// spans as it counts when two traces share a span id.
    @Test(arguments: Backend.allCases)
    func spansAreKeyedByProjectAndPrunedOneByOne(_ backend: Backend) async throws {
        try await withTelemetryStore(backend) { store, _ in
            try await store.insertSpans([makeSpan(trace: 5, span: 1, name: "attacker", root: true, at: base, durationMs: 1, project: "other")])
            try await store.insertSpans([makeSpan(trace: 5, span: 1, name: "GET /real", root: true, at: base + 1, durationMs: 1, project: "web")])
            let both = try await store.spans(traceID: traceHex(5), limit: 10)
            #expect(Set(both.map(\.project)) == ["other", "web"], "\(both.map(\.name))")
            try await store.insertSpans([makeSpan(trace: 6, span: 1, name: "twin", root: true, at: base + 2, durationMs: 1)])
            #expect(try await store.prune(.spans, beforeMicros: base + 3, batch: 1) == 1)
            let left = try await store.searchSpans(SpanSearchQuery(limit: 10)).count
            #expect(left == 2, "one span went, not every span with its id")
        }
    }
}
