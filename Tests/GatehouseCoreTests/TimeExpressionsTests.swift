import Foundation
import Testing
@testable import GatehouseCore

/// The one RFC 3339 reader and writer and the one duration reader, on random and hostile input.
@Suite struct TimeExpressionsRoundTripTests {
    /// Year 1 to 9999, the years RFC 3339 writes.
    static let rfc3339Range: ClosedRange<Int64> = -62_135_596_800_000_000...253_402_300_799_999_999

    /// Milliseconds as `format` rounds them: to the nearest, half up.
    static func roundedToMillis(_ micros: Int64) -> Int64 {
        let remainder = ((micros % 1000) + 1000) % 1000
        return (micros - remainder) + (remainder >= 500 ? 1000 : 0)
    }

    static func padded(_ value: Int64, to width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    @Test func formatWritesTodaysShape() {
        #expect(TimeExpressions.format(micros: 0) == "1970-01-01T00:00:00.000Z")
        #expect(TimeExpressions.format(micros: 1_795_341_600_123_456) == "2026-11-22T10:00:00.123Z")
        #expect(TimeExpressions.format(micros: 1_795_341_600_123_500) == "2026-11-22T10:00:00.124Z")
        #expect(TimeExpressions.format(micros: 1_795_341_600_999_999) == "2026-11-22T10:00:01.000Z")
        #expect(TimeExpressions.format(micros: -1) == "1970-01-01T00:00:00.000Z")
        #expect(TimeExpressions.format(micros: -501) == "1969-12-31T23:59:59.999Z")
        #expect(TimeExpressions.format(micros: 951_782_400_000_000) == "2000-02-29T00:00:00.000Z")
        #expect(TimeExpressions.format(micros: 1_709_251_199_999_999) == "2024-03-01T00:00:00.000Z")
        #expect(TimeExpressions.format(micros: 253_402_300_799_999_000) == "9999-12-31T23:59:59.999Z")
        #expect(TimeExpressions.format(micros: 253_402_300_800_000_000) == "10000-01-01T00:00:00.000Z")
        #expect(TimeExpressions.format(micros: -62_135_596_800_000_000) == "0001-01-01T00:00:00.000Z")
        // The ends of Int64 neither trap nor wrap.
        #expect(TimeExpressions.format(micros: .max) == "294247-01-10T04:00:54.776Z")
        #expect(TimeExpressions.format(micros: .min) == "-290308-12-21T19:59:05.224Z")
    }

    /// What `format` writes is what Foundation's ISO8601DateFormatter wrote before, for every
    /// instant since the Gregorian calendar began (Foundation counts earlier days on the Julian
    /// calendar), except within a microsecond of a half millisecond, where Foundation's answer
    /// depends on how a Double rounds.
    @Test func formatAgreesWithFoundation() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let micros = Int64.random(in: -12_212_553_600_000_000...7_258_118_400_000_000, using: &rng)  // 1583 to 2200
            let remainder = ((micros % 1000) + 1000) % 1000
            if (495...505).contains(remainder) { continue }
            let foundation = formatter.string(from: Date(timeIntervalSince1970: Double(micros) / 1_000_000))
            #expect(TimeExpressions.format(micros: micros) == foundation, "\(micros)")
        }
    }

    @Test func whatIsWrittenReadsBack() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let micros = Int64.random(in: Self.rfc3339Range.lowerBound...(Self.rfc3339Range.upperBound - 1000), using: &rng)
            let text = TimeExpressions.format(micros: micros)
            #expect(TimeExpressions.rfc3339Micros(text) == Self.roundedToMillis(micros), "\(text)")
            // Microseconds, and another offset: the wall time there, with the offset written out.
            let offsetMinutes = Int64.random(in: -(23 * 60 + 59)...(23 * 60 + 59), using: &rng)
            let local = micros + offsetMinutes * 60_000_000
            guard Self.rfc3339Range.contains(local) else { continue }
            let wall = TimeExpressions.format(micros: local - ((local % 1000) + 1000) % 1000).dropLast(4)  // without `SSSZ`
            let sign = offsetMinutes < 0 ? "-" : "+"
            let offset = sign + Self.padded(abs(offsetMinutes) / 60, to: 2) + ":" + Self.padded(abs(offsetMinutes) % 60, to: 2)
            let withOffset = String(wall) + Self.padded(((local % 1_000_000) + 1_000_000) % 1_000_000, to: 6) + offset
            #expect(TimeExpressions.rfc3339Micros(withOffset) == micros, "\(withOffset)")
        }
    }

    @Test func leapDaysAndImpossibleDates() {
        for (text, valid) in [("2024-02-29", true), ("2026-02-29", false), ("2000-02-29", true), ("1900-02-29", false), ("2026-04-31", false),
                              ("2026-12-31", true), ("2026-13-01", false), ("2026-00-10", false), ("2026-01-00", false), ("0000-02-29", true)] {
            #expect((TimeExpressions.rfc3339Micros(text + "T00:00:00Z") != nil) == valid, "\(text)")
            #expect((TimeExpressions.instantMicros(text) != nil) == valid, "\(text)")
        }
        #expect(TimeExpressions.instantMicros("2024-02-29") == 1_709_164_800_000_000)
        #expect(TimeExpressions.rfc3339Micros("0000-01-01T00:00:00Z") == -62_167_219_200_000_000)
        #expect(TimeExpressions.rfc3339Micros("9999-12-31T23:59:59.999999Z") == 253_402_300_799_999_999)
        // A leap second is the next minute's first.
        #expect(TimeExpressions.rfc3339Micros("2016-12-31T23:59:60Z") == TimeExpressions.rfc3339Micros("2017-01-01T00:00:00Z"))
    }

    @Test func offsetsFractionsAndSeparators() {
        let utc = TimeExpressions.rfc3339Micros("2026-11-22T10:00:00Z")
        #expect(utc == 1_795_341_600_000_000)
        for same in ["2026-11-22t10:00:00z", "2026-11-22 10:00:00Z", "2026-11-22T12:00:00+02:00", "2026-11-22T12:00:00+0200", "2026-11-22T12:00:00+02",
                     "2026-11-22T04:30:00-05:30", "2026-11-23T00:00:00+14:00", "2026-11-21T22:00:00-12:00", "2026-11-22T10:00:00-00:00",
                     "2026-11-22T10:00:00.000000Z", "2026-11-22T10:00:00.0Z"] {
            #expect(TimeExpressions.rfc3339Micros(same) == utc, "\(same)")
        }
        // Past the sixth digit a fraction is cut off, however long it is.
        #expect(TimeExpressions.rfc3339Micros("2026-11-22T10:00:00.1234569Z") == 1_795_341_600_123_456)
        #expect(TimeExpressions.rfc3339Micros("2026-11-22T10:00:00." + String(repeating: "9", count: 10_000) + "Z") == 1_795_341_600_999_999)
        #expect(TimeExpressions.rfc3339Micros("2026-11-22T10:00:00.5Z") == 1_795_341_600_500_000)
        #expect(TimeExpressions.instantMicros("2026-11-22T10:00:00.123456Z") == 1_795_341_600_123_456, "microseconds are kept")
        #expect(TimeExpressions.rfc3339(("2026-11-22T10:00:00.25Z"))?.timeIntervalSince1970 == 1_795_341_600.25)
    }

    @Test func garbageIsRefused() {
        let garbage = ["", "T", "Z", "2026", "2026-11-22T", "2026-11-22T10:00:00", "2026-11-22T10:00Z", "2026-11-22T10:00:00ZZ",
                       "2026-11-22T10:00:00Z ", " 2026-11-22T10:00:00Z", "2026-11-22T10:00:00.Z", "2026-11-22T10:00:00,5Z",
                       "2026-11-22T24:00:00Z", "2026-11-22T10:60:00Z", "2026-11-22T10:00:61Z", "2026-11-22T10:00:00+24:00",
                       "2026-11-22T10:00:00+05:60", "2026-11-22T10:00:00+", "2026-11-22T10:00:00+5", "2026-11-22T10:00:00+05:0",
                       "2026-11-22T10:00:00+05:", "2026-11-22T10:00:00+05:00:00", "+2026-11-22T10:00:00Z", "-2026-11-22T10:00:00Z",
                       "12026-11-22T10:00:00Z", "99999999999999999999-11-22T10:00:00Z", "2026-1-22T10:00:00Z", "2026-11-2T10:00:00Z",
                       "２０２６-11-22T10:00:00Z", "2026/11/22T10:00:00Z", "2026-11-22X10:00:00Z", "2026-11-22T10:00:00UTC",
                       "2026-11-22T10:00:00\u{0}Z", "now", "-1h", "1795000000"]
        for text in garbage {
            #expect(TimeExpressions.rfc3339Micros(text) == nil, "\(text)")
        }
        for text in ["2026/11/22", "2026-11-2", "2026-11-222", "20261122", "２０２６-11-22"] {
            #expect(TimeExpressions.instantMicros(text) == nil, "\(text)")
        }
    }

    /// Random bytes and mutations of a valid timestamp never trap; whatever reads as a timestamp
    /// writes back to the same millisecond.
    @Test func mutatedTimestampsNeverTrap() {
        var rng = SystemRandomNumberGenerator()
        let seed = Array("2026-11-22T10:00:00.123456+02:00".utf8)
        let alphabet = Array("0123456789-:T.Z+ tz9".utf8) + [0, 0xFF, 0xC3]
        for _ in 0..<20_000 {
            var bytes = seed
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[i] = alphabet.randomElement(using: &rng)!
                case 1: bytes.remove(at: i)
                default: bytes.insert(alphabet.randomElement(using: &rng)!, at: i)
                }
                if bytes.isEmpty { bytes = seed }
            }
            let text = String(decoding: bytes, as: UTF8.self)
            // (Offsets can move year 0 and 9999 out of the years RFC 3339 writes.)
            if let micros = TimeExpressions.rfc3339Micros(text), Self.rfc3339Range.contains(micros + 86_400_000_000), Self.rfc3339Range.contains(micros - 86_400_000_000) {
                #expect(TimeExpressions.rfc3339Micros(TimeExpressions.format(micros: micros)) == Self.roundedToMillis(micros), "\(text)")
            }
            _ = TimeExpressions.instantMicros(text)
        }
    }

    @Test func oneDurationReaderForEveryUnit() {
        let cases: [(String, Int64?)] = [
            ("1500ns", 2), ("1499ns", 1), ("800us", 800), ("120µs", 120), ("100ms", 100_000), ("2s", 2_000_000), ("5m", 300_000_000),
            ("1h", 3_600_000_000), ("7d", 604_800_000_000), ("2w", 1_209_600_000_000), ("1.5h", 5_400_000_000), ("237.42ms", 237_420),
            (".5s", 500_000), ("5.s", 5_000_000), ("1e3ms", 1_000_000), ("2.5E-1s", 250_000), ("5 m", 300_000_000), (" 5M ", 300_000_000),
            ("+5m", 300_000_000), ("0s", 0),
            // Hostile: negative, huge, not decimal, no number, no unit.
            ("-5s", nil), ("-0s", nil), ("9223372036854775807us", Int64.max), ("9223372036854775808us", nil), ("9223372036854775807ms", nil),
            ("9223372036854775ms", 9_223_372_036_854_775_000), ("99999999999999999d", nil), ("1e300s", nil), ("1e-300s", 0), ("0x10ms", nil),
            ("inf s", nil), ("nan", nil), ("s", nil), ("ms", nil), ("h", nil), ("1.2.3s", nil), ("1e", nil), ("5", nil), ("5 parsecs", nil),
            ("5ss", nil), ("", nil), ("1_000s", nil), ("٣s", nil),
        ]
        for (text, expected) in cases {
            #expect(TimeExpressions.durationMicros(text) == expected, "\(text)")
        }
        // A number alone counts in the unit the caller names (log lines: milliseconds).
        #expect(TimeExpressions.durationMicros("237.4", unitless: .milliseconds) == 237_400)
        #expect(TimeExpressions.durationMicros("12", unitless: .seconds) == 12_000_000)
        #expect(TimeExpressions.durationMicros("2s", unitless: .milliseconds) == 2_000_000)
        #expect(TimeExpressions.durationMicros("-1", unitless: .milliseconds) == nil)
    }

    @Test func durationsReadBackWhatFormatDurationWrites() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            let micros = Int64.random(in: 0...(Int64.max / 1000), using: &rng) / 1000 * 1000
            #expect(TimeExpressions.durationMicros(TimeExpressions.formatDuration(micros: micros)) == micros, "\(micros)")
        }
    }

    @Test func todayIsUTCMidnightBeforeAndAfter1970() {
        #expect(TimeExpressions.instantMicros("today", now: Date(timeIntervalSince1970: 1_795_000_000)) == 1_794_960_000_000_000)
        #expect(TimeExpressions.instantMicros("today", now: Date(timeIntervalSince1970: -1.5)) == -86_400_000_000)
        #expect(TimeExpressions.instantMicros("today", now: Date(timeIntervalSince1970: 0)) == 0)
    }
}
