import GatehouseCore
import Testing
@testable import GatehouseGateway

@Suite struct UsageExtractionTests {
    func event(_ name: String?, _ data: String) -> SSEEvent {
        SSEEvent(event: name, data: data, hasData: true, raw: Array(data.utf8))
    }

    @Test func openAIChatAndResponsesShapes() {
        let chat = UsageExtraction.openAI(["prompt_tokens": 100, "completion_tokens": 20,
                                           "prompt_tokens_details": ["cached_tokens": 40], "completion_tokens_details": ["reasoning_tokens": 5]])
        #expect(chat == TokenUsage(inputTokens: 100, outputTokens: 20, cachedInputTokens: 40, reasoningTokens: 5))
        let responses = UsageExtraction.openAI(["input_tokens": 9, "output_tokens": 3, "input_tokens_details": ["cached_tokens": 2],
                                                "output_tokens_details": ["reasoning_tokens": 1]])
        #expect(responses == TokenUsage(inputTokens: 9, outputTokens: 3, cachedInputTokens: 2, reasoningTokens: 1))
    }

    @Test func anthropicCacheCountsAreAddedToInput() {
        let usage = UsageExtraction.anthropic(["input_tokens": 10, "output_tokens": 7, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 50])
        #expect(usage == TokenUsage(inputTokens: 160, outputTokens: 7, cachedInputTokens: 100, cacheCreationInputTokens: 50))
    }

    @Test func openAIStreamFlagsTheUsageOnlyChunk() {
        var acc = StreamUsageAccumulator(route: .chatCompletions)
        let content = acc.observe(event(nil, #"{"model":"gpt-4o","choices":[{"delta":{"content":"hi"}}],"usage":null}"#))
        let usageOnly = acc.observe(event(nil, #"{"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}"#))
        let done = acc.observe(event(nil, "[DONE]"))
        #expect(!content && usageOnly && !done)
        #expect(acc.usage == TokenUsage(inputTokens: 5, outputTokens: 2))
        #expect(acc.model == "gpt-4o")
        #expect(acc.sawEnd)
    }

    @Test func anthropicStreamTakesStartAndCumulativeDeltas() {
        var acc = StreamUsageAccumulator(route: .messages)
        _ = acc.observe(event("message_start", #"{"type":"message_start","message":{"model":"claude-x","usage":{"input_tokens":12,"output_tokens":1,"cache_read_input_tokens":3}}}"#))
        _ = acc.observe(event("content_block_delta", #"{"type":"content_block_delta","delta":{"text":"hi"}}"#))
        _ = acc.observe(event("message_delta", #"{"type":"message_delta","usage":{"output_tokens":9}}"#))
        #expect(acc.usage == TokenUsage(inputTokens: 15, outputTokens: 9, cachedInputTokens: 3))
        #expect(!acc.sawEnd, "without message_stop a stream is incomplete")
        _ = acc.observe(event("message_stop", #"{"type":"message_stop"}"#))
        #expect(acc.sawEnd)
    }

    @Test func responsesStreamReadsCompletedEvent() {
        var acc = StreamUsageAccumulator(route: .responses)
        _ = acc.observe(event("response.output_text.delta", #"{"type":"response.output_text.delta","delta":"x"}"#))
        _ = acc.observe(event("response.completed", #"{"type":"response.completed","response":{"model":"gpt-5","usage":{"input_tokens":4,"output_tokens":6}}}"#))
        #expect(acc.usage == TokenUsage(inputTokens: 4, outputTokens: 6))
        #expect(acc.model == "gpt-5")
        #expect(acc.sawEnd)
    }
}

@Suite struct ModelRouterTests {
    func router(_ yaml: String = "", env: [String: String] = [:]) throws -> ModelRouter {
        ModelRouter(config: try ConfigurationLoader.load(yaml: yaml, environment: env, overrides: ConfigOverrides()))
    }

    @Test func routesPrefixesAliasesAndBareNames() throws {
        let r = try router("""
        providers:
          - {name: openai, kind: openai, api_key: sk-x1234567}
          - {name: claude, kind: anthropic, api_key: sk-ant-x1234567}
        aliases: {fast: openai/gpt-4o-mini}
        """)
        #expect(try r.route("mock/anything").provider.name == "mock")
        #expect(try r.route("mock/anything").upstreamModel == "anything")
        #expect(try r.route("fast").upstreamModel == "gpt-4o-mini")
        #expect(try r.route("gpt-4o").provider.name == "openai")
        #expect(try r.route("claude-sonnet-4-5").provider.name == "claude")
        #expect(throws: RoutingError.self) { try r.route("nowhere/model") }
        #expect(throws: RoutingError.self) { try r.route("llama3") }
    }

    @Test func soleCompatibleProviderTakesSlashedModelNames() throws {
        let r = try router("providers:\n  - {name: openrouter, kind: openai-compatible, base_url: 'https://openrouter.ai/api/v1'}\n")
        let routed = try r.route("meta-llama/llama-3-70b")
        #expect(routed.provider.name == "openrouter" && routed.upstreamModel == "meta-llama/llama-3-70b")
        #expect(try r.route("openrouter/anthropic/claude-3.5-sonnet").upstreamModel == "anthropic/claude-3.5-sonnet")
    }

    @Test func callMetadataLimits() throws {
        let (user, props) = try CallMetadata.read([("Gatehouse-User-Id", "u1"), ("Helicone-Property-Customer", "acme"),
                                                   ("Gatehouse-Property-Feature", "chat"), ("Helicone-Property-Feature", "ignored")])
        #expect(user == "u1")
        #expect(props == ["customer": "acme", "feature": "chat"])
        #expect(throws: CallMetadata.Invalid.self) {
            try CallMetadata.read([("Gatehouse-Property-X", String(repeating: "v", count: 600))])
        }
        #expect(throws: CallMetadata.Invalid.self) {
            try CallMetadata.read((0..<40).map { ("Gatehouse-Property-P\($0)", "v") })
        }
    }
}
