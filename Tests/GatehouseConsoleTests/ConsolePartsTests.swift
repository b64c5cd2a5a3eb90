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

    @Test("chart labels are escaped")
    func chartsEscape() {
        let range = TimeRange(preset: "1h", fromMicros: 0, toMicros: 3_600_000_000)
        let svg = SVGChart.columns([.init(startMicros: 0, value: 3)], range: range, bucketMicros: 60_000_000) { _ in "<script>\"&'" }
        #expect(!svg.contains("<script>") && svg.contains("&lt;script&gt;&quot;&amp;&#39;"))
    }
}
