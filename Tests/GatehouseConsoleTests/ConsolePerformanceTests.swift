import Foundation
import GatehouseAPI
import GatehouseCore
import Testing
@testable import GatehouseConsole

/// The Performance and trace pages' parts: where a waterfall bar is drawn, when a p95 change is
/// marked, and that names from senders are escaped while the server's own SVG is not.
@Suite struct ConsolePerformanceTests {
    static let renderer = try! PageRenderer()

    static func render(_ template: String, _ body: [String: Any]) -> String {
        renderer.library.render(["body": body], withTemplate: template) ?? ""
    }

    /// The bar's `x` and `width` attributes, out of 1000.
    static func geometry(_ svg: String) -> (x: Double, width: Double) {
        func attribute(_ name: String) -> Double {
            svg.components(separatedBy: " \(name)=\"").dropFirst().first?.split(separator: "\"").first.flatMap { Double($0) } ?? -1
        }
        return (attribute("x"), attribute("width"))
    }

    @Test func aBarSitsWhereItsSpanRanWithinTheTrace() {
        #expect(Self.geometry(TracePage.bar(offset: 0, duration: 200, total: 200, tone: "ok", title: "")) == (0, 1000))
        #expect(Self.geometry(TracePage.bar(offset: 50, duration: 100, total: 200, tone: "ok", title: "")) == (250, 500))
        // An instant span still shows; one the sender placed past the trace's end stays inside the track.
        #expect(Self.geometry(TracePage.bar(offset: 100, duration: 0, total: 200, tone: "ok", title: "")) == (500, 2))
        let late = Self.geometry(TracePage.bar(offset: 900, duration: 500, total: 200, tone: "ok", title: ""))
        #expect(late.x + late.width <= 1000 && late.width >= 2, "\(late)")
        let before = Self.geometry(TracePage.bar(offset: -50, duration: 10, total: 200, tone: "ok", title: ""))
        #expect(before.x == 0, "\(before)")
    }

    @Test func aBarsTitleIsEscaped() {
        let svg = TracePage.bar(offset: 0, duration: 1, total: 1, tone: "error", title: "<script>alert(1)</script> & \"q\"")
        #expect(!svg.contains("<script>") && svg.contains("&lt;script&gt;") && svg.contains("&quot;q&quot;"))
        #expect(svg.contains("class=\"span-error\""))
    }

    @Test func aP95ChangeIsMarkedFromFiftyPercentSlower() {
        #expect(PerformancePage.changeText(50) == ("+50%", "bad"))
        #expect(PerformancePage.changeText(49.4) == ("+49%", ""))
        #expect(PerformancePage.changeText(-20) == ("−20%", "good"))
        #expect(PerformancePage.changeText(nil) == ("new", ""))
        #expect(PerformancePage.changeText(0.2) == ("±0%", ""))
        #expect(PerformancePage.changeText(.infinity) == ("new", ""))
    }

    /// With no transactions the page says how to send them; with a filter, that nothing matches it.
    @Test func anEmptyTableSaysHowToSendTraces() {
        let empty = Self.render("performance", ["rows": [PerformancePage.Row](), "hasRows": false, "filtered": false, "rangeLabel": "last 24h"])
        #expect(empty.contains("No transactions in the last 24h") && empty.contains("traces_sample_rate") && empty.contains("/v1/traces"))
        let filtered = Self.render("performance", ["rows": [PerformancePage.Row](), "hasRows": false, "filtered": true, "rangeLabel": "last 24h"])
        #expect(filtered.contains("No transaction matches these filters"))
    }

    @Test func aTraceLinkKeepsItsIdOneSegment() {
        #expect(TracePage.href("4bf92f3577b34da6a3ce929d0e0e4736") == "/traces/4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(TracePage.href("a/b?c") == "/traces/a%2Fb%3Fc")
    }

    /// A transaction or span name is what a sender wrote: shown as text, never as markup, while
    /// the bars (the server's own SVG) are drawn.
    @Test func sendersNamesAreEscapedOnBothPages() {
        let hostile = "GET /<img src=x onerror=alert(1)>"
        let row = PerformancePage.row(TransactionRow(name: hostile, count: 3, throughputPerMinute: 0.05, errorRate: 0, p50Milliseconds: 10,
                                                     p95Milliseconds: 30, p99Milliseconds: 40, previousCount: 2, previousP95Milliseconds: 10,
                                                     p95ChangePercent: 200),
                                      href: Console.url("/performance", [("transaction", hostile)]))
        let table = Self.render("performance", ["rows": [row], "hasRows": true])
        #expect(!table.contains("<img") && table.contains("&lt;img"))
        #expect(table.contains("pill bad") && table.contains("+200%"))

        let span = TracePage.SpanRow(name: hostile, op: "http.server", service: "api", indent: 1, depth: 1, duration: "30 ms", offset: "+0 µs",
                                     bar: TracePage.bar(offset: 0, duration: 30, total: 30, tone: "slow", title: hostile),
                                     status: "ok", error: false, slow: true, isTransaction: false, fields: [])
        let trace = Self.render("trace", ["rootName": hostile, "spans": [span], "ticks": ["0", "30 ms"]])
        #expect(!trace.contains("<img") && trace.contains("<svg class=\"waterfall-bar\""))
        #expect(trace.contains("waterfall-name depth-1") && trace.contains("rect class=\"span-slow\""))
    }
}
