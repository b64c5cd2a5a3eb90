import Foundation
import GatehouseCore
import Testing
@testable import GatehouseConsole

@Suite struct ConsolePartsTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/GatehouseConsole")

    @Test("the compiled-in templates and assets are the files (run scripts/generate-console-bundle.sh after editing them)")
    func bundleMatchesTheFiles() throws {
        for (folder, embedded, suffix) in [("Templates", ConsoleBundle.templates, ".mustache"), ("Assets", ConsoleBundle.assets, "")] {
            let names = try FileManager.default.contentsOfDirectory(atPath: Self.folder.appendingPathComponent(folder).path).sorted()
            #expect(names == embedded.map { $0.name + suffix }.sorted(), "\(folder)")
            for item in embedded {
                let text = try String(contentsOf: Self.folder.appendingPathComponent("\(folder)/\(item.name)\(suffix)"), encoding: .utf8)
                #expect(text == item.text + "\n" || text == item.text, "\(folder)/\(item.name) differs from ConsoleBundle.swift")
            }
        }
    }

    /// Regression (attack review): a key form without the `capture_bodies` field (a page cached
    /// from before the field existed) cleared the key's body capture instead of leaving it.
    @Test func aKeyFormWithoutTheCaptureFieldLeavesCaptureAlone() throws {
        #expect(try KeyForm.changes(["alias": "a"]).captureBodies == nil)
        #expect(try KeyForm.changes(["capture_bodies": "default"]).captureBodies == .clear)
        #expect(try KeyForm.changes(["capture_bodies": "on"]).captureBodies == .set(true))
        #expect(try KeyForm.changes(["capture_bodies": "off"]).captureBodies == .set(false))
        #expect(throws: (any Error).self) { try KeyForm.changes(["capture_bodies": "sometimes"]) }
    }

    @Test func everyTemplateParses() throws {
        _ = try PageRenderer()
    }

    @Test("passwords: scrypt, salted, and nothing malformed verifies")
    func passwords() throws {
        let hash = try PasswordHasher.hash("correct horse battery staple")
        #expect(hash.hasPrefix("scrypt$15$8$1$"))
        #expect(try PasswordHasher.hash("correct horse battery staple") != hash, "a fresh salt each time")
        #expect(PasswordHasher.verify("correct horse battery staple", against: hash))
        #expect(!PasswordHasher.verify("correct horse battery stapl", against: hash))
        for broken in ["", "scrypt", "scrypt$15$8$1$$", "scrypt$40$8$1$AAAA$AAAA", "bcrypt$x", hash + "$", String(hash.dropLast(4))] {
            #expect(!PasswordHasher.verify("correct horse battery staple", against: broken), "\(broken)")
        }
        #expect(!PasswordHasher.verify(String(repeating: "x", count: PasswordHasher.maxPasswordBytes + 1), against: hash))
    }

    @Test("after sign-in the console only sends the browser to its own pages")
    func nextStaysHome() {
        #expect(Console.safeNext("/requests?range=7d") == "/requests?range=7d")
        for hostile in [nil, "", "//evil.example", "https://evil.example", "/\\evil.example", "javascript:alert(1)", "/ok\r\nSet-Cookie: x=1",
                        "/\t/evil.example/x", "/\u{7F}/evil.example", "/ /evil.example",
                        "/" + String(repeating: "a", count: 2000)] {
            #expect(Console.safeNext(hostile) == "/", "\(hostile ?? "nil")")
        }
    }

    @Test("time ranges: presets, custom, and anything else falls back to 24h")
    func timeRanges() {
        let now: Int64 = 1_796_000_000_000_000
        #expect(TimeRange(parameters: ["range": "7d"], nowMicros: now).lengthMicros == 604_800_000_000)
        #expect(TimeRange(parameters: ["range": "1y"], nowMicros: now).preset == "24h")
        let custom = TimeRange(parameters: ["from": "2026-11-30T10:00", "to": "2026-11-30T12:00"], nowMicros: now)
        #expect(custom.preset == nil && custom.lengthMicros == 7_200_000_000)
        #expect(TimeRange(parameters: ["from": "2026-11-30T12:00", "to": "2026-11-30T10:00"], nowMicros: now).preset == "24h", "from after to")
        #expect(TimeRange(parameters: ["from": "-9223372036854775808", "to": "now"], nowMicros: now).preset == "24h", "no overflow")
        #expect(custom.previous.toMicros == custom.fromMicros)
    }

    /// A custom range of years 0 to 9999 once gave 3.65 million one-day buckets per chart: several
    /// hundred MB of SVG from one GET.
    @Test("a custom range is bounded, and so is a chart")
    func hugeRangesAreBounded() {
        let now: Int64 = 1_796_000_000_000_000
        let huge = TimeRange(parameters: ["from": "0000-01-01T00:00:00Z", "to": "9999-12-31T00:00:00Z"], nowMicros: now)
        #expect(huge.lengthMicros <= 400 * 86_400_000_000, "\(huge.lengthMicros)")
        #expect(huge.lengthMicros / huge.bucketMicros <= 100)
        let wide = TimeRange(preset: nil, fromMicros: 0, toMicros: 100 * 365 * 86_400_000_000)
        let svg = SVGChart.columns([], range: wide, bucketMicros: 60_000_000) { "\($0)" }
        #expect(svg.utf8.count < 200_000, "\(svg.utf8.count) bytes")
    }

    @Test("chart labels are escaped")
    func chartsEscape() {
        let range = TimeRange(preset: "1h", fromMicros: 0, toMicros: 3_600_000_000)
        let svg = SVGChart.columns([.init(startMicros: 0, value: 3)], range: range, bucketMicros: 60_000_000) { _ in "<script>\"&'" }
        #expect(!svg.contains("<script>") && svg.contains("&lt;script&gt;&quot;&amp;&#39;"))
    }
}

extension ConsolePartsTests {
    /// Sixteen wrong sign-ins at once once held every request thread in scrypt for seconds: a
    /// third check while two run is refused at once, not queued.
    @Test("scrypt checks beyond the limiter's slots are refused at once")
    func scryptChecksAreLimited() async throws {
        // logN 16: 64 MiB and several tenths of a second, so the first two are still running.
        let salt = Data(repeating: 7, count: 16).base64EncodedString(), key = Data(repeating: 0, count: 32).base64EncodedString()
        let slow = "scrypt$16$8$1$\(salt)$\(key)"
        let limiter = ScryptLimiter(maxConcurrent: 2)
        async let first = PasswordHasher.verifyOffPool("one guess", against: slow, limiter: limiter)
        async let second = PasswordHasher.verifyOffPool("another guess", against: slow, limiter: limiter)
        try await Task.sleep(for: .milliseconds(100))
        await #expect(throws: PasswordHasher.Busy.self) {
            _ = try await PasswordHasher.verifyOffPool("a third guess", against: slow, limiter: limiter)
        }
        #expect(try await first == false)
        #expect(try await second == false)
        #expect(try await PasswordHasher.verifyOffPool("after them", against: slow, limiter: limiter) == false, "slots are given back")
    }
}
