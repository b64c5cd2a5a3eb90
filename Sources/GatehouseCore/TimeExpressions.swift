import Foundation

/// Time arguments as people write them in API calls and on the command line.
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

    /// `30s`, `5m`, `1h`, `7d`, `2w` (also `100ms`) as microseconds; nil when not a duration
    /// (or too long to count in microseconds).
    public static func durationMicros(_ text: String) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Int64)] = [("ms", 1_000), ("s", 1_000_000), ("m", 60_000_000), ("h", 3_600_000_000),
                                        ("d", 86_400_000_000), ("w", 604_800_000_000)]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            guard let n = Int64(t.dropLast(suffix.count)), n >= 0 else { continue }
            let (v, overflow) = n.multipliedReportingOverflow(by: scale)
            return overflow ? nil : v
        }
        return nil
    }

    /// A point in time: `now`, a relative `-24h` / `24h` (both mean 24 hours ago), an RFC 3339
    /// timestamp, a date `2026-11-22` (UTC midnight), `today` (UTC midnight), or Unix seconds.
    public static func instantMicros(_ text: String, now: Date = Date()) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces)
        let nowMicros = Int64(saturating: now.timeIntervalSince1970 * 1_000_000)
        if t == "now" { return nowMicros }
        if t == "today" {
            return Int64(saturating: Calendar.utc.startOfDay(for: now).timeIntervalSince1970).multipliedSaturated(by: 1_000_000)
        }
        if let d = durationMicros(t.hasPrefix("-") ? String(t.dropFirst()) : t) { return nowMicros.subtractingSaturated(d) }
        if let seconds = Int64(t), t.count >= 9 {
            let (v, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000)
            return overflow ? nil : v
        }
        if let date = rfc3339(t) { return Int64(saturating: (date.timeIntervalSince1970 * 1_000_000).rounded()) }
        if t.count == 10, let date = dayFormatter.date(from: t) {
            return Int64(saturating: date.timeIntervalSince1970).multipliedSaturated(by: 1_000_000)
        }
        return nil
    }

    public static func rfc3339(_ text: String) -> Date? {
        let withFraction = ISO8601DateFormatter()
        withFraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = withFraction.date(from: text) { return d }
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        return plain.date(from: text)
    }

    /// RFC 3339 (`2026-11-30T10:15:00.123456Z`, `…+02:00`, a space for `T`) as microseconds since
    /// 1970, without a formatter: log ingest reads one per line. Nil when it is not that shape.
    public static func rfc3339Micros(_ text: String) -> Int64? {
        var utf8 = text.utf8[...]
        func digits(_ n: Int) -> Int64? {
            var v: Int64 = 0
            for _ in 0..<n {
                guard let c = utf8.first, c >= 48, c <= 57 else { return nil }
                v = v * 10 + Int64(c - 48)
                utf8 = utf8.dropFirst()
            }
            return v
        }
        func expect(_ chars: Set<UInt8>) -> Bool {
            guard let c = utf8.first, chars.contains(c) else { return false }
            utf8 = utf8.dropFirst()
            return true
        }
        guard let year = digits(4), expect([45]), let month = digits(2), expect([45]), let day = digits(2), expect([84, 116, 32]),
              let hour = digits(2), expect([58]), let minute = digits(2), expect([58]), let second = digits(2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var fraction: Int64 = 0
        if utf8.first == 46 {  // .
            utf8 = utf8.dropFirst()
            var scale: Int64 = 100_000
            var any = false
            while let c = utf8.first, c >= 48, c <= 57 {
                fraction += Int64(c - 48) * scale
                scale /= 10
                any = true
                utf8 = utf8.dropFirst()
            }
            guard any else { return nil }
        }
        var offsetSeconds: Int64 = 0
        if expect([90, 122]) {  // Z
        } else if let sign = utf8.first, sign == 43 || sign == 45 {
            utf8 = utf8.dropFirst()
            guard let oh = digits(2) else { return nil }
            _ = expect([58])  // +02:00 and +0200 both occur
            guard let om = digits(2), oh < 24, om < 60 else { return nil }
            offsetSeconds = (oh * 3600 + om * 60) * (sign == 45 ? -1 : 1)
        } else {
            return nil
        }
        guard utf8.isEmpty else { return nil }
        // Days from civil (Howard Hinnant's algorithm), valid for any Gregorian date.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        return seconds * 1_000_000 + fraction
    }

    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-22T10:15:00.123Z`.
    public static func format(micros: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(micros) / 1_000_000))
    }

    /// `1h`, `5m`, `1d` for a whole number of the largest fitting unit.
    public static func formatDuration(micros: Int64) -> String {
        for (suffix, scale) in [("d", Int64(86_400_000_000)), ("h", 3_600_000_000), ("m", 60_000_000), ("s", 1_000_000)] where micros % scale == 0 {
            return "\(micros / scale)\(suffix)"
        }
        return "\(micros / 1000)ms"
    }

    private static var dayFormatter: DateFormatter {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd"
        return f
    }
}

extension Calendar {
    static let utc: Calendar = {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = TimeZone(identifier: "UTC")!
        return c
    }()
}
