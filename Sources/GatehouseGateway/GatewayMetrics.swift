import GatehouseCore
import GatehouseHTTP
import Metrics

/// The AI metrics in `/metrics`: calls, tokens and cost by provider and model.
///
/// Model names come from clients (any `mock/<name>` routes), so their label values are bounded:
/// the first `modelLabels.limit` distinct names keep their own series, later ones are counted
/// under `model="other"`; control characters are replaced and names cut to `maxLabelLength`.
enum GatewayMetrics {
    /// Longest model label kept; longer names are cut so a client cannot explode cardinality
    /// with one giant name.
    static let maxLabelLength = 96
    static let modelLabels = MetricLabelValues(limit: 100, maxLength: maxLabelLength)
    /// Provider names come from the configuration; bounded all the same.
    static let providerLabels = MetricLabelValues(limit: 50, maxLength: maxLabelLength)

    struct ModelKey: Hashable, Sendable {
        var provider: String
        var model: String
    }

    struct CallKey: Hashable, Sendable {
        var model: ModelKey
        var route: String
        /// An HTTP status, or -1 (`other`) for anything outside 0…599.
        var status: Int
        var error: String
    }

    struct ModelHandles: Sendable {
        var input, output, cachedInput, cacheCreation, reasoning, cost: Counter
        var duration, timeToFirstToken: Timer
    }

    static let otherModel = ModelKey(provider: MetricLabelValues.other, model: MetricLabelValues.other)

    static let calls = MetricHandleCache<CallKey, Counter>(
        maxEntries: 2_000, overflow: CallKey(model: otherModel, route: MetricLabelValues.other, status: -1, error: MetricLabelValues.other)
    ) { key in
        Counter(label: "gatehouse_ai_requests_total", dimensions: [
            ("provider", key.model.provider), ("model", key.model.model), ("route", key.route),
            ("status", key.status < 0 ? MetricLabelValues.other : String(key.status)), ("error", key.error),
        ])
    }

    static let models = MetricHandleCache<ModelKey, ModelHandles>(maxEntries: 500, overflow: otherModel) { key in
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
        let modelKey = ModelKey(provider: r.provider.isEmpty ? "" : providerLabels(r.provider), model: r.model.isEmpty ? "" : modelLabels(r.model))
        let status = (0...599).contains(r.status) ? r.status : -1
        calls(CallKey(model: modelKey, route: r.route.rawValue, status: status, error: r.errorClass?.rawValue ?? "")).increment()
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
