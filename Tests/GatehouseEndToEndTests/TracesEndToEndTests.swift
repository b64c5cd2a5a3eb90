import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

/// What `trace_client.py` reports: the transaction as the real sentry-sdk sent it.
struct TraceClientReport: Decodable {
    struct SentSpan: Decodable {
        var spanID: String
        var parentSpanID: String?
        var op: String?
        var description: String?
        var start: Int64
        var end: Int64
        enum CodingKeys: String, CodingKey {
            case spanID = "span_id"
            case parentSpanID = "parent_span_id"
            case op, description, start, end
        }
    }
    var traceID: String
    var spanID: String
    var name: String
    var start: Int64
    var end: Int64
    var spans: [SentSpan]
    var errorIDs: [String]
    enum CodingKeys: String, CodingKey {
        case traceID = "trace_id"
        case spanID = "span_id"
        case name, start, end, spans
        case errorIDs = "error_ids"
    }
}

let tracesConfig = """
    telemetry:
      projects:
        - name: web
          id: "42"
          key: \(ingestKey)
      slow_operations:
        duration_ms: 30
    recorder:
      flush_interval_ms: 20
    """

@Suite(.serialized) struct TracesEndToEndTests {
    /// The real sentry-sdk sends a transaction with nested spans and an error raised inside it:
    /// the stored tree, names, parents and durations are what it sent, the error links to its
    /// trace, and the transactions summary and span search count it.
    @Test(arguments: Backend.allCases)
    func sentryTransactionsBecomeTraces(_ backend: Backend) async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: tracesConfig, databaseURL: try backend.databaseURL())
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let dsn = "http://\(ingestKey)@127.0.0.1:\(gatehouse.port)/42"
        let script = TestEnvironment.repositoryRoot.appendingPathComponent("Tests/Support/trace_client.py").path
        let run = try await ProcessRunner.runAsync(try TestEnvironment.python, [script, "--dsn", dsn])
        let line = try #require(run.output.split(separator: "\n").last { $0.hasPrefix("{") }, "trace_client failed (\(run.status)):\n\(run.output)")
        let sent = try JSONDecoder().decode(TraceClientReport.self, from: Data(line.utf8))
        #expect(sent.spans.count == 3 && sent.errorIDs.count == 1)

        let trace = try await Poll.until("the trace and its error") { () async throws -> TraceDetail? in
            guard let reply = try? await api.get("/api/v1/traces/\(sent.traceID)", as: TraceDetail.self) else { return nil }
            return reply.spanCount == 4 && reply.errors.count == 1 ? reply : nil
        }
        #expect(trace.traceID == sent.traceID && trace.rootName == "POST /api/orders" && !trace.truncated)
        #expect(abs(trace.durationMilliseconds - Double(sent.end - sent.start) / 1000) < 0.001)
        let root = try #require(trace.spans.first)
        #expect(root.depth == 0 && root.offsetMilliseconds == 0 && root.span.spanID == sent.spanID && root.span.isTransaction)
        #expect(root.span.name == "POST /api/orders" && root.span.op == "http.server" && root.span.status == "internal_error" && root.span.error)
        #expect(root.span.service == "web-1" && root.span.environment == "test" && root.span.release == "shop@2.0.0" && root.span.project == "web")
        #expect(root.span.correlationID == sent.traceID && root.span.attributes["region"] == .string("eu-1"))
        // Tree order: the query, the fetch inside it, then the HTTP call; each as the SDK sent it.
        #expect(trace.spans.map(\.span.op) == ["http.server", "db.query", "db.fetch", "http.client"])
        #expect(trace.spans.map(\.depth) == [0, 1, 2, 1])
        for placed in trace.spans.dropFirst() {
            let original = try #require(sent.spans.first { $0.spanID == placed.span.spanID })
            #expect(placed.span.parentSpanID == original.parentSpanID && placed.span.traceID == sent.traceID)
            #expect(abs(placed.span.durationMilliseconds - Double(original.end - original.start) / 1000) < 0.001)
            #expect(abs(placed.offsetMilliseconds - Double(original.start - sent.start) / 1000) < 0.001)
            #expect(placed.span.transaction == "POST /api/orders" && !placed.span.isTransaction && !placed.span.error)
        }
        #expect(trace.spans.allSatisfy { $0.span.slow == ($0.span.durationMilliseconds > 30) })
        #expect(trace.spans[1].span.name == "SELECT orders" && trace.spans[1].span.slow && trace.spans[1].span.attributes["db.system"] == .string("postgresql"))
        #expect(trace.spans[2].span.name == "fetch rows" && trace.spans[2].span.parentSpanID == trace.spans[1].span.spanID)
        let call = trace.spans[3].span.name
        #expect(call.hasPrefix("POST https://pay.example/charge?api_key=") && !call.contains("SECRET"), "the key in the URL is masked: \(call)")
        let error = try #require(trace.errors.first)
        #expect(error.eventID == sent.errorIDs.first && error.type == "ValueError" && error.correlationID == sent.traceID)

        let summary = try await api.get(apiPath("/api/v1/transactions", ["from": "-1h", "to": "now"]), as: TransactionList.self)
        let row = try #require(summary.data.first { $0.name == "POST /api/orders" }, "\(summary)")
        #expect(row.count == 1 && row.errorRate == 1 && row.previousCount == 0 && row.previousP95Milliseconds == nil && row.p95ChangePercent == nil)
        #expect(abs(row.p50Milliseconds - root.span.durationMilliseconds) < 0.001 && abs(row.p99Milliseconds - root.span.durationMilliseconds) < 0.001)
        #expect(abs(row.throughputPerMinute - 1.0 / 60) < 1e-9)
        let filtered = try await api.get(apiPath("/api/v1/transactions", ["from": "-1h", "project": "web", "environment": "test", "q": "region:eu-1", "sort": "p95"]),
                                         as: TransactionList.self)
        #expect(filtered.data.map(\.name) == ["POST /api/orders"])
        #expect(try await api.get(apiPath("/api/v1/transactions", ["from": "-1h", "environment": "prod"]), as: TransactionList.self).data.isEmpty)

        let fetches = try await api.get(apiPath("/api/v1/spans", ["q": "op:db.fetch trace:\"\(sent.traceID)\""]), as: SpanSearchResult.self)
        #expect(fetches.data.map(\.name) == ["fetch rows"])
        let newest = try await api.get(apiPath("/api/v1/spans", ["q": "transaction:\"POST /api/orders\"", "limit": "2"]), as: SpanSearchResult.self)
        #expect(newest.data.count == 2 && newest.data[0].timestamp >= newest.data[1].timestamp)
        let byOp = try await api.get(apiPath("/api/v1/spans", ["q": "transaction:\"POST /api/orders\" | count by op", "from": "-1h"]),
                                     as: AggregationResult.self)
        #expect(byOp.over == "spans" && byOp.groups.count == 4 && byOp.groups.allSatisfy { $0.count == 1 }, "\(byOp)")

        // What the read routes refuse.
        #expect(try await api.failure(.GET, "/api/v1/traces/0123456789abcdef0123456789abcdef").status == 404)
        let badID = try await api.failure(.GET, "/api/v1/traces/not-a-trace")
        #expect(badID.status == 400 && badID.error.error.param == "trace_id")
        #expect(try await api.failure(.GET, "/api/v1/transactions?sort=fastest").error.error.param == "sort")
        #expect(try await api.failure(.GET, "/api/v1/transactions?from=now&to=-1h").status == 400)
        #expect(try await api.failure(.GET, apiPath("/api/v1/spans", ["q": "duration:>abc"])).status == 400)

        let storage = try await api.get("/api/v1/storage", as: StorageReport.self)
        #expect(storage.kinds.first { $0.kind == .spans }.map { $0.rows == 4 && $0.retentionDays == 30 } == true, "\(storage)")
        try await api.verifyContract()
        try await gatehouse.stop()
    }

    /// Malformed transactions get Sentry-style 400s naming the fault, never a crash; the server
    /// keeps answering, and an envelope mixing an event and a transaction stores both.
    @Test func badTransactionsAreRefused() async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: tracesConfig)
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
        func transaction(trace: String = traceID, span: String = "00f067aa0ba902b7", name: String = "GET /health", spans: String = "[]") -> String {
            #"{"type":"transaction","transaction":"\#(name)","start_timestamp":1796000000.0,"timestamp":1796000000.25,"#
                + #""contexts":{"trace":{"trace_id":"\#(trace)","span_id":"\#(span)","op":"http.server"}},"spans":\#(spans)}"#
        }
        func send(_ items: [(type: String, payload: String)]) async throws -> HTTP.Reply {
            let body = "{}\n" + items.map { #"{"type":"\#($0.type)"}"# + "\n" + $0.payload + "\n" }.joined()
            return try await api.raw(.POST, "/api/42/envelope/", body: Data(body.utf8),
                                     headers: [("content-type", "application/x-sentry-envelope"), ("X-Sentry-Auth", "Sentry sentry_key=\(ingestKey)")])
        }
        func refusal(_ payload: String) async throws -> String {
            let reply = try await send([("transaction", payload)])
            #expect(reply.status == 400, "\(reply.status)")
            return try decodeAnswer(reply, as: SentryErrorBody.self).detail
        }
        func child(_ n: Int, extra: String = "") -> String {
            #"{"span_id":"\#(String(format: "%016x", n + 1))","parent_span_id":"00f067aa0ba902b7","op":"db","description":"q\#(n)","#
                + #""start_timestamp":1796000000.1,"timestamp":1796000000.2\#(extra)}"#
        }
        #expect(try await refusal(transaction(trace: "xyz")).contains("trace_id must be 32 hex digits"))
        #expect(try await refusal(transaction(trace: String(repeating: "a", count: 31))).contains("trace_id"))
        #expect(try await refusal(transaction(span: "00f067aa0ba902b")).contains("span_id must be 16 hex digits"))
        #expect(try await refusal(transaction(trace: String(repeating: "0", count: 32))).contains("all zeros"))
        #expect(try await refusal(#"{"type":"transaction","transaction":"x"}"#).contains("contexts.trace"))
        #expect(try await refusal("[1,2]").contains("not a JSON object"))
        let tooMany = "[" + (0...1000).map { child($0) }.joined(separator: ",") + "]"
        #expect(try await refusal(transaction(spans: tooMany)).contains("at most 1000"))
        #expect(try await refusal(transaction(name: String(repeating: "n", count: 3000))).contains("longer than 1024 bytes"))
        let hugeData = #","data":{"blob":"\#(String(repeating: "x", count: 70_000))"}"#
        #expect(try await refusal(transaction(spans: "[\(child(1, extra: hugeData))]")).contains("larger than 65536 bytes"))
        #expect(try await refusal(transaction(spans: "[\(child(1)),\(child(1))]")).contains("appears twice"))
        #expect(try await refusal(transaction(spans: #"[{"span_id":"0000000000000002","parent_span_id":"zz"}]"#)).contains("parent_span_id"))
        #expect(try await api.get("/api/v1/storage", as: StorageReport.self).kinds.first { $0.kind == .spans }?.rows == 0, "nothing was stored")

        // A child that ends before it starts (a clock stepped back) is cut to no length, not refused.
        let skewedTrace = "5bf92f3577b34da6a3ce929d0e0e4736"
        let skewed = try await send([("transaction", transaction(trace: skewedTrace,
            spans: #"[{"span_id":"0000000000000002","start_timestamp":1796000000.3,"timestamp":1796000000.1}]"#))])
        #expect(skewed.status == 200)
        let cut = try await Poll.until("the skewed trace") { () async throws -> TraceDetail? in
            let reply = try? await api.get("/api/v1/traces/\(skewedTrace)", as: TraceDetail.self)
            return reply?.spanCount == 2 ? reply : nil
        }
        #expect(cut.spans.last?.span.durationMilliseconds == 0)

        // One envelope, an error event and a transaction: both kept.
        let event = #"{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","exception":{"values":[{"type":"E","value":"x"}]},"#
            + #""contexts":{"trace":{"trace_id":"\#(traceID)","span_id":"00f067aa0ba902b7"}}}"#
        let mixed = try await send([("event", event), ("transaction", transaction(spans: "[\(child(1))]"))])
        #expect(mixed.status == 200)
        let trace = try await Poll.until("the mixed envelope's trace") { () async throws -> TraceDetail? in
            let reply = try? await api.get("/api/v1/traces/\(traceID)", as: TraceDetail.self)
            return reply?.spanCount == 2 && reply?.errors.count == 1 ? reply : nil
        }
        #expect(trace.spans.map(\.depth) == [0, 1] && trace.durationMilliseconds == 250)

        // Review: a malformed transaction beside an error event is dropped; the event is kept.
        let lonely = #"{"event_id":"8ec79c33ec9942ab8353589fcb2e04dc","exception":{"values":[{"type":"Lonely","value":"kept"}]},"tags":{"request_id":"req-lonely"}}"#
        #expect(try await send([("event", lonely), ("transaction", transaction(trace: "xyz"))]).status == 200)
        try await Poll.until("the event beside a bad transaction is stored") {
            try await api.get("/api/v1/correlation/req-lonely", as: CorrelationTimeline.self).timeline.count == 1
        }
        try await api.verifyContract()
        try await gatehouse.stop()
    }
}
