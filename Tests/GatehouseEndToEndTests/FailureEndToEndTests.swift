import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

/// A misbehaving upstream and misbehaving clients: every failure is passed on in the caller's
/// format and recorded, none is billed as free, none crashes or hangs the server.
@Suite(.serialized) struct FailureEndToEndTests {
    @Test func upstreamErrorsReachTheSDKAsTheProviderSentThem() async throws {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(yaml: upstreamConfig(mock))
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let limited = try await SDK.run("openai-chat", baseURL: gatehouse.baseURL, model: "up/gpt-4o-mini",
                                        headers: ["x-mock-status": "429", "X-Request-Id": "e-429"])
        let error = try #require(limited["error"] as? [String: Any])
        #expect(error["type"] as? String == "RateLimitError")
        #expect(int(error["status"]) == 429)
        #expect(error["retry_after"] as? String == "1")
        let overloaded = try await SDK.run("anthropic-messages", baseURL: gatehouse.baseURL, model: "upa/claude-sonnet-4-5",
                                           headers: ["x-mock-status": "500", "X-Request-Id": "e-500"])
        #expect(int((overloaded["error"] as? [String: Any])?["status"]) == 500)

        let records = try await waitForRequests(api, count: 2)
        let r429 = try #require(records.first { $0.correlationID == "e-429" })
        #expect(r429.errorClass == "upstream_429" && r429.status == 429 && r429.costMicros == 0)
        let r500 = try #require(records.first { $0.correlationID == "e-500" })
        #expect(r500.errorClass == "upstream_5xx")
        #expect(try await api.get("/api/v1/requests/\(r500.id)", as: RequestRecordView.self) == r500)
        try await api.verifyContract()
        try await gatehouse.stop()
        try await mock.stop()
    }

    @Test func aStreamCutMidWayIsRecordedIncompleteWithTheUsageKnownSoFar() async throws {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(yaml: upstreamConfig(mock))
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let cut = try await SDK.run("anthropic-messages-stream", baseURL: gatehouse.baseURL, model: "upa/claude-sonnet-4-5",
                                    headers: ["x-mock-cut-after": "2", "X-Request-Id": "cut-a"])
        #expect(cut["ok"] as? Bool == false, "the client must see that its stream broke: \(cut)")
        _ = try await SDK.run("openai-chat-stream-usage", baseURL: gatehouse.baseURL, model: "up/gpt-4o-mini",
                              headers: ["x-mock-cut-after": "2", "X-Request-Id": "cut-o"])
        let records = try await waitForRequests(api, count: 2)
        let anthropic = try #require(records.first { $0.correlationID == "cut-a" })
        #expect(anthropic.complete == false)
        #expect(anthropic.errorClass == "stream_incomplete")
        #expect(anthropic.usage.inputTokens > 0, "message_start had reported the input tokens")
        #expect(anthropic.costMicros > 0, "a cut stream is never recorded as free")
        let openAI = try #require(records.first { $0.correlationID == "cut-o" })
        #expect(openAI.complete == false)
        try await api.verifyContract()
        #expect(try await gatehouse.stop() == 0)
        try await mock.stop()
    }

    @Test func slowUpstreamIsTimedAndStreamedWithoutBuffering() async throws {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(yaml: upstreamConfig(mock))
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let slow = try await SDK.run("openai-chat", baseURL: gatehouse.baseURL, model: "up/gpt-4o-mini",
                                     headers: ["x-mock-delay-ms": "400", "X-Request-Id": "slow"])
        #expect(slow["ok"] as? Bool == true)

        // A stream with 150 ms between events: the first event must arrive long before the last.
        let started = ContinuousClock.now
        var firstChunkAfter: Duration?
        var request = HTTPClientRequestBuilder.post(gatehouse.baseURL + "/v1/chat/completions",
            json: #"{"model":"up/gpt-4o-mini","stream":true,"max_tokens":6,"messages":[{"role":"user","content":"hi"}]}"#,
            headers: [("x-mock-chunk-delay-ms", "150"), ("X-Request-Id", "streamed")])
        let chunks = try await request.streamChunks { _ in
            if firstChunkAfter == nil { firstChunkAfter = ContinuousClock.now - started }
        }
        let total = ContinuousClock.now - started
        let first = try #require(firstChunkAfter)
        #expect(chunks > 1)
        #expect(total > .milliseconds(900))
        #expect(first < total / 3, "first byte after \(first) of \(total): the response was buffered")

        let records = try await waitForRequests(api, count: 2)
        let record = try #require(records.first { $0.correlationID == "slow" })
        #expect(record.latencyMs >= 400)
        let streamed = try #require(records.first { $0.correlationID == "streamed" })
        #expect((streamed.timeToFirstTokenMs ?? 1e9) < streamed.latencyMs / 3)
        try await api.verifyContract()
        try await gatehouse.stop()
        try await mock.stop()
    }

    @Test func gatehouseErrorsUseTheErrorFormatOfTheRouteCalled() async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: "gateway:\n  max_request_body_bytes: 4096\n")
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let openAI = try await SDK.run("openai-chat", baseURL: gatehouse.baseURL, model: "nowhere/model")
        let openAIError = try #require(openAI["error"] as? [String: Any])
        #expect(openAIError["type"] as? String == "NotFoundError" && int(openAIError["status"]) == 404)
        let anthropic = try await SDK.run("anthropic-messages", baseURL: gatehouse.baseURL, model: "gpt-unknown-provider")
        let anthropicError = try #require(anthropic["error"] as? [String: Any])
        #expect(anthropicError["type"] as? String == "NotFoundError")

        let badJSON = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: #"{"model": "mock/x", "messages": [}"#)
        #expect(badJSON.status == 400)
        #expect(((badJSON.json?["error"] as? [String: Any])?["message"] as? String)?.contains("byte") == true)
        let badAnthropic = try await HTTP.post(gatehouse.baseURL + "/v1/messages", json: "[]")
        #expect(badAnthropic.status == 400 && badAnthropic.json?["type"] as? String == "error")
        let noModel = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: #"{"messages": []}"#)
        #expect(noModel.status == 400 && ((noModel.json?["error"] as? [String: Any])?["param"] as? String) == "model")
        let tooLarge = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions",
                                           json: #"{"model":"mock/x","messages":[{"role":"user","content":""# + String(repeating: "x", count: 5000) + #""}]}"#)
        #expect(tooLarge.status == 413)
        let bigProperty = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: #"{"model":"mock/x","messages":[]}"#,
                                              headers: [("Gatehouse-Property-X", String(repeating: "v", count: 600))])
        #expect(bigProperty.status == 400)
        // Rejected calls are records too, so nobody wonders where a failed call went.
        let records = try await waitForRequests(api, count: 7)
        #expect(records.allSatisfy { $0.errorClass == "invalid_request" })
        #expect(try await api.get("/health", as: HealthReport.self).status == "ok", "the server is still up")
        try await api.verifyContract()
        try await gatehouse.stop()
    }

    @Test func correlationIDsAreEchoedAndSecretsNeverLogged() async throws {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(yaml: upstreamConfig(mock), extraArguments: ["--log-level", "debug"])
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let reply = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: #"{"model":"up/gpt-4o-mini","messages":[]}"#,
                                        headers: [("Authorization", "Bearer sk-client-SECRET-abcdef123456"), ("X-Request-Id", "my-request-1")])
        #expect(reply.status == 200)
        #expect(reply.header("x-request-id") == "my-request-1")
        let traced = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: #"{"model":"mock/m","messages":[]}"#,
                                         headers: [("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")])
        #expect(traced.header("x-request-id") == "0af7651916cd43dd8448eb211c80319c")
        let generated = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: #"{"model":"mock/m","messages":[]}"#)
        #expect(generated.header("x-request-id")?.count == 32)
        // An upstream 401 that echoes the key it was given.
        _ = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: #"{"model":"up/gpt-4o-mini","messages":[]}"#,
                                headers: [("x-mock-status", "401")])

        let records = try await waitForRequests(api, count: 4)
        let mine = try #require(records.first { $0.correlationID == "my-request-1" })
        #expect(mine.keyID?.hasPrefix("sk-…") == true)
        try await api.verifyContract()
        try await gatehouse.stop()
        try await mock.stop()

        let listing = try APIJSON.encode(records)
        let everything = gatehouse.child.output.joined(separator: "\n") + String(decoding: listing, as: UTF8.self)
        for secret in ["sk-client-SECRET-abcdef123456", "sk-provider-SECRET-upstream-0001", "SECRET-upstream", "SECRET-abcdef"] {
            #expect(!everything.contains(secret), "\(secret) leaked into logs or records")
        }
        let requestLines = gatehouse.child.output.filter { $0.contains("\"message\":\"request\"") }
        #expect(!requestLines.isEmpty && requestLines.allSatisfy { $0.contains("\"correlation_id\"") }, "every request log line carries its id")
    }

    @Test func gracefulShutdownStoresEveryRecordBeforeExiting() async throws {
        // A recorder that would not flush on its own for a minute: only shutdown writes.
        let gatehouse = try await GatehouseProcess.start(yaml: "recorder:\n  flush_interval_ms: 60000\n  batch_size: 10000\n")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for i in 0..<40 {
                        let reply = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions",
                                                        json: #"{"model":"mock/gpt-4o-mini","messages":[{"role":"user","content":"n\#(worker)-\#(i)"}]}"#)
                        #expect(reply.status == 200)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await gatehouse.stop() == 0)
        // Read the SQLite file the process left behind.
        let restarted = try await GatehouseProcess.start(extraArguments: ["--data-dir", gatehouse.dataDirectory.appendingPathComponent("data").path])
        let api = TypedAPI(baseURL: restarted.baseURL)
        let report = try await api.get("/api/v1/ai/usage?from=-1h&interval=none", as: UsageReportView.self)
        #expect(report.totals.requests == 320)
        try await api.verifyContract()
        try await restarted.stop()
    }
}

/// Streams a response body with AsyncHTTPClient, calling back per chunk.
struct HTTPClientRequestBuilder {
    var url: String
    var body: String
    var headers: [(String, String)]

    static func post(_ url: String, json: String, headers: [(String, String)]) -> HTTPClientRequestBuilder {
        HTTPClientRequestBuilder(url: url, body: json, headers: headers)
    }

    mutating func streamChunks(_ onChunk: (Int) -> Void) async throws -> Int {
        try await StreamingClient.post(url: url, body: body, headers: headers, onChunk: onChunk)
    }
}
