import Foundation
import GatehouseCore

/// How numbers, money, durations and times read on the console's pages.
enum Format {
    /// An id taken from a URL, for a message: as it was in the link (percent-encoded where it
    /// holds anything but unreserved ASCII, so a stranger's sentence reads as an address, not as
    /// the console's words), at most 100 characters.
    static func foreignID(_ id: String) -> String {
        let encoded = PathSegment.encode(id)
        return encoded.count > 100 ? String(encoded.prefix(100)) + "…" : encoded
    }

    /// 1234567 → "1.23M", 12345 → "12.3k", 999 → "999".
    static func count(_ n: Int64) -> String {
        let v = Double(n)
        switch abs(v) {
        case 1_000_000_000...: return trim(v / 1_000_000_000) + "B"
        case 1_000_000...: return trim(v / 1_000_000) + "M"
        case 10_000...: return trim(v / 1_000) + "k"
        default: return n.formatted(.number.grouping(.automatic).locale(Locale(identifier: "en_US")))
        }
    }

    private static func trim(_ v: Double) -> String {
        let text = String(format: v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : "%.2f", v)
        guard text.contains(".") else { return text }
        var t = text
        while t.hasSuffix("0") { t.removeLast() }
        if t.hasSuffix(".") { t.removeLast() }
        return t
    }

    /// "512 B", "3.4 KB", "1.2 GB" (powers of 1024, as disks are sized).
    static func bytes(_ count: Int64) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var value = Double(max(count, 0)), unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(Int(value)) B" : String(format: value >= 100 ? "%.0f" : "%.1f", value) + " " + units[unit]
    }

    /// "$12.34", "$0.0042" (small amounts keep their significant digits), "$1.2k".
    static func dollars(_ amount: MicroDollars) -> String {
        let v = Double(amount.value) / 1_000_000
        if v == 0 { return "$0" }
        if abs(v) >= 10_000 { return "$" + trim(v / 1000) + "k" }
        if abs(v) >= 1 { return String(format: "$%.2f", v) }
        if abs(v) >= 0.01 { return String(format: "$%.3f", v) }
        return String(format: "$%.5f", v)
    }

    /// Microseconds as "850 ms", "1.24 s", "320 µs".
    static func latency(micros: Double) -> String {
        if micros >= 1_000_000 { return String(format: "%.2f s", micros / 1_000_000) }
        if micros >= 1000 { return String(format: "%.0f ms", micros / 1000) }
        return String(format: "%.0f µs", micros)
    }

    /// "12.5%" with one decimal below 10%.
    static func percent(_ fraction: Double) -> String {
        let p = fraction * 100
        return p < 10 && p > 0 ? String(format: "%.1f%%", p) : String(format: "%.0f%%", p)
    }

    // Times, all UTC, all cut from `TimeExpressions.format`'s `2026-11-30T14:05:09.123Z`.

    /// "2026-11-30 14:05:09 UTC".
    static func dateTime(_ micros: Int64) -> String {
        let text = TimeExpressions.format(micros: micros)
        return String(text.prefix(19)).replacingOccurrences(of: "T", with: " ") + " UTC"
    }

    /// "11-30 14:05:09": a table row's time, whose full date is in its title.
    static func rowTime(_ micros: Int64) -> String {
        String(TimeExpressions.format(micros: micros).dropFirst(5).prefix(14)).replacingOccurrences(of: "T", with: " ")
    }

    /// "2026-11-30 14:05:09.123" from the API's RFC 3339 `2026-11-30T14:05:09.123Z`: a log
    /// line's or timeline entry's time, to the millisecond.
    static func millisecondTime(_ rfc3339: String) -> String {
        String(rfc3339.replacingOccurrences(of: "T", with: " ").prefix(23))
    }

    /// "11-30": a chart's axis label over days.
    static func monthDay(_ micros: Int64) -> String {
        String(TimeExpressions.format(micros: micros).dropFirst(5).prefix(5))
    }

    /// "14:05": a chart's axis label within a day or two.
    static func hourMinute(_ micros: Int64) -> String {
        String(TimeExpressions.format(micros: micros).dropFirst(11).prefix(5))
    }

    /// "2026-11-30T140509": a time in a file name (no `:`, which some systems refuse).
    static func fileStamp(_ micros: Int64) -> String {
        TimeExpressions.format(micros: micros).prefix(19).replacingOccurrences(of: ":", with: "")
    }

    /// A span of time as "45s", "12m", "3h 5m", "2d 4h".
    static func duration(micros: Int64) -> String {
        let seconds = max(0, micros / 1_000_000)
        switch seconds {
        case ..<60: return "\(seconds)s"
        case ..<3600: return "\(seconds / 60)m"
        case ..<86_400: return "\(seconds / 3600)h" + (seconds % 3600 / 60 > 0 ? " \(seconds % 3600 / 60)m" : "")
        default: return "\(seconds / 86_400)d" + (seconds % 86_400 / 3600 > 0 ? " \(seconds % 86_400 / 3600)h" : "")
        }
    }

    /// "5s ago", "3m ago", "2h ago", "4d ago".
    static func ago(_ micros: Int64, now: Int64 = TimeExpressions.nowMicros()) -> String {
        let seconds = max(0, (now - micros) / 1_000_000)
        switch seconds {
        case ..<60: return "\(seconds)s ago"
        case ..<3600: return "\(seconds / 60)m ago"
        case ..<86_400: return "\(seconds / 3600)h ago"
        default: return "\(seconds / 86_400)d ago"
        }
    }

    /// The change from `previous` to `current`, as a trend label and its direction.
    static func trend(_ current: Double, _ previous: Double) -> Trend {
        guard previous > 0 else { return Trend(text: current > 0 ? "new in this range" : "no change", direction: "") }
        let change = (current - previous) / previous
        if abs(change) < 0.005 { return Trend(text: "≈ previous range", direction: "") }
        return Trend(text: (change > 0 ? "▲ " : "▼ ") + percent(abs(change)) + " vs previous", direction: change > 0 ? "up" : "down")
    }

    struct Trend {
        var text: String
        var direction: String
    }
}
