import Foundation
import Testing
@testable import GatehouseCore

@Suite struct MoneyAndPricingTests {
    @Test(arguments: [
        ("2.50", Int64(2_500_000)), ("10", 10_000_000), ("0.075", 75_000), ("0.0375", 37_500), ("0.000001", 1), ("0", 0), (".5", 500_000),
    ])
    func parsesPricesExactly(text: String, picos: Int64) {
        #expect(PicoDollarsPerToken(perMillionTokens: text)?.value == picos)
    }

    @Test(arguments: ["", "abc", "1.2345678", "-1", "1.", "1.2.3", "١٢"])
    func rejectsMalformedPrices(text: String) {
        #expect(PicoDollarsPerToken(perMillionTokens: text) == nil)
    }

    @Test func costIsRoundedOnceAfterSumming() throws {
        // gpt-4o-mini list price: $0.15 input, $0.60 output, $0.075 cached input per 1M tokens.
        let price = ModelPrice(provider: "openai", model: "gpt-4o-mini", input: PicoDollarsPerToken(150_000),
                               output: PicoDollarsPerToken(600_000), cachedInput: PicoDollarsPerToken(75_000))
        // 1,234 input (200 cached) and 567 output: 1034×0.15 + 200×0.075 + 567×0.60 = 155.1 + 15 + 340.2 = 510.3 µ$.
        let usage = TokenUsage(inputTokens: 1234, outputTokens: 567, cachedInputTokens: 200)
        #expect(price.cost(of: usage) == MicroDollars(510))
        // Half rounds up: 3 output tokens at $0.50/1M = 1.5 µ$ → 2.
        let half = ModelPrice(provider: "x", model: "y", input: PicoDollarsPerToken(0), output: PicoDollarsPerToken(500_000))
        #expect(half.cost(of: TokenUsage(outputTokens: 3)) == MicroDollars(2))
    }

    @Test func anthropicCacheWritesAndReadsArePricedSeparately() throws {
        // claude-sonnet-4-5: $3 input, $15 output, $0.30 cache read, $3.75 cache write.
        let price = ModelPrice(provider: "anthropic", model: "claude-sonnet-4-5",
                               input: PicoDollarsPerToken(3_000_000), output: PicoDollarsPerToken(15_000_000),
                               cachedInput: PicoDollarsPerToken(300_000), cacheWrite: PicoDollarsPerToken(3_750_000))
        // 100 plain + 1000 read + 2000 written input tokens, 50 output.
        let usage = TokenUsage(inputTokens: 3100, outputTokens: 50, cachedInputTokens: 1000, cacheCreationInputTokens: 2000)
        // 100×3 + 1000×0.3 + 2000×3.75 + 50×15 = 300 + 300 + 7500 + 750 = 8850 µ$.
        #expect(price.cost(of: usage) == MicroDollars(8850))
    }

    @Test func dollarStringsAreExact() {
        #expect(MicroDollars(1_250).dollarString == "0.001250")
        #expect(MicroDollars(12_345_678_901).dollarString == "12345.678901")
        #expect(MicroDollars(-5).dollarString == "-0.000005")
        #expect(MicroDollars(0).dollarString == "0.000000")
    }

    @Test func priceLookupUsesExactAliasThenLongestPrefixAtASeparator() throws {
        let table = PriceTable([
            ModelPrice(provider: "openai", model: "gpt-4o", input: PicoDollarsPerToken(2_500_000), output: PicoDollarsPerToken(10_000_000)),
            ModelPrice(provider: "openai", model: "gpt-4o-mini", input: PicoDollarsPerToken(150_000), output: PicoDollarsPerToken(600_000)),
            ModelPrice(provider: "openai", model: "gpt-4", input: PicoDollarsPerToken(30_000_000), output: PicoDollarsPerToken(60_000_000)),
            ModelPrice(provider: "anthropic", model: "claude-3-5-sonnet", input: PicoDollarsPerToken(3_000_000),
                       output: PicoDollarsPerToken(15_000_000), aliases: ["claude-3-5-sonnet-latest"]),
        ])
        #expect(table.price(forModel: "gpt-4o")?.model == "gpt-4o")
        #expect(table.price(forModel: "gpt-4o-2024-08-06")?.model == "gpt-4o")
        #expect(table.price(forModel: "gpt-4o-mini-2024-07-18")?.model == "gpt-4o-mini")
        #expect(table.price(forModel: "gpt-4-0613")?.model == "gpt-4")
        #expect(table.price(forModel: "gpt-4o1") == nil, "a prefix must end at a separator")
        #expect(table.price(forModel: "openrouter/claude-3-5-sonnet-latest")?.model == "claude-3-5-sonnet")
        #expect(table.price(forModel: "unknown-model") == nil)
    }

    @Test func shippedTableParsesAndCoversTheMajorProviders() throws {
        let table = try PriceTable.shipped()
        let providers = Set(table.prices.map(\.provider))
        for provider in ["openai", "anthropic", "google", "mistral", "mock"] {
            #expect(providers.contains(provider), "shipped prices lack \(provider)")
        }
        #expect(table.price(forModel: "gpt-4o-mini") != nil)
        #expect(table.price(forModel: "claude-sonnet-4-5") != nil)
    }

    @Test func shippedSwiftTableMatchesPricesJSON() throws {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/GatehouseCore/Resources/prices.json")
        let json = try String(contentsOf: source, encoding: .utf8)
        #expect(json.trimmingCharacters(in: .whitespacesAndNewlines) == ShippedPrices.json.trimmingCharacters(in: .whitespacesAndNewlines),
                "run scripts/generate-prices.sh after editing prices.json")
    }
}
