/// One segment of a URL path (an id in `/requests/{id}`), written and read back the same way
/// by the console's pages and the CLI's links to them.
public enum PathSegment {
    /// `text` with every byte but RFC 3986's unreserved ASCII (`A-Z a-z 0-9 - . _ ~`)
    /// percent-encoded as UTF-8: an id holding `/`, `?`, `#`, `%`, a space or non-ASCII stays one
    /// segment and reads back as itself.
    public static func encode(_ text: some StringProtocol) -> String {
        // A whole segment `.` or `..` is a dot-segment that a browser resolves away.
        if text == "." || text == ".." { return String(repeating: "%2E", count: text.count) }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if isUnreserved(byte) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A segment as the router hands it over (still percent-encoded), decoded; a segment that is
    /// not valid percent-encoded UTF-8, or holds a control character, is returned as it came, so
    /// a lookup simply finds nothing.
    public static func decode(_ raw: some StringProtocol) -> String {
        let utf8 = Array(raw.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count)
        var i = 0
        while i < utf8.count {
            if utf8[i] == UInt8(ascii: "%") {
                guard i + 2 < utf8.count, let high = hexValue(utf8[i + 1]), let low = hexValue(utf8[i + 2]) else { return String(raw) }
                out.append(high << 4 | low)
                i += 3
            } else {
                out.append(utf8[i])
                i += 1
            }
        }
        // A control byte is no id (and PostgreSQL refuses NUL in text): left encoded, it finds nothing.
        guard !out.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { return String(raw) }
        return String(validating: out, as: UTF8.self) ?? String(raw)
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"): true
        default: false
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
