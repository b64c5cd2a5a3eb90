import GatehouseCore
import Metrics

/// The AI metrics in `/metrics`: calls, tokens and cost by provider and model.
enum GatewayMetrics {
    /// Longest model label kept; longer names are cut so a client cannot explode cardinality
    /// with one giant name (unknown models never reach here: routing rejects them).
    static let maxLabelLength = 96

    static func record(_ r: RequestRecord) {
        let model = String(r.model.prefix(maxLabelLength))
        let base: [(String, String)] = [("provider", r.provider), ("model", model)]
        Counter(label: "gatehouse_ai_requests_total",
                dimensions: base + [("route", r.route.rawValue), ("status", String(r.status)), ("error", r.errorClass?.rawValue ?? "")])
            .increment()
        guard !r.provider.isEmpty else { return }
        for (type, count) in [("input", r.usage.inputTokens), ("output", r.usage.outputTokens), ("cached_input", r.usage.cachedInputTokens),
                              ("cache_creation_input", r.usage.cacheCreationInputTokens), ("reasoning", r.usage.reasoningTokens)] where count > 0 {
            Counter(label: "gatehouse_ai_tokens_total", dimensions: base + [("type", type)]).increment(by: count)
        }
        if r.cost.value > 0 {
            Counter(label: "gatehouse_ai_cost_microdollars_total", dimensions: base).increment(by: r.cost.value)
        }
        Timer(label: "gatehouse_ai_request_duration_seconds", dimensions: base).recordNanoseconds(r.latencyMicros * 1000)
        if let ttft = r.timeToFirstTokenMicros {
            Timer(label: "gatehouse_ai_time_to_first_token_seconds", dimensions: base).recordNanoseconds(ttft * 1000)
        }
    }
}
