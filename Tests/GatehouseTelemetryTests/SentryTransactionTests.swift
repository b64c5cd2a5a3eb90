import Foundation
import GatehouseCore
import Testing
@testable import GatehouseTelemetry

@Suite struct SentryTransactionTests {
    static let received: Int64 = 1_796_000_100_000_000

    static func read(_ json: String, received: Int64 = received) throws(SentryTransactionReader.Invalid) -> [Span] {
        try SentryTransactionReader.read(Array(json.utf8)[...], project: "web", receivedMicros: received)
    }

    /// The root from `contexts.trace`, each span with its own parent, op, description, status,
    /// tags and data; secrets masked; the correlation tag wins over the trace id.
    @Test func transactionBecomesSpans() throws {
        let json = #"""
            {"type":"transaction","transaction":"GET /api/tasks","start_timestamp":1796000000.0,"timestamp":"2026-11-30T00:53:20.500Z",
             "environment":"prod","release":"app@3","server_name":"web-1","tags":{"correlation_id":"corr-7","api_key":"k-123"},
             "contexts":{"trace":{"trace_id":"4BF92F35-77B3-4DA6-A3CE-929D0E0E4736","span_id":"00f067aa0ba902b7","op":"http.server","status":"ok",
                                  "data":{"http.status_code":200}}},
             "spans":[{"span_id":"b7ad6b7169203331","parent_span_id":"00f067aa0ba902b7","op":"db.query","description":"SELECT * FROM t WHERE a = ?",
                       "start_timestamp":1796000000.1,"timestamp":1796000000.3,"status":"deadline_exceeded","data":{"password":"hunter2","rows":3}},
                      {"span_id":"c7ad6b7169203331","op":"http.client","description":"GET https://user:pw@pay.example/x?token=abc&page=2",
                       "start_timestamp":1796000000.2}]}
            """#
        let spans = try Self.read(json)
        #expect(spans.count == 3)
        let root = spans[0], query = spans[1], call = spans[2]
        #expect(root.traceID == "4bf92f3577b34da6a3ce929d0e0e4736" && root.spanID == "00f067aa0ba902b7" && root.parentSpanID == nil)
        #expect(root.isTransaction && root.name == "GET /api/tasks" && root.transaction == "GET /api/tasks" && root.op == "http.server")
        #expect(root.startMicros == 1_796_000_000_000_000 && root.durationMicros == 500_000 && !root.isError)
        #expect(root.service == "web-1" && root.environment == "prod" && root.release == "app@3" && root.correlationID == "corr-7")
        #expect(root.attributesJSON.contains(#""http.status_code":200"#) && root.attributesJSON.contains(#""api_key":"[REDACTED]""#))
        #expect(query.parentSpanID == root.spanID && query.name == "SELECT * FROM t WHERE a = ?" && query.op == "db.query")
        #expect(query.durationMicros == 200_000 && query.status == "deadline_exceeded" && query.isError && !query.isTransaction)
        #expect(query.attributesJSON.contains(#""password":"[REDACTED]""#) && query.attributesJSON.contains(#""rows":3"#))
        #expect(call.parentSpanID == root.spanID, "a span without a parent hangs under the transaction")
        #expect(call.durationMicros == 300_000, "a span with no end lasts to the transaction's end")
        #expect(!call.name.contains("pw@") && !call.name.contains("token=abc") && call.name.contains("page=2"), "\(call.name)")
    }

    /// A transaction dated far ahead moves to the receive time with its spans.
    @Test func futureTransactionsMoveWithTheirSpans() throws {
        let json = #"""
            {"transaction":"t","start_timestamp":1896000000.0,"timestamp":1896000001.0,
             "contexts":{"trace":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}},
             "spans":[{"span_id":"b7ad6b7169203331","start_timestamp":1896000000.5,"timestamp":1896000000.75}]}
            """#
        let spans = try Self.read(json)
        #expect(spans[0].startMicros == Self.received && spans[1].startMicros == Self.received + 500_000 && spans[1].durationMicros == 250_000)
        #expect(spans[0].correlationID == "4bf92f3577b34da6a3ce929d0e0e4736", "without a correlation tag, the trace id")
    }

    @Test func malformedTransactionsAreRefused() {
        func refusal(_ json: String) -> String {
            do throws(SentryTransactionReader.Invalid) { _ = try Self.read(json); return "accepted" } catch { return error.description }
        }
        let trace = #""contexts":{"trace":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}}"#
        #expect(refusal(#"{"start_timestamp":1,"timestamp":2}"#).contains("contexts.trace"))
        #expect(refusal(#"{"timestamp":1796000000,\#(trace)}"#).contains("start_timestamp"))
        #expect(refusal(#"{"start_timestamp":1796000000,"timestamp":1796200000,\#(trace)}"#).contains("longer than a day"))
        #expect(refusal(#"{"start_timestamp":1796000000,"timestamp":1796000001,"spans":[7],\#(trace)}"#).contains("spans[0] is not an object"))
        #expect(refusal(#"{"start_timestamp":1796000000,"timestamp":1796000001,"spans":{"a":1},\#(trace)}"#).contains("spans must be a list"))
        #expect(refusal(#"{"start_timestamp":1796000000,"timestamp":1796000001,"transaction":5,\#(trace)}"#).contains("must be a string"))
        #expect(refusal(#"{"start_timestamp":1796000000,"timestamp":1796000001,"spans":[{"span_id":"b7ad6b7169203331","trace_id":"5bf92f3577b34da6a3ce929d0e0e4736","start_timestamp":1796000000}],\#(trace)}"#)
            .contains("not the transaction's trace id"))
        #expect(refusal(#"{"start_timestamp":1796000000,"timestamp":1796000001,"spans":[{"span_id":"00f067aa0ba902b7","start_timestamp":1796000000}],\#(trace)}"#)
            .contains("appears twice"))
    }

    static let trace = #""contexts":{"trace":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}}"#

    /// Review: a name is bounded in bytes, not characters (one character can be 200 KB of
    /// combining marks), and masked once for all the spans that carry it.
    @Test func namesAreBoundedInBytes() throws {
        let heavy = "a" + String(repeating: "\u{301}", count: 2000)
        #expect(heavy.count == 1 && heavy.utf8.count > SentryTransactionReader.maxNameBytes)
        do {
            _ = try Self.read(#"{"start_timestamp":1796000000,"timestamp":1796000001,"transaction":"\#(heavy)",\#(Self.trace)}"#)
            Issue.record("a 4 KB one-character name was accepted")
        } catch {
            #expect(error.description.contains("longer than \(SentryTransactionReader.maxNameBytes) bytes"))
        }
        let children = (1...3).map { #"{"span_id":"b7ad6b716920333\#($0)","start_timestamp":1796000000.1,"timestamp":1796000000.2}"# }
        let spans = try Self.read(#"{"start_timestamp":1796000000,"timestamp":1796000001,"transaction":"GET /x?token=abc","spans":[\#(children.joined(separator: ","))],\#(Self.trace)}"#)
        #expect(spans.allSatisfy { $0.transaction == "GET /x?token=REDACTED" }, "\(spans.map(\.transaction))")
    }

    /// Review: a child span dated far from its transaction (`9999-12-31`, `0001-01-01`) is moved to
    /// the transaction's edge, and one that ends before it starts is cut, not the envelope's end.
    @Test func childSpansStayNearTheirTransaction() throws {
        let start: Int64 = 1_796_000_000_000_000, day: Int64 = 86_400_000_000
        let spans = try Self.read(#"""
            {"start_timestamp":1796000000,"timestamp":1796000001,"spans":[
              {"span_id":"b7ad6b7169203331","start_timestamp":"3000-12-31T00:00:00Z","timestamp":"3000-12-31T00:00:01Z"},
              {"span_id":"b7ad6b7169203332","start_timestamp":"2026-11-29T12:53:20Z","timestamp":"2026-11-29T12:53:21Z"},
              {"span_id":"b7ad6b7169203333","start_timestamp":1796000000.5,"timestamp":1796000000.2},
              {"span_id":"b7ad6b7169203334","start_timestamp":1796000000.5,"timestamp":1796900000}],\#(Self.trace)}
            """#)
        #expect(spans.count == 5)
        #expect(spans[1].startMicros <= start + 1_000_000 + day, "not in the year 3000: \(spans[1].startMicros)")
        #expect(spans[2].startMicros >= start - day, "not before the transaction by more than a day")
        #expect(spans[3].durationMicros == 0 && spans[4].durationMicros == day)
        #expect(SentryEventReader.timestamp("0001-01-01T00:00:00Z") == nil && SentryEventReader.timestamp("9999-12-31T00:00:00Z") == nil,
                "times outside 1970…5138 are no times, as numbers are not")
    }

    /// Review: credentials under attribute names that do not say "secret" (headers recorded as
    /// attributes, URLs, query strings) are masked; a correlation tag that is no usable id
    /// (a NUL inside, too long) leaves the trace id as the correlation id.
    @Test func attributeCredentialsAndBadCorrelationIDs() throws {
        let spans = try Self.read(#"""
            {"start_timestamp":1796000000,"timestamp":1796000001,"tags":{"correlation_id":"a\u0000b"},"spans":[
              {"span_id":"b7ad6b7169203331","start_timestamp":1796000000.1,"data":{
                "http.query":"api_key=SECRET1&x=1","url.full":"https://h.example/x?token=SECRET2&page=2",
                "http.request.header.authorization":"Basic dXNlcjpwYXNzd29yZA==","http.request.header.cookie":"session=SECRET3",
                "nested":{"http.url":"https://h.example/y?sig=SECRET4"}}}],\#(Self.trace)}
            """#)
        let attributes = spans[1].attributesJSON
        for secret in ["SECRET1", "SECRET2", "dXNlcjpwYXNzd29yZA==", "SECRET3", "SECRET4"] {
            #expect(!attributes.contains(secret), "\(secret) stored: \(attributes)")
        }
        #expect(attributes.contains("page=2") && attributes.contains("x=1"), "the rest of a URL or query is kept")
        #expect(spans.allSatisfy { $0.correlationID == "4bf92f3577b34da6a3ce929d0e0e4736" })
        #expect(!SentryTransactionReader.maskName("GET api.example.com/v1?token=SECRET").contains("SECRET"))
    }
}

/// A trace store with nothing in it: `TraceRoutes.view` reads no store.
struct EmptyTraceStore: TraceStore {
    func insertSpans(_ spans: [Span]) async throws {}
    func spans(traceID: String, limit: Int) async throws -> [Span] { [] }
    func transactionSummaries(_ query: TransactionSummaryQuery) async throws -> [TransactionSummary] { [] }
    func searchSpans(_ query: SpanSearchQuery) async throws -> [Span] { [] }
}

@Suite struct SlowSpanTests {
    static func span(_ id: String, parent: String?, op: String, transaction: Bool = false, ms: Int64 = 1, attributes: String = "{}") -> Span {
        Span(traceID: "4bf92f3577b34da6a3ce929d0e0e4736", spanID: id, parentSpanID: parent, project: "web", source: .sentry, name: op, op: op,
             isTransaction: transaction, startMicros: 0, durationMicros: ms * 1000, attributesJSON: attributes)
    }

    /// The slow-operation thresholds of log lines mark spans too: duration, the db calls and
    /// documents a span records, and a transaction with more database spans than `db_calls`
    /// (an N+1 query), counted without a nested transaction's own.
    @Test func slowSpansFollowTheSlowOperationThresholds() {
        var placed: [(depth: Int, span: Span)] = [(0, Self.span("a000000000000001", parent: nil, op: "http.server", transaction: true))]
        placed += (0..<11).map { (1, Self.span(String(format: "b%015x", $0), parent: "a000000000000001", op: "db.query")) }
        placed.append((1, Self.span("c000000000000001", parent: "a000000000000001", op: "http.client", transaction: true)))
        placed += (0..<3).map { (2, Self.span(String(format: "d%015x", $0), parent: "c000000000000001", op: "db")) }
        let counts = TraceRoutes.databaseSpansPerTransaction(placed)
        #expect(counts == [0: 11, 12: 3])
        let routes = TraceRoutes(traces: EmptyTraceStore(), telemetry: StubTelemetryStore(), slow: SlowThresholds())
        #expect(routes.view(placed[0].span, databaseSpans: 11).slow, "11 database spans > db_calls 10")
        #expect(!routes.view(placed[12].span, databaseSpans: 3).slow)
        #expect(routes.view(Self.span("e000000000000001", parent: nil, op: "x", ms: 101)).slow, "101 ms > 100 ms")
        #expect(routes.view(Self.span("e000000000000002", parent: nil, op: "x", attributes: #"{"dbCalls":51}"#)).slow)
        #expect(routes.view(Self.span("e000000000000003", parent: nil, op: "x", attributes: #"{"docsScanned":20000}"#)).slow)
        #expect(!routes.view(Self.span("e000000000000004", parent: nil, op: "x", attributes: #"{"dbCalls":"many"}"#)).slow)
    }
}
