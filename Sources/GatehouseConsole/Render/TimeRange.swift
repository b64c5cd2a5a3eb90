import Foundation
import GatehouseCore

/// The time range every page shows, kept in the URL: `range=15m|1h|24h|7d|30d`, or a custom
/// `from`/`to` (RFC 3339 or a `datetime-local` value, read as UTC).
public struct TimeRange: Sendable, Equatable {
    public static let presets: [(name: String, seconds: Int64)] = [("15m", 900), ("1h", 3600), ("24h", 86_400), ("7d", 604_800), ("30d", 2_592_000)]
    public static let defaultPreset = "24h"
    /// The longest custom range, as the usage API allows: a longer one ends at `to` and starts 400 days before.
    public static let maxLengthMicros: Int64 = 400 * 86_400_000_000

    /// The preset's name, or nil for a custom range.
    public var preset: String?
    public var fromMicros: Int64
    public var toMicros: Int64

    public var lengthMicros: Int64 { toMicros - fromMicros }
    /// The range of the same length just before this one: what trends compare against.
    public var previous: TimeRange { TimeRange(preset: preset, fromMicros: fromMicros - lengthMicros, toMicros: fromMicros) }

    public init(preset: String?, fromMicros: Int64, toMicros: Int64) {
        self.preset = preset
        self.fromMicros = fromMicros
        self.toMicros = toMicros
    }

    /// Reads the range from query parameters; anything unreadable falls back to the default.
    public init(parameters: [String: String], nowMicros: Int64 = TimeExpressions.nowMicros()) {
        if let from = parameters["from"].flatMap(Self.instant), let to = parameters["to"].flatMap(Self.instant) ?? Optional(nowMicros), from < to {
            self.init(preset: nil, fromMicros: max(from, to - Self.maxLengthMicros), toMicros: to)
            return
        }
        let name = parameters["range"].flatMap { r in Self.presets.contains { $0.name == r } ? r : nil } ?? Self.defaultPreset
        let seconds = Self.presets.first { $0.name == name }!.seconds
        self.init(preset: name, fromMicros: nowMicros - seconds * 1_000_000, toMicros: nowMicros)
    }

    /// The parameters that reproduce this range in a URL.
    public var parameters: [(String, String)] {
        if let preset { return [("range", preset)] }
        return [("from", TimeExpressions.format(micros: fromMicros)), ("to", TimeExpressions.format(micros: toMicros))]
    }

    /// A bucket width that gives about 60 points over the range, on a round step.
    public var bucketMicros: Int64 {
        let steps: [Int64] = [60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86_400, 2 * 86_400, 7 * 86_400].map { $0 * 1_000_000 }
        return steps.first { lengthMicros / $0 <= 72 } ?? 7 * 86_400_000_000
    }

    public var label: String {
        if let preset { return "last \(preset)" }
        return "\(Format.dateTime(fromMicros)) – \(Format.dateTime(toMicros))"
    }

    static func instant(_ text: String) -> Int64? {
        guard text.utf8.count <= 64 else { return nil }
        if let micros = TimeExpressions.instantMicros(text) { return micros }
        // <input type="datetime-local"> sends `2026-11-30T14:05` without a zone: read it as UTC.
        return TimeExpressions.instantMicros(text.count == 16 ? text + ":00Z" : text + "Z")
    }
}
