import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

/// The real OpenAI and Anthropic Python SDKs, pointed at a real `gatehouse serve`.
@Suite(.serialized) struct SDKEndToEndTests {
    static let mockScenarios: [(scenario: String, model: String)] = [
        ("openai-chat", "mock/gpt-4o-mini"), ("openai-chat-stream", "mock/gpt-4o-mini"), ("openai-chat-stream-usage", "mock/gpt-4o-mini"),
        ("openai-completions", "mock/gpt-3.5-turbo-instruct"), ("openai-embeddings", "mock/text-embedding-3-small"),
        ("openai-responses", "mock/gpt-4o"), ("openai-responses-stream", "mock/gpt-4o"),
        ("anthropic-messages", "mock/claude-sonnet-4-5"), ("anthropic-messages-stream", "mock/claude-sonnet-4-5"),
    ]

    @Test(arguments: Backend.allCases)
    func everyRouteWorksThroughTheBuiltInMockProvider(backend: Backend) async throws {
        let gatehouse = try await GatehouseProcess.start(databaseURL: try backend.databaseURL())
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        for (scenario, model) in Self.mockScenarios {
            let result = try await SDK.run(scenario, baseURL: gatehouse.baseURL, model: model,
                                           headers: ["Gatehouse-Property-Customer": "acme", "X-Request-Id": "corr-\(scenario)"])
            #expect(result["ok"] as? Bool == true, "\(scenario): \(result)")
            if scenario != "openai-embeddings" { #expect(!((result["text"] as? String) ?? "").isEmpty, "\(scenario) returned no text") }
            if scenario == "openai-chat-stream" {
                #expect(int(result["usage_chunks"]) == 0, "the usage chunk Gatehouse asked for must not reach a client that did not")
            }
            if scenario == "openai-chat-stream-usage" { #expect(int(result["usage_chunks"]) == 1) }
        }
        let models = try await SDK.run("openai-models", baseURL: gatehouse.baseURL, model: "-")
        #expect((models["models"] as? [String])?.contains("mock/gpt-4o-mini") == true)

        let records = try await waitForRequests(api, count: Self.mockScenarios.count)
        for record in records {
            #expect(record.usage.inputTokens > 0, "\(record)")
            #expect(record.complete, "\(record)")
            #expect(record.properties["customer"] == "acme")
            #expect(record.correlationID.hasPrefix("corr-"))
            if record.route != "/v1/embeddings" {
                #expect(record.usage.outputTokens > 0, "\(record)")
                #expect(record.costMicros > 0, "mock calls are priced so demos show spend: \(record)")
            }
        }
        let byRoute = try await api.get("/api/v1/ai/usage?from=-1h&interval=none&group_by=route", as: UsageReportView.self)
        #expect(Set(byRoute.groups?.compactMap(\.key) ?? []) == ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses", "/v1/messages"])
        #expect(byRoute.totals.requests == Int64(Self.mockScenarios.count))
        try await api.verifyContract()
        #expect(try await gatehouse.stop() == 0)
    }

    @Test(arguments: Backend.allCases)
    func storedUsageAndCostEqualWhatUpstreamReported(backend: Backend) async throws {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(yaml: upstreamConfig(mock), databaseURL: try backend.databaseURL())
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let extra = ["x-mock-cached-tokens": "7", "x-mock-reasoning-tokens": "3"]
        let scenarios: [(String, String)] = [
            ("openai-chat", "up/gpt-4o-mini"), ("openai-chat-stream", "up/gpt-4o-mini"), ("openai-completions", "up/gpt-4o-mini"),
            ("openai-embeddings", "up/text-embedding-3-small"), ("openai-responses", "up/gpt-4o-mini"),
            ("openai-responses-stream", "up/gpt-4o-mini"), ("anthropic-messages", "upa/claude-sonnet-4-5"),
            ("anthropic-messages-stream", "upa/claude-sonnet-4-5"),
        ]
        for (scenario, model) in scenarios {
            let result = try await SDK.run(scenario, baseURL: gatehouse.baseURL, model: model,
                                           headers: extra.merging(["X-Request-Id": "exact-\(scenario)", "x-mock-cache-creation-tokens": "5"]) { $1 })
            #expect(result["ok"] as? Bool == true, "\(scenario): \(result)")
            if scenario == "openai-chat-stream" { #expect(int(result["usage_chunks"]) == 0) }
        }
        let sent = try await mock.requests()
        let records = try await waitForRequests(api, count: scenarios.count)
        #expect(sent.count == scenarios.count)
        for (scenario, _) in scenarios {
            let record = try #require(records.first { $0.correlationID == "exact-\(scenario)" })
            let upstream = try #require(sent.first { ($0["headers"] as? [String: String])?["x-request-id"] == "exact-\(scenario)" })
            let reported = try #require(upstream["usage"] as? [String: Any])
            let stored = record.usage
            let expected = expectedUsage(reported, anthropic: scenario.hasPrefix("anthropic"))
            #expect(stored.inputTokens == expected.input, "\(scenario)")
            #expect(stored.outputTokens == expected.output, "\(scenario)")
            #expect(stored.cachedInputTokens == expected.cached, "\(scenario)")
            #expect(stored.cacheCreationInputTokens == expected.cacheWrite, "\(scenario)")
            #expect(stored.reasoningTokens == expected.reasoning, "\(scenario)")
            #expect(stored.totalTokens == expected.input + expected.output, "\(scenario)")
            #expect(record.costMicros == Int64(expectedCost(expected, model: record.model)), "\(scenario): \(record)")

            let headers = try #require(upstream["headers"] as? [String: String])
            if scenario.hasPrefix("anthropic") {
                #expect(headers["x-api-key"] == "sk-ant-provider-SECRET-upstream-0002", "the provider key replaces the client's")
                #expect(headers["anthropic-version"] != nil)
            } else {
                #expect(headers["authorization"] == "Bearer sk-provider-SECRET-upstream-0001", "the provider key replaces the client's")
            }
            #expect(headers.keys.allSatisfy { !$0.hasPrefix("gatehouse-") }, "Gatehouse headers stay at the gateway")
            if scenario == "openai-chat-stream" {
                let body = try #require(upstream["body"] as? [String: Any])
                #expect((body["stream_options"] as? [String: Any])?["include_usage"] as? Bool == true, "usage option injected upstream")
                #expect(body["model"] as? String == "gpt-4o-mini", "provider prefix removed for upstream")
            }
        }
        // The usage report adds up the same records: its totals are their sums.
        let report = try await api.get("/api/v1/ai/usage?from=-1h&interval=none&group_by=model", as: UsageReportView.self)
        #expect(report.totals.costMicros == records.map(\.costMicros).reduce(0, +))
        #expect(report.totals.cachedInputTokens == Int64(records.map(\.usage.cachedInputTokens).reduce(0, +)))
        #expect(report.totals.cacheCreationInputTokens == Int64(records.map(\.usage.cacheCreationInputTokens).reduce(0, +)))
        #expect(report.totals.reasoningTokens == Int64(records.map(\.usage.reasoningTokens).reduce(0, +)))
        #expect(report.groups?.map(\.stats.costMicros).reduce(0, +) == report.totals.costMicros)
        try await api.verifyContract()
        try await gatehouse.stop()
        try await mock.stop()
    }

    struct Expected {
        var input = 0, output = 0, cached = 0, cacheWrite = 0, reasoning = 0
    }

    /// What Gatehouse must store for a usage object the provider sent (OpenAI convention:
    /// input includes cached; Anthropic's cache reads and writes are added to input).
    func expectedUsage(_ u: [String: Any], anthropic: Bool) -> Expected {
        func n(_ key: String) -> Int { int(u[key]) ?? 0 }
        func d(_ object: String, _ key: String) -> Int { int((u[object] as? [String: Any])?[key]) ?? 0 }
        if anthropic {
            return Expected(input: n("input_tokens") + n("cache_read_input_tokens") + n("cache_creation_input_tokens"), output: n("output_tokens"),
                            cached: n("cache_read_input_tokens"), cacheWrite: n("cache_creation_input_tokens"))
        }
        if u["input_tokens"] != nil {
            return Expected(input: n("input_tokens"), output: n("output_tokens"), cached: d("input_tokens_details", "cached_tokens"),
                            reasoning: d("output_tokens_details", "reasoning_tokens"))
        }
        return Expected(input: n("prompt_tokens"), output: n("completion_tokens"), cached: d("prompt_tokens_details", "cached_tokens"),
                        reasoning: d("completion_tokens_details", "reasoning_tokens"))
    }

    /// Cost from list prices written out by hand (micro-dollars per token = $ per 1M tokens),
    /// summed in pico-dollars and rounded half up once.
    func expectedCost(_ e: Expected, model: String) -> Int {
        let picos: Int
        switch model {
        case let m where m.hasPrefix("gpt-4o-mini"):  // $0.15 in, $0.075 cached, $0.60 out
            picos = (e.input - e.cached) * 150_000 + e.cached * 75_000 + e.output * 600_000
        case let m where m.hasPrefix("text-embedding-3-small"):  // $0.02 in
            picos = e.input * 20_000
        case let m where m.hasPrefix("claude-sonnet-4-5"):  // $3 in, $0.30 read, $3.75 write, $15 out
            picos = (e.input - e.cached - e.cacheWrite) * 3_000_000 + e.cached * 300_000 + e.cacheWrite * 3_750_000 + e.output * 15_000_000
        default:
            Issue.record("no hand-written price for \(model)")
            return -1
        }
        return (picos + 500_000) / 1_000_000
    }
}
