import Foundation
import GatehouseCore
import Testing
@testable import GatehouseGateway

@Suite struct BodyCaptureTests {
    static func events(_ text: String) throws -> [SSEEvent] {
        var parser = SSEParser()
        return try parser.feed(Array(text.utf8)[...])
    }

    static func json(_ object: [String: Any]) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    @Test func theCallsHeaderBeatsItsKeyWhichBeatsTheDefault() throws {
        let on = VirtualKey(id: "k1", hash: "h", prefix: "p", captureBodies: true, createdAtMicros: 0, updatedAtMicros: 0)
        let unset = VirtualKey(id: "k2", hash: "h", prefix: "p", createdAtMicros: 0, updatedAtMicros: 0)
        #expect(try BodyCapture.enabled(header: nil, key: nil, global: false) == false)
        #expect(try BodyCapture.enabled(header: nil, key: unset, global: true) == true)
        #expect(try BodyCapture.enabled(header: nil, key: on, global: false) == true)
        #expect(try BodyCapture.enabled(header: "false", key: on, global: true) == false)
        #expect(try BodyCapture.enabled(header: " TRUE ", key: nil, global: false) == true)
        #expect(throws: BodyCapture.InvalidHeader.self) { try BodyCapture.enabled(header: "maybe", key: on, global: true) }
        #expect(throws: BodyCapture.InvalidHeader.self) { try BodyCapture.enabled(header: "", key: on, global: true) }
    }

    @Test func chatStreamsBecomeOneCompletionWithToolCalls() throws {
        var r = StreamReassembler(route: .chatCompletions, limit: 10_000)
        let chunks: [[String: Any]] = [
            ["id": "c1", "model": "gpt-4o", "created": 1, "choices": [["index": 0, "delta": ["role": "assistant", "content": ""]]]],
            ["id": "c1", "choices": [["index": 0, "delta": ["content": "Hello"]]]],
            ["id": "c1", "choices": [["index": 0, "delta": ["content": " world"]]]],
            ["id": "c1", "choices": [["index": 0, "delta": ["tool_calls": [["index": 0, "id": "call_1", "type": "function",
                                                                            "function": ["name": "lookup", "arguments": "{\"q\":"]]]]]]],
            ["id": "c1", "choices": [["index": 0, "delta": ["tool_calls": [["index": 0, "function": ["arguments": "\"x\"}"]]]]]]],
            ["id": "c1", "choices": [["index": 0, "delta": [:], "finish_reason": "tool_calls"]]],
            ["id": "c1", "choices": [], "usage": ["prompt_tokens": 3, "completion_tokens": 2]],
        ]
        for event in try Self.events(chunks.map { "data: \(Self.json($0))\n\n" }.joined() + "data: [DONE]\n\n") { r.observe(event) }
        let answer = r.answer()
        #expect(answer["object"] as? String == "chat.completion")
        #expect(answer["model"] as? String == "gpt-4o")
        let choice = try #require((answer["choices"] as? [[String: Any]])?.first)
        #expect(choice["finish_reason"] as? String == "tool_calls")
        let message = try #require(choice["message"] as? [String: Any])
        #expect(message["content"] as? String == "Hello world")
        let call = try #require((message["tool_calls"] as? [[String: Any]])?.first)
        #expect((call["function"] as? [String: Any])?["arguments"] as? String == "{\"q\":\"x\"}")
        #expect((answer["usage"] as? [String: Any])?["prompt_tokens"] as? Int == 3)
        #expect(!r.truncated)
    }

    @Test func anthropicStreamsBecomeOneMessage() throws {
        let stream = """
        event: message_start
        data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[],"usage":{"input_tokens":9,"output_tokens":1}}}

        event: content_block_start
        data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

        event: content_block_delta
        data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Bonjour"}}

        event: content_block_start
        data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t1","name":"get","input":{}}}

        event: content_block_delta
        data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"city\\": \\"Paris\\"}"}}

        event: message_delta
        data: {"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":12}}

        event: message_stop
        data: {"type":"message_stop"}


        """
        var r = StreamReassembler(route: .messages, limit: 10_000)
        for event in try Self.events(stream) { r.observe(event) }
        let answer = r.answer()
        #expect(answer["stop_reason"] as? String == "tool_use")
        #expect((answer["usage"] as? [String: Any])?["output_tokens"] as? Int == 12)
        #expect((answer["usage"] as? [String: Any])?["input_tokens"] as? Int == 9)
        let content = try #require(answer["content"] as? [[String: Any]])
        #expect(content.count == 2)
        #expect(content[0]["text"] as? String == "Bonjour")
        #expect((content[1]["input"] as? [String: Any])?["city"] as? String == "Paris")
    }

    @Test func responsesStreamsKeepTheFinalResponseOrTheTextThatCame() throws {
        var complete = StreamReassembler(route: .responses, limit: 10_000)
        for event in try Self.events("""
            event: response.output_text.delta
            data: {"type":"response.output_text.delta","delta":"Hi"}

            event: response.completed
            data: {"type":"response.completed","response":{"id":"resp_1","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"Hi"}]}]}}


            """) { complete.observe(event) }
        #expect(complete.answer()["id"] as? String == "resp_1")
        #expect(complete.answer()["status"] as? String == "completed")

        var cut = StreamReassembler(route: .responses, limit: 10_000)
        for event in try Self.events("""
            event: response.created
            data: {"type":"response.created","response":{"id":"resp_2","status":"in_progress","output":[]}}

            event: response.output_text.delta
            data: {"type":"response.output_text.delta","delta":"Half an ans"}


            """) { cut.observe(event) }
        let answer = cut.answer()
        #expect(answer["status"] as? String == "incomplete")
        #expect(Self.json(answer).contains("Half an ans"))
    }

    @Test func reassemblyStopsAtItsLimit() throws {
        var r = StreamReassembler(route: .chatCompletions, limit: 10)
        let stream = (0..<50).map { _ in "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"abcd\"}}]}\n\n" }.joined()
        for event in try Self.events(stream) { r.observe(event) }
        #expect(r.truncated)
        let message = ((r.answer()["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])
        #expect(message?["content"] as? String == "abcdabcd")
    }

    /// Property: whatever the body, the stored text holds none of the secrets, is valid UTF-8
    /// within the limit, and says whether it was cut.
    @Test func maskedBodiesNeverHoldSecretsAndStayWithinTheLimit() {
        var rng = SplitMix(seed: 2026)
        let secret = "provider-key-0123456789"
        let pieces = ["é", "😀", "a", "\"", "\\", " ", "sk-abcdefghijkl", secret, "{", "}", "[", ",", ":", "\n", "password"]
        for round in 0..<400 {
            let limit = Int.random(in: 1...200, using: &rng)
            let body: [UInt8]
            if round % 2 == 0 {
                // JSON with secret-named fields at random depths.
                let value = (0..<Int.random(in: 0...20, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
                let object: [String: Any] = ["messages": [["role": "user", "content": value]], "api_key": value,
                                             "nested": ["x_auth_token": value, "ok": round]]
                body = Array(try! JSONSerialization.data(withJSONObject: object))
            } else {
                body = Array((0..<Int.random(in: 0...60, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined().utf8)
            }
            let (text, truncated) = BodyCapture.masked(body, secrets: [secret], limit: limit)
            #expect(text.utf8.count <= limit)
            #expect(!text.contains(secret))
            #expect(!text.contains("sk-abcdefghijkl"))
            #expect(String(validating: Array(text.utf8), as: UTF8.self) != nil)
            let whole = BodyCapture.masked(body, secrets: [secret], limit: 1 << 20).text
            #expect(truncated == (whole.utf8.count > limit))
            #expect(whole.hasPrefix(text))
        }
    }

    @Test func cutsNeverSplitACharacter() {
        let bytes = Array("aé😀b".utf8)  // 1 + 2 + 4 + 1 bytes
        #expect(Array(BodyCapture.utf8Prefix(bytes, maxBytes: 2)) == Array("a".utf8))
        #expect(Array(BodyCapture.utf8Prefix(bytes, maxBytes: 3)) == Array("aé".utf8))
        #expect(Array(BodyCapture.utf8Prefix(bytes, maxBytes: 6)) == Array("aé".utf8))
        #expect(Array(BodyCapture.utf8Prefix(bytes, maxBytes: 7)) == Array("aé😀".utf8))
        #expect(Array(BodyCapture.utf8Prefix(bytes, maxBytes: 100)) == bytes)
    }
}
