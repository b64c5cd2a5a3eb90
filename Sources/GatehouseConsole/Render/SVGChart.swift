import Foundation
import GatehouseCore

/// Charts drawn on the server as SVG: no script, hover text from `<title>`, colours from the
/// stylesheet (so they follow the theme). Every label is escaped here; the output is the only
/// unescaped value pages insert.
enum SVGChart {
    struct Point {
        var startMicros: Int64
        var value: Double
    }

    /// Columns over time, one per bucket of `range` (empty buckets drawn as zero), with a few
    /// y-axis lines and time labels. `describe` gives each column's hover text.
    /// `integral`: the values are counts, so axis lines fall on whole numbers.
    static func columns(_ points: [Point], range: TimeRange, bucketMicros: Int64, height: Int = 180, cssClass: String = "bar",
                        integral: Bool = false, describe: (Double) -> String) -> String {
        // At most 500 columns whatever the caller asks: one per bucket of a huge range would be
        // hundreds of MB of SVG.
        let bucketMicros = max(bucketMicros, (range.toMicros - range.fromMicros) / 500 + 1)
        let width = 760.0, top = 10.0, bottom = 22.0
        let plotHeight = Double(height) - top - bottom
        let first = floorDiv(range.fromMicros, bucketMicros) * bucketMicros
        let count = max(1, Int((range.toMicros - first + bucketMicros - 1) / bucketMicros))
        var values = [Double](repeating: 0, count: count)
        for p in points {
            let i = Int((p.startMicros - first) / bucketMicros)
            if values.indices.contains(i) { values[i] += p.value }
        }
        let maximum = integral ? max(2, niceCeiling(values.max() ?? 0, steps: [1, 2, 5, 10])) : niceCeiling(values.max() ?? 0)
        // Room for the longest y-axis label (`$0.00125`), at about 6.2 px a character.
        let longest = [0.0, 0.5, 1.0].map { describe(maximum * $0).count }.max() ?? 4
        let left = max(40.0, 10 + 6.2 * Double(longest))
        let step = (width - left) / Double(count)
        var svg = "<svg class=\"chart\" viewBox=\"0 0 \(Int(width)) \(height)\" role=\"img\" preserveAspectRatio=\"none\">"
        for fraction in [0.0, 0.5, 1.0] {
            let y = top + plotHeight * (1 - fraction)
            svg += "<line class=\"grid\" x1=\"\(f(left))\" x2=\"\(f(width))\" y1=\"\(f(y))\" y2=\"\(f(y))\"/>"
            svg += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 3.5))\" text-anchor=\"end\">\(escape(describe(maximum * fraction)))</text>"
        }
        for (i, value) in values.enumerated() {
            let h = maximum > 0 ? plotHeight * value / maximum : 0
            let x = left + Double(i) * step
            let start = first + Int64(i) * bucketMicros
            let title = escape("\(Format.dateTime(start)): \(describe(value))")
            svg += "<g><title>\(title)</title><rect class=\"hit\" x=\"\(f(x))\" y=\"\(f(top))\" width=\"\(f(step))\" height=\"\(f(plotHeight))\"/>"
            if h > 0 {
                svg += "<rect class=\"\(cssClass)\" x=\"\(f(x + step * 0.12))\" y=\"\(f(top + plotHeight - max(h, 1)))\" width=\"\(f(step * 0.76))\" height=\"\(f(max(h, 1)))\" rx=\"1.5\"/>"
            }
            svg += "</g>"
        }
        for i in stride(from: 0, to: count, by: max(1, count / 6)) {
            let x = left + Double(i) * step + step / 2
            // A label cut by the right edge says less than none.
            if x > width - 18 { continue }
            svg += "<text x=\"\(f(x))\" y=\"\(height - 6)\" text-anchor=\"middle\">\(escape(axisLabel(first + Int64(i) * bucketMicros, range: range)))</text>"
        }
        return svg + "</svg>"
    }

    /// A small bar sparkline (issue lists): the values as given, oldest first.
    static func sparkline(_ values: [Double]) -> String {
        let maximum = max(values.max() ?? 0, 1)
        let step = 120.0 / Double(max(values.count, 1))
        var svg = "<svg class=\"spark\" viewBox=\"0 0 120 28\" preserveAspectRatio=\"none\" aria-hidden=\"true\">"
        for (i, v) in values.enumerated() where v > 0 {
            let h = max(2, 26 * v / maximum)
            svg += "<rect class=\"bar\" x=\"\(f(Double(i) * step + 0.5))\" y=\"\(f(28 - h))\" width=\"\(f(max(step - 1, 1)))\" height=\"\(f(h))\"/>"
        }
        return svg + "</svg>"
    }

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    /// 0, 1, 2, 2.5, 5 × 10^n at or above `v`, so axis lines fall on round numbers.
    static func niceCeiling(_ v: Double, steps: [Double] = [1, 2, 2.5, 5, 10]) -> Double {
        guard v > 0, v.isFinite else { return 1 }
        let magnitude = pow(10, floor(log10(v)))
        for m in steps where m * magnitude >= v { return m * magnitude }
        return 10 * magnitude
    }

    private static func axisLabel(_ micros: Int64, range: TimeRange) -> String {
        range.lengthMicros > 2 * 86_400_000_000 ? Format.monthDay(micros) : Format.hourMinute(micros)
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : (a - b + 1) / b }
    private static func f(_ v: Double) -> String { String(format: "%.1f", v) }
}
