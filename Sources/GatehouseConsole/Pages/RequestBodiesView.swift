import Foundation
import GatehouseCore

/// A captured call's bodies on its request page: the conversation as a person reads it (each
/// message's role and text), then each body as pretty-printed JSON.
struct RequestBodiesView {
    /// Messages shown as a conversation at most; the JSON below holds them all.
    static let maxMessages = 200

    struct Message {
        var role: String
        var text: String
        var tone: String
    }

    static func model(_ bodies: CapturedBodies) -> [String: Any] {
        let request = JSONDecoderBridge.object(Array(bodies.request.utf8)) as? [String: Any]
        let response = JSONDecoderBridge.object(Array(bodies.response.utf8)) as? [String: Any]
        var conversation = request.map(Self.messages(inRequest:)) ?? []
        conversation += response.map(Self.messages(inResponse:)) ?? []
        let shown = Array(conversation.prefix(maxMessages))
        return [
            "conversation": shown, "hasConversation": !shown.isEmpty,
            "moreMessages": conversation.count > shown.count ? "\(conversation.count - shown.count) more in the JSON below" : "",
            "request": pretty(bodies.request), "requestTruncated": bodies.requestTruncated,
            "response": bodies.response.isEmpty ? "" : pretty(bodies.response), "hasResponse": !bodies.response.isEmpty,
            "responseTruncated": bodies.responseTruncated, "reassembled": bodies.responseReassembled,
            "size": Format.bytes(Int64(bodies.request.utf8.count + bodies.response.utf8.count)),
        ]
    }

    /// JSON indented for reading; anything else (a cut body is no longer JSON) as stored.
    static func pretty(_ text: String) -> String {
        guard let object = JSONDecoderBridge.object(Array(text.utf8)), object is [String: Any] || object is [Any],
              let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else { return text }
        return String(decoding: data, as: UTF8.self)
    }

    /// The system prompt and messages of a chat, messages, completions or responses request.
    static func messages(inRequest body: [String: Any]) -> [Message] {
        var result: [Message] = []
        if let system = body["system"] { result.append(message("system", content: system)) }
        if let instructions = body["instructions"] as? String { result.append(message("system", content: instructions)) }
        if let prompt = body["prompt"] { result.append(message("user", content: prompt)) }
        if let input = body["input"] as? String { result.append(message("user", content: input)) }
        let list = (body["messages"] as? [Any]) ?? (body["input"] as? [Any]) ?? []
        for case let item as [String: Any] in list {
            result.append(message(item["role"] as? String ?? (item["type"] as? String ?? "message"), content: item["content"] ?? item["output"] ?? NSNull(),
                                  toolCalls: item["tool_calls"]))
        }
        return result
    }

    /// The answer's text: each choice's message, a message's content blocks, a response's output.
    static func messages(inResponse body: [String: Any]) -> [Message] {
        var result: [Message] = []
        for case let choice as [String: Any] in body["choices"] as? [Any] ?? [] {
            if let m = choice["message"] as? [String: Any] {
                result.append(message(m["role"] as? String ?? "assistant", content: m["content"] ?? NSNull(), toolCalls: m["tool_calls"]))
            } else if let text = choice["text"] as? String {
                result.append(message("assistant", content: text))
            }
        }
        if body["type"] as? String == "message", let content = body["content"] {
            result.append(message(body["role"] as? String ?? "assistant", content: content))
        }
        for case let item as [String: Any] in body["output"] as? [Any] ?? [] where item["type"] as? String == "message" {
            result.append(message(item["role"] as? String ?? "assistant", content: item["content"] ?? NSNull()))
        }
        return result
    }

    /// One message: its text parts joined, other parts (images, tool calls) named.
    static func message(_ role: String, content: Any, toolCalls: Any? = nil) -> Message {
        var parts: [String] = []
        if let text = content as? String {
            parts.append(text)
        } else if let blocks = content as? [Any] {
            for case let block as [String: Any] in blocks {
                let type = block["type"] as? String ?? "part"
                if let text = block["text"] as? String {
                    parts.append(text)
                } else if type == "tool_use" || type == "tool_result" || type == "function_call" {
                    parts.append("[\(type)\((block["name"] as? String).map { " " + $0 } ?? "")]")
                } else {
                    parts.append("[\(type)]")
                }
            }
        }
        for case let call as [String: Any] in toolCalls as? [Any] ?? [] {
            let function = call["function"] as? [String: Any]
            parts.append("→ \(function?["name"] as? String ?? "tool")(\(function?["arguments"] as? String ?? ""))")
        }
        let tone = switch role {
        case "system", "developer": "info"
        case "assistant": "ok"
        default: ""
        }
        return Message(role: role, text: parts.joined(separator: "\n"), tone: tone)
    }
}
