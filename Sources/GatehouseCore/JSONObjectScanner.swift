/// Finds the byte ranges of a JSON object's top-level members without building the object,
/// so the gateway can read `model` and `stream` from a large request and splice small edits
/// into it while every other byte reaches upstream exactly as the client sent it, and log
/// ingest can keep a line's attributes as the raw bytes they came in.
///
/// It checks the whole document's structure (strings, escapes, nesting, separators) and
/// rejects what is not JSON, with the byte offset of the problem.
public struct JSONObjectScanner {
    public struct SyntaxError: Error, Equatable, CustomStringConvertible {
        public var offset: Int
        public var expected: String
        public var description: String { "invalid JSON at byte \(offset): expected \(expected)" }
    }

    /// A top-level member: the range of its raw value, and the decoded key.
    public struct Member: Equatable {
        public var key: String
        public var valueRange: Range<Int>
        /// The key's raw token, quotes included.
        public var keyRange: Range<Int> = 0..<0
    }

    /// Nesting deeper than this is refused: the scanner must not recurse without bound.
    public static let maxDepth = 512

    private let bytes: [UInt8]
    private var i = 0

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The members of the top-level object, in document order (duplicates kept).
    public static func members(of bytes: [UInt8]) throws -> [Member] {
        var scanner = JSONObjectScanner(bytes)
        return try scanner.scanDocument()
    }

    /// The byte ranges of a top-level array's elements, in order.
    public static func elements(ofArray bytes: [UInt8]) throws -> [Range<Int>] {
        var scanner = JSONObjectScanner(bytes)
        return try scanner.scanArray()
    }

    private mutating func scanArray() throws -> [Range<Int>] {
        skipSpace()
        guard peek == UInt8(ascii: "[") else { throw SyntaxError(offset: i, expected: "a JSON array") }
        i += 1
        var elements: [Range<Int>] = []
        skipSpace()
        if peek == UInt8(ascii: "]") {
            i += 1
        } else {
            while true {
                skipSpace()
                let start = i
                try skipValue(depth: 1)
                elements.append(start..<i)
                skipSpace()
                if peek == UInt8(ascii: ",") { i += 1; continue }
                if peek == UInt8(ascii: "]") { i += 1; break }
                throw SyntaxError(offset: i, expected: "',' or ']'")
            }
        }
        skipSpace()
        guard i == bytes.count else { throw SyntaxError(offset: i, expected: "end of input") }
        return elements
    }

    private mutating func scanDocument() throws -> [Member] {
        skipSpace()
        guard peek == UInt8(ascii: "{") else { throw SyntaxError(offset: i, expected: "a JSON object") }
        i += 1
        var members: [Member] = []
        skipSpace()
        if peek == UInt8(ascii: "}") {
            i += 1
        } else {
            while true {
                skipSpace()
                guard peek == UInt8(ascii: "\"") else { throw SyntaxError(offset: i, expected: "a string key") }
                let keyStart = i
                try skipString()
                let keyEnd = i
                let key = Self.decodeString(bytes[keyStart..<i]) ?? ""
                skipSpace()
                guard peek == UInt8(ascii: ":") else { throw SyntaxError(offset: i, expected: "':'") }
                i += 1
                skipSpace()
                let valueStart = i
                try skipValue(depth: 1)
                members.append(Member(key: key, valueRange: valueStart..<i, keyRange: keyStart..<keyEnd))
                skipSpace()
                if peek == UInt8(ascii: ",") { i += 1; continue }
                if peek == UInt8(ascii: "}") { i += 1; break }
                throw SyntaxError(offset: i, expected: "',' or '}'")
            }
        }
        skipSpace()
        guard i == bytes.count else { throw SyntaxError(offset: i, expected: "end of input") }
        return members
    }

    private var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

    private mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    private mutating func skipValue(depth: Int) throws {
        guard depth <= Self.maxDepth else { throw SyntaxError(offset: i, expected: "nesting of at most \(Self.maxDepth) levels") }
        guard let c = peek else { throw SyntaxError(offset: i, expected: "a value") }
        switch c {
        case UInt8(ascii: "\""): try skipString()
        case UInt8(ascii: "{"): try skipContainer(close: UInt8(ascii: "}"), keyed: true, depth: depth)
        case UInt8(ascii: "["): try skipContainer(close: UInt8(ascii: "]"), keyed: false, depth: depth)
        case UInt8(ascii: "t"): try skipLiteral("true")
        case UInt8(ascii: "f"): try skipLiteral("false")
        case UInt8(ascii: "n"): try skipLiteral("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try skipNumber()
        default: throw SyntaxError(offset: i, expected: "a value")
        }
    }

    private mutating func skipContainer(close: UInt8, keyed: Bool, depth: Int) throws {
        i += 1
        skipSpace()
        if peek == close { i += 1; return }
        while true {
            skipSpace()
            if keyed {
                guard peek == UInt8(ascii: "\"") else { throw SyntaxError(offset: i, expected: "a string key") }
                try skipString()
                skipSpace()
                guard peek == UInt8(ascii: ":") else { throw SyntaxError(offset: i, expected: "':'") }
                i += 1
                skipSpace()
            }
            try skipValue(depth: depth + 1)
            skipSpace()
            if peek == UInt8(ascii: ",") { i += 1; continue }
            if peek == close { i += 1; return }
            throw SyntaxError(offset: i, expected: keyed ? "',' or '}'" : "',' or ']'")
        }
    }

    private mutating func skipString() throws {
        i += 1
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\"") { i += 1; return }
            if c == UInt8(ascii: "\\") {
                guard i + 1 < bytes.count else { break }
                let e = bytes[i + 1]
                if e == UInt8(ascii: "u") {
                    guard i + 5 < bytes.count, bytes[(i + 2)...(i + 5)].allSatisfy(Self.isHex) else {
                        throw SyntaxError(offset: i, expected: "four hex digits after \\u")
                    }
                    i += 6
                    continue
                }
                guard "\"\\/bfnrt".utf8.contains(e) else { throw SyntaxError(offset: i, expected: "a valid escape") }
                i += 2
                continue
            }
            if c < 0x20 { throw SyntaxError(offset: i, expected: "no control characters inside a string") }
            i += 1
        }
        throw SyntaxError(offset: i, expected: "the end of a string")
    }

    private static func isHex(_ b: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(b)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(b)
    }

    private mutating func skipLiteral(_ word: String) throws {
        let w = Array(word.utf8)
        guard i + w.count <= bytes.count, Array(bytes[i..<(i + w.count)]) == w else { throw SyntaxError(offset: i, expected: word) }
        i += w.count
    }

    private mutating func skipNumber() throws {
        let start = i
        if peek == UInt8(ascii: "-") { i += 1 }
        let integerStart = i
        var digits = 0
        while let c = peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) { i += 1; digits += 1 }
        guard digits > 0 else { throw SyntaxError(offset: start, expected: "a number") }
        // JSON has no leading zeros (`03`); the scanned bytes are stored as JSON text as they are.
        guard digits == 1 || bytes[integerStart] != UInt8(ascii: "0") else {
            throw SyntaxError(offset: integerStart, expected: "a number without a leading zero")
        }
        if peek == UInt8(ascii: ".") {
            i += 1
            var fraction = 0
            while let c = peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) { i += 1; fraction += 1 }
            guard fraction > 0 else { throw SyntaxError(offset: i, expected: "digits after '.'") }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            i += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
            var exponent = 0
            while let c = peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) { i += 1; exponent += 1 }
            guard exponent > 0 else { throw SyntaxError(offset: i, expected: "exponent digits") }
        }
    }

    /// Decodes a raw JSON string token (with quotes) into a Swift string.
    public static func decodeString(_ raw: ArraySlice<UInt8>) -> String? {
        guard raw.count >= 2 else { return nil }
        let inner = raw.dropFirst().dropLast()
        if !inner.contains(UInt8(ascii: "\\")) { return String(decoding: inner, as: UTF8.self) }
        // Rare path: let Foundation handle escapes and surrogate pairs.
        return (try? JSONDecoderBridge.decodeString(Array(raw)))
    }
}
