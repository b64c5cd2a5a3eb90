import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

/// A stream is paid for whoever ends it: a client that hangs up early, a provider that cuts it,
/// or Gatehouse's own deadlines. Against an OpenAI-style upstream the usage comes in the last
/// chunk, so these are the cases where it would otherwise be lost.
@Suite("Stream accounting and stream deadlines")
struct StreamAccountingEndToEndTests {
    static func streamRequest(model: String, maxTokens: Int, anthropic: Bool = false) -> String {
        anthropic
            ? #"{"model":"\#(model)","max_tokens":\#(maxTokens),"stream":true,"messages":[{"role":"user","content":"Tell me a long story about gateways and tokens."}]}"#
            : #"{"model":"\#(model)","max_tokens":\#(maxTokens),"stream":true,"messages":[{"role":"user","content":"Tell me a long story about gateways and tokens."}]}"#
    }

    /// Reads `events` data events of a stream and hangs up.
    static func readThenHangUp(_ gatehouse: GatehouseProcess, route: String, body: String, events: Int,
                               headers: [(String, String)] = []) async throws -> RawHTTP.Answer {
        try await RawHTTP.send(port: gatehouse.port, method: "POST", target: route,
                               headers: [("Content-Type", "application/json"), ("x-mock-chunk-delay-ms", "30")] + headers,
                               body: body, timeout: .seconds(20)) { text in
            text.components(separatedBy: "data:").count - 1 >= events
        }
    }

    @Test("a client that reads 19 of 20 chunks and hangs up is charged the provider's usage", arguments: Backend.allCases)
    func hangUpIsCharged(backend: Backend) async throws {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(yaml: upstreamConfig(mock), databaseURL: try backend.databaseURL())
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        // OpenAI: 20 words, usage only in the final chunk.
        let answer = try await Self.readThenHangUp(gatehouse, route: "/v1/chat/completions",
                                                   body: Self.streamRequest(model: "up/gpt-4o-mini", maxTokens: 20), events: 19)
        #expect(answer.status == 200)
        let records = try await waitForRequests(api, count: 1)
        let record = try #require(records.first)
        let u = record.usage
        #expect(record.errorClass == "client_disconnected")
        // The upstream was read to its end after the client left, so the provider's own usage landed.
        #expect(u.outputTokens == 20, "usage \(u)")
        #expect(u.inputTokens > 0, "usage \(u)")
        #expect(record.costMicros > 0, "cost \(record.costMicros)")
        #expect(record.usageEstimated == false)
        try await api.verifyContract()
        try await gatehouse.stop()
        try await mock.stop()
    }

    @Test("a stream the provider cuts is charged an estimate and marked so", arguments: Backend.allCases)
    func cutStreamIsEstimated(backend: Backend) async throws {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(yaml: upstreamConfig(mock), databaseURL: try backend.databaseURL())
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        for (route, model, anthropic) in [("/v1/chat/completions", "up/gpt-4o-mini", false), ("/v1/messages", "upa/claude-3-5-haiku-latest", true)] {
            let answer = try await RawHTTP.send(port: gatehouse.port, method: "POST", target: route,
                                                headers: [("Content-Type", "application/json"), ("x-mock-cut-after", "10")],
                                                body: Self.streamRequest(model: model, maxTokens: 30, anthropic: anthropic), timeout: .seconds(20))
            #expect(answer.status == 200)
        }
        let records = try await waitForRequests(api, count: 2)
        for record in records {
            let u = record.usage
            #expect(record.usageEstimated, "\(record.route) \(u)")
            #expect(u.inputTokens >= 8, "the prompt is counted: \(u)")
            // Ten words were relayed before the cut.
            #expect(u.outputTokens >= 10, "the relayed text is counted: \(u)")
            #expect(record.costMicros > 0)
            #expect(record.complete == false)
        }
        try await api.verifyContract()
        try await gatehouse.stop()
        try await mock.stop()
    }

    @Test("clients that hang up cannot spend past a budget for free")
    func hangUpsExhaustTheBudget() async throws {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(yaml: upstreamConfig(mock, extra: """
            budgets:
              - name: all
                scope: global
                amount_usd: "0.0003"
                period: day
            """))
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        var refused = 0, sent = 0
        for _ in 0..<60 {
            let answer = try await Self.readThenHangUp(gatehouse, route: "/v1/chat/completions",
                                                       body: Self.streamRequest(model: "up/gpt-4o-mini", maxTokens: 20), events: 5)
            sent += 1
            if answer.status != 200 { refused += 1 }
            if refused >= 3 { break }
        }
        #expect(refused >= 3, "hang-ups kept being admitted: the budget was never charged")
        // Every admitted hang-up was charged; every refusal is recorded as the budget's.
        let records = try await waitForRequests(api, count: sent)
        #expect(records.filter { $0.errorClass == "budget_exceeded" }.count == refused, "\(records.map { $0.errorClass ?? "ok" })")
        #expect(records.filter { $0.errorClass == "client_disconnected" }.allSatisfy { $0.costMicros > 0 })
        try await api.verifyContract()
        try await gatehouse.stop()
        try await mock.stop()
    }

    @Test("a stream that stalls after its first chunks is cut at upstream_timeout_seconds")
    func stalledStreamIsCut() async throws {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(yaml: upstreamConfig(mock, extra: """
            gateway:
              upstream_timeout_seconds: 3
            """))
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let started = ContinuousClock.now
        let answer = try await RawHTTP.send(port: gatehouse.port, method: "POST", target: "/v1/chat/completions",
                                            headers: [("Content-Type", "application/json"), ("x-mock-stall-after", "5"), ("x-mock-stall-ms", "30000")],
                                            body: Self.streamRequest(model: "up/gpt-4o-mini", maxTokens: 20), timeout: .seconds(25))
        let elapsed = ContinuousClock.now - started
        #expect(answer.status == 200)
        #expect(elapsed < .seconds(10), "the stalled stream was held \(elapsed)")
        #expect(!answer.text.contains("[DONE]"))
        let record = try #require(try await waitForRequests(api, count: 1).first)
        #expect(record.errorClass == "upstream_timeout", "\(record)")
        #expect(record.usage.outputTokens >= 5)
        try await api.verifyContract()
        try await gatehouse.stop()
        try await mock.stop()
    }

    @Test("a slow stream that outlasts upstream_timeout_seconds is cut even though each gap is short")
    func totalDeadline() async throws {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(yaml: upstreamConfig(mock, extra: """
            gateway:
              upstream_timeout_seconds: 3
            """))
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        // 20 chunks 300 ms apart: 6 s in all.
        let started = ContinuousClock.now
        let slow = try await RawHTTP.send(port: gatehouse.port, method: "POST", target: "/v1/chat/completions",
                                          headers: [("Content-Type", "application/json"), ("x-mock-chunk-delay-ms", "300")],
                                          body: Self.streamRequest(model: "up/gpt-4o-mini", maxTokens: 20), timeout: .seconds(20))
        #expect(ContinuousClock.now - started < .seconds(5.5))
        #expect(!slow.text.contains("[DONE]"), "a 6 s stream completed under a 3 s deadline")
        let record = try #require(try await waitForRequests(api, count: 1).first)
        #expect(record.errorClass == "upstream_timeout")
        #expect((record.errorMessage ?? "").contains("upstream_timeout_seconds"))
        try await api.verifyContract()
        try await gatehouse.stop()
        try await mock.stop()
    }

    @Test("a stream that goes quiet is cut by the idle timeout, well before the deadline")
    func idleTimeout() async throws {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(yaml: upstreamConfig(mock, extra: """
            gateway:
              upstream_timeout_seconds: 60
              stream_idle_timeout_seconds: 1
            """))
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let started = ContinuousClock.now
        let quiet = try await RawHTTP.send(port: gatehouse.port, method: "POST", target: "/v1/chat/completions",
                                           headers: [("Content-Type", "application/json"), ("x-mock-stall-after", "2"), ("x-mock-stall-ms", "8000")],
                                           body: Self.streamRequest(model: "up/gpt-4o-mini", maxTokens: 20), timeout: .seconds(20))
        #expect(ContinuousClock.now - started < .seconds(6), "a quiet stream was held until it spoke again")
        #expect(!quiet.text.contains("[DONE]"))
        let record = try #require(try await waitForRequests(api, count: 1).first)
        #expect(record.errorClass == "upstream_timeout")
        #expect((record.errorMessage ?? "").contains("stream_idle_timeout_seconds"))
        try await api.verifyContract()
        try await gatehouse.stop()
        try await mock.stop()
    }

    @Test("a client that stops reading is cut loose after the deadline, and its call is recorded")
    func clientThatStopsReading() async throws {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(yaml: upstreamConfig(mock, extra: """
            gateway:
              upstream_timeout_seconds: 6
            """))
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        // About 10 MB of embeddings: far more than the socket buffers hold. (The deadline leaves
        // the mock time to compute them on a loaded machine: the head must arrive for this test.)
        let inputs = (0..<120).map { "\"text \($0)\"" }.joined(separator: ",")
        let body = #"{"model":"up/text-embedding-3-small","dimensions":4096,"input":[\#(inputs)]}"#
        let request = "POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
        let closed = try await RawHTTP.sendAndStopReading(port: gatehouse.port, bytes: Array(request.utf8), hold: .seconds(20))
        let record = try #require(try await waitForRequests(api, count: 1).first)
        #expect(record.status == 200, "the provider's answer must have started: \(record)")
        #expect(closed, "the server still held the connection of a client that stopped reading")
        // Cut while writing (the client's doing) or while the provider was still sending at the
        // deadline (the client's back-pressure slowed it): either way recorded, never held.
        #expect(["client_disconnected", "upstream_timeout"].contains(record.errorClass ?? ""),
                "\(record.errorClass ?? "nil"): \(record.errorMessage ?? "")")
        try await api.verifyContract()
        // Graceful shutdown is not held up by it either.
        let started = ContinuousClock.now
        try await gatehouse.stop()
        #expect(ContinuousClock.now - started < .seconds(10))
        try await mock.stop()
    }

    @Test("after the grace, a long answer nobody reads is cancelled and charged an estimate, as the client's doing")
    func graceAfterHangUp() async throws {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(yaml: upstreamConfig(mock, extra: """
            gateway:
              client_disconnect_grace_seconds: 1
            """))
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        // 20 chunks 300 ms apart: the answer would take 6 s; the client leaves after 3 events.
        _ = try await RawHTTP.send(port: gatehouse.port, method: "POST", target: "/v1/chat/completions",
                                   headers: [("Content-Type", "application/json"), ("x-mock-chunk-delay-ms", "300")],
                                   body: Self.streamRequest(model: "up/gpt-4o-mini", maxTokens: 20), timeout: .seconds(20)) { text in
            text.components(separatedBy: "data:").count - 1 >= 3
        }
        let record = try #require(try await waitForRequests(api, count: 1).first)
        #expect(record.errorClass == "client_disconnected", "\(record.errorMessage ?? "")")
        #expect(record.usageEstimated)
        let u = record.usage
        #expect(u.outputTokens >= 3 && u.outputTokens < 20, "charged for what was generated before the cancel: \(u)")
        // The provider saw the request end early: nothing reached the end of the stream.
        let seen = try await mock.requests()
        #expect(seen.count == 1)
        let health = try await api.get("/api/v1/ai/health", as: ProviderHealthReport.self)
        #expect(health.status != "down" && !health.providers.contains { $0.status == "down" }, "a caller hanging up is not a provider fault")
        try await api.verifyContract()
        try await gatehouse.stop()
        try await mock.stop()
    }
}
