import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

/// What `otel_traces_client.py` reports: the spans the real OpenTelemetry SDK exported.
struct OTelTracesClientReport: Decodable {
    struct SentSpan: Decodable {
        var name: String
        var traceID: String
        var spanID: String
        var parentSpanID: String?
        var kind: String
        var start: Int64
        var end: Int64
        var error: Bool
        enum CodingKeys: String, CodingKey {
            case name, kind, start, end, error
            case traceID = "trace_id"
            case spanID = "span_id"
            case parentSpanID = "parent_span_id"
        }
    }
    struct GatewayCall: Decodable {
        var status: Int
        var recordID: String?
        var traceparent: String
        enum CodingKeys: String, CodingKey {
            case status, traceparent
            case recordID = "record_id"
        }
    }
    var flushed: Bool
    var exportsOK: Bool
    var spans: [SentSpan]
    var gateway: GatewayCall
    enum CodingKeys: String, CodingKey {
        case flushed, spans, gateway
        case exportsOK = "exports_ok"
    }
}

/// W3C trace flags: bit 0 is `sampled`.
enum TraceParentFlags {
    static func sampled(_ hex: String) -> Bool { (UInt8(hex, radix: 16) ?? 0) & 1 == 1 }
}

@Suite(.serialized) struct OTLPTracesEndToEndTests {
    static let ingestKey = "otlp-traces-ingest-key-0001"
    static let collectorToken = "collector-SECRET-token-4242"

    static func config(_ mock: MockUpstream, receiver: Receiver) -> String {
        upstreamConfig(mock, extra: """
            telemetry:
              projects:
                - {name: shop, id: "7", key: \(ingestKey)}
              otlp_export:
                endpoint: \(receiver.baseURL)
                headers: {x-collector-token: \(collectorToken)}
                timeout: 5s
            """)
    }

    /// The real OpenTelemetry SDK exports a tree of spans over OTLP/HTTP protobuf while the app
    /// calls the gateway with its `traceparent`: the stored trace is what the SDK sent, with
    /// Gatehouse's GenAI span as the child of the app's span; the provider sees our span as its
    /// parent; and every span is exported on to a collector with its ids and attributes.
    @Test(arguments: Backend.allCases)
    func theSDKsTreeWithTheGatewaySpanIsStoredAndExported(_ backend: Backend) async throws {
        let mock = try await MockUpstream.start()
        let receiver = try await Receiver.start()
        let gatehouse = try await GatehouseProcess.start(yaml: Self.config(mock, receiver: receiver), databaseURL: try backend.databaseURL())
        let api = TypedAPI(baseURL: gatehouse.baseURL)

        let script = TestEnvironment.repositoryRoot.appendingPathComponent("Tests/Support/otel_traces_client.py").path
        let run = try await ProcessRunner.runAsync(try TestEnvironment.python, [script, "--endpoint", gatehouse.baseURL + "/v1/traces",
                                                                               "--key", Self.ingestKey, "--gateway", gatehouse.baseURL,
                                                                               "--model", "up/gpt-4o-mini"])
        let line = try #require(run.output.split(separator: "\n").last { $0.hasPrefix("{") }, "otel_traces_client failed (\(run.status)):\n\(run.output)")
        let sent = try JSONDecoder().decode(OTelTracesClientReport.self, from: Data(line.utf8))
        #expect(sent.flushed && sent.exportsOK && sent.gateway.status == 200 && sent.spans.count == 4)
        let traceID = try #require(sent.spans.first?.traceID)
        let byName = Dictionary(uniqueKeysWithValues: sent.spans.map { ($0.name, $0) })
        let root = try #require(byName["POST /checkout"]), ask = try #require(byName["ask model"])
        // The SDK's flags (sampled, and W3C level 2's random trace id) travel on unchanged.
        let flags = String(sent.gateway.traceparent.suffix(2))
        #expect(sent.gateway.traceparent == "00-\(traceID)-\(ask.spanID)-\(flags)" && TraceParentFlags.sampled(flags))

        let trace = try await Poll.until("the SDK's 4 spans and the gateway's") { () async throws -> TraceDetail? in
            guard let reply = try? await api.get("/api/v1/traces/\(traceID)", as: TraceDetail.self) else { return nil }
            return reply.spanCount == 5 ? reply : nil
        }
        #expect(trace.rootName == "POST /checkout" && trace.spans.first?.span.spanID == root.spanID)
        for original in sent.spans {
            let placed = try #require(trace.spans.first { $0.span.spanID == original.spanID }, "\(original.name) is stored")
            let span = placed.span
            #expect(span.traceID == traceID && span.parentSpanID == original.parentSpanID && span.name == original.name)
            #expect(span.op == original.kind && span.error == original.error && span.source == "otlp" && span.project == "shop")
            #expect(abs(span.durationMilliseconds - Double(original.end - original.start) / 1000) < 0.002)
            #expect(abs(placed.offsetMilliseconds - Double(original.start - root.start) / 1000) < 0.002)
            #expect(span.service == "checkout" && span.environment == "e2e" && span.release == "2.4.1")
            #expect(span.transaction == "POST /checkout" && span.isTransaction == (original.spanID == root.spanID))
        }
        let stored = Dictionary(uniqueKeysWithValues: trace.spans.map { ($0.span.name, $0) })
        let rootAttributes = try #require(stored["POST /checkout"]).span.attributes
        #expect(rootAttributes["http.route"] == .string("/checkout") && rootAttributes["user.password"] == .string("[REDACTED]"))
        #expect(rootAttributes["otel.scope.name"] == .string("shop.checkout"))
        let query = try #require(stored["SELECT carts"]).span
        #expect(query.status == "error" && query.attributes["otel.status_description"] == .string("deadlock detected"))
        #expect(query.attributes["db.system"] == .string("postgresql") && query.attributes["events"] != nil)
        #expect(try #require(stored["load cart"]).depth == 1 && stored["SELECT carts"]?.depth == 2)

        // Gatehouse's own span: a child of the app's `ask model`, with the GenAI attributes.
        let placedCall = try #require(trace.spans.first { $0.span.source == "gateway" })
        let call = placedCall.span
        #expect(call.parentSpanID == ask.spanID && call.isTransaction && placedCall.depth == (stored["ask model"]?.depth ?? -1) + 1)
        #expect(call.name == "chat up/gpt-4o-mini" && call.op == "chat" && call.service == "gatehouse")
        #expect(!call.error && call.status == "ok", "\(call.status) \(call.attributes["error.type"].map { "\($0)" } ?? "")")
        #expect(call.correlationID == traceID)
        let genAI = call.attributes
        #expect(genAI["gen_ai.system"] == .string("openai") && genAI["gen_ai.operation.name"] == .string("chat"))
        #expect(genAI["gen_ai.request.model"] == .string("up/gpt-4o-mini") && genAI["gen_ai.response.model"] == .string("gpt-4o-mini"))
        #expect(genAI["gen_ai.request.max_tokens"] == .integer(16) && genAI["gen_ai.request.temperature"] == .number(0.3))
        #expect(genAI["gatehouse.provider"] == .string("up") && genAI["gatehouse.request_id"] == sent.gateway.recordID.map(JSONValue.string))
        if case .integer(let input) = genAI["gen_ai.usage.input_tokens"], case .integer(let output) = genAI["gen_ai.usage.output_tokens"] {
            #expect(input > 0 && output > 0)
        } else {
            Issue.record("usage attributes: \(genAI)")
        }
        #expect(!"\(genAI)".contains("sk-app-client-key-0001") && !"\(genAI)".contains("sk-provider-SECRET"))
        // The provider was called with our span as its parent.
        let upstream = try await mock.requests().last { ($0["path"] as? String)?.hasSuffix("/chat/completions") == true }
        let upstreamHeaders = try #require(upstream?["headers"] as? [String: Any])
        let parent = upstreamHeaders.first { $0.key.lowercased() == "traceparent" }?.value as? String
        #expect(parent == "00-\(traceID)-\(call.spanID)-\(flags)")

        // Every span goes on to the collector, protobuf, with its header; the token is not logged.
        let exported = try await Poll.until("5 spans at the collector") { () async throws -> [[String: Any]]? in
            let posts = try await receiver.received("/v1/traces")
            let spans = posts.flatMap { (($0["body"] as? [String: Any])?["spans"] as? [[String: Any]]) ?? [] }.filter { $0["trace_id"] as? String == traceID }
            return spans.count >= 5 ? spans : nil
        }
        let posts = try await receiver.received("/v1/traces")
        #expect(posts.allSatisfy { ($0["headers"] as? [String: Any])?["x-collector-token"] as? String == Self.collectorToken })
        #expect(posts.allSatisfy { ($0["headers"] as? [String: Any])?["content-type"] as? String == "application/x-protobuf" })
        #expect(Set(exported.compactMap { $0["span_id"] as? String }) == Set(trace.spans.map(\.span.spanID)))
        let exportedCall = try #require(exported.first { $0["span_id"] as? String == call.spanID })
        let exportedAttributes = try #require(exportedCall["attributes"] as? [String: Any])
        #expect(exportedCall["parent_span_id"] as? String == ask.spanID && exportedCall["name"] as? String == "chat up/gpt-4o-mini")
        #expect(exportedCall["kind"] as? Int == 3, "a gateway call is a CLIENT span")
        #expect(exportedAttributes["gen_ai.system"] as? String == "openai" && int(exportedAttributes["gen_ai.request.max_tokens"]) == 16)
        #expect((exportedCall["resource"] as? [String: Any])?["service.name"] as? String == "gatehouse")
        let exportedQuery = try #require(exported.first { $0["name"] as? String == "SELECT carts" })
        #expect(exportedQuery["status_code"] as? Int == 2 && (exportedQuery["resource"] as? [String: Any])?["service.name"] as? String == "checkout")
        #expect(((exported.first { $0["name"] as? String == "POST /checkout" })?["attributes"] as? [String: Any])?["user.password"] as? String == "[REDACTED]")
        #expect(try await metricSum(gatehouse, "gatehouse_otlp_export_spans_total") { $0.contains(#"outcome="sent""#) } >= 5)
        #expect(try await metricSum(gatehouse, "gatehouse_otlp_spans_accepted_total") { $0.contains(#"project="shop""#) } == 4)
        #expect(!gatehouse.child.output.joined().contains(Self.collectorToken))

        try await api.verifyContract()
        try await gatehouse.stop()
        try await receiver.stop()
        try await mock.stop()
    }

    /// OTLP/JSON (hex ids, int64 as strings), partial success, and what the route refuses, each
    /// in the caller's format.
    @Test func jsonPartialSuccessAndRefusals() async throws {
        let mock = try await MockUpstream.start()
        let receiver = try await Receiver.start()
        let gatehouse = try await GatehouseProcess.start(yaml: Self.config(mock, receiver: receiver))
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let auth = [("Content-Type", "application/json"), ("Authorization", "Bearer \(Self.ingestKey)")]
        let json = """
            {"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"billing"}}]},"scopeSpans":[{"spans":[
             {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"POST /pay","kind":2,
              "startTimeUnixNano":"\(Int64(Date().timeIntervalSince1970) * 1_000_000_000)","endTimeUnixNano":"\(Int64(Date().timeIntervalSince1970) * 1_000_000_000 + 5_000_000)",
              "status":{"code":2,"message":"card declined"}},
             {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"zzzzeee19b7ec3c1","name":"bad"}]}]}]}
            """
        let partial = try await api.raw(.POST, "/v1/traces", body: Data(json.utf8), headers: auth)
        #expect(partial.status == 200 && partial.header("content-type") == "application/json")
        let answer = try decodeAnswer(partial, as: OTLPTracesExportResponse.self)
        #expect(answer.partialSuccess?.rejected == 1 && answer.partialSuccess?.errorMessage.contains("span 1: spanId") == true)
        let trace = try await Poll.until("the JSON span") { () async throws -> TraceDetail? in
            try? await api.get("/api/v1/traces/5b8efff798038103d269b633813fc60c", as: TraceDetail.self)
        }
        #expect(trace.spans.map(\.span.spanID) == ["eee19b7ec3c1b174"] && trace.spans.first?.span.error == true)
        #expect(trace.spans.first.map { abs($0.span.durationMilliseconds - 5) < 0.001 } == true && trace.spans.first?.span.op == "server")

        // Protobuf in, protobuf out: an empty export is answered with an empty response.
        let empty = try await HTTP.send(gatehouse.baseURL + "/v1/traces", headers: [("Content-Type", "application/x-protobuf"),
                                                                                   ("Authorization", "Bearer \(Self.ingestKey)")], body: Data())
        #expect(empty.status == 200 && empty.header("content-type") == "application/x-protobuf" && empty.body.isEmpty)

        let keyless = try await api.failure(.POST, "/v1/traces", body: Data(json.utf8))
        #expect(keyless.status == 401 && keyless.error.error.code == "invalid_ingest_key")
        let garbage = try await api.raw(.POST, "/v1/traces", body: Data("{not otlp".utf8), headers: auth)
        #expect(try garbage.status == 400 && decodeAnswer(garbage, as: APIErrorBody.self).error.code == "invalid_body")
        let huge = try await api.failure(.POST, "/v1/traces", body: Data(count: 11 * 1024 * 1024),
                                         headers: [("Content-Type", "application/x-protobuf"), ("Authorization", "Bearer \(Self.ingestKey)")])
        #expect(huge.status == 413 && huge.error.error.code == "request_too_large")
        let zstd = try await api.failure(.POST, "/v1/traces", body: Data("x".utf8),
                                         headers: [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "zstd"), ("Authorization", "Bearer \(Self.ingestKey)")])
        #expect(zstd.status == 415 && zstd.error.error.code == "invalid_encoding")

        try await api.verifyContract()
        try await gatehouse.stop()
        try await receiver.stop()
        try await mock.stop()
    }

    /// A collector that is down: export requests are retried, then the spans are dropped and
    /// counted, and ingest and the gateway go on as if nothing happened.
    @Test func aCollectorThatIsDownNeverHoldsUpIngest() async throws {
        let mock = try await MockUpstream.start()
        let receiver = try await Receiver.start()
        try await receiver.control(#"{"fail": {"/v1/traces": 100}, "fail_status": 503}"#)
        let gatehouse = try await GatehouseProcess.start(yaml: Self.config(mock, receiver: receiver))
        let reply = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: #"{"model":"up/gpt-4o-mini","messages":[]}"#)
        #expect(reply.status == 200)
        try await Poll.until("the span given up", timeout: .seconds(30)) {
            try await metricSum(gatehouse, "gatehouse_otlp_export_spans_total") { $0.contains(#"outcome="dropped""#) } >= 1
        }
        let attempts = try await receiver.received("/v1/traces")
        #expect(attempts.count == 4 && attempts.allSatisfy { $0["answered"] as? Int == 503 }, "4 tries, then given up")
        #expect(try await metricSum(gatehouse, "gatehouse_otlp_export_requests_total") { $0.contains(#"result="retry""#) } == 3)
        #expect(!gatehouse.child.output.joined().contains(Self.collectorToken))
        // A refusal other than OTLP's retryable ones (429, 502, 503, 504) is not retried.
        try await receiver.control(#"{"fail": {"/v1/traces": 1}, "fail_status": 400}"#)
        _ = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: #"{"model":"up/gpt-4o-mini","messages":[]}"#)
        try await Poll.until("the second span given up", timeout: .seconds(30)) {
            try await metricSum(gatehouse, "gatehouse_otlp_export_spans_total") { $0.contains(#"outcome="dropped""#) } >= 2
        }
        #expect(try await receiver.received("/v1/traces").count == 5)
        try await gatehouse.stop()
        try await receiver.stop()
        try await mock.stop()
    }

    /// Spans still queued for the collector when the server is told to stop are sent before it exits.
    @Test func queuedSpansAreExportedAtShutdown() async throws {
        let receiver = try await Receiver.start()
        // Flushed only when a batch fills or at shutdown: this test's one span waits for the stop.
        let gatehouse = try await GatehouseProcess.start(yaml: """
            providers:
              - {name: up, kind: mock}
            recorder: {flush_interval_ms: 600000}
            telemetry:
              otlp_export: {endpoint: "\(receiver.baseURL)", timeout: 5s}
            """)
        let reply = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: #"{"model":"up/gpt-4o-mini","messages":[]}"#,
                                        headers: [("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")])
        #expect(reply.status == 200)
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await receiver.received("/v1/traces").isEmpty, "nothing is sent before a batch fills or the server stops")
        #expect(try await gatehouse.stop() == 0)
        let posts = try await receiver.received("/v1/traces")
        let spans = posts.flatMap { (($0["body"] as? [String: Any])?["spans"] as? [[String: Any]]) ?? [] }
        #expect(spans.count == 1 && spans.first?["trace_id"] as? String == "0af7651916cd43dd8448eb211c80319c")
        #expect(spans.first?["parent_span_id"] as? String == "b7ad6b7169203331" && (spans.first?["attributes"] as? [String: Any])?["gen_ai.system"] as? String == "gatehouse.mock")
        try await receiver.stop()
    }

    /// check-config accepts the export settings and prints the header values masked; bad ones are explained.
    @Test func checkConfigMasksTheExportHeaders() async throws {
        let directory = try TestEnvironment.temporaryDirectory()
        let good = directory.appendingPathComponent("good.yaml")
        try """
            telemetry:
              otlp_export:
                endpoint: https://otel.example:4318
                headers: {x-honeycomb-team: \(Self.collectorToken)}
                timeout: 2500ms
            """.write(to: good, atomically: true, encoding: .utf8)
        let ok = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["check-config", "--config", good.path])
        #expect(ok.status == 0 && ok.output.contains("https://otel.example:4318") && ok.output.contains("x-honeycomb-team"), "\(ok.output)")
        #expect(!ok.output.contains(Self.collectorToken) && ok.output.contains("2500ms"))
        let bad = directory.appendingPathComponent("bad.yaml")
        try """
            telemetry:
              otlp_export:
                endpoint: "ftp://user:\(Self.collectorToken)@otel"
                headers: {"bad name": x}
                timeout: forever
            """.write(to: bad, atomically: true, encoding: .utf8)
        let refused = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["check-config", "--config", bad.path])
        #expect(refused.status == 2 && refused.output.contains("telemetry.otlp_export.endpoint") && refused.output.contains("telemetry.otlp_export.timeout"))
        #expect(refused.output.contains("telemetry.otlp_export.headers") && !refused.output.contains(Self.collectorToken), "\(refused.output)")
    }
}
