import Foundation

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

    /// The most tokens one count may hold. Counts come from outside (a request's `max_tokens`,
    /// a provider's usage) and anything larger is taken as this, so sums and prices of token
    /// counts stay far from overflowing: no model reads or writes a trillion tokens in a call.
    public static let maximumCount = 1_000_000_000_000

    /// A token count from outside, limited to `0...maximumCount`.
    public static func bounded(_ count: Int) -> Int { count.clamped(to: 0...maximumCount) }

    /// A token count from a JSON number of any size or sign, limited to `0...maximumCount`;
    /// 0 when it is not a number.
    public static func count(json value: Any?) -> Int { Int(jsonNumber: value, in: 0...maximumCount) ?? 0 }

    /// Every count limited to `0...maximumCount`.
    public var bounded: TokenUsage {
        TokenUsage(inputTokens: Self.bounded(inputTokens), outputTokens: Self.bounded(outputTokens),
                   cachedInputTokens: Self.bounded(cachedInputTokens), cacheCreationInputTokens: Self.bounded(cacheCreationInputTokens),
                   reasoningTokens: Self.bounded(reasoningTokens))
    }

    /// Input plus output, each limited to `0...maximumCount`.
    public var totalTokens: Int { Self.bounded(inputTokens) + Self.bounded(outputTokens) }

    enum CodingKeys: String, CodingKey {
        case inputTokens = "input_tokens"
        case outputTokens = "output_tokens"
        case cachedInputTokens = "cached_input_tokens"
        case cacheCreationInputTokens = "cache_creation_input_tokens"
        case reasoningTokens = "reasoning_tokens"
    }
}
