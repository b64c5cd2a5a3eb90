import Foundation

/// An amount of US dollars as an integer number of micro-dollars (1e-6 USD).
///
/// Money is never a floating-point sum: costs are computed in pico-dollars per token and
/// rounded once per call, so totals over millions of calls stay exact.
public struct MicroDollars: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var value: Int64

    public init(_ value: Int64) { self.value = value }

    public static let zero = MicroDollars(0)

    /// Sums saturate at about $9.2 trillion instead of trapping: amounts can come from outside
    /// (a provider's usage times a price).
    public static func + (lhs: Self, rhs: Self) -> Self { MicroDollars(lhs.value.addingSaturated(rhs.value)) }
    public static func += (lhs: inout Self, rhs: Self) { lhs = lhs + rhs }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }

    public init(from decoder: any Decoder) throws {
        value = try decoder.singleValueContainer().decode(Int64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }

    /// Dollars as a decimal string with six places, e.g. `"0.001250"`; exact, no rounding.
    public var dollarString: String {
        let negative = value < 0
        let magnitude = value.magnitude
        let whole = magnitude / 1_000_000
        let fraction = String(magnitude % 1_000_000)
        let padded = String(repeating: "0", count: 6 - fraction.count) + fraction
        return (negative ? "-" : "") + "\(whole).\(padded)"
    }

    /// Dollars for display: a Double is fine for showing, never for summing.
    public var dollars: Double { Double(value) / 1_000_000 }

    public var description: String { "$" + dollarString }
}

/// A price per token in pico-dollars (1e-12 USD). A list price of "$2.50 per 1M tokens" is
/// 2,500,000 pico-dollars per token; six decimal places of a per-million price stay exact.
public struct PicoDollarsPerToken: Hashable, Sendable, Codable {
    public var value: Int64

    public init(_ value: Int64) { self.value = value }

    /// Parses a decimal string in dollars per million tokens ("2.50", "0.075", "15").
    public init?(perMillionTokens text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let parts = trimmed.split(separator: ".", omittingEmptySubsequences: false)
        func isDigits(_ s: Substring) -> Bool { s.unicodeScalars.allSatisfy { $0.isASCII && ("0"..."9").contains($0) } }
        // Plain digits only: no sign, exponent or spaces inside (Int64 would take "+5" and "-5").
        guard !trimmed.isEmpty, parts.count <= 2, isDigits(parts[0]),
              let whole = Int64(parts[0].isEmpty ? "0" : String(parts[0])) else { return nil }
        var fraction: Int64 = 0
        if parts.count == 2 {
            let digits = parts[1]
            guard !digits.isEmpty, digits.count <= 6, isDigits(digits), let f = Int64(digits) else { return nil }
            fraction = f
            for _ in digits.count..<6 { fraction *= 10 }
        }
        // $/1M tokens equals µ$/token; ×1e6 gives p$/token.
        let (scaled, overflow) = whole.multipliedReportingOverflow(by: 1_000_000)
        let (sum, sumOverflow) = scaled.addingReportingOverflow(fraction)
        guard !overflow, !sumOverflow else { return nil }
        value = sum
    }
}

extension MicroDollars {
    /// Parses a dollar amount with up to six decimals ("25", "0.50", "1000.000001").
    public init?(dollars text: String) {
        // Dollars with six decimals and dollars-per-million with six decimals scale alike.
        guard let parsed = PicoDollarsPerToken(perMillionTokens: text) else { return nil }
        self.init(parsed.value)
    }
}
