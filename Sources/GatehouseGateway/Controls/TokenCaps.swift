import GatehouseCore
import GatehouseHTTP

/// Applies the configured token caps to one call: clamps or refuses output-token requests over
/// the cap, and refuses prompts over the input cap before they cost anything.
struct TokenCaps {
    let caps: [TokenCap]

    /// The members that carry a call's output-token limit, on each route.
    static func outputFields(_ route: GatewayRoute) -> [String] {
        switch route {
        case .chatCompletions: ["max_completion_tokens", "max_tokens"]
        case .completions, .messages: ["max_tokens"]
        case .responses: ["max_output_tokens"]
        case .embeddings, .models: []
        }
    }

    struct Outcome {
        /// Members to set in the upstream body.
        var integers: [(key: String, value: Int)] = []
        /// The output tokens the call may produce, after caps (nil: unbounded).
        var maxOutputTokens: Int?
    }

    func apply(route: GatewayRoute, properties: [String: String], request: InboundRequest) throws(ControlRejection) -> Outcome {
        let fields = Self.outputFields(route)
        let asked = fields.compactMap { request.intValue($0) }.min()
        // The client's number, of any size or sign, as a token count the estimate can use.
        var outcome = Outcome(maxOutputTokens: asked.map(TokenUsage.bounded))
        let matching = caps.filter { cap in
            (cap.routes.isEmpty || cap.routes.contains(route.rawValue))
                && (cap.property.map { properties[$0.name] == $0.value } ?? true)
        }
        guard !matching.isEmpty else { return outcome }
        let where_ = matching.first?.property.map { " for \($0.name)=\($0.value)" } ?? " on \(route.rawValue)"
        if let inputCap = matching.compactMap(\.maxInputTokens).min() {
            let estimated = request.body.count / 4
            if estimated > inputCap {
                throw ControlRejection(
                    error: .invalidRequest("The prompt is about \(estimated) tokens, more than the \(inputCap) allowed\(where_). Shorten it.",
                                           code: "context_length_exceeded"),
                    errorClass: .invalidRequest)
            }
        }
        guard !fields.isEmpty, let cap = matching.filter({ $0.maxOutputTokens != nil }).min(by: { $0.maxOutputTokens! < $1.maxOutputTokens! }),
              let limit = cap.maxOutputTokens else { return outcome }
        if let asked, asked <= limit { return outcome }
        if cap.mode == .reject, let asked {
            throw ControlRejection(
                error: .invalidRequest("\(fields.first { request.intValue($0) != nil } ?? fields[0]) is \(asked), above the cap of \(limit) output tokens\(where_).",
                                       param: fields.first { request.intValue($0) != nil }, code: "max_tokens_exceeded"),
                errorClass: .invalidRequest)
        }
        // Clamp: lower every present field; when none is present, set the route's main one.
        let present = fields.filter { request.intValue($0) != nil }
        outcome.integers = (present.isEmpty ? [fields[0]] : present).map { ($0, limit) }
        outcome.maxOutputTokens = TokenUsage.bounded(limit)
        return outcome
    }
}
