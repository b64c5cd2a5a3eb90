import Foundation
import Crypto
/// Lowercase hexadecimal: the one encoder for digests, ids and trace ids (`String(format:)` per
/// byte costs microseconds per call, and each hand-rolled copy padded differently).
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    /// Two digits per byte, in order.
    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(Swift.max(64, bytes.underestimatedCount * 2))
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `value` in at least `minimumDigits` digits (zeros in front), more when it needs them.
    public static func encode(_ value: UInt64, minimumDigits: Int) -> String {
        var out: [UInt8] = []
        var rest = value
        repeat {
            out.append(digits[Int(rest & 0x0f)])
            rest >>= 4
        } while rest > 0
        while out.count < minimumDigits { out.append(UInt8(ascii: "0")) }
        return String(decoding: out.reversed(), as: UTF8.self)
    }

    /// The SHA-256 of `text`'s UTF-8 in hex, first `bytes` bytes of it (all 32 by default).
    public static func sha256(_ text: String, bytes: Int = 32) -> String {
        encode(SHA256.hash(data: Data(text.utf8)).prefix(bytes))
    }
}
