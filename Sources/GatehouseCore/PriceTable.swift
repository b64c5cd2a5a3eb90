import Foundation

/// Prices of one model, per token, in pico-dollars.
public struct ModelPrice: Hashable, Sendable {
    public var provider: String
    public var model: String
    public var input: PicoDollarsPerToken
    public var output: PicoDollarsPerToken
    /// Price of prompt tokens read from the provider's cache; `input` when absent.
    public var cachedInput: PicoDollarsPerToken?
    /// Price of prompt tokens written to the provider's cache; `input` when absent.
    public var cacheWrite: PicoDollarsPerToken?
    public var aliases: [String]

    public init(provider: String, model: String, input: PicoDollarsPerToken, output: PicoDollarsPerToken,
                cachedInput: PicoDollarsPerToken? = nil, cacheWrite: PicoDollarsPerToken? = nil, aliases: [String] = []) {
        self.provider = provider
        self.model = model
        self.input = input
        self.output = output
        self.cachedInput = cachedInput
        self.cacheWrite = cacheWrite
        self.aliases = aliases
    }

    /// Cost of a call, rounded half up to the micro-dollar once, after summing every part.
    ///
    /// OpenAI counts cached tokens inside `inputTokens`; Anthropic reports cache reads and
    /// writes beside it. `TokenUsage` follows OpenAI's convention (the Anthropic extractor
    /// adds the cache counts into `inputTokens`), so the uncached part is the remainder.
    ///
    /// Token counts come from outside and are limited to `TokenUsage.maximumCount` each; the
    /// sum saturates (at about $9.2M per call) rather than overflow. Negative prices count as 0.
    public func cost(of usage: TokenUsage) -> MicroDollars {
        let usage = usage.bounded
        let cached = Int64(usage.cachedInputTokens)
        let written = Int64(usage.cacheCreationInputTokens)
        let plain = max(0, Int64(usage.inputTokens) - cached - written)
        func part(_ tokens: Int64, _ price: PicoDollarsPerToken) -> Int64 { tokens.multipliedSaturated(by: max(0, price.value)) }
        let picos = part(plain, input)
            .addingSaturated(part(cached, cachedInput ?? input))
            .addingSaturated(part(written, cacheWrite ?? input))
            .addingSaturated(part(Int64(usage.outputTokens), output))
        return MicroDollars(picos.addingSaturated(500_000) / 1_000_000)
    }
}

/// The table of model prices: the shipped list, overridden and extended by the configuration.
///
/// Lookup is exact model id, then alias, then the longest id that prefixes the model
/// (`gpt-4o-2024-08-06` → `gpt-4o`, `gpt-4o-mini-2024-07-18` → `gpt-4o-mini`).
public struct PriceTable: Sendable {
    public private(set) var prices: [ModelPrice]
    private var byName: [String: Int] = [:]
    private var byProviderName: [String: Int] = [:]

    public init(_ prices: [ModelPrice]) {
        self.prices = []
        for price in prices { upsert(price) }
    }

    public mutating func upsert(_ price: ModelPrice) {
        let index: Int
        if let existing = byProviderName[Self.key(price.provider, price.model)] {
            prices[existing] = price
            index = existing
        } else {
            prices.append(price)
            index = prices.count - 1
        }
        for name in [price.model] + price.aliases {
            byName[name.lowercased()] = index
            byProviderName[Self.key(price.provider, name)] = index
        }
    }

    private static func key(_ provider: String, _ model: String) -> String { provider.lowercased() + "/" + model.lowercased() }

    /// The price of `model`. `provider` is the price table's provider name (openai, anthropic, …)
    /// and is preferred when given, so two providers may list the same model id.
    public func price(forModel model: String, provider: String? = nil) -> ModelPrice? {
        let name = Self.bareModelName(model).lowercased()
        if let provider, let index = byProviderName[Self.key(provider, name)] { return prices[index] }
        if let index = byName[name] { return prices[index] }
        var best: (length: Int, index: Int)?
        for (candidate, index) in byName where name.hasPrefix(candidate) && candidate.count > (best?.length ?? 0) {
            // Only a prefix ending at a separator counts: "gpt-4" must not price "gpt-4o".
            let next = name.index(name.startIndex, offsetBy: candidate.count, limitedBy: name.endIndex) ?? name.endIndex
            guard next == name.endIndex || "-:@.".contains(name[next]) else { continue }
            if let provider, prices[index].provider.lowercased() != provider.lowercased(),
               byName.values.contains(where: { prices[$0].provider.lowercased() == provider.lowercased() }) {
                // Prefer the provider's own entries; fall through to others only when it has none.
                continue
            }
            best = (candidate.count, index)
        }
        return best.map { prices[$0.index] }
    }

    /// Strips a routing prefix such as `openai/` or an OpenRouter-style `anthropic/`.
    static func bareModelName(_ model: String) -> String {
        guard let slash = model.lastIndex(of: "/") else { return model }
        return String(model[model.index(after: slash)...])
    }
}

// MARK: - Loading

/// The JSON form of a price table: decimal strings in USD per million tokens.
public struct PriceTableFile: Codable, Sendable {
    public struct Entry: Codable, Sendable {
        public var provider: String
        public var model: String
        public var input: String
        public var output: String
        public var cached_input: String?
        public var cache_write: String?
        public var aliases: [String]?
        public var note: String?
    }

    public var version: String?
    public var models: [Entry]
}

public enum PriceTableError: Error, CustomStringConvertible, Equatable {
    case invalidPrice(model: String, field: String, value: String)

    public var description: String {
        switch self {
        case let .invalidPrice(model, field, value):
            "price of \(model): \(field) \"\(value)\" is not a decimal number of dollars per 1M tokens (up to 6 decimal places)"
        }
    }
}

extension PriceTable {
    public static func parsePrice(_ text: String, model: String, field: String) throws -> PicoDollarsPerToken {
        guard let price = PicoDollarsPerToken(perMillionTokens: text) else {
            throw PriceTableError.invalidPrice(model: model, field: field, value: text)
        }
        return price
    }

    public static func modelPrice(from entry: PriceTableFile.Entry) throws -> ModelPrice {
        ModelPrice(
            provider: entry.provider,
            model: entry.model,
            input: try parsePrice(entry.input, model: entry.model, field: "input"),
            output: try parsePrice(entry.output, model: entry.model, field: "output"),
            cachedInput: try entry.cached_input.map { try parsePrice($0, model: entry.model, field: "cached_input") },
            cacheWrite: try entry.cache_write.map { try parsePrice($0, model: entry.model, field: "cache_write") },
            aliases: entry.aliases ?? []
        )
    }

    public init(json data: Data) throws {
        let file = try JSONDecoder().decode(PriceTableFile.self, from: data)
        self.init(try file.models.map(Self.modelPrice(from:)))
    }

    /// The table compiled into the binary (generated from `Resources/prices.json`, so the one
    /// binary needs no resource bundle beside it).
    public static func shipped() throws -> PriceTable {
        try PriceTable(json: Data(ShippedPrices.json.utf8))
    }
}
