import Foundation
import GatehouseCore

/// Counts tokens the way BPE tokenizers (cl100k/o200k, Claude's) come out on ordinary text, for
/// calls whose provider never said: a stream the client or the provider cut before the usage
/// arrived. Within about 10–15% on English prose and code, far closer than bytes ÷ 4 of the JSON,
/// which counts keys, quotes and escapes as prompt.
///
/// No tokenizer library is available to the build; this follows how BPE vocabularies split text:
/// a word with its leading space is one token up to about 6 letters and about one per 4 letters
/// beyond; digits group in threes; each punctuation mark or symbol is its own token; characters
/// outside Latin script are about one token each.
public enum TokenEstimator {
    /// Estimated tokens in `text`.
    public static func count<Bytes: Sequence>(bytes text: Bytes) -> Int where Bytes.Element == UInt8 {
        var tokens = 0
        var letters = 0, digits = 0
        func endRun() {
            if letters > 0 { tokens += letters <= 6 ? 1 : 1 + (letters - 6 + 3) / 4 }
            if digits > 0 { tokens += (digits + 2) / 3 }
            letters = 0; digits = 0
        }
        var iterator = text.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"):
                if digits > 0 { endRun() }
                letters += 1
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                if letters > 0 { endRun() }
                digits += 1
            case UInt8(ascii: " "):
                endRun()
            case UInt8(ascii: "\n"), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                endRun()
                tokens += 1
            case 0x21...0x7E:
                endRun()
                tokens += 1
            case 0xC0...0xFF:
                // The lead byte of a non-ASCII character: Latin letters with accents (Latin-1 and
                // Latin Extended, U+0080–U+024F) join the word; other scripts are about one token a character.
                if byte < 0xCA { letters += 1 } else { endRun(); tokens += 1 }
            default:
                // Continuation bytes and control characters add nothing.
                break
            }
        }
        endRun()
        return tokens
    }

    public static func count(_ text: String) -> Int { count(bytes: text.utf8) }

    /// Fixed costs of chat formatting: each message's role and separators, and the reply's primer.
    static let perMessage = 4
    static let perReply = 3
    /// An image counts as a low-detail tile when its size is unknown.
    static let perImage = 85

    /// The prompt tokens of a request body: every string a model reads (messages, system,
    /// instructions, tools and their schemas), not the JSON around them or the request settings.
    public static func inputTokens(ofRequestBody body: [UInt8]) -> Int {
        guard let object = JSONDecoderBridge.object(body) as? [String: Any] else {
            return max(1, body.count / 4)
        }
        var total = perReply
        for (key, value) in object where !settingsKeys.contains(key) {
            total = total.addingSaturated(tokens(in: value, key: key))
        }
        if let messages = object["messages"] as? [Any] { total = total.addingSaturated(messages.count.multipliedSaturated(by: perMessage)) }
        return max(1, total)
    }

    /// Request members that configure the call rather than feed the model.
    static let settingsKeys: Set<String> = [
        "model", "stream", "stream_options", "max_tokens", "max_completion_tokens", "max_output_tokens", "temperature",
        "top_p", "top_k", "n", "seed", "user", "metadata", "logprobs", "top_logprobs", "presence_penalty",
        "frequency_penalty", "logit_bias", "store", "service_tier", "parallel_tool_calls", "encoding_format", "dimensions",
        "stop", "stop_sequences", "response_format", "reasoning_effort", "thinking", "previous_response_id", "truncation",
    ]

    private static func tokens(in value: Any, key: String) -> Int {
        switch value {
        case let string as String:
            // An inline image (`data:image/…;base64,…`) is billed as an image, not as its text.
            if string.hasPrefix("data:image/") { return perImage }
            // Roles and part types are formatting, counted in `perMessage`.
            if key == "role" || key == "type" { return 0 }
            return count(string)
        case let array as [Any]:
            return array.reduce(0) { $0.addingSaturated(tokens(in: $1, key: key)) }
        case let object as [String: Any]:
            if object["image_url"] != nil || (object["type"] as? String) == "image" || (object["type"] as? String) == "input_image" {
                return perImage
            }
            // Tool schemas are read as text, keys included.
            let keysCount = key == "tools" || key == "functions" || key == "parameters" || key == "properties" || key == "input_schema"
            return object.reduce(0) { sum, member in
                sum.addingSaturated(tokens(in: member.value, key: member.key)).addingSaturated(keysCount ? count(member.key) : 0)
            }
        case is NSNumber:
            // Token-id prompts (`"prompt": [[1, 2, 3]]`) are one token a number.
            return key == "prompt" || key == "input" ? 1 : 0
        default:
            return 0
        }
    }
}
