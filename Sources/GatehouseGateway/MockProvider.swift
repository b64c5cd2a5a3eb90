import Foundation
import GatehouseCore
import NIOCore

/// The built-in offline provider: any `mock/<name>` model answers with deterministic text and
/// realistic usage in the wire format of the route called, streaming or not, so the whole
/// product works without a network. Latency and inter-event delay come from the provider's
/// configuration.
struct MockProvider: UpstreamTransport {
    static let vocabulary = [
        "gatehouse", "meters", "every", "token", "and", "dollar", "while", "the", "mock", "provider", "answers",
        "offline", "with", "steady", "deterministic", "text", "so", "demos", "tests", "and", "dashboards", "work",
    ]
    static let defaultOutputWords = 16

    func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        let config = request.provider
        if config.mockLatencyMilliseconds > 0 { try await Task.sleep(for: .milliseconds(config.mockLatencyMilliseconds)) }
        // The gateway parsed this body already; it is valid JSON.
        let inbound = try InboundRequest(route: request.route, body: request.clientBody)
        let plan = Plan(request: request, inbound: inbound)
        let events: [[UInt8]]
        let contentType: String
        if request.stream && request.route != .embeddings {
            events = plan.streamEvents(includeUsage: Self.includeUsage(request.body))
            contentType = "text/event-stream"
        } else {
            events = [plan.body()]
            contentType = "application/json"
        }
        let delay = config.mockChunkDelayMilliseconds
        let body = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
            let task = Task {
                for (index, event) in events.enumerated() {
                    if delay > 0 && index > 0 { try? await Task.sleep(for: .milliseconds(delay)) }
                    if Task.isCancelled { break }
                    continuation.yield(ByteBuffer(bytes: event))
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
        return UpstreamResponse(status: 200, headers: [("content-type", contentType), ("x-gatehouse-mock", "true")],
                                body: UpstreamBody(body))
    }

    static func includeUsage(_ body: [UInt8]) -> Bool {
        guard let object = JSONDecoderBridge.object(body) as? [String: Any],
              let options = object["stream_options"] as? [String: Any] else { return false }
        return options["include_usage"] as? Bool == true
    }

    /// Everything the answer is made of, derived from the request alone.
    struct Plan {
        let route: GatewayRoute
        let model: String
        let words: [String]
        let inputTokens: Int
        let finishedByLength: Bool
        let seed: UInt64
        let created: Int
        let embeddingInputs: Int
        let base64Embeddings: Bool

        init(request: UpstreamRequest, inbound: InboundRequest) {
            route = request.route
            model = request.upstreamModel
            let promptKeys = ["messages", "prompt", "input", "system", "instructions"]
            let promptBytes = inbound.members.filter { promptKeys.contains($0.key) }.reduce(0) { $0 + $1.valueRange.count }
            inputTokens = max(1, promptBytes / 4)
            var hash: UInt64 = 0xcbf29ce484222325
            for m in inbound.members where promptKeys.contains(m.key) {
                for byte in inbound.body[m.valueRange] { hash = (hash ^ UInt64(byte)) &* 0x100000001b3 }
            }
            seed = hash
            let limit = ["max_tokens", "max_completion_tokens", "max_output_tokens"].compactMap { key -> Int? in
                guard let m = inbound.member(key) else { return nil }
                return Int(String(decoding: inbound.body[m.valueRange], as: UTF8.self))
            }.first
            let count = max(1, min(limit ?? MockProvider.defaultOutputWords, MockProvider.defaultOutputWords))
            finishedByLength = (limit ?? Int.max) <= MockProvider.defaultOutputWords
            words = (0..<count).map { i in
                MockProvider.vocabulary[Int((hash &+ UInt64(i) &* 0x9E3779B97F4A7C15) >> 33) % MockProvider.vocabulary.count]
            }
            created = Int(Date().timeIntervalSince1970)
            if let m = inbound.member("input"), let value = JSONDecoderBridge.object(inbound.body[m.valueRange]) {
                if let list = value as? [Any], !(list.first is NSNumber) { embeddingInputs = max(1, list.count) } else { embeddingInputs = 1 }
            } else {
                embeddingInputs = 1
            }
            base64Embeddings = inbound.stringValue("encoding_format") == "base64"
        }

        var text: String { words.joined(separator: " ") }
        var outputTokens: Int { words.count }
        var id: String { String(seed, radix: 16) }

        func body() -> [UInt8] {
            switch route {
            case .chatCompletions:
                return json([
                    "id": "chatcmpl-mock\(id)", "object": "chat.completion", "created": created, "model": model,
                    "system_fingerprint": "gatehouse-mock",
                    "choices": [["index": 0, "message": ["role": "assistant", "content": text, "refusal": NSNull()],
                                 "logprobs": NSNull(), "finish_reason": finishedByLength ? "length" : "stop"]],
                    "usage": openAIUsage(),
                ])
            case .completions:
                return json([
                    "id": "cmpl-mock\(id)", "object": "text_completion", "created": created, "model": model,
                    "choices": [["index": 0, "text": text, "logprobs": NSNull(), "finish_reason": finishedByLength ? "length" : "stop"]],
                    "usage": openAIUsage(),
                ])
            case .embeddings:
                let data: [[String: Any]] = (0..<embeddingInputs).map { i in
                    let vector = (0..<8).map { d in Float(Int((seed >> UInt64(d * 4 + i)) & 0xFF) - 128) / 128 }
                    let embedding: Any = base64Embeddings
                        ? Data(vector.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }).base64EncodedString()
                        : vector.map(Double.init)
                    return ["object": "embedding", "index": i, "embedding": embedding]
                }
                return json(["object": "list", "data": data, "model": model,
                             "usage": ["prompt_tokens": inputTokens, "total_tokens": inputTokens]])
            case .responses:
                return json(response(status: "completed", withOutput: true))
            case .messages:
                return json([
                    "id": "msg_mock\(id)", "type": "message", "role": "assistant", "model": model,
                    "content": [["type": "text", "text": text]],
                    "stop_reason": finishedByLength ? "max_tokens" : "end_turn", "stop_sequence": NSNull(),
                    "usage": anthropicUsage(output: outputTokens),
                ])
            case .models:
                return json(["object": "list", "data": []])
            }
        }

        func streamEvents(includeUsage: Bool) -> [[UInt8]] {
            switch route {
            case .chatCompletions, .completions:
                let chat = route == .chatCompletions
                func chunk(_ choice: [String: Any], usage: Any = NSNull()) -> [UInt8] {
                    var object: [String: Any] = [
                        "id": (chat ? "chatcmpl-mock" : "cmpl-mock") + id, "object": chat ? "chat.completion.chunk" : "text_completion",
                        "created": created, "model": model, "choices": [choice],
                    ]
                    if chat { object["system_fingerprint"] = "gatehouse-mock" }
                    if includeUsage { object["usage"] = usage }
                    return sse(nil, object)
                }
                func choice(_ piece: String?, finish: String?, role: Bool = false) -> [String: Any] {
                    if chat {
                        var delta: [String: Any] = [:]
                        if role { delta["role"] = "assistant" }
                        if let piece { delta["content"] = piece }
                        return ["index": 0, "delta": delta, "logprobs": NSNull(), "finish_reason": finish as Any? ?? NSNull()]
                    }
                    return ["index": 0, "text": piece ?? "", "logprobs": NSNull(), "finish_reason": finish as Any? ?? NSNull()]
                }
                var events: [[UInt8]] = []
                if chat { events.append(chunk(choice("", finish: nil, role: true))) }
                for (i, word) in words.enumerated() { events.append(chunk(choice(i == 0 ? word : " " + word, finish: nil))) }
                events.append(chunk(choice(chat ? nil : "", finish: finishedByLength ? "length" : "stop")))
                if includeUsage {
                    var object: [String: Any] = [
                        "id": (chat ? "chatcmpl-mock" : "cmpl-mock") + id, "object": chat ? "chat.completion.chunk" : "text_completion",
                        "created": created, "model": model, "choices": [] as [Any], "usage": openAIUsage(),
                    ]
                    if chat { object["system_fingerprint"] = "gatehouse-mock" }
                    events.append(sse(nil, object))
                }
                events.append(Array("data: [DONE]\n\n".utf8))
                return events
            case .responses:
                var seq = 0
                func event(_ type: String, _ fields: [String: Any]) -> [UInt8] {
                    var object = fields
                    object["type"] = type
                    object["sequence_number"] = seq
                    seq += 1
                    return sse(type, object)
                }
                let itemID = "msg_mock\(id)"
                var events = [event("response.created", ["response": response(status: "in_progress", withOutput: false)])]
                events.append(event("response.in_progress", ["response": response(status: "in_progress", withOutput: false)]))
                events.append(event("response.output_item.added", ["output_index": 0, "item": [
                    "id": itemID, "type": "message", "status": "in_progress", "role": "assistant", "content": [] as [Any]]]))
                events.append(event("response.content_part.added", ["item_id": itemID, "output_index": 0, "content_index": 0,
                                                                    "part": ["type": "output_text", "text": "", "annotations": [] as [Any]]]))
                for (i, word) in words.enumerated() {
                    events.append(event("response.output_text.delta", ["item_id": itemID, "output_index": 0, "content_index": 0,
                                                                       "delta": i == 0 ? word : " " + word, "logprobs": [] as [Any]]))
                }
                events.append(event("response.output_text.done", ["item_id": itemID, "output_index": 0, "content_index": 0, "text": text,
                                                                  "logprobs": [] as [Any]]))
                events.append(event("response.content_part.done", ["item_id": itemID, "output_index": 0, "content_index": 0,
                                                                   "part": ["type": "output_text", "text": text, "annotations": [] as [Any]]]))
                events.append(event("response.output_item.done", ["output_index": 0, "item": outputItem()]))
                events.append(event("response.completed", ["response": response(status: "completed", withOutput: true)]))
                return events
            case .messages:
                var message: [String: Any] = [
                    "id": "msg_mock\(id)", "type": "message", "role": "assistant", "model": model, "content": [] as [Any],
                    "stop_reason": NSNull(), "stop_sequence": NSNull(), "usage": anthropicUsage(output: 1),
                ]
                message["content"] = [] as [Any]
                var events = [sse("message_start", ["type": "message_start", "message": message])]
                events.append(sse("content_block_start", ["type": "content_block_start", "index": 0, "content_block": ["type": "text", "text": ""]]))
                events.append(sse("ping", ["type": "ping"]))
                for (i, word) in words.enumerated() {
                    events.append(sse("content_block_delta", ["type": "content_block_delta", "index": 0,
                                                              "delta": ["type": "text_delta", "text": i == 0 ? word : " " + word]]))
                }
                events.append(sse("content_block_stop", ["type": "content_block_stop", "index": 0]))
                events.append(sse("message_delta", ["type": "message_delta",
                                                    "delta": ["stop_reason": finishedByLength ? "max_tokens" : "end_turn", "stop_sequence": NSNull()],
                                                    "usage": ["output_tokens": outputTokens]]))
                events.append(sse("message_stop", ["type": "message_stop"]))
                return events
            case .embeddings, .models:
                return [body()]
            }
        }

        func openAIUsage() -> [String: Any] {
            ["prompt_tokens": inputTokens, "completion_tokens": outputTokens, "total_tokens": inputTokens + outputTokens,
             "prompt_tokens_details": ["cached_tokens": 0, "audio_tokens": 0],
             "completion_tokens_details": ["reasoning_tokens": 0, "audio_tokens": 0]]
        }

        func anthropicUsage(output: Int) -> [String: Any] {
            ["input_tokens": inputTokens, "output_tokens": output, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0]
        }

        func outputItem() -> [String: Any] {
            ["id": "msg_mock\(id)", "type": "message", "status": "completed", "role": "assistant",
             "content": [["type": "output_text", "text": text, "annotations": [] as [Any]]]]
        }

        func response(status: String, withOutput: Bool) -> [String: Any] {
            var object: [String: Any] = [
                "id": "resp_mock\(id)", "object": "response", "created_at": created, "status": status, "model": model,
                "error": NSNull(), "incomplete_details": NSNull(), "instructions": NSNull(), "parallel_tool_calls": true,
                "tool_choice": "auto", "tools": [] as [Any], "text": ["format": ["type": "text"]],
            ]
            let output: [Any] = withOutput ? [outputItem()] : []
            object["output"] = output
            if withOutput {
                let usage: [String: Any] = [
                    "input_tokens": inputTokens, "input_tokens_details": ["cached_tokens": 0], "output_tokens": outputTokens,
                    "output_tokens_details": ["reasoning_tokens": 0], "total_tokens": inputTokens + outputTokens,
                ]
                object["usage"] = usage
            } else {
                object["usage"] = NSNull()
            }
            return object
        }

        func json(_ object: [String: Any]) -> [UInt8] {
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])).map { [UInt8]($0) } ?? Array("{}".utf8)
        }

        func sse(_ event: String?, _ object: [String: Any]) -> [UInt8] {
            var bytes: [UInt8] = []
            if let event { bytes += Array("event: \(event)\n".utf8) }
            bytes += Array("data: ".utf8) + json(object) + Array("\n\n".utf8)
            return bytes
        }
    }
}
