/// Token counts of one call, as reported by the provider.
///
/// `inputTokens` counts every prompt token, cached ones included (OpenAI's convention);
/// `cachedInputTokens` is the part read from the provider's prompt cache and
/// `cacheCreationInputTokens` the part written to it (Anthropic bills both separately).
public struct TokenUsage: Hashable, Sendable, Codable {
    public var inputTokens: Int
    public var outputTokens: Int
    public var cachedInputTokens: Int
    public var cacheCreationInputTokens: Int
    public var reasoningTokens: Int

    public init(inputTokens: Int = 0, outputTokens: Int = 0, cachedInputTokens: Int = 0,
                cacheCreationInputTokens: Int = 0, reasoningTokens: Int = 0) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cachedInputTokens = cachedInputTokens
        self.cacheCreationInputTokens = cacheCreationInputTokens
        self.reasoningTokens = reasoningTokens
    }

    public static let zero = TokenUsage()

    public var totalTokens: Int { inputTokens + outputTokens }

    enum CodingKeys: String, CodingKey {
        case inputTokens = "input_tokens"
        case outputTokens = "output_tokens"
        case cachedInputTokens = "cached_input_tokens"
        case cacheCreationInputTokens = "cache_creation_input_tokens"
        case reasoningTokens = "reasoning_tokens"
    }
}
