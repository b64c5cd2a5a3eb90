import Foundation
import Testing
@testable import GatehouseCore

@Suite struct Base64URLTests {
    /// Foundation's base64 with the URL-safe letters and no padding: what every copy wrote before.
    static func reference(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    @Test func knownValues() {
        #expect(Base64URL.encode([UInt8]()) == "")
        #expect(Base64URL.encode(Array("f".utf8)) == "Zg")
        #expect(Base64URL.encode(Array("fo".utf8)) == "Zm8")
        #expect(Base64URL.encode(Array("foo".utf8)) == "Zm9v")
        #expect(Base64URL.encode([0xFB, 0xFF, 0xBF]) == "-_-_")
        #expect(Base64URL.decode("-_-_") == [0xFB, 0xFF, 0xBF])
        #expect(Base64URL.decode("Zm8") == Array("fo".utf8))
        #expect(Base64URL.decode("") == [])
        #expect(Base64URL.encode(Data("1796000000000000:req_1".utf8)) == Self.reference(Array("1796000000000000:req_1".utf8)))
    }

    /// Round trip, and the same text as Foundation's encoder, for random lengths and bytes.
    @Test func roundTripsAndMatchesFoundation() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0...70, using: &rng)).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
            let text = Base64URL.encode(bytes)
            #expect(text == Self.reference(bytes))
            #expect(Base64URL.decode(text) == bytes)
            #expect(Base64URL.decode(text[...]) == bytes, "a Substring decodes too")
        }
    }

    @Test func hostileInputIsRejected() {
        for garbage in ["Z", "Zm9vY", "Zm9=", "Zm9v====", "Zm+v", "Zm/v", "Zm 9v", "Zm\n9v", "Zm9v\0", "Zh", "Zm9", "é", "Zm9v%3D",
                        "\u{FF}\u{FE}", String(repeating: "A", count: 4001)] {
            #expect(Base64URL.decode(garbage) == nil, "\(garbage.debugDescription)")
        }
    }

    /// Whatever the text, decoding never traps, and anything it accepts is the one spelling of its bytes.
    @Test func anyTextDecodesToNilOrItsCanonicalBytes() {
        var rng = SystemRandomNumberGenerator()
        let pool = Array("ABCxyz019-_+/=%. \t\né€\u{0}")
        for _ in 0..<5000 {
            let text = String((0..<Int.random(in: 0...24, using: &rng)).map { _ in pool.randomElement(using: &rng)! })
            if let bytes = Base64URL.decode(text) { #expect(Base64URL.encode(bytes) == text, "\(text.debugDescription)") }
        }
    }
}

@Suite struct PathSegmentTests {
    @Test func keepsOnlyUnreservedASCII() {
        #expect(PathSegment.encode("req_0123-abc.~Z") == "req_0123-abc.~Z")
        #expect(PathSegment.encode("a/b?c#d%e f") == "a%2Fb%3Fc%23d%25e%20f")
        #expect(PathSegment.encode("café") == "caf%C3%A9", "non-ASCII letters are encoded too")
        #expect(PathSegment.encode("+&=;:@!$'()*,") == "%2B%26%3D%3B%3A%40%21%24%27%28%29%2A%2C")
        #expect(PathSegment.encode("") == "")
    }

    @Test func decodesWhatItEncodes() {
        var rng = SystemRandomNumberGenerator()
        let pool = Array("az09-._~/?#% +é€😀")
        for _ in 0..<2000 {
            let text = String((0..<Int.random(in: 0...20, using: &rng)).map { _ in pool.randomElement(using: &rng)! })
            let segment = PathSegment.encode(text)
            #expect(!segment.contains("/") && !segment.contains("?") && !segment.contains("#"))
            #expect(PathSegment.decode(segment) == text)
        }
        #expect(PathSegment.decode("a+b") == "a+b", "a plus is a plus in a path")
        for broken in ["%", "%2", "%zz", "a%C3", "%FF"] { #expect(PathSegment.decode(broken) == broken, "\(broken)") }
    }

    /// A NUL or other control byte is no id (PostgreSQL refuses NUL in text: a 503 instead of a
    /// 404), so it stays encoded and the lookup finds nothing.
    @Test func controlBytesAreNotDecoded() {
        for raw in ["a%00", "%00", "a%0Ab", "a%0D%0A", "%7F", "%1B[31m"] { #expect(PathSegment.decode(raw) == raw, "\(raw)") }
    }

    /// `.` and `..` as a whole segment are dot-segments a browser resolves away: encoded.
    @Test func dotSegmentsStayIds() {
        #expect(PathSegment.encode(".") == "%2E" && PathSegment.encode("..") == "%2E%2E")
        #expect(PathSegment.decode(PathSegment.encode("..")) == ".." && PathSegment.encode("a..b") == "a..b")
    }
}
