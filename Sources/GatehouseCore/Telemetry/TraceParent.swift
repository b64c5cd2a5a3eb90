/// A W3C Trace Context `traceparent` header (https://www.w3.org/TR/trace-context/#traceparent-header):
/// `00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>`. Read to continue a caller's
/// trace; written on the calls Gatehouse makes so the next hop continues ours.
public struct TraceParent: Sendable, Equatable {
    /// 32 lowercase hex digits, not all zero.
    public var traceID: String
    /// The span the next hop runs inside: 16 lowercase hex digits, not all zero.
    public var spanID: String
    /// Bit 0 is `sampled`; the other bits are passed on as they came.
    public var flags: UInt8

    public init(traceID: String, spanID: String, flags: UInt8 = 1) {
        self.traceID = traceID
        self.spanID = spanID
        self.flags = flags
    }

    /// The header's value, or nil when it is not one a tracer may continue (then a new trace starts).
    /// Version `00` is exactly 55 characters; a later version may append fields after a `-`,
    /// which are ignored; `ff` is invalid.
    public init?(header: String) {
        let bytes = Array(header.utf8.drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x09 }.reversed())
        guard bytes.count >= 55, bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-") else { return nil }
        let version = bytes[0..<2], trace = bytes[3..<35], span = bytes[36..<52], flags = bytes[53..<55]
        guard Self.isLowerHex(version), !version.elementsEqual("ff".utf8) else { return nil }
        if version.elementsEqual("00".utf8) {
            guard bytes.count == 55 else { return nil }
        } else if bytes.count > 55 {
            guard bytes[55] == UInt8(ascii: "-") else { return nil }
        }
        guard Self.isLowerHex(trace), Self.isLowerHex(span), Self.isLowerHex(flags),
              trace.contains(where: { $0 != UInt8(ascii: "0") }), span.contains(where: { $0 != UInt8(ascii: "0") }) else { return nil }
        self.traceID = String(decoding: trace, as: UTF8.self)
        self.spanID = String(decoding: span, as: UTF8.self)
        // Only the flags version 00 defines (sampled, random): a header we write again as version
        // 00 must have the others zero.
        self.flags = (UInt8(String(decoding: flags, as: UTF8.self), radix: 16) ?? 0) & 0x03
    }

    /// The header value to send: always version `00`.
    public var header: String {
        "00-\(traceID)-\(spanID)-\(Hex.encode(UInt64(flags), minimumDigits: 2))"
    }

    public var sampled: Bool { flags & 1 == 1 }

    /// A new random span id (16 hex digits, never all zero).
    public static func newSpanID() -> String {
        var generator = SystemRandomNumberGenerator()
        var value: UInt64 = 0
        while value == 0 { value = generator.next() }
        return Hex.encode(value, minimumDigits: 16)
    }

    /// A new random trace id (32 hex digits).
    public static func newTraceID() -> String { CorrelationID.generate() }

    /// `count` lowercase hex digits, not all zero: the shape of a trace id (32) or span id (16).
    public static func isID(_ text: String, digits count: Int) -> Bool {
        let utf8 = text.utf8
        return utf8.count == count && isLowerHex(utf8) && utf8.contains { $0 != UInt8(ascii: "0") }
    }

    private static func isLowerHex<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        bytes.allSatisfy { ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f")) }
    }
}
