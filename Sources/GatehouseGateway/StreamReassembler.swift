import Foundation
import GatehouseCore

/// Builds, from a response's server-sent events, the one answer the provider would have sent
/// unstreamed: a `chat.completion`, a `text_completion`, a Responses API `response` or an
/// Anthropic `message`. A stream on any other route is kept as it came. Only used when the
/// call's bodies are captured.
///
/// Text, choices, tool calls, content blocks and the objects events start them with are charged
/// to `limit` bytes; past it nothing more is added and `truncated` is set. The few small fields an
/// answer ends with (ids, stop reasons, usage, an error) are not charged but each is bounded in
/// size and replaced rather than added up, so they still arrive after the cut and a hostile
/// stream cannot grow the answer however it is shaped.
struct StreamReassembler {
    let route: GatewayRoute
    let limit: Int
    private(set) var truncated = false
    private var kept = 0
    /// The size of the event being read: what the objects it starts a part with are charged.
    private var eventSize = 0

    /// The most choices, tool calls per choice, or content blocks kept.
    static let maxParts = 256
    /// What a choice or a tool call adds to the answer besides its text (its JSON skeleton),
    /// charged when it first appears.
    static let partOverhead = 64
    /// The largest small field (usage, a stop reason, an id, an error) taken, also past the cut.
    static let maxSmallFieldBytes = 4 * 1024

    // OpenAI chat completions and completions: the first non-empty head fields, then each choice.
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
    /// Any other route: the events as they came.
    private(set) var raw: [UInt8] = []

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

    private var reassembles: Bool { [.chatCompletions, .completions, .responses, .messages].contains(route) }

    mutating func observe(_ event: SSEEvent) {
        guard reassembles else {
            if charge(event.raw.count) { raw += event.raw }
            return
        }
        guard event.hasData, event.data != "[DONE]",
              let object = JSONDecoderBridge.object(Array(event.data.utf8)) as? [String: Any] else { return }
        eventSize = event.data.utf8.count
        if let error = object["error"], object["choices"] == nil, Self.isSmall(error) { streamError = error }
        switch route {
        case .chatCompletions, .completions: observeChunk(object)
        case .responses: observeResponseEvent(object, name: event.event)
        case .messages: observeMessageEvent(object, name: event.event)
        default: return
        }
    }

    /// Takes `size` bytes from what is left under the limit; false (and `truncated`) when they
    /// do not fit. Once one piece did not fit, none after it does: the kept text has no holes.
    private mutating func charge(_ size: Int) -> Bool {
        guard !truncated else { return false }
        guard size <= limit - kept else {
            truncated = true
            return false
        }
        kept += size
        return true
    }

    /// Appends `piece` to `text` unless the bound is reached.
    private mutating func append(_ piece: String, to text: inout String) {
        guard !piece.isEmpty, charge(piece.utf8.count) else { return }
        text += piece
    }

    /// Whether `value` is small enough to take uncharged: at most `maxSmallFieldBytes` as JSON.
    static func isSmall(_ value: Any) -> Bool {
        switch value {
        case is NSNull, is NSNumber: return true
        case let text as String: return text.utf8.count <= maxSmallFieldBytes
        case let array as [Any] where array.count > maxSmallFieldBytes: return false
        case let object as [String: Any] where object.count > maxSmallFieldBytes: return false
        default:
            guard JSONSerialization.isValidJSONObject(value), let data = try? JSONSerialization.data(withJSONObject: value) else { return false }
            return data.count <= maxSmallFieldBytes
        }
    }

    // MARK: - OpenAI

    private mutating func observeChunk(_ chunk: [String: Any]) {
        // Azure's first chunk has an empty id and model (it carries content-filter results).
        for field in ["id", "created", "model", "system_fingerprint", "service_tier"] {
            guard let value = chunk[field], !(value is NSNull), (value as? String)?.isEmpty != true else { continue }
            if head[field] == nil || (head[field] as? String)?.isEmpty == true || (head[field] as? Int) == 0, Self.isSmall(value) {
                head[field] = value
            }
        }
        if let u = chunk["usage"], !(u is NSNull), Self.isSmall(u) { usage = u }
        for case let choice as [String: Any] in chunk["choices"] as? [Any] ?? [] {
            let index = (choice["index"] as? Int) ?? 0
            if choices[index] == nil {
                guard choices.count < Self.maxParts, charge(Self.partOverhead) else {
                    truncated = true
                    continue
                }
                choices[index] = Choice()
            }
            var c = choices[index]!
            if let reason = choice["finish_reason"], !(reason is NSNull), Self.isSmall(reason) { c.finishReason = reason }
            if let text = choice["text"] as? String { append(text, to: &c.text) }
            if let delta = choice["delta"] as? [String: Any] {
                if let role = delta["role"] as? String, role.utf8.count <= 64 { c.role = role }
                if let content = delta["content"] as? String {
                    c.sawContent = true
                    append(content, to: &c.content)
                }
                if let reasoning = delta["reasoning_content"] as? String { append(reasoning, to: &c.reasoning) }
                if let refusal = delta["refusal"] as? String { append(refusal, to: &c.refusal) }
                for case let call as [String: Any] in delta["tool_calls"] as? [Any] ?? [] {
                    let callIndex = (call["index"] as? Int) ?? 0
                    if c.toolCalls[callIndex] == nil {
                        guard c.toolCalls.count < Self.maxParts, charge(Self.partOverhead) else {
                            truncated = true
                            continue
                        }
                        c.toolCalls[callIndex] = ToolCall()
                    }
                    var t = c.toolCalls[callIndex]!
                    if let id = call["id"] as? String, charge(id.utf8.count) { t.id = id }
                    if let type = call["type"] as? String, type.utf8.count <= 64 { t.type = type }
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
        let type = (object["type"] as? String) ?? name ?? ""
        switch type {
        case "response.created", "response.in_progress", "response.completed", "response.incomplete", "response.failed":
            // Each carries the whole response so far and replaces the last one, so each is
            // bounded by the limit on its own. One over it (long instructions, many tools, a long
            // answer) keeps its small fields (id, status, usage…); the text then comes from the
            // deltas, and only a dropped non-empty `output` makes the answer cut.
            guard let r = object["response"] as? [String: Any] else { return }
            if eventSize <= limit {
                response = r
            } else {
                let small = r.filter { Self.isSmall($0.value) }
                // The answer's items did not fit: the deltas' text stands in for them, anything
                // else they held (tool calls) is lost, and the answer says it was cut.
                if let output = r["output"] as? [Any], !output.isEmpty, small["output"] == nil { truncated = true }
                response = small
            }
        case "response.output_text.delta":
            if let delta = object["delta"] as? String {
                var text = responseText
                append(delta, to: &text)
                responseText = text
            }
        case "error":
            // The Responses API's error event is the error itself, not wrapped in `error`.
            let error = object.filter { $0.key != "type" }
            if streamError == nil, Self.isSmall(error) { streamError = error }
        default:
            return
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
        let type = (object["type"] as? String) ?? name ?? ""
        switch type {
        case "message_start":
            if let m = object["message"] as? [String: Any], charge(eventSize) { message = m }
        case "content_block_start":
            let index = (object["index"] as? Int) ?? blocks.count
            guard blocks[index] == nil, blocks.count < Self.maxParts, charge(eventSize) else {
                if blocks[index] == nil { truncated = true }
                return
            }
            blocks[index] = Block(start: object["content_block"] as? [String: Any] ?? ["type": "text"])
        case "content_block_delta":
            let index = (object["index"] as? Int) ?? 0
            guard var block = blocks[index] else { return }
            if let delta = object["delta"] as? [String: Any] {
                if let text = delta["text"] as? String { append(text, to: &block.text) }
                if let json = delta["partial_json"] as? String { append(json, to: &block.json) }
                if let thinking = delta["thinking"] as? String { append(thinking, to: &block.thinking) }
                if let signature = delta["signature"] as? String { append(signature, to: &block.signature) }
            }
            blocks[index] = block
        case "message_delta":
            // The stop reason and final usage: wanted even after the cut, so not charged, but
            // only the fields Anthropic sends, each small, replacing rather than adding up.
            if let delta = object["delta"] as? [String: Any] {
                for key in ["stop_reason", "stop_sequence", "container"] {
                    if let value = delta[key], Self.isSmall(value) { message[key] = value }
                }
            }
            if let u = object["usage"] as? [String: Any] {
                var merged = message["usage"] as? [String: Any] ?? [:]
                for (key, value) in u where merged[key] != nil || merged.count < 32 {
                    if key.utf8.count <= 64, Self.isSmall(value) { merged[key] = value }
                }
                if Self.isSmall(merged) { message["usage"] = merged }
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
                content["thinking"] = ((content["thinking"] as? String) ?? "") + block.thinking
                if !block.signature.isEmpty { content["signature"] = block.signature }
            case "text":
                content["text"] = ((content["text"] as? String) ?? "") + block.text
            default:
                // `redacted_thinking` and blocks newer than this code: as they started, plus
                // any text that came for them.
                if !block.text.isEmpty { content["text"] = ((content["text"] as? String) ?? "") + block.text }
            }
            return content
        }
        return answer
    }

    /// The reassembled answer (with the stream's error event, if one came); nil on routes whose
    /// streams are kept raw.
    var reassembledAnswer: [String: Any]? {
        guard reassembles else { return nil }
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
