import Foundation
import GatehouseAPI
import GatehouseCore
import Testing
@testable import GatehouseConsole

/// What the pages render the same way: links to one thing, and a budget's state.
@Suite struct ConsoleConsistencyTests {
    static let renderer = try! PageRenderer()
    let range = TimeRange(parameters: ["range": "24h"], nowMicros: 1_796_000_000_000_000)

    static func render(_ template: String, _ body: [String: Any]) -> String {
        renderer.library.render(["body": body], withTemplate: template) ?? ""
    }

    /// The `href`s in `html`, as the browser reads them (Mustache escapes `&`, `/` stays).
    static func hrefs(_ html: String) -> [String] {
        html.components(separatedBy: "href=\"").dropFirst().compactMap { $0.split(separator: "\"", maxSplits: 1).first.map(String.init) }
            .map { $0.replacingOccurrences(of: "&amp;", with: "&").replacingOccurrences(of: "&#x2F;", with: "/").replacingOccurrences(of: "&#x3D;", with: "=") }
    }

    // MARK: Links

    /// Regression: a key kill switch's value is whatever the admin typed; one holding `/`, `?` or
    /// `#` (`key_ab/c`, a pasted `key_ab?x`) linked to another page (`/keys/key_ab/c`) instead of
    /// that key's.
    @Test func aKeySwitchLinksToItsKeyWhateverItsValueHolds() {
        for (value, segment) in [("key_ab/c", "key_ab%2Fc"), ("key_ab?x=1", "key_ab%3Fx%3D1"), ("key_ab#top", "key_ab%23top"), ("key_ab", "key_ab")] {
            let s = KillSwitch(kind: .key, value: value, createdAtMicros: 0)
            let row = SwitchesPage.Row(kind: "key", value: value, href: SwitchesPage.link(s, range: range), reason: "", hasReason: false,
                                       retryAfter: "–", since: "", sinceAt: "", tone: "warn")
            let html = Self.render("switches", ["rows": [row], "hasRows": true])
            #expect(Self.hrefs(html).contains("/keys/" + segment), "\(value): \(Self.hrefs(html))")
        }
    }

    /// Every page writes an id into a path the same way: unreserved ASCII kept, all else encoded.
    @Test func everyPageEncodesAnIdAsOneSegment() {
        let id = "a/b?c#d%e é"
        let segment = "a%2Fb%3Fc%23d%25e%20%C3%A9"
        #expect(TelemetryView.correlationHref(id) == "/correlation/" + segment)
        #expect(TelemetryView.issueHref(id) == "/issues/" + segment)
        #expect(AuditPage.targetLink(action: "key.update", target: id) == "/keys/" + segment)
        #expect(AuditPage.targetLink(action: "issue.status", target: id) == "/issues/" + segment)
        let audit = Self.render("audit", ["rows": [AuditPage.row(AuditEntry(timestampMicros: 0, actor: "console:a@b.c", action: "key.update", target: id, details: "{}"))],
                                          "hasRows": true])
        #expect(Self.hrefs(audit).contains("/keys/" + segment), "\(Self.hrefs(audit))")
    }

    // MARK: Budgets

    /// A budget whose only soft threshold is 90%, at 85% of its limit.
    static let nearlyWarned = BudgetUse(name: "budget:team-cap", scope: "global", value: nil, period: "month", windowStartMicros: 0,
                                        windowEndMicros: nil, limitMicros: 100_000_000, usedMicros: 85_000_000, grantedMicros: 85_000_000,
                                        softThresholds: [0.9])

    /// A budget's state as a page shows it: its meter's amber and red marks, and whether it is flagged.
    struct Shown: Equatable, CustomStringConvertible {
        var low: Double?
        var high: Double?
        var warned: Bool
        var description: String { "low \(low.map { "\($0)" } ?? "-") high \(high.map { "\($0)" } ?? "-") warned \(warned)" }

        init(_ html: String) {
            let meter = html.components(separatedBy: "<meter ").dropFirst().first?.split(separator: ">", maxSplits: 1).first.map(String.init) ?? ""
            func attribute(_ name: String) -> Double? {
                meter.components(separatedBy: " \(name)=\"").dropFirst().first?.split(separator: "\"").first.flatMap { Double($0) }
            }
            low = attribute("low")
            high = attribute("high")
            warned = html.contains("pill warn")
        }
    }

    /// Regression: the overview and keys pages turned a budget amber at a fixed 80% while the spend
    /// page used the budget's own soft thresholds, so one budget read as warned on one page and
    /// fine on the next.
    @Test func oneBudgetReadsTheSameOnEveryPage() {
        let use = Self.nearlyWarned
        let spend = Shown(Self.render("spend", ["budgets": [SpendPage.budgetRow(use, keyNames: [:])], "hasBudgets": true]))
        let overview = Shown(Self.render("overview", ["budgets": [OverviewPage.budgetBar(use)], "hasBudgets": true]))
        #expect(spend == Shown(low: 0.9, high: 0.9, warned: false), "\(spend)")
        #expect(overview == spend, "overview \(overview), spend \(spend)")

        let keyBudget = KeyBudgetView(amountUSD: "100.000000", period: "month", softThresholds: [0.9])
        let keyUse = BudgetUse(name: "key_a", scope: "key", value: nil, period: "month", windowStartMicros: 0, windowEndMicros: nil,
                               limitMicros: 100_000_000, usedMicros: 85_000_000, grantedMicros: 85_000_000, softThresholds: [0.9])
        let bar = KeysPage.budgetBar(keyBudget, name: "web", use: keyUse)
        let keys = Shown(Self.render("keys-detail", ["key": ["budget": bar]]))
        #expect(keys.low == spend.low && keys.high == spend.high, "keys \(keys), spend \(spend)")
        #expect(bar.warn == false && OverviewPage.budgetBar(use).warn == false)
    }

    /// Past the first soft threshold every page flags it.
    @Test func aBudgetPastItsFirstThresholdIsFlaggedEverywhere() {
        var use = Self.nearlyWarned
        use.usedMicros = 95_000_000
        #expect(OverviewPage.budgetBar(use).warn && SpendPage.budgetRow(use, keyNames: [:]).warn)
        #expect(Shown(Self.render("overview", ["budgets": [OverviewPage.budgetBar(use)], "hasBudgets": true])).warned)
    }

    /// A threshold is crossed exactly when the controls write its budget event
    /// (`used >= threshold × limit`), not by a comparison of rounded percents.
    @Test func aThresholdIsCrossedWhenTheControlsSayItIs() {
        for (used, limit, threshold) in [(700_000, 10_000_000, 0.07), (7_000_000, 10_000_000, 0.7), (6_999_999, 10_000_000, 0.7),
                                         (290_000, 1_000_000, 0.29), (570_000, 1_000_000, 0.57)] as [(Int64, Int64, Double)] {
            let bar = BudgetBar(name: "b", window: "day", usedMicros: used, limitMicros: limit, softThresholds: [threshold])
            #expect(bar.thresholdMarks[0].crossed == (Double(used) >= threshold * Double(limit)), "\(used) of \(limit) at \(threshold)")
            #expect(bar.warn == (Double(used) >= threshold * Double(limit)))
        }
    }

    /// An id from a URL is shown as it was in the URL: a stranger's sentence in a link reads as
    /// an address, not as the console's own words.
    @Test func aForeignIdIsShownAsInTheLink() {
        #expect(Format.foreignID("req_01abc-def.9") == "req_01abc-def.9")
        let spoof = "” Your session expired — sign in at evil.example"
        #expect(!Format.foreignID(spoof).contains("Your session expired"))
        #expect(Format.foreignID(String(repeating: "a", count: 500)).count <= 101)
    }
}

extension ConsoleConsistencyTests.Shown {
    init(low: Double?, high: Double?, warned: Bool) {
        self.low = low
        self.high = high
        self.warned = warned
    }
}
