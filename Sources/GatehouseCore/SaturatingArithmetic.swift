import Foundation

// Arithmetic for numbers that come from outside: request bodies, headers, the upstream's usage,
// configuration. Swift traps on integer overflow and on converting an out-of-range Double, and
// a trap takes the whole server down, so such numbers are combined with these operations, which
// stop at the type's bounds instead.

extension FixedWidthInteger {
    /// `self + other`, stopping at `.max` / `.min` instead of trapping.
    @inlinable public func addingSaturated(_ other: Self) -> Self {
        let (result, overflow) = addingReportingOverflow(other)
        guard overflow else { return result }
        return other > 0 ? .max : .min
    }

    /// `self - other`, stopping at `.max` / `.min` instead of trapping.
    @inlinable public func subtractingSaturated(_ other: Self) -> Self {
        let (result, overflow) = subtractingReportingOverflow(other)
        guard overflow else { return result }
        return other > 0 ? .min : .max
    }

    /// `self * other`, stopping at `.max` / `.min` instead of trapping.
    @inlinable public func multipliedSaturated(by other: Self) -> Self {
        let (result, overflow) = multipliedReportingOverflow(by: other)
        guard overflow else { return result }
        return (self < 0) != (other < 0) ? .min : .max
    }

    /// `self` limited to `range`.
    @inlinable public func clamped(to range: ClosedRange<Self>) -> Self {
        Swift.min(Swift.max(self, range.lowerBound), range.upperBound)
    }

    /// A Double converted without trapping: truncated toward zero, limited to the type's range;
    /// NaN is 0.
    @inlinable public init(saturating value: Double) {
        if value.isNaN {
            self = 0
        } else if value >= Double(Self.max) {
            // Double(Int64.max) rounds up to 2^63, which does not fit: anything at or above it is max.
            self = .max
        } else if value <= Double(Self.min) {
            self = .min
        } else {
            self = Self(value)
        }
    }

    /// A JSON number (as `JSONSerialization` returns it: an `NSNumber`, possibly holding a
    /// Double, a Decimal or an unsigned value beyond `Int64`) converted without trapping and
    /// limited to `range`; nil when `value` is not a number.
    public init?(jsonNumber value: Any?, in range: ClosedRange<Self>) {
        guard let number = value as? NSNumber else { return nil }
        // NSNumber's own `intValue` on a Double or Decimal out of range is not defined: go through
        // a Double for the range check, and through the exact integer only when it fits.
        let double = number.doubleValue
        if double.isNaN { return nil }
        if double <= Double(range.lowerBound) {
            self = range.lowerBound
        } else if double >= Double(range.upperBound) {
            self = range.upperBound
        } else if double.rounded(.towardZero) == double, let exact = Self(exactly: number.int64Value) {
            // Integers keep every digit (a Double has only 53 bits).
            self = exact.clamped(to: range)
        } else {
            self = Self(saturating: double).clamped(to: range)
        }
    }
}
