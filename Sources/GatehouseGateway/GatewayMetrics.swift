import GatehouseCore
import GatehouseHTTP
import Metrics

/// The AI metrics in `/metrics`: calls, tokens and cost by provider and model.
enum GatewayMetrics {
    /// Longest model label kept; longer names are cut so a client cannot explode cardinality
    /// with one giant name (unknown models never reach here: routing rejects them).
    static let maxLabelLength = 96

    struct ModelKey: Hashable, Sendable {
        var provider: String
        var model: String
    }

    struct CallKey: Hashable, Sendable {
        var model: ModelKey
        var route: String
        var status: Int
        var error: String
    }

    struct ModelHandles: Sendable {
        var input, output, cachedInput, cacheCreation, reasoning, cost: Counter
        var duration, timeToFirstToken: Timer
    }

    static let calls = MetricHandleCache<CallKey, Counter> { key in
        Counter(label: "gatehouse_ai_requests_total", dimensions: [
            ("provider", key.model.provider), ("model", key.model.model), ("route", key.route),
            ("status", String(key.status)), ("error", key.error),
        ])
    }

    static let models = MetricHandleCache<ModelKey, ModelHandles> { key in
        let base = [("provider", key.provider), ("model", key.model)]
        func tokens(_ type: String) -> Counter { Counter(label: "gatehouse_ai_tokens_total", dimensions: base + [("type", type)]) }
        return ModelHandles(
            input: tokens("input"), output: tokens("output"), cachedInput: tokens("cached_input"),
            cacheCreation: tokens("cache_creation_input"), reasoning: tokens("reasoning"),
            cost: Counter(label: "gatehouse_ai_cost_microdollars_total", dimensions: base),
            duration: Timer(label: "gatehouse_ai_request_duration_seconds", dimensions: base),
            timeToFirstToken: Timer(label: "gatehouse_ai_time_to_first_token_seconds", dimensions: base))
    }

    static func record(_ r: RequestRecord) {
        let modelKey = ModelKey(provider: r.provider, model: String(r.model.prefix(maxLabelLength)))
        calls(CallKey(model: modelKey, route: r.route.rawValue, status: r.status, error: r.errorClass?.rawValue ?? "")).increment()
        guard !r.provider.isEmpty else { return }
        let h = models(modelKey)
        for (counter, count) in [(h.input, r.usage.inputTokens), (h.output, r.usage.outputTokens), (h.cachedInput, r.usage.cachedInputTokens),
                                 (h.cacheCreation, r.usage.cacheCreationInputTokens), (h.reasoning, r.usage.reasoningTokens)] where count > 0 {
            counter.increment(by: count)
        }
        if r.cost.value > 0 { h.cost.increment(by: r.cost.value) }
        h.duration.recordNanoseconds(r.latencyMicros * 1000)
        if let ttft = r.timeToFirstTokenMicros { h.timeToFirstToken.recordNanoseconds(ttft * 1000) }
    }
}
