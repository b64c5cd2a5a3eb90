import Foundation

/// Masks credential-named values in text that should be JSON but cannot be parsed: a body cut
/// before parsing because it is huge, cut at a size limit, or holding escapes Foundation refuses.
/// It finds what `Redactor.redactJSON` finds, without building objects: `"name": value` where the
/// (decoded) name is a secret key, whatever the value's shape; `[name, value]` pairs; and the
/// same inside strings that hold JSON (tool-call arguments), a few levels deep. Linear in the
/// text at each level; never traps on any bytes.
struct JSONTextMasker {
    /// How deep strings holding JSON inside strings holding JSON are looked into.
    static let maxDepth = 8

    private let bytes: [UInt8]
    private let depth: Int
    private var out: [UInt8] = []

    private static let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
    private static let masked = Array("\"\(Redactor.mask)\"".utf8)

    init(_ bytes: [UInt8], depth: Int = 0) {
        self.bytes = bytes
        self.depth = depth
    }

    static func mask(_ text: String) -> String {
        var masker = JSONTextMasker(Array(text.utf8))
        return String(decoding: masker.run(), as: UTF8.self)
    }

    mutating func run() -> [UInt8] {
        out.reserveCapacity(bytes.count)
        var i = 0
        // The last byte outside strings that was not blank: `[` before a string starts a pair.
        var last: UInt8 = 0
        while i < bytes.count {
            guard bytes[i] == Self.quote else {
                out.append(bytes[i])
                if !Self.isBlank(bytes[i]) { last = bytes[i] }
                i += 1
                continue
            }
            let end = stringEnd(i)
            let after = skipBlanks(end)
            let next: UInt8? = after < bytes.count ? bytes[after] : nil
            let isName = next == UInt8(ascii: ":")
            let isPairName = last == UInt8(ascii: "[") && next == UInt8(ascii: ",")
            if (isName || isPairName), Redactor.isSecretKey(decoded(i, end)) {
                // The name, its `:` or `,`, the blanks, then the value masked whole.
                let valueStart = skipBlanks(after + 1)
                out += bytes[i..<valueStart]
                out += Self.masked
                i = valueEnd(valueStart)
                last = Self.quote
                continue
            }
            if isName { out += bytes[i..<end] } else { out += maskedStringValue(i, end) }
            i = end
            last = Self.quote
        }
        return out
    }

    private static func isBlank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

    private func skipBlanks(_ from: Int) -> Int {
        var j = from
        while j < bytes.count, Self.isBlank(bytes[j]) { j += 1 }
        return j
    }

    /// The index after the closing quote of the string opening at `start` (the end of the text
    /// when it is cut inside the string).
    private func stringEnd(_ start: Int) -> Int {
        var j = start + 1
        while j < bytes.count {
            if bytes[j] == Self.backslash { j += 2; continue }
            if bytes[j] == Self.quote { return j + 1 }
            j += 1
        }
        return bytes.count
    }

    /// The end of the value starting at `start`: a string, a balanced object or array (strings
    /// inside it skipped), else a bare token up to `,`, `}`, `]` or a line end.
    private func valueEnd(_ start: Int) -> Int {
        guard start < bytes.count else { return bytes.count }
        switch bytes[start] {
        case Self.quote:
            return stringEnd(start)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var level = 0, j = start
            while j < bytes.count {
                switch bytes[j] {
                case Self.quote:
                    j = stringEnd(j)
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    level += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    level -= 1
                    if level == 0 { return j + 1 }
                default:
                    break
                }
                j += 1
            }
            return bytes.count
        default:
            var j = start
            while j < bytes.count, ![UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x0A].contains(bytes[j]) { j += 1 }
            return j
        }
    }

    /// The string between `start` and `end` unescaped (`pass\u0077ord` is `password`); a string
    /// cut before its closing quote is read as if it had one.
    private func decoded(_ start: Int, _ end: Int) -> String {
        var token = Array(bytes[start..<end])
        let closed = token.count >= 2 && token.last == Self.quote && (token.count < 3 || token[token.count - 2] != Self.backslash)
        if !closed { token.append(Self.quote) }
        if let text = JSONDecoderBridge.object(token) as? String { return text }
        return String(decoding: bytes[min(start + 1, end)..<end], as: UTF8.self)
    }

    /// A string value as it is, or, when it holds JSON, with that JSON masked the same way.
    private func maskedStringValue(_ start: Int, _ end: Int) -> [UInt8] {
        let original = Array(bytes[start..<end])
        guard depth < Self.maxDepth else { return original }
        let text = decoded(start, end)
        guard let opening = text.utf8.first(where: { !Self.isBlank($0) }), opening == UInt8(ascii: "{") || opening == UInt8(ascii: "[") else {
            return original
        }
        var inner = JSONTextMasker(Array(text.utf8), depth: depth + 1)
        let masked = inner.run()
        guard masked != Array(text.utf8),
              let literal = try? JSONSerialization.data(withJSONObject: String(decoding: masked, as: UTF8.self),
                                                        options: [.fragmentsAllowed, .withoutEscapingSlashes]) else { return original }
        return Array(literal)
    }
}
