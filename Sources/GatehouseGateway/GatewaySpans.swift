import GatehouseCore

/// Where a call sits in a distributed trace: the caller's trace (from its `traceparent`) or a
/// new one, the caller's span as parent, and a span id of its own, which the upstream request
/// carries as its `traceparent` so a provider that traces continues the chain.
struct CallTrace: Sendable {
    let traceID: String
    /// The caller's span; nil when the call came without a usable `traceparent` and starts the trace.
    let parentSpanID: String?
    let spanID: String
    let flags: UInt8

    /// A malformed header starts a new trace, as W3C Trace Context asks.
    init(traceparent: String?) {
        spanID = TraceParent.newSpanID()
        if let traceparent, let caller = TraceParent(header: traceparent) {
            traceID = caller.traceID
            parentSpanID = caller.spanID
            flags = caller.flags
        } else {
            traceID = TraceParent.newTraceID()
            parentSpanID = nil
            flags = 1
        }
    }

    /// The `traceparent` sent upstream: our span is the provider's parent.
    var upstreamHeader: String { TraceParent(traceID: traceID, spanID: spanID, flags: flags).header }
}

/// Turns a metered call into Gatehouse's own span, with OpenTelemetry's GenAI semantic
/// conventions (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/) and
/// `gatehouse.*` attributes. Built once per call from what the record already holds.
enum GatewaySpans {
    /// Gateway spans are filed under this project and service.
    static let project = "gatehouse"
    static let service = "gatehouse"

    /// `gen_ai.operation.name` per route.
    static func operation(_ route: GatewayRoute) -> String {
        switch route {
        case .chatCompletions, .responses, .messages: "chat"
        case .completions: "text_completion"
        case .embeddings: "embeddings"
        case .models: "models"
        }
    }

    /// `gen_ai.system` per provider kind (an OpenAI-compatible server speaks OpenAI's API).
    static func system(_ kind: ProviderConfig.Kind?) -> String? {
        switch kind {
        case .openAI, .openAICompatible: "openai"
        case .anthropic: "anthropic"
        case .azure: "az.ai.openai"
        case .mock: "gatehouse.mock"
        case nil: nil
        }
    }

    /// OTel/Sentry-style status for an error class (`ok` for a call that succeeded).
    static func status(_ errorClass: ErrorClass?) -> String {
        guard let errorClass else { return "ok" }
        return switch errorClass {
        case .invalidRequest: "invalid_argument"
        case .unauthorized: "unauthenticated"
        case .forbidden: "permission_denied"
        case .rateLimited, .upstreamRateLimited, .budgetExceeded: "resource_exhausted"
        case .upstreamTimeout: "deadline_exceeded"
        case .clientDisconnected: "cancelled"
        case .upstreamUnreachable, .disabled: "unavailable"
        default: "internal_error"
        }
    }

    static func span(for record: RequestRecord, meter: CallMeter, system: String?) -> Span {
        let operation = operation(record.route)
        let model = record.requestedModel.isEmpty ? record.model : record.requestedModel
        let name = model.isEmpty ? operation : "\(operation) \(model)"
        var attributes = JSONObjectWriter()
        if let system { attributes.add("gen_ai.system", system) }
        attributes.add("gen_ai.operation.name", operation)
        if !record.requestedModel.isEmpty { attributes.add("gen_ai.request.model", record.requestedModel) }
        if !record.model.isEmpty { attributes.add("gen_ai.response.model", record.model) }
        if let maxTokens = meter.requestMaxTokens { attributes.add("gen_ai.request.max_tokens", maxTokens) }
        if let temperature = meter.requestTemperature { attributes.add("gen_ai.request.temperature", temperature) }
        attributes.add("gen_ai.usage.input_tokens", record.usage.inputTokens)
        attributes.add("gen_ai.usage.output_tokens", record.usage.outputTokens)
        if let errorClass = record.errorClass { attributes.add("error.type", errorClass.rawValue) }
        attributes.add("http.response.status_code", record.status)
        attributes.add("gatehouse.request_id", record.id)
        if !record.provider.isEmpty { attributes.add("gatehouse.provider", record.provider) }
        // The key's id, or the fingerprint of a pass-through credential: never the key.
        if let keyID = record.keyID { attributes.add("gatehouse.key_id", keyID) }
        attributes.add("gatehouse.cost_usd", record.cost.dollars)
        attributes.add("gatehouse.cache_hit", record.cacheHit)
        // `attempts` lists tries only when there was more than one.
        attributes.add("gatehouse.attempts", record.attempts.isEmpty ? (meter.calledUpstream ? 1 : 0) : record.attempts.count)
        attributes.add("gatehouse.stream", record.stream)
        if record.usageEstimated { attributes.add("gatehouse.usage_estimated", true) }
        attributes.add("gatehouse.correlation_id", record.correlationID)
        let trace = meter.trace
        return Span(traceID: trace.traceID, spanID: trace.spanID, parentSpanID: trace.parentSpanID, project: project, source: .gateway,
                    service: service, name: name, op: operation, transaction: name,
                    // The gateway's entry span for the call: a transaction of the `gatehouse` service
                    // also under a caller's span (OTLP's rule for a span with a remote parent).
                    isTransaction: true,
                    startMicros: record.timestampMicros, durationMicros: record.latencyMicros, status: status(record.errorClass),
                    isError: record.errorClass != nil, correlationID: record.correlationID, attributesJSON: attributes.text)
    }
}
