import Foundation

/// Time arguments as people write them in API calls, on the command line and in log lines, and
/// timestamps as Gatehouse writes them. One reader and one writer of each: RFC 3339 is read and
/// written here by hand (no formatter per call: a log line, or an API answer of 1,000 rows,
/// reads or writes one per row), on the proleptic Gregorian calendar, so every timestamp
/// written reads back as the same instant.
public enum TimeExpressions {
    /// Now, in microseconds since 1970: the unit of every stored timestamp.
    public static func nowMicros() -> Int64 { Int64(saturating: Date().timeIntervalSince1970 * 1_000_000) }

    /// A measured duration in whole microseconds (saturating, for durations of 292,000 years).
    public static func micros(_ d: Duration) -> Int64 {
        d.components.seconds.multipliedSaturated(by: 1_000_000).addingSaturated(d.components.attoseconds / 1_000_000_000_000)
    }

    /// A duration in whole nanoseconds (saturating past 292 years).
    public static func nanos(_ d: Duration) -> Int64 {
        d.components.seconds.multipliedSaturated(by: 1_000_000_000).addingSaturated(d.components.attoseconds / 1_000_000_000)
    }

    // MARK: Durations

    /// The units a duration may be written in.
    public enum DurationUnit: Sendable, CaseIterable {
        case nanoseconds, microseconds, milliseconds, seconds, minutes, hours, days, weeks

        var nanosecondsEach: Int64 {
            switch self {
            case .nanoseconds: 1
            case .microseconds: 1_000
            case .milliseconds: 1_000_000
            case .seconds: 1_000_000_000
            case .minutes: 60_000_000_000
            case .hours: 3_600_000_000_000
            case .days: 86_400_000_000_000
            case .weeks: 604_800_000_000_000
            }
        }
    }

    /// Every suffix, a longer one before any suffix it ends with (`ms` before `s`).
    private static let unitSuffixes: [(suffix: String, unit: DurationUnit)] = [
        ("ms", .milliseconds), ("us", .microseconds), ("µs", .microseconds), ("ns", .nanoseconds),
        ("s", .seconds), ("m", .minutes), ("h", .hours), ("d", .days), ("w", .weeks),
    ]

    /// `30s`, `5m`, `1h`, `7d`, `2w`, `100ms`, `800us` (or `µs`), `1500ns`, also with a decimal
    /// number (`1.5h`, `237.42ms`), as whole microseconds (rounded). Nil when not a duration,
    /// negative, or too long to count in microseconds.
    public static func durationMicros(_ text: String) -> Int64? { durationMicros(text, unitless: nil) }

    /// The one duration reader. A number without a unit counts in `unitless` (nil: it is not a
    /// duration).
    public static func durationMicros(_ text: String, unitless: DurationUnit?) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        for (suffix, unit) in unitSuffixes where t.hasSuffix(suffix) {
            return micros(number: t.dropLast(suffix.count).trimmingCharacters(in: .whitespaces), unit: unit)
        }
        guard let unitless else { return nil }
        return micros(number: t, unit: unitless)
    }

    /// `number` (a decimal, possibly with a fraction or exponent; never negative) of `unit` in
    /// microseconds. Whole numbers are counted exactly; others through a Double, rounded.
    private static func micros(number: some StringProtocol, unit: DurationUnit) -> Int64? {
        var text = Substring(number)
        if text.first == "+" { text = text.dropFirst() }
        guard isDecimalNumber(text.utf8) else { return nil }
        if text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            guard let whole = Int64(text) else { return nil }
            if unit == .nanoseconds { return whole / 1000 + (whole % 1000 >= 500 ? 1 : 0) }
            let (v, overflow) = whole.multipliedReportingOverflow(by: unit.nanosecondsEach / 1000)
            return overflow ? nil : v
        }
        guard let value = Double(text) else { return nil }
        let micros = value * Double(unit.nanosecondsEach) / 1000
        // 2^63 is the first Double past Int64.max.
        guard micros.isFinite, micros >= 0, micros < 0x1p63 else { return nil }
        return Int64(micros.rounded())
    }

    /// `12`, `1.5`, `.5`, `5.`, `1e3`, `2.5E-1`: digits with at most one point, at least one
    /// digit, and an optional exponent. (Not what `Double(_:)` takes besides: hex, `inf`, `nan`.)
    private static func isDecimalNumber(_ utf8: Substring.UTF8View) -> Bool {
        var digits = 0, points = 0
        var rest = utf8[...]
        while let c = rest.first {
            if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                digits += 1
            } else if c == UInt8(ascii: ".") {
                points += 1
            } else {
                break
            }
            rest = rest.dropFirst()
        }
        guard digits > 0, points <= 1 else { return false }
        guard let e = rest.first else { return true }
        guard e == UInt8(ascii: "e") || e == UInt8(ascii: "E") else { return false }
        rest = rest.dropFirst()
        if let sign = rest.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { rest = rest.dropFirst() }
        return !rest.isEmpty && rest.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    /// `1h`, `5m`, `1d` for a whole number of the largest fitting unit.
    public static func formatDuration(micros: Int64) -> String {
        for (suffix, scale) in [("d", Int64(86_400_000_000)), ("h", 3_600_000_000), ("m", 60_000_000), ("s", 1_000_000)] where micros % scale == 0 {
            return "\(micros / scale)\(suffix)"
        }
        return "\(micros / 1000)ms"
    }

    // MARK: UTC days

    /// A UTC day in microseconds (Unix time has no leap seconds). The one spelling of it for day
    /// arithmetic: `today`, day partitions, daily rollups, retention's whole days.
    public static let microsPerDay: Int64 = 86_400_000_000

    /// The UTC day holding `micros`, as days since 1970-01-01; an instant before 1970 belongs to
    /// the earlier day (division rounds down, not toward zero).
    public static func utcDay(micros: Int64) -> Int64 { floorDivide(micros, microsPerDay) }

    /// `micros` rounded down to a multiple of `step` (positive), also before 1970; saturating at
    /// Int64's low end. With `microsPerDay`: the UTC midnight starting the day of `micros`.
    public static func floorMicros(_ micros: Int64, toMultipleOf step: Int64) -> Int64 {
        micros.subtractingSaturated(floorModulo(micros, step))
    }

    // MARK: Instants

    /// A point in time: `now`, a relative `-24h` / `24h` (both mean 24 hours ago), an RFC 3339
    /// timestamp, a date `2026-11-22` (UTC midnight), `today` (UTC midnight), or Unix seconds.
    public static func instantMicros(_ text: String, now: Date = Date()) -> Int64? {
        // Only instants RFC 3339 can write (years 0 to 9999): callers subtract and add instants
        // and durations, and a value near Int64's ends would trap there.
        guard let micros = unboundedInstantMicros(text, now: now), (firstInstantMicros...lastInstantMicros).contains(micros) else { return nil }
        return micros
    }

    /// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z.
    public static let firstInstantMicros: Int64 = -62_167_219_200_000_000
    public static let lastInstantMicros: Int64 = 253_402_300_799_999_999

    private static func unboundedInstantMicros(_ text: String, now: Date) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces)
        let nowMicros = Int64(saturating: now.timeIntervalSince1970 * 1_000_000)
        if t == "now" { return nowMicros }
        if t == "today" { return floorMicros(nowMicros, toMultipleOf: microsPerDay) }
        if let d = durationMicros(t.hasPrefix("-") ? String(t.dropFirst()) : t) { return nowMicros.subtractingSaturated(d) }
        if let seconds = Int64(t), t.count >= 9 {
            let (v, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000)
            return overflow ? nil : v
        }
        if let micros = rfc3339Micros(t) { return micros }
        return dateMicros(t)
    }

    /// RFC 3339 as a `Date` (see `rfc3339Micros`; prefer that: a `Date` is a Double).
    public static func rfc3339(_ text: String) -> Date? {
        rfc3339Micros(text).map { Date(timeIntervalSince1970: Double($0) / 1_000_000) }
    }

    /// RFC 3339 (`2026-11-30T10:15:00.123456Z`, `…+02:00`) as microseconds since 1970. Also
    /// taken: `t` or a space for `T`, `z` for `Z`, offsets `+0200` and `+02`, any number of
    /// fraction digits (past the sixth they are cut off), a leap second `:60` (read as the next
    /// minute's first). Nil for anything else, an impossible date (`2026-02-29`) included.
    public static func rfc3339Micros(_ text: String) -> Int64? {
        var utf8 = text.utf8[...]
        guard let date = readDate(&utf8), utf8.first.map({ $0 == UInt8(ascii: "T") || $0 == UInt8(ascii: "t") || $0 == UInt8(ascii: " ") }) == true else {
            return nil
        }
        utf8 = utf8.dropFirst()
        guard let hour = readDigits(&utf8, 2), read(&utf8, ":"), let minute = readDigits(&utf8, 2), read(&utf8, ":"),
              let second = readDigits(&utf8, 2), hour < 24, minute < 60, second <= 60 else { return nil }
        var fraction: Int64 = 0
        if read(&utf8, ".") {
            var scale: Int64 = 100_000
            var digits = 0
            while let c = utf8.first, c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") {
                fraction += Int64(c - UInt8(ascii: "0")) * scale
                scale /= 10
                digits += 1
                utf8 = utf8.dropFirst()
            }
            guard digits > 0 else { return nil }
        }
        var offsetSeconds: Int64 = 0
        if read(&utf8, "Z") || read(&utf8, "z") {
        } else if let sign = utf8.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            utf8 = utf8.dropFirst()
            guard let offsetHours = readDigits(&utf8, 2), offsetHours < 24 else { return nil }
            var offsetMinutes: Int64 = 0
            if !utf8.isEmpty {
                _ = read(&utf8, ":")  // +02:00 and +0200 both occur
                guard let m = readDigits(&utf8, 2), m < 60 else { return nil }
                offsetMinutes = m
            }
            offsetSeconds = (offsetHours * 3600 + offsetMinutes * 60) * (sign == UInt8(ascii: "-") ? -1 : 1)
        } else {
            return nil
        }
        guard utf8.isEmpty else { return nil }
        let seconds = daysFromCivil(year: date.year, month: date.month, day: date.day) * 86_400
            + hour * 3600 + minute * 60 + second - offsetSeconds
        return seconds * 1_000_000 + fraction
    }

    /// `2026-11-22` as microseconds at UTC midnight; nil unless exactly that shape and a real day.
    static func dateMicros(_ text: String) -> Int64? {
        var utf8 = text.utf8[...]
        guard let date = readDate(&utf8), utf8.isEmpty else { return nil }
        return daysFromCivil(year: date.year, month: date.month, day: date.day) * microsPerDay
    }

    /// RFC 3339 in UTC with milliseconds (rounded to the nearest), e.g. `2026-11-22T10:15:00.123Z`.
    /// Years past 9999 have more digits, years before 1 a sign (neither is RFC 3339; no real
    /// timestamp is either).
    public static func format(micros: Int64) -> String {
        // Milliseconds rounded half up; no multiplication, so the ends of Int64 cannot overflow.
        var millis = floorDivide(micros, 1000)
        if floorModulo(micros, 1000) >= 500 { millis += 1 }
        let days = floorDivide(millis, 86_400_000)
        let inDay = floorModulo(millis, 86_400_000)
        let (year, month, day) = civilFromDays(days)
        var out: [UInt8] = []
        out.reserveCapacity(32)
        /// `value` (below 10^`width`) in exactly `width` digits.
        func append(_ separator: Unicode.Scalar, _ value: Int64, width: Int) {
            out.append(UInt8(ascii: separator))
            var divisor: Int64 = 1
            for _ in 1..<width { divisor *= 10 }
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
                divisor /= 10
            }
        }
        if year < 0 { out.append(UInt8(ascii: "-")) }
        let yearDigits = String(year.magnitude).utf8
        out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: max(0, 4 - yearDigits.count)))
        out.append(contentsOf: yearDigits)
        append("-", month, width: 2)
        append("-", day, width: 2)
        append("T", inDay / 3_600_000, width: 2)
        append(":", inDay / 60_000 % 60, width: 2)
        append(":", inDay / 1000 % 60, width: 2)
        append(".", inDay % 1000, width: 3)
        out.append(UInt8(ascii: "Z"))
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: Calendar arithmetic (proleptic Gregorian, Howard Hinnant's algorithms)

    /// Days since 1970-01-01 of a Gregorian date, for any year.
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDivide(y, 400)
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * ((month + 9) % 12) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The Gregorian date `days` after 1970-01-01 (valid for every Int64 day count a timestamp gives).
    public static func civilFromDays(_ days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = floorDivide(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func isLeapYear(_ year: Int64) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    static func daysIn(month: Int64, of year: Int64) -> Int64 {
        switch month {
        case 2: isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Division rounding toward minus infinity (instants before 1970 belong to the earlier day).
    static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// The remainder that goes with `floorDivide`: from 0 up to `b` (for a positive `b`).
    static func floorModulo(_ a: Int64, _ b: Int64) -> Int64 {
        let r = a % b
        return r != 0 && (r < 0) != (b < 0) ? r + b : r
    }

    // MARK: Reading

    /// `YYYY-MM-DD`, a real day.
    private static func readDate(_ utf8: inout Substring.UTF8View) -> (year: Int64, month: Int64, day: Int64)? {
        guard let year = readDigits(&utf8, 4), read(&utf8, "-"), let month = readDigits(&utf8, 2), read(&utf8, "-"),
              let day = readDigits(&utf8, 2), (1...12).contains(month), day >= 1, day <= daysIn(month: month, of: year) else { return nil }
        return (year, month, day)
    }

    private static func readDigits(_ utf8: inout Substring.UTF8View, _ count: Int) -> Int64? {
        var value: Int64 = 0
        for _ in 0..<count {
            guard let c = utf8.first, c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(c - UInt8(ascii: "0"))
            utf8 = utf8.dropFirst()
        }
        return value
    }

    private static func read(_ utf8: inout Substring.UTF8View, _ character: Unicode.Scalar) -> Bool {
        guard utf8.first == UInt8(ascii: character) else { return false }
        utf8 = utf8.dropFirst()
        return true
    }
}
