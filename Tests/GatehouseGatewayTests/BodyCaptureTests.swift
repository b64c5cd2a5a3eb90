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

    /// An admin's choice for a key is final: a caller cannot turn capture off on a key kept for
    /// audit, nor on for a key kept private. The header decides only where the key says nothing.
    @Test func aKeysSettingIsFinalAndTheHeaderDecidesOnlyWhereItIsUnset() throws {
        let on = VirtualKey(id: "k1", hash: "h", prefix: "p", captureBodies: true, createdAtMicros: 0, updatedAtMicros: 0)
        let off = VirtualKey(id: "k3", hash: "h", prefix: "p", captureBodies: false, createdAtMicros: 0, updatedAtMicros: 0)
        let unset = VirtualKey(id: "k2", hash: "h", prefix: "p", createdAtMicros: 0, updatedAtMicros: 0)
        #expect(try BodyCapture.enabled(header: nil, key: nil, global: false) == false)
        #expect(try BodyCapture.enabled(header: nil, key: unset, global: true) == true)
        #expect(try BodyCapture.enabled(header: nil, key: on, global: false) == true)
        #expect(try BodyCapture.enabled(header: "false", key: on, global: true) == true)
        #expect(try BodyCapture.enabled(header: "true", key: off, global: true) == false)
        #expect(try BodyCapture.enabled(header: "false", key: unset, global: true) == false)
        #expect(try BodyCapture.enabled(header: " TRUE ", key: nil, global: false) == true)
        #expect(throws: BodyCapture.InvalidHeader.self) { try BodyCapture.enabled(header: "maybe", key: on, global: true) }
        #expect(throws: BodyCapture.InvalidHeader.self) { try BodyCapture.enabled(header: "", key: on, global: true) }
    }

    /// Regression (attack review): a Gatehouse key or the caller's own credential pasted into a
    /// prompt, a body Foundation cannot parse, JSON inside a string, and a provider header outside
    /// the harmless list were all stored in the clear.
    @Test func everyKindOfCredentialIsMasked() throws {
        let ghKey = KeyMint.newSecret()
        let box = CapturedBox()
        let capture = BodyCapture(limit: 1 << 20, secrets: ["provider-key-0123456789"], keep: { box.append($0) })
            .forCall(credential: "caller-own-credential-42")
        let request = Self.json(["messages": [["role": "user", "content": "my keys: \(ghKey) and caller-own-credential-42"]]])
        capture.keep(requestID: "r1", timestampMicros: 1, request: Array(request.utf8), response: nil, reassembled: nil, responseCut: false)
        let kept = try #require(box.items.first)
        #expect(!kept.request.contains(ghKey))
        #expect(!kept.request.contains("caller-own-credential-42"))
        #expect(kept.request.contains("my keys:"))

        // A lone surrogate escape: JSONSerialization refuses the body, the fields are still masked.
        let lone = #"{"api_key":"hunter2hunter2xyz","messages":[{"content":"\ud83d"}]}"#
        #expect(!BodyCapture.masked(Array(lone.utf8), secrets: [], limit: 4096).text.contains("hunter2hunter2xyz"))
        // Cut mid-way: not JSON any more.
        let cut = #"{"password": "correct-horse-battery", "nested": {"x_auth_token" : "tok-value-123", "msg": "#
        let cutText = BodyCapture.masked(Array(cut.utf8), secrets: [], limit: 4096).text
        #expect(!cutText.contains("correct-horse-battery"))
        #expect(!cutText.contains("tok-value-123"))
        #expect(cutText.contains("nested"))
        // Tool-call arguments are JSON inside a string.
        let tool = Self.json(["choices": [["message": ["tool_calls": [["function": ["name": "login", "arguments": #"{"user":"a","password":"swordfish-99"}"#]]]]]]])
        let toolText = BodyCapture.masked(Array(tool.utf8), secrets: [], limit: 4096).text
        #expect(!toolText.contains("swordfish-99"))
        #expect(toolText.contains("login"))
    }

    @Test func providerHeadersOutsideTheHarmlessListAreSecrets() throws {
        var config = GatehouseConfig()
        config.providers = [ProviderConfig(name: "azure", kind: .openAI, baseURL: "https://example.invalid",
                                           headers: ["Ocp-Apim-Subscription-Key": "subscription-value-777", "User-Agent": "gatehouse-test-agent"])]
        #expect(Gateway.secrets(of: config).contains("subscription-value-777"))
        #expect(!Gateway.secrets(of: config).contains("gatehouse-test-agent"))
    }

    /// A body many times the limit is cut before it is parsed: a 10 MiB prompt is not turned into
    /// a Foundation object graph to keep 64 KiB of it.
    @Test func hugeBodiesAreCutBeforeTheyAreParsed() {
        let limit = 1024
        let big = Array((#"{"api_key":"sk-live-abcdefghijklmnop","content":""# + String(repeating: "x", count: 10 << 20) + #""}"#).utf8)
        let (input, cut) = BodyCapture.parsedInput(big, limit: limit)
        #expect(cut)
        #expect(input.count <= BodyCapture.parseBound(limit: limit))
        let (text, truncated) = BodyCapture.masked(big, secrets: [], limit: limit)
        #expect(truncated)
        #expect(text.utf8.count <= limit)
        #expect(!text.contains("sk-live-abcdefghijklmnop"))
        let small = Array(#"{"a":1}"#.utf8)
        #expect(BodyCapture.parsedInput(small, limit: limit).cut == false)
    }

    /// Regression (attack review): only text was charged to the limit, so a stream of new choice
    /// indexes, tool calls, content blocks or big start objects grew the answer without bound.
    @Test func everyPartOfAStreamIsChargedToTheLimit() throws {
        let limit = 2_000
        var chat = StreamReassembler(route: .chatCompletions, limit: limit)
        let chunks = (0..<5_000).map { i in
            "data: " + Self.json(["choices": [["index": i, "delta": ["role": "assistant", "tool_calls": [["index": i, "id": "call_\(i)", "type": "function"]]]]]]) + "\n\n"
        }.joined()
        for event in try Self.events(chunks) { chat.observe(event) }
        let chatCut = chat.truncated
        #expect(chatCut)
        #expect(Self.json(chat.answer()).utf8.count < 4 * limit)

        var messages = StreamReassembler(route: .messages, limit: limit)
        let filler = String(repeating: "y", count: 500)
        var stream = ""
        for i in 0..<2_000 {
            stream += "event: content_block_start\ndata: " + Self.json(["type": "content_block_start", "index": i, "content_block": ["type": "text", "text": filler]]) + "\n\n"
        }
        stream += "event: message_delta\ndata: " + Self.json(["type": "message_delta", "delta": ["stop_reason": "end_turn", "junk": String(repeating: "z", count: 100_000)]]) + "\n\n"
        for event in try Self.events(stream) { messages.observe(event) }
        let messagesCut = messages.truncated
        #expect(messagesCut)
        #expect(Self.json(messages.answer()).utf8.count < 4 * limit)
    }

    /// Regression (attack review): after a piece did not fit, a later smaller one was still
    /// appended, so the kept text had a hole in it.
    @Test func nothingIsAppendedAfterTheCut() throws {
        var r = StreamReassembler(route: .chatCompletions, limit: StreamReassembler.partOverhead + 10)
        let pieces = ["abcdefgh", "abcd", "ab"].map { "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\($0)\"}}]}\n\n" }.joined()
        for event in try Self.events(pieces) { r.observe(event) }
        #expect(r.truncated)
        let message = ((r.answer()["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])
        #expect(message?["content"] as? String == "abcdefgh")
    }

    /// Azure's first chunk carries empty `id` and `model` (and its content-filter results).
    @Test func emptyFirstChunkFieldsDoNotHideTheRealOnes() throws {
        var r = StreamReassembler(route: .chatCompletions, limit: 10_000)
        let stream = """
            data: {"id":"","model":"","created":0,"choices":[],"prompt_filter_results":[]}

            data: {"id":"chatcmpl-9","model":"gpt-4o-2024","created":7,"choices":[{"index":0,"delta":{"content":"Hi"}}]}


            """
        for event in try Self.events(stream) { r.observe(event) }
        #expect(r.answer()["id"] as? String == "chatcmpl-9")
        #expect(r.answer()["model"] as? String == "gpt-4o-2024")
    }

    @Test func aResponsesErrorEventIsKept() throws {
        var r = StreamReassembler(route: .responses, limit: 10_000)
        for event in try Self.events("""
            event: error
            data: {"type":"error","code":"server_error","message":"The model failed","param":null}


            """) { r.observe(event) }
        let error = try #require(r.answer()["error"] as? [String: Any])
        #expect(error["message"] as? String == "The model failed")
    }

    @Test func redactedThinkingBlocksGetNoTextField() throws {
        var r = StreamReassembler(route: .messages, limit: 10_000)
        for event in try Self.events("""
            event: content_block_start
            data: {"type":"content_block_start","index":0,"content_block":{"type":"redacted_thinking","data":"EmwKAhgB"}}


            """) { r.observe(event) }
        let block = try #require((r.answer()["content"] as? [[String: Any]])?.first)
        #expect(block["type"] as? String == "redacted_thinking")
        #expect(block["data"] as? String == "EmwKAhgB")
        #expect(block["text"] == nil)
    }

    /// An event stream on a route with no known answer shape is kept as it came, not as an
    /// empty `chat.completion`.
    @Test func streamsOfOtherRoutesAreKeptRaw() throws {
        var r = StreamReassembler(route: .embeddings, limit: 30)
        for event in try Self.events("data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: {\"c\":3}\n\n") { r.observe(event) }
        #expect(r.reassembledAnswer == nil)
        #expect(String(decoding: r.raw, as: UTF8.self) == "data: {\"a\":1}\n\ndata: {\"b\":2}\n\n")
        #expect(r.truncated)
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
        var r = StreamReassembler(route: .chatCompletions, limit: StreamReassembler.partOverhead + 10)
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

    /// Property: JSON cut anywhere (so Foundation cannot read it) still has its credential-named
    /// fields masked, and the text scanner never traps on what it is given.
    @Test func cutJSONKeepsItsNamedFieldsMasked() throws {
        var rng = SplitMix(seed: 77)
        for round in 0..<500 {
            let secret = "fieldsecret-\(round)-xyz"
            let object: [String: Any] = ["model": "m", "messages": [["role": "user", "content": "hi \\ \" there"]],
                                         "headers": [["Authorization", "Bearer \(secret)"]], "nested": ["client_secret": secret, "n": round],
                                         "password": secret]
            let body = Array(try JSONSerialization.data(withJSONObject: object))
            let cut = Array(body.prefix(Int.random(in: 0...body.count, using: &rng)))
            #expect(!BodyCapture.masked(cut, secrets: [], limit: 1 << 20).text.contains(secret), "\(String(decoding: cut, as: UTF8.self))")
            let noise = (0..<Int.random(in: 0...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = Redactor.redactJSONText(String(decoding: noise + cut, as: UTF8.self))
        }
    }

    /// Regression (second attack review): a string holding JSON at the depth limit made the
    /// masker serialize a bare string, which Foundation traps on: one request crashed Gatehouse.
    @Test func jsonInStringsAtTheDepthLimitDoesNotTrap() {
        for depth in [1, 40, 62, 63, 64, 65, 80] {
            let body = String(repeating: "[", count: depth) + #""{\"password\":\"deep-secret-1\"}""# + String(repeating: "]", count: depth)
            let text = BodyCapture.masked(Array(body.utf8), secrets: [], limit: 1 << 20).text
            #expect(!text.contains("deep-secret-1"), "depth \(depth)")
        }
    }

    /// Regression (second attack review): bodies masked as text (too large to parse, or not
    /// JSON Foundation reads) kept JSON inside strings, objects and arrays under secret names
    /// past their first comma, escaped names, and `[name, value]` pairs in the clear.
    @Test func textMaskingFindsWhatJSONMaskingFinds() {
        let filler = #","filler":""# + String(repeating: "x", count: (1 << 20) + 100_000) + #"""#
        let cases: [(String, [String])] = [
            (#"{"arguments":"{\"password\":\"swordfish-99\"}""#, ["swordfish-99"]),
            (#"{"secrets":{"openai":"a","db":"hunter2-db-pass"},"after":"kept-text""#, ["hunter2-db-pass"]),
            (#"{"api_keys":["key-one-1111","key-two-2222"]"#, ["key-one-1111", "key-two-2222"]),
            (#"{"pass\u0077ord":"escaped-name-value""#, ["escaped-name-value"]),
            (#"{"headers":[["X-Api-Key","pair-secret-3333"],["Accept","json"]]"#, ["pair-secret-3333"]),
        ]
        for (start, secrets) in cases {
            let body = Array((start + filler + "}").utf8)
            #expect(BodyCapture.parsedInput(body, limit: 4096).cut, "takes the text path")
            let text = BodyCapture.masked(body, secrets: [], limit: 4096).text
            for secret in secrets { #expect(!text.contains(secret), "\(start)") }
        }
        // What is not secret stays readable.
        let plain = BodyCapture.masked(Array((#"{"secrets":{"a":1},"note":"kept-text""# + filler + "}").utf8), secrets: [], limit: 4096).text
        #expect(plain.contains("kept-text"))
    }

    /// Many strings holding JSON are not each parsed: past a budget they are masked as text.
    @Test func manyJSONStringsAreAllMaskedWithinABudget() throws {
        let items = (0..<5_000).map { #"{"password":"pw-\#($0)-secret"}"# }
        let body = Array(try JSONSerialization.data(withJSONObject: ["tool_results": items]))
        let text = BodyCapture.masked(body, secrets: [], limit: 1 << 22).text
        #expect(!text.contains("-secret"))
        #expect(text.components(separatedBy: "[REDACTED]").count - 1 == 5_000)
    }

    /// Regression (second attack review): `message_delta` events with new keys each grew the
    /// message without being charged.
    @Test func messageDeltasAreChargedToo() throws {
        let limit = 4_000
        var r = StreamReassembler(route: .messages, limit: limit)
        let piece = String(repeating: "q", count: 7_000)
        var stream = ""
        for i in 0..<2_000 {
            stream += "event: message_delta\ndata: " + Self.json(["type": "message_delta", "delta": ["k\(i)": piece], "usage": ["u\(i)": piece]]) + "\n\n"
        }
        stream += "event: message_delta\ndata: " + Self.json(["type": "message_delta", "delta": ["stop_reason": "end_turn"], "usage": ["output_tokens": 7]]) + "\n\n"
        for event in try Self.events(stream) { r.observe(event) }
        let answer = r.answer()
        #expect(Self.json(answer).utf8.count < 4 * limit)
        #expect(answer["stop_reason"] as? String == "end_turn")
        #expect((answer["usage"] as? [String: Any])?["output_tokens"] as? Int == 7)
    }

    /// Regression (second attack review): a `response.created` larger than the limit (long
    /// instructions, many tools) marked the stream cut before any text came, losing the answer;
    /// and an over-limit `response.completed` lost the status and usage.
    @Test func bigResponsesSnapshotsKeepTheAnswer() throws {
        let limit = 8_000
        var r = StreamReassembler(route: .responses, limit: limit)
        let instructions = String(repeating: "Be precise. ", count: 6_000)
        let created = Self.json(["type": "response.created", "response": ["id": "resp_9", "status": "in_progress", "instructions": instructions, "output": []]])
        let completed = Self.json(["type": "response.completed", "response": ["id": "resp_9", "status": "completed", "instructions": instructions,
                                                                            "output": [["type": "message", "content": [["type": "output_text", "text": "The answer"]]]],
                                                                            "usage": ["input_tokens": 5, "output_tokens": 2]]])
        let stream = "event: response.created\ndata: \(created)\n\n"
            + "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"The answer\"}\n\n"
            + "event: response.completed\ndata: \(completed)\n\n"
        for event in try Self.events(stream) { r.observe(event) }
        let answer = r.answer()
        #expect(Self.json(answer).contains("The answer"))
        #expect(answer["id"] as? String == "resp_9")
        #expect(answer["status"] as? String == "completed")
        #expect((answer["usage"] as? [String: Any])?["output_tokens"] as? Int == 2)
        #expect(Self.json(answer).utf8.count < 4 * limit)
    }

    /// Regression (second attack review): a whole answer in one large chunk lost its id, model,
    /// finish reason and usage (the event was "too big" for small fields).
    @Test func oneBigChunkKeepsItsSmallFields() throws {
        var r = StreamReassembler(route: .chatCompletions, limit: 64 * 1024)
        let chunk = Self.json(["id": "c-big", "model": "gpt-4o", "choices": [["index": 0, "delta": ["content": String(repeating: "w", count: 20_000)], "finish_reason": "stop"]],
                               "usage": ["prompt_tokens": 1, "completion_tokens": 2]])
        for event in try Self.events("data: \(chunk)\n\n") { r.observe(event) }
        let answer = r.answer()
        #expect(answer["id"] as? String == "c-big")
        #expect((answer["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String == "stop")
        #expect((answer["usage"] as? [String: Any])?["completion_tokens"] as? Int == 2)
    }

    /// Regression (second attack review): a Basic credential was masked only with its scheme.
    @Test func basicCredentialsAreMaskedInEveryForm() {
        let box = CapturedBox()
        let token = Data("alice:open-sesame-77".utf8).base64EncodedString()
        let capture = BodyCapture(limit: 1 << 20, secrets: [], keep: { box.append($0) }).forCall(credential: "Basic " + token)
        let body = Array(#"{"messages":[{"content":"token \#(token) pair alice:open-sesame-77 pass open-sesame-77"}]}"#.utf8)
        capture.keep(requestID: "r", timestampMicros: 1, request: body, response: nil, reassembled: nil, responseCut: false)
        let text = box.items.first?.request ?? ""
        for secret in [token, "open-sesame-77"] { #expect(!text.contains(secret)) }
        #expect(text.contains("token [REDACTED] pair [REDACTED] pass [REDACTED]"))
    }

    /// Regression (second attack review): a secret inside a longer one left pieces of the
    /// longer one behind when it was replaced first.
    @Test func longerSecretsAreMaskedFirst() {
        let text = BodyCapture.masked(Array("see abc12345678xyz".utf8), secrets: ["12345678", "abc12345678xyz"], limit: 4096).text
        #expect(text == "see [REDACTED]")
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

extension StreamReassembler {
    func answer() -> [String: Any] { reassembledAnswer ?? [:] }
}

/// Collects what a capture keeps.
final class CapturedBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [CapturedBodies] = []
    func append(_ item: CapturedBodies) { lock.withLock { stored.append(item) } }
    var items: [CapturedBodies] { lock.withLock { stored } }
}
