import Foundation
import GatehouseCore

/// Whether a call's bodies are kept (`gateway.capture_bodies`, a key's `capture_bodies`, the
/// call's `Gatehouse-Capture` header, most specific first) and what is kept of them.
struct BodyCapture: Sendable {
    /// The most of each body kept, after masking.
    let limit: Int
    /// Provider keys, masked wherever a body echoes them.
    let secrets: [String]
    let keep: @Sendable (CapturedBodies) -> Void

    struct InvalidHeader: Error {
        var message = "Gatehouse-Capture must be true or false"
    }

    /// The call's choice, else its key's, else the global setting.
    static func enabled(header: String?, key: VirtualKey?, global: Bool) throws(InvalidHeader) -> Bool {
        if let header {
            switch header.trimmingCharacters(in: .whitespaces).lowercased() {
            case "true", "1", "yes", "on": return true
            case "false", "0", "no", "off": return false
            default: throw InvalidHeader()
            }
        }
        return key?.captureBodies ?? global
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

    /// A body as stored: JSON with credential-named fields masked (and anything shaped like a
    /// key inside its strings), else text with keys masked; then cut to `limit` bytes.
    static func masked(_ body: [UInt8], secrets: [String], limit: Int) -> (text: String, truncated: Bool) {
        var text: String
        if let object = JSONDecoderBridge.object(body), object is [String: Any] || object is [Any],
           let data = try? JSONSerialization.data(withJSONObject: Redactor.redactJSON(object), options: [.sortedKeys, .withoutEscapingSlashes]) {
            text = String(decoding: data, as: UTF8.self)
        } else {
            text = Redactor.scrubText(Redactor.maskURLCredentials(String(decoding: body, as: UTF8.self)))
        }
        for secret in secrets where text.contains(secret) {
            text = text.replacingOccurrences(of: secret, with: Redactor.mask)
        }
        guard text.utf8.count > limit else { return (text, false) }
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
