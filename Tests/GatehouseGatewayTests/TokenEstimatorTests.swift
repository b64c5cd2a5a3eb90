import Foundation
import Testing
@testable import GatehouseGateway

/// The estimate a call is charged when its provider never reported usage: close on ordinary
/// text, and not cheaply fooled.
@Suite struct TokenEstimatorTests {
    @Test func ordinaryTextIsNearATokenizersCount() {
        // cl100k counts 20 tokens for this sentence.
        let sentence = "The quick brown fox jumps over the lazy dog, and then it runs away into the forest at 12:45."
        let estimate = TokenEstimator.count(sentence)
        #expect((17...24).contains(estimate), "estimated \(estimate)")
        #expect(TokenEstimator.count("") == 0)
        #expect(TokenEstimator.count("こんにちは世界") == 7)
    }

    @Test func promptsCountWhatTheModelReads() {
        let body = Array(#"{"model":"gpt-4o-mini","max_tokens":100,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Tell me a long story about gateways and tokens."}]}"#.utf8)
        let tokens = TokenEstimator.inputTokens(ofRequestBody: body)
        // 3 + 9 words of content + 4 per message + 3 for the reply: about 20; never the 40+ of bytes ÷ 4.
        #expect((14...26).contains(tokens), "estimated \(tokens)")
    }

    @Test func aTextThatLooksLikeAnImageIsStillText() {
        let prose = String(repeating: "gateways meter every token they relay ", count: 200)
        let disguised = Array(#"{"model":"m","messages":[{"role":"user","content":"data:\#(prose)"}]}"#.utf8)
        #expect(TokenEstimator.inputTokens(ofRequestBody: disguised) > 1_000, "a data: prefix must not make prose cost one image")
        let image = Array(#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,\#(String(repeating: "A", count: 100_000))"}}]}]}"#.utf8)
        #expect(TokenEstimator.inputTokens(ofRequestBody: image) < 200, "an inline image is billed as an image")
    }

    @Test func tokenIDPromptsCountOnePerID() {
        let ids = (0..<500).map(String.init).joined(separator: ",")
        let body = Array(#"{"model":"m","prompt":[[\#(ids)]]}"#.utf8)
        #expect(TokenEstimator.inputTokens(ofRequestBody: body) >= 500)
    }

    @Test func relayedTextCountsContentNotTheJSONAroundIt() {
        let event = SSEEvent(event: nil, data: #"{"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hello world"}}]}"#,
                             hasData: true, raw: [])
        #expect(RelayedText.tokens(in: event, route: .chatCompletions) == 2)
        let final = SSEEvent(event: "response.completed", data: #"{"type":"response.completed","response":{"output":[{"content":[{"text":"Hello world"}]}]}}"#,
                             hasData: true, raw: [])
        #expect(RelayedText.tokens(in: final, route: .responses) == 0, "the final event repeats the text: not counted twice")
    }
}
