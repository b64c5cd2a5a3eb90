import Foundation

/// Time arguments as people write them in API calls and on the command line.
public enum TimeExpressions {
    /// `30s`, `5m`, `1h`, `7d`, `2w` (also `100ms`) as microseconds; nil when not a duration.
    /// Now, in microseconds since 1970: the unit of every stored timestamp.
    public static func nowMicros() -> Int64 { Int64(Date().timeIntervalSince1970 * 1_000_000) }

    /// A measured duration in whole microseconds.
    public static func micros(_ d: Duration) -> Int64 {
        d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000
    }

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
        let nowMicros = Int64(now.timeIntervalSince1970 * 1_000_000)
        if t == "now" { return nowMicros }
        if t == "today" {
            return Int64(Calendar.utc.startOfDay(for: now).timeIntervalSince1970) * 1_000_000
        }
        if let d = durationMicros(t.hasPrefix("-") ? String(t.dropFirst()) : t) { return nowMicros - d }
        if let seconds = Int64(t), t.count >= 9 { return seconds * 1_000_000 }
        if let date = rfc3339(t) { return Int64((date.timeIntervalSince1970 * 1_000_000).rounded()) }
        if t.count == 10, let date = dayFormatter.date(from: t) { return Int64(date.timeIntervalSince1970) * 1_000_000 }
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
