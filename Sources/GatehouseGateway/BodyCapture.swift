import Foundation
import GatehouseCore

/// Whether a call's bodies are kept (`gateway.capture_bodies`, a key's `capture_bodies`, the
/// call's `Gatehouse-Capture` header) and what is kept of them.
struct BodyCapture: Sendable {
    /// The most of each body kept, after masking.
    let limit: Int
    /// Provider keys (and, per call, the caller's credential), masked wherever a body echoes them.
    let secrets: [String]
    let keep: @Sendable (CapturedBodies) -> Void

    struct InvalidHeader: Error {
        var message = "Gatehouse-Capture must be true or false"
    }

    /// A key's own choice is final: an admin who keeps a key's bodies for audit, or keeps them
    /// out for privacy, is not overruled by the caller. Where the key says nothing, the call's
    /// header decides, else the global setting. A malformed header is refused either way.
    static func enabled(header: String?, key: VirtualKey?, global: Bool) throws(InvalidHeader) -> Bool {
        var asked: Bool?
        if let header {
            switch header.trimmingCharacters(in: .whitespaces).lowercased() {
            case "true", "1", "yes", "on": asked = true
            case "false", "0", "no", "off": asked = false
            default: throw InvalidHeader()
            }
        }
        return key?.captureBodies ?? asked ?? global
    }

    /// This call's capture: the credential it came with is masked too (callers paste their key
    /// into prompts and tool arguments as readily as anyone else's): as sent, without its scheme,
    /// and for `Basic`, decoded (`user:password`) and the password alone. Pieces under 8
    /// characters are not masked, as for provider keys: they would mask ordinary words.
    func forCall(credential: String?) -> BodyCapture {
        guard let credential else { return self }
        var forms = [credential]
        if let space = credential.firstIndex(of: " ") {
            let scheme = credential[..<space].lowercased(), token = credential[space...].trimmingCharacters(in: .whitespaces)
            forms.append(token)
            if scheme == "basic", let data = Data(base64Encoded: token), let pair = String(data: data, encoding: .utf8) {
                forms.append(pair)
                if let colon = pair.firstIndex(of: ":") { forms.append(String(pair[pair.index(after: colon)...])) }
            }
        }
        let added = forms.filter { $0.count >= 8 && !secrets.contains($0) }
        return added.isEmpty ? self : BodyCapture(limit: limit, secrets: secrets + added, keep: keep)
    }

    /// Masks, cuts and hands over one call's bodies. `response` is nil when no answer came.
    func keep(requestID: String, timestampMicros: Int64, request: [UInt8], response: [UInt8]?, reassembled: [String: Any]?,
              responseCut cutBefore: Bool) {
        let (requestText, requestCut) = Self.masked(request, secrets: secrets, limit: limit)
        var responseText = "", responseCut = false
        if let reassembled, let data = try? JSONSerialization.data(withJSONObject: reassembled, options: [.sortedKeys, .withoutEscapingSlashes]) {
            (responseText, responseCut) = Self.masked(Array(data), secrets: secrets, limit: limit)
        } else if let response {
            (responseText, responseCut) = Self.masked(response, secrets: secrets, limit: limit)
        }
        responseCut = responseCut || cutBefore
        keep(CapturedBodies(requestID: requestID, timestampMicros: timestampMicros, request: requestText, requestTruncated: requestCut,
                            response: responseText, responseTruncated: responseCut, responseReassembled: reassembled != nil))
    }

    /// The largest body parsed as JSON: a 10 MiB prompt is not turned into an object graph to
    /// keep 64 KiB of it.
    static func parseBound(limit: Int) -> Int { max(4 * limit, 1 << 20) }

    /// What `masked` reads of `body`: all of it, or, past `parseBound`, a prefix of twice the
    /// limit (masking may lengthen or shorten it), which is then masked as text.
    static func parsedInput(_ body: [UInt8], limit: Int) -> (input: ArraySlice<UInt8>, cut: Bool) {
        guard body.count > parseBound(limit: limit) else { return (body[...], false) }
        return (utf8Prefix(body, maxBytes: 2 * limit), true)
    }

    /// A body as stored: JSON with credential-named fields masked (also inside strings that hold
    /// JSON, and anything shaped like a key inside its strings), else text with the same fields
    /// and keys masked; then cut to `limit` bytes.
    static func masked(_ body: [UInt8], secrets: [String], limit: Int) -> (text: String, truncated: Bool) {
        let (input, cutBefore) = parsedInput(body, limit: limit)
        var text: String
        if !cutBefore, let object = JSONDecoderBridge.object(input), object is [String: Any] || object is [Any],
           let data = try? JSONSerialization.data(withJSONObject: Redactor.redactJSON(object, insideStrings: true),
                                                  options: [.sortedKeys, .withoutEscapingSlashes]) {
            text = String(decoding: data, as: UTF8.self)
        } else {
            // Not JSON (or not JSON Foundation reads): named fields are still found in the text.
            text = Redactor.redactJSONText(String(decoding: input, as: UTF8.self))
        }
        text = Redactor.maskSecrets(secrets, in: text)
        guard text.utf8.count > limit else { return (text, cutBefore) }
        return (String(decoding: utf8Prefix(Array(text.utf8), maxBytes: limit), as: UTF8.self), true)
    }

    /// The longest prefix of `bytes` within `maxBytes` that does not split a UTF-8 sequence.
    static func utf8Prefix(_ bytes: [UInt8], maxBytes: Int) -> ArraySlice<UInt8> {
        guard bytes.count > maxBytes else { return bytes[...] }
        var start = maxBytes
        // Back to the first byte of the sequence the cut falls in (continuation bytes are 10xxxxxx).
        while start > 0, bytes[start] & 0xC0 == 0x80 { start -= 1 }
        return bytes[..<start]
    }
}
