import Foundation
import GatehouseCore

/// Reads token usage from provider responses, whole or streamed.
public enum UsageExtraction {
    /// OpenAI's usage object in any of its shapes: chat/completions/embeddings
    /// (`prompt_tokens`, `completion_tokens`, `*_tokens_details`) and Responses
    /// (`input_tokens`, `output_tokens`, `*_tokens_details`).
    ///
    /// Every count is a number from outside: of any size, sign or form (1e300, -5, 2^64), it is
    /// read as `0...TokenUsage.maximumCount`, never trapping.
    public static func openAI(_ usage: [String: Any]) -> TokenUsage { openAI(DecodedFields(object: usage)) }

    /// Anthropic's usage, normalized to OpenAI's convention: `inputTokens` counts every prompt
    /// token, the cache reads and writes included (Anthropic reports them beside `input_tokens`).
    public static func anthropic(_ usage: [String: Any]) -> TokenUsage { anthropic(DecodedFields(object: usage)) }

    static func openAI(_ usage: some UsageFields) -> TokenUsage {
        if usage.has("input_tokens") || usage.has("output_tokens") {
            return TokenUsage(inputTokens: usage.count("input_tokens"), outputTokens: usage.count("output_tokens"),
                              cachedInputTokens: usage.detail("input_tokens_details", "cached_tokens"),
                              reasoningTokens: usage.detail("output_tokens_details", "reasoning_tokens"))
        }
        return TokenUsage(inputTokens: usage.count("prompt_tokens"), outputTokens: usage.count("completion_tokens"),
                          cachedInputTokens: usage.detail("prompt_tokens_details", "cached_tokens"),
                          reasoningTokens: usage.detail("completion_tokens_details", "reasoning_tokens"))
    }

    static func anthropic(_ usage: some UsageFields) -> TokenUsage {
        let read = usage.count("cache_read_input_tokens"), written = usage.count("cache_creation_input_tokens")
        // Each part is at most `maximumCount`, so the sum cannot overflow; it is bounded again.
        return TokenUsage(inputTokens: TokenUsage.bounded(usage.count("input_tokens") + read + written), outputTokens: usage.count("output_tokens"),
                          cachedInputTokens: read, cacheCreationInputTokens: written)
    }

    /// Usage and model from a complete JSON response body. Nothing is decoded into objects:
    /// `model` and the usage counts are read from the bytes where the scanner found them.
    public static func fromBody(_ body: [UInt8], dialect: APIDialect) -> (usage: TokenUsage?, model: String?) {
        guard let members = try? JSONObjectScanner.members(of: body) else { return (nil, nil) }
        var model: String?
        var usage: ScannedFields?
        for member in members {
            switch member.key {
            case "model" where body[member.valueRange.lowerBound] == UInt8(ascii: "\""):
                model = JSONObjectScanner.decodeString(body[member.valueRange])
            case "usage":
                // Duplicates: the last one counts, as JSON parsers keep the last.
                usage = ScannedFields(Array(body[member.valueRange]))
            default:
                break
            }
        }
        guard let usage else { return (nil, model) }
        return (dialect == .anthropic ? anthropic(usage) : openAI(usage), model)
    }
}

/// The counts of a usage object, however it was read.
protocol UsageFields {
    func has(_ key: String) -> Bool
    /// The member's number as a token count (`TokenUsage.count`); 0 when absent or not a number.
    func count(_ key: String) -> Int
    /// A number inside a nested object (`prompt_tokens_details.cached_tokens`).
    func detail(_ object: String, _ key: String) -> Int
}

/// A usage object decoded by Foundation (stream events, which are decoded whole).
struct DecodedFields: UsageFields {
    let object: [String: Any]
    func has(_ key: String) -> Bool { object[key] != nil }
    func count(_ key: String) -> Int { TokenUsage.count(json: object[key]) }
    func detail(_ object: String, _ key: String) -> Int { TokenUsage.count(json: (self.object[object] as? [String: Any])?[key]) }
}

/// A usage object read from its raw bytes by the scanner, with no Foundation objects (the
/// non-streamed answer's path, on every call).
struct ScannedFields: UsageFields {
    let bytes: [UInt8]
    let members: [JSONObjectScanner.Member]

    /// Nil when `bytes` is not a JSON object.
    init?(_ bytes: [UInt8]) {
        guard let first = bytes.first(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }), first == UInt8(ascii: "{"),
              let members = try? JSONObjectScanner.members(of: bytes) else { return nil }
        self.bytes = bytes
        self.members = members
    }

    private func value(_ key: String) -> ArraySlice<UInt8>? { members.last { $0.key == key }.map { bytes[$0.valueRange] } }

    func has(_ key: String) -> Bool { value(key) != nil }

    func count(_ key: String) -> Int {
        guard let raw = value(key), let first = raw.first, first == UInt8(ascii: "-") || (0x30...0x39).contains(first) else { return 0 }
        let text = String(decoding: raw, as: UTF8.self)
        if let exact = Int(text) { return TokenUsage.bounded(exact) }
        // Beyond Int's range or written with a fraction or exponent (1e300, 12.5): saturate.
        guard let double = Double(text), !double.isNaN else { return 0 }
        return TokenUsage.bounded(Int(saturating: double))
    }

    func detail(_ object: String, _ key: String) -> Int {
        guard let raw = value(object), let nested = ScannedFields(Array(raw)) else { return 0 }
        return nested.count(key)
    }
}

/// Follows a streamed response event by event, keeping the usage known so far, so a stream
/// cut mid-way is still metered with what had been reported.
struct StreamUsageAccumulator {
    let route: GatewayRoute
    private(set) var usage: TokenUsage?
    private(set) var model: String?
    /// Whether the provider's end-of-stream marker arrived (`[DONE]`, `response.completed`,
    /// `message_stop`).
    private(set) var sawEnd = false
    /// An error event inside the stream (Anthropic `error`, Responses `response.failed`).
    private(set) var streamError: String?

    init(route: GatewayRoute) { self.route = route }

    /// Reads one event. Returns true when the event is the usage-only chunk that Gatehouse
    /// asked for on the client's behalf (OpenAI `choices: []` with `usage`).
    mutating func observe(_ event: SSEEvent) -> Bool {
        guard event.hasData else { return false }
        if event.data == "[DONE]" {
            sawEnd = true
            return false
        }
        // Most chunks carry no usage; skip decoding them unless they could matter.
        let data = event.data
        switch route.dialect {
        case .openAI:
            if route == .responses {
                guard let type = event.event ?? Self.quickType(data),
                      type == "response.completed" || type == "response.incomplete" || type == "response.failed"
                        || (model == nil && type == "response.created") || type == "error" else { return false }
                guard let object = JSONDecoderBridge.object(Array(data.utf8)) as? [String: Any] else { return false }
                let response = object["response"] as? [String: Any]
                if let m = response?["model"] as? String { model = m }
                if let u = response?["usage"] as? [String: Any] { usage = UsageExtraction.openAI(u) }
                if type == "response.completed" || type == "response.incomplete" { sawEnd = true }
                if type == "response.failed" || type == "error" {
                    streamError = ((response?["error"] as? [String: Any])?["message"] as? String) ?? (object["message"] as? String) ?? type
                    sawEnd = true
                }
                return false
            }
            let mayMatter = model == nil || data.contains("\"usage\":{") || data.contains("\"usage\": {")
            guard mayMatter, let object = JSONDecoderBridge.object(Array(data.utf8)) as? [String: Any] else { return false }
            if model == nil, let m = object["model"] as? String { model = m }
            guard let u = object["usage"] as? [String: Any] else { return false }
            usage = UsageExtraction.openAI(u)
            let choices = object["choices"] as? [Any]
            return choices?.isEmpty ?? true
        case .anthropic:
            let type = event.event ?? Self.quickType(data)
            switch type {
            case "message_start":
                guard let object = JSONDecoderBridge.object(Array(data.utf8)) as? [String: Any],
                      let message = object["message"] as? [String: Any] else { return false }
                model = message["model"] as? String ?? model
                if let u = message["usage"] as? [String: Any] { usage = UsageExtraction.anthropic(u) }
            case "message_delta":
                // Cumulative counts; newer API versions may also restate input and cache counts.
                guard let object = JSONDecoderBridge.object(Array(data.utf8)) as? [String: Any],
                      let u = object["usage"] as? [String: Any] else { return false }
                var current = usage ?? TokenUsage()
                let delta = UsageExtraction.anthropic(u)
                current.outputTokens = max(current.outputTokens, delta.outputTokens)
                if u["input_tokens"] != nil { current.inputTokens = max(current.inputTokens, delta.inputTokens) }
                if u["cache_read_input_tokens"] != nil { current.cachedInputTokens = max(current.cachedInputTokens, delta.cachedInputTokens) }
                if u["cache_creation_input_tokens"] != nil {
                    current.cacheCreationInputTokens = max(current.cacheCreationInputTokens, delta.cacheCreationInputTokens)
                }
                usage = current
            case "message_stop":
                sawEnd = true
            case "error":
                let object = JSONDecoderBridge.object(Array(data.utf8)) as? [String: Any]
                streamError = ((object?["error"] as? [String: Any])?["message"] as? String) ?? "error event"
                sawEnd = true
            default:
                break
            }
            return false
        }
    }

    /// The `"type"` of an event whose `event:` line is missing, without decoding it all.
    static func quickType(_ data: String) -> String? {
        guard let range = data.range(of: "\"type\":") ?? data.range(of: "\"type\" :") else { return nil }
        let rest = data[range.upperBound...].drop { $0 == " " }
        guard rest.first == "\"" else { return nil }
        let value = rest.dropFirst().prefix { $0 != "\"" }
        return String(value)
    }
}
