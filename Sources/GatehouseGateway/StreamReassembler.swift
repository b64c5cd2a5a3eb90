import Foundation
import GatehouseCore

/// Builds, from a response's server-sent events, the one answer the provider would have sent
/// unstreamed: a `chat.completion`, a `text_completion`, a Responses API `response` or an
/// Anthropic `message`. Only used when the call's bodies are captured.
///
/// The text kept is bounded by `limit` bytes; past it the rest is dropped and `truncated` set.
struct StreamReassembler {
    let route: GatewayRoute
    let limit: Int
    private(set) var truncated = false
    private var kept = 0

    // OpenAI chat completions and completions: the first chunk's fields, then each choice.
    private var head: [String: Any] = [:]
    private var choices: [Int: Choice] = [:]
    private var usage: Any?
    // Responses API: its final `response` object when it came, else the text deltas.
    private var response: [String: Any]?
    private var responseText = ""
    // Anthropic Messages: `message_start`'s message, then each content block.
    private var message: [String: Any] = [:]
    private var blocks: [Int: Block] = [:]
    private var streamError: Any?

    struct Choice {
        var role: String?
        var content = ""
        var sawContent = false
        var text = ""
        var reasoning = ""
        var refusal = ""
        var toolCalls: [Int: ToolCall] = [:]
        var finishReason: Any = NSNull()
    }

    struct ToolCall {
        var id: Any = NSNull()
        var type = "function"
        var name = ""
        var arguments = ""
    }

    struct Block {
        var start: [String: Any]
        var text = ""
        var json = ""
        var thinking = ""
        var signature = ""
    }

    init(route: GatewayRoute, limit: Int) {
        self.route = route
        self.limit = limit
    }

    mutating func observe(_ event: SSEEvent) {
        guard event.hasData, event.data != "[DONE]",
              let object = JSONDecoderBridge.object(Array(event.data.utf8)) as? [String: Any] else { return }
        if object["error"] != nil, object["choices"] == nil { streamError = object["error"] }
        switch route {
        case .chatCompletions, .completions: observeChunk(object)
        case .responses: observeResponseEvent(object, name: event.event)
        case .messages: observeMessageEvent(object, name: event.event)
        default: return
        }
    }

    /// Appends `piece` to `text` unless the bound is reached.
    private mutating func append(_ piece: String, to text: inout String) {
        guard !piece.isEmpty else { return }
        let size = piece.utf8.count
        guard kept + size <= limit else {
            truncated = true
            return
        }
        kept += size
        text += piece
    }

    // MARK: - OpenAI

    private mutating func observeChunk(_ chunk: [String: Any]) {
        for field in ["id", "created", "model", "system_fingerprint", "service_tier"] where head[field] == nil {
            if let value = chunk[field] { head[field] = value }
        }
        if let u = chunk["usage"], !(u is NSNull) { usage = u }
        for case let choice as [String: Any] in chunk["choices"] as? [Any] ?? [] {
            let index = (choice["index"] as? Int) ?? 0
            var c = choices[index] ?? Choice()
            if let reason = choice["finish_reason"], !(reason is NSNull) { c.finishReason = reason }
            if let text = choice["text"] as? String { append(text, to: &c.text) }
            if let delta = choice["delta"] as? [String: Any] {
                if let role = delta["role"] as? String { c.role = role }
                if let content = delta["content"] as? String {
                    c.sawContent = true
                    append(content, to: &c.content)
                }
                if let reasoning = delta["reasoning_content"] as? String { append(reasoning, to: &c.reasoning) }
                if let refusal = delta["refusal"] as? String { append(refusal, to: &c.refusal) }
                for case let call as [String: Any] in delta["tool_calls"] as? [Any] ?? [] {
                    let callIndex = (call["index"] as? Int) ?? 0
                    var t = c.toolCalls[callIndex] ?? ToolCall()
                    if let id = call["id"] as? String { t.id = id }
                    if let type = call["type"] as? String { t.type = type }
                    if let function = call["function"] as? [String: Any] {
                        if let name = function["name"] as? String { append(name, to: &t.name) }
                        if let arguments = function["arguments"] as? String { append(arguments, to: &t.arguments) }
                    }
                    c.toolCalls[callIndex] = t
                }
            }
            choices[index] = c
        }
    }

    private func openAIAnswer() -> [String: Any] {
        var answer = head
        answer["object"] = route == .completions ? "text_completion" : "chat.completion"
        answer["choices"] = choices.keys.sorted().map { index -> [String: Any] in
            let c = choices[index]!
            if route == .completions {
                return ["index": index, "text": c.text, "finish_reason": c.finishReason]
            }
            var message: [String: Any] = ["role": c.role ?? "assistant", "content": c.sawContent || c.toolCalls.isEmpty ? c.content : NSNull()]
            if !c.reasoning.isEmpty { message["reasoning_content"] = c.reasoning }
            if !c.refusal.isEmpty { message["refusal"] = c.refusal }
            if !c.toolCalls.isEmpty {
                message["tool_calls"] = c.toolCalls.keys.sorted().map { i -> [String: Any] in
                    let t = c.toolCalls[i]!
                    return ["id": t.id, "type": t.type, "function": ["name": t.name, "arguments": t.arguments]]
                }
            }
            return ["index": index, "message": message, "finish_reason": c.finishReason]
        }
        if let usage { answer["usage"] = usage }
        return answer
    }

    // MARK: - Responses API

    private mutating func observeResponseEvent(_ object: [String: Any], name: String?) {
        let type = name ?? (object["type"] as? String) ?? ""
        if let r = object["response"] as? [String: Any], ["response.created", "response.in_progress", "response.completed",
                                                            "response.incomplete", "response.failed"].contains(type) {
            // The final events carry the whole answer; bound it like the deltas.
            let size = (try? JSONSerialization.data(withJSONObject: r))?.count ?? 0
            if type == "response.created" || type == "response.in_progress" || size <= limit {
                response = r
            } else {
                truncated = true
            }
        }
        if type == "response.output_text.delta", let delta = object["delta"] as? String {
            var text = responseText
            append(delta, to: &text)
            responseText = text
        }
    }

    private func responsesAnswer() -> [String: Any] {
        var answer = response ?? ["object": "response"]
        let outputs = answer["output"] as? [Any] ?? []
        if outputs.isEmpty, !responseText.isEmpty {
            // The stream ended before its final event: keep the text that did arrive.
            answer["output"] = [["type": "message", "role": "assistant", "content": [["type": "output_text", "text": responseText]]]]
            if (answer["status"] as? String) == "in_progress" || answer["status"] == nil { answer["status"] = "incomplete" }
        }
        return answer
    }

    // MARK: - Anthropic

    private mutating func observeMessageEvent(_ object: [String: Any], name: String?) {
        let type = name ?? (object["type"] as? String) ?? ""
        switch type {
        case "message_start":
            if let m = object["message"] as? [String: Any] { message = m }
        case "content_block_start":
            let index = (object["index"] as? Int) ?? blocks.count
            blocks[index] = Block(start: object["content_block"] as? [String: Any] ?? ["type": "text"])
        case "content_block_delta":
            let index = (object["index"] as? Int) ?? 0
            var block = blocks[index] ?? Block(start: ["type": "text"])
            if let delta = object["delta"] as? [String: Any] {
                if let text = delta["text"] as? String { append(text, to: &block.text) }
                if let json = delta["partial_json"] as? String { append(json, to: &block.json) }
                if let thinking = delta["thinking"] as? String { append(thinking, to: &block.thinking) }
                if let signature = delta["signature"] as? String { append(signature, to: &block.signature) }
            }
            blocks[index] = block
        case "message_delta":
            if let delta = object["delta"] as? [String: Any] {
                for (key, value) in delta { message[key] = value }
            }
            if let u = object["usage"] as? [String: Any] {
                var merged = message["usage"] as? [String: Any] ?? [:]
                for (key, value) in u { merged[key] = value }
                message["usage"] = merged
            }
        default:
            return
        }
    }

    private func anthropicAnswer() -> [String: Any] {
        var answer = message
        answer["type"] = answer["type"] ?? "message"
        answer["content"] = blocks.keys.sorted().map { index -> [String: Any] in
            let block = blocks[index]!
            var content = block.start
            switch content["type"] as? String {
            case "tool_use", "server_tool_use":
                content["input"] = JSONDecoderBridge.object(Array(block.json.utf8)) ?? (block.json.isEmpty ? [String: Any]() : block.json)
            case "thinking":
                content["thinking"] = block.thinking
                if !block.signature.isEmpty { content["signature"] = block.signature }
            default:
                content["text"] = ((content["text"] as? String) ?? "") + block.text
            }
            return content
        }
        return answer
    }

    /// The reassembled answer (with the stream's error event, if one came).
    func answer() -> [String: Any] {
        var answer: [String: Any]
        switch route {
        case .responses: answer = responsesAnswer()
        case .messages: answer = anthropicAnswer()
        default: answer = openAIAnswer()
        }
        if let streamError { answer["error"] = streamError }
        return answer
    }
}
