import Foundation
import GatehouseAPI
import GatehouseCore
import Testing
@testable import GatehouseAlerts

/// A signal whose value the test sets.
final class ScriptedSignal: SignalSource, @unchecked Sendable {
    private let lock = NSLock()
    private var values: [SignalValue] = []
    func set(_ v: Double, labels: [String: String] = [:]) { lock.withLock { values = [SignalValue(labels: labels, value: v)] } }
    func set(_ vs: [SignalValue]) { lock.withLock { values = vs } }
    func read(_ expression: AlertExpression, nowMicros: Int64) async throws -> [SignalValue] { lock.withLock { values } }
}

let second: Int64 = 1_000_000
let t0: Int64 = 1_796_000_000_000_000

func rule(_ name: String = "HighErrorRate", expr: String = "error_rate over 5m > 1%", for duration: Int64 = 0,
          severity: AlertSeverity = .high) throws -> AlertRule {
    AlertRule(name: name, expressionText: expr, expression: try AlertExpressionParser.parse(expr), forMicros: duration, severity: severity,
              labels: ["team": "ai"], annotations: ["summary": "Too many failed AI calls", "runbook_url": "https://runbooks.example.com/ai"])
}

@Suite struct AlertExpressionTests {
    @Test func theSeedsRulesParse() throws {
        let e = try AlertExpressionParser.parse("error_rate over 5m > 1%")
        #expect(e.signal == .errorRate && e.windowMicros == 300 * second && e.comparison == .greater && e.threshold == 0.01)
        let c = try AlertExpressionParser.parse("count(level:error service:api) over 5m > 10")
        #expect(c.signal == .count && c.argument == "level:error service:api" && c.threshold == 10)
        let p = try AlertExpressionParser.parse("latency_p95(route:/v1/chat/completions) over 10m by model > 500ms")
        #expect(p.signal == .latencyP95 && p.groupBy == ["model"] && p.threshold == 500 && p.argument == "route:/v1/chat/completions")
        #expect(try AlertExpressionParser.parse("tokens over 1h > 100k").threshold == 100_000)
        #expect(try AlertExpressionParser.parse("spend over 1d >= $50").threshold == 50)
        #expect(try AlertExpressionParser.parse("budget_use by budget >= 80%").threshold == 0.8)
        #expect(try AlertExpressionParser.parse("storage_use > 80%").threshold == 0.8)
        #expect(try AlertExpressionParser.parse("latency_p99 over 5m > 2s").threshold == 2000)
        let nested = try AlertExpressionParser.parse(#"count((level:error OR level:fatal) message:"a (b)") over 1m > 0"#)
        #expect(nested.argument == #"(level:error OR level:fatal) message:"a (b)""#)
    }

    @Test func mistakesAreExplained() {
        func message(_ text: String) -> String {
            do { _ = try AlertExpressionParser.parse(text); return "" } catch { return error.message }
        }
        #expect(message("eror_rate over 5m > 1%").contains("unknown signal `eror_rate`"))
        #expect(message("error_rate > 1%").contains("needs a window"))
        #expect(message("budget_use over 1h > 80%").contains("takes no `over` window"))
        #expect(message("error_rate over 5m > 150%").isEmpty, "150% is a ratio of 1.5; allowed")
        #expect(message("error_rate over 5m > 5").contains("a share such as 1%"))
        #expect(message("latency_p95 over 5m > $3").contains("a duration"))
        #expect(message("count over 5m > 3").contains("count needs a query"))
        #expect(message("count(level:error over 5m > 3").contains("not closed"))
        #expect(message("error_rate over 5m by colour > 1%").contains("can be split by"))
        #expect(message("tokens over 1h 100000").contains("expected a comparison"))
        #expect(message("tokens over 0s > 1").contains("at least 1s"))
    }

    /// The guides' "Performance regression → Slack" and API p95 targets, over transactions.
    @Test func transactionSignalsParse() throws {
        let p95 = try AlertExpressionParser.parse(#"transaction_p95(name:"GET /api/tasks") over 10m > 500ms"#)
        #expect(p95.signal == .transactionP95 && p95.argument == #"name:"GET /api/tasks""# && p95.windowMicros == 600 * second && p95.threshold == 500)
        #expect(try AlertExpressionParser.parse("transaction_p99 over 5m by transaction > 2s").groupBy == ["transaction"])
        let regression = try AlertExpressionParser.parse("transaction_regression over 1h > 50%")
        #expect(regression.signal == .transactionRegression && regression.threshold == 0.5 && regression.baselineOffsetMicros == nil)
        let weekly = try AlertExpressionParser.parse(#"transaction_regression(name:"GET /api/tasks") over 1h against 1w by transaction > 20%"#)
        #expect(weekly.baselineOffsetMicros == 7 * 86_400 * second && weekly.groupBy == ["transaction"] && weekly.threshold == 0.2)
        func message(_ text: String) -> String {
            do { _ = try AlertExpressionParser.parse(text); return "" } catch { return error.message }
        }
        #expect(message("transaction_p95 over 10m by model > 1s").contains("can be split by transaction"))
        #expect(message("transaction_p95 over 10m > 5%").contains("a duration"))
        #expect(message("transaction_regression over 1h > 500ms").contains("a share"))
        #expect(message("error_rate over 5m against 1d > 1%").contains("only transaction_regression"))
        #expect(message("transaction_regression over 2d > 50%").contains("at most its baseline offset"))
        #expect(message("transaction_regression over 1h against 30m > 50%").contains("at least the window"))
        #expect(message("transaction_regression over 1h against 40d > 50%").contains("at most 31d"))
    }
}

@Suite struct AlertEvaluatorTests {
    /// pending → firing after `for`; resolved when the value drops; a blip shorter than `for` never fires.
    @Test func alertsMoveThroughTheirStates() async throws {
        let signal = ScriptedSignal()
        let evaluator = AlertEvaluator(rules: [try rule(for: 10 * second)], reader: signal)
        signal.set(0.05)
        var round = await evaluator.evaluate(nowMicros: t0)
        #expect(round.transitions.map(\.state) == [.pending] && round.current.isEmpty)
        round = await evaluator.evaluate(nowMicros: t0 + 5 * second)
        #expect(round.transitions.isEmpty && round.current.isEmpty)
        round = await evaluator.evaluate(nowMicros: t0 + 10 * second)
        #expect(round.transitions.map(\.state) == [.firing] && round.current.map(\.state) == [.firing])
        #expect(round.current[0].summary == "5% > 1%" && round.current[0].labels == ["alertname": "HighErrorRate", "severity": "high", "team": "ai"])
        signal.set(0.002)
        round = await evaluator.evaluate(nowMicros: t0 + 20 * second)
        #expect(round.transitions.map(\.state) == [.resolved] && round.current.map(\.state) == [.resolved])
        #expect(await evaluator.active().isEmpty)

        signal.set(0.5)
        _ = await evaluator.evaluate(nowMicros: t0 + 30 * second)
        signal.set(0)
        round = await evaluator.evaluate(nowMicros: t0 + 35 * second)
        #expect(round.transitions.map(\.state) == [.inactive] && round.current.isEmpty, "a blip shorter than `for` is dropped")
    }

    @Test func groupedSignalsMakeOneAlertPerLabelSet() async throws {
        let signal = ScriptedSignal()
        let evaluator = AlertEvaluator(rules: [try rule(expr: "latency_p95 over 5m by model > 500ms")], reader: signal)
        signal.set([SignalValue(labels: ["model": "gpt-4o"], value: 900), SignalValue(labels: ["model": "gpt-4o-mini"], value: 200)])
        let round = await evaluator.evaluate(nowMicros: t0)
        #expect(round.current.map { $0.labels["model"] } == ["gpt-4o"] && round.current[0].summary == "900 ms > 500 ms")
        #expect(AlertEvaluator.fingerprint(["a": "1", "b": "2"]) == AlertEvaluator.fingerprint(["b": "2", "a": "1"]))
    }
}

@Suite struct NotificationDispatcherTests {
    static func settings(groupWait: Int = 0, interval: Int = 60, repeatEvery: Int = 600, sendResolved: Bool = true) -> AlertSettings {
        var s = AlertSettings()
        s.receivers = [AlertReceiver(name: "slack", kind: .slack(webhookURL: "http://127.0.0.1/slack")),
                       AlertReceiver(name: "pager", kind: .pagerDuty(routingKey: "key", url: "http://127.0.0.1/pd"))]
        s.routes = [AlertRoute(receiver: "pager", severities: [.critical], continueMatching: true), AlertRoute(receiver: "slack")]
        s.groupWaitSeconds = groupWait
        s.groupIntervalSeconds = interval
        s.repeatIntervalSeconds = repeatEvery
        s.sendResolved = sendResolved
        return s
    }

    static func alert(_ name: String = "A", state: AlertState = .firing, severity: AlertSeverity = .high, model: String? = nil) -> ActiveAlert {
        var labels = ["alertname": name, "severity": severity.rawValue]
        if let model { labels["model"] = model }
        return ActiveAlert(rule: name, fingerprint: AlertEvaluator.fingerprint(labels), labels: labels, annotations: [:], severity: severity, state: state,
                           value: 1, summary: "1 > 0", expression: "errors over 5m > 0", activeSinceMicros: t0, firedAtMicros: t0)
    }

    /// Group wait, then once; changes after the group interval; repeats after the repeat interval; resolved once.
    @Test func groupsAreToldOnScheduleAndOnceResolved() async {
        let d = NotificationDispatcher(settings: Self.settings(groupWait: 30))
        #expect(await d.update([Self.alert()], silences: [], nowMicros: t0).isEmpty, "group wait")
        var sent = await d.update([Self.alert()], silences: [], nowMicros: t0 + 30 * second)
        #expect(sent.map(\.receiver.name) == ["slack"] && sent[0].status == "firing")
        #expect(await d.update([Self.alert()], silences: [], nowMicros: t0 + 100 * second).isEmpty, "no change, no repeat yet")
        sent = await d.update([Self.alert(), Self.alert(model: "x")], silences: [], nowMicros: t0 + 120 * second)
        #expect(sent.count == 1 && sent[0].alerts.count == 2, "a new alert in the group, after the group interval")
        sent = await d.update([Self.alert(), Self.alert(model: "x")], silences: [], nowMicros: t0 + 720 * second)
        #expect(sent.count == 1, "repeat interval")
        sent = await d.update([Self.alert(state: .resolved), Self.alert(state: .resolved, model: "x")], silences: [], nowMicros: t0 + 800 * second)
        #expect(sent.count == 1 && sent[0].status == "resolved" && sent[0].alerts.allSatisfy { $0.state == .resolved })
        #expect(await d.update([], silences: [], nowMicros: t0 + 2000 * second).isEmpty, "resolved is told once")
    }

    @Test func routesAndSilences() async {
        let d = NotificationDispatcher(settings: Self.settings())
        var sent = await d.update([Self.alert("Down", severity: .critical)], silences: [], nowMicros: t0)
        #expect(Set(sent.map(\.receiver.name)) == ["pager", "slack"], "continue: true also reaches the next route")
        let silence = Silence(id: "s", matchers: [Silence.Matcher("alertname=Quiet")!], startsAtMicros: t0, endsAtMicros: t0 + 100 * second,
                              createdBy: "t", comment: "")
        sent = await d.update([Self.alert("Quiet")], silences: [silence], nowMicros: t0 + 1 * second)
        #expect(sent.isEmpty, "silenced")
        sent = await d.update([Self.alert("Quiet")], silences: [silence], nowMicros: t0 + 200 * second)
        #expect(sent.filter { $0.status == "firing" }.map(\.groupLabels["alertname"]) == ["Quiet"], "the silence ended")
        #expect(sent.filter { $0.status == "resolved" }.map(\.groupLabels["alertname"]) == ["Down", "Down"],
                "an alert the evaluator no longer reports has resolved, and both receivers hear it")
        #expect(Silence.Matcher("severity!=low")!.matches(["severity": "high"]) && Silence.Matcher("no spaces allowed here=1") == nil)

        // Silencing one of two told alerts leaves it out of the next notification; it is not called resolved.
        let g = NotificationDispatcher(settings: Self.settings())
        _ = await g.update([Self.alert("Pair", model: "a"), Self.alert("Pair", model: "b")], silences: [], nowMicros: t0)
        let mute = Silence(id: "m", matchers: [Silence.Matcher("model=a")!], startsAtMicros: t0, endsAtMicros: t0 + 1000 * second, createdBy: "t", comment: "")
        sent = await g.update([Self.alert("Pair", model: "a"), Self.alert("Pair", model: "b")], silences: [mute], nowMicros: t0 + 61 * second)
        #expect(sent.count == 1 && sent[0].status == "firing" && sent[0].alerts.map { $0.labels["model"] } == ["b"])
        sent = await g.update([Self.alert("Pair", model: "a")], silences: [mute], nowMicros: t0 + 200 * second)
        #expect(sent.count == 1 && sent[0].status == "resolved" && sent[0].alerts.map { $0.labels["model"] } == ["b"], "b resolved; a stays silent")
    }

    @Test func payloadsFollowTheServicesFormats() throws {
        let n = AlertNotification(receiver: AlertReceiver(name: "hook", kind: .webhook(url: "http://x", headers: [:])), groupKey: "hook:{alertname=\"A\"}",
                                  groupLabels: ["alertname": "A"], status: "firing", alerts: [Self.alert(severity: .critical)],
                                  externalURL: "https://gatehouse.example.com", nowMicros: t0)
        let pd = NotificationPayloads.pagerDuty(n, routingKey: "R")
        let payload = try #require(pd["payload"] as? [String: Any])
        #expect(pd["event_action"] as? String == "trigger" && pd["routing_key"] as? String == "R")
        #expect(payload["severity"] as? String == "critical" && payload["source"] as? String == "gatehouse" && (payload["summary"] as? String)?.isEmpty == false)
        var resolved = n
        resolved.status = "resolved"
        let pdResolve = NotificationPayloads.pagerDuty(resolved, routingKey: "R")
        #expect(pdResolve["event_action"] as? String == "resolve" && pdResolve["dedup_key"] as? String == pd["dedup_key"] as? String)
        #expect(NotificationPayloads.pagerDutySeverity(.high) == "error" && NotificationPayloads.pagerDutySeverity(.low) == "info")

        let hook = NotificationPayloads.webhook(n)
        #expect(hook["version"] as? String == "4" && hook["status"] as? String == "firing" && hook["groupKey"] as? String == n.groupKey)
        let first = try #require((hook["alerts"] as? [[String: Any]])?.first)
        #expect(first["endsAt"] as? String == "0001-01-01T00:00:00Z" && (first["labels"] as? [String: String])?["alertname"] == "A")

        let slack = NotificationPayloads.slack(n)
        let blocks = try #require(slack["blocks"] as? [[String: Any]])
        #expect(blocks.first?["type"] as? String == "header" && (slack["text"] as? String)?.contains("FIRING") == true)
        #expect(blocks.contains { (($0["text"] as? [String: Any])?["text"] as? String)?.contains("*Query:* `errors over 5m > 0`") == true })
        #expect(try JSONSerialization.data(withJSONObject: slack).count > 0)
    }

    static func notification(_ alerts: [ActiveAlert], status: String = "firing") -> AlertNotification {
        AlertNotification(receiver: AlertReceiver(name: "hook", kind: .webhook(url: "http://x", headers: [:])), groupKey: "hook:{}", groupLabels: [:],
                          status: status, alerts: alerts, externalURL: "https://gatehouse.example.com", nowMicros: t0)
    }

    /// A name with characters that would break a Slack link (`|`, `>`), a URL (`#`, `%`, space) or ASCII.
    static let awkwardRule = "Errors | >5% #1 é"
    static let awkwardFragment = "Errors%20%7C%20%3E5%25%20%231%20%C3%A9"

    /// "Open in Gatehouse" opens the console's alerts page at the first firing rule's row.
    @Test func slackLinksToTheRuleInTheConsole() throws {
        func link(_ n: AlertNotification) throws -> String {
            let blocks = try #require(NotificationPayloads.slack(n)["blocks"] as? [[String: Any]])
            let elements = try #require(blocks.last?["elements"] as? [[String: Any]])
            return try #require(elements.first?["text"] as? String)
        }
        let firing = Self.notification([Self.alert("Quiet", state: .resolved), Self.alert(Self.awkwardRule)])
        #expect(try link(firing) == "<https://gatehouse.example.com/alerts#\(Self.awkwardFragment)|Open in Gatehouse>")
        let resolved = Self.notification([Self.alert("Quiet", state: .resolved)], status: "resolved")
        #expect(try link(resolved) == "<https://gatehouse.example.com/alerts#Quiet|Open in Gatehouse>", "resolved: its first rule")
    }

    /// PagerDuty's `client_url` and first link both open the first firing rule's row.
    @Test func pagerDutyLinksToTheFirstFiringRule() throws {
        let n = Self.notification([Self.alert("Quiet", state: .resolved), Self.alert(Self.awkwardRule, severity: .critical), Self.alert("Later")])
        let event = NotificationPayloads.pagerDuty(n, routingKey: "R")
        let expected = "https://gatehouse.example.com/alerts#" + Self.awkwardFragment
        #expect(event["client_url"] as? String == expected)
        let links = try #require(event["links"] as? [[String: Any]])
        #expect(links.first?["href"] as? String == expected && links.first?["text"] as? String == "Gatehouse alerts")
    }

    /// Each alert of an Alertmanager-style webhook links to its own rule's row.
    @Test func webhookAlertsLinkToTheirRules() throws {
        let n = Self.notification([Self.alert("HighErrorRate"), Self.alert(Self.awkwardRule, state: .resolved)])
        let alerts = try #require(NotificationPayloads.webhook(n)["alerts"] as? [[String: Any]])
        #expect(alerts.compactMap { $0["generatorURL"] as? String } == ["https://gatehouse.example.com/alerts#HighErrorRate",
                                                                         "https://gatehouse.example.com/alerts#" + Self.awkwardFragment])
        #expect(NotificationPayloads.webhook(n)["externalURL"] as? String == "https://gatehouse.example.com")
        #expect(NotificationPayloads.consoleURL("https://g.example", rule: nil) == "https://g.example/alerts")
        #expect(NotificationPayloads.consoleURL("https://g.example", rule: "") == "https://g.example/alerts")
    }
}

/// The one set of limits for a new silence, and the API's words for each.
@Suite struct SilenceLimitsTests {
    static let hour: Int64 = 3600 * second

    func problem(_ matchers: [String] = ["a=b"], starts: Int64 = t0, end: SilenceLimits.End) -> SilenceLimits.Problem? {
        do {
            _ = try SilenceLimits.silence(matchers: try SilenceLimits.matchers(matchers), startsAtMicros: starts, end: end, comment: nil, createdBy: "t",
                                          nowMicros: t0)
            return nil
        } catch {
            return error
        }
    }

    @Test func eachLimitIsItsOwnProblem() throws {
        #expect(problem([], end: .after("1h")) == .matchers)
        #expect(problem(["a=b", "no spaces allowed here=1"], end: .after("1h")) == .matchers)
        #expect(problem((0..<SilenceLimits.maxMatchers).map { "l\($0)=v" }, end: .after("1h")) == nil)
        #expect(problem((0...SilenceLimits.maxMatchers).map { "l\($0)=v" }, end: .after("1h")) == .matchers)
        #expect(problem(end: .after(nil)) == .noEnd && problem(end: .after("soon")) == .noEnd)
        #expect(problem(end: .after("0s")) == .endsTooSoon && problem(end: .at(t0)) == .endsTooSoon)
        #expect(problem(starts: t0 + 2 * Self.hour, end: .at(t0 + Self.hour)) == .endsTooSoon, "ends before it starts")
        #expect(problem(starts: t0 - 2 * Self.hour, end: .after("1h")) == .endsTooSoon, "ended already")
        #expect(problem(end: .after("366d")) == nil && problem(end: .after("367d")) == .tooLong)
        #expect(problem(end: .at(.max)) == .tooLong, "no overflow at the end of time")

        let long = String(repeating: "x", count: 5000)
        let silence = try SilenceLimits.silence(matchers: [try #require(Silence.Matcher("alertname=A"))], startsAtMicros: t0, end: .after("2h"),
                                                comment: long, createdBy: long, nowMicros: t0)
        #expect(silence.comment.count == SilenceLimits.maxCommentCharacters && silence.createdBy.count == SilenceLimits.maxCreatedByCharacters)
        #expect(silence.endsAtMicros == t0 + 2 * Self.hour && silence.startsAtMicros == t0 && silence.id.count == 36)
    }

    /// The API checks matchers before times and keeps its messages and parameters.
    @Test func theAPIWordsEachProblem() throws {
        func refusal(_ request: SilenceRequest) -> String {
            do {
                _ = try AlertRoutes.silence(request, nowMicros: t0)
                return "accepted"
            } catch {
                return "\(error.param ?? "-"): \(error.message)"
            }
        }
        let matchers = "matchers: `matchers` must be 1 to 20 of label=value or label!=value"
        #expect(refusal(SilenceRequest(matchers: nil, duration: "1h")) == matchers)
        #expect(refusal(SilenceRequest(matchers: ["bad matcher"], startsAt: "someday", duration: "1h")) == matchers, "matchers first")
        #expect(refusal(SilenceRequest(matchers: ["a=b"], startsAt: "someday", duration: "1h")).hasPrefix("starts_at: `starts_at` must be RFC 3339"))
        #expect(refusal(SilenceRequest(matchers: ["a=b"], endsAt: "later")).hasPrefix("ends_at: `ends_at` must be RFC 3339"))
        #expect(refusal(SilenceRequest(matchers: ["a=b"], duration: "soon")) == "ends_at: give `ends_at` (RFC 3339) or `duration` (such as 2h)")
        #expect(refusal(SilenceRequest(matchers: ["a=b"], endsAt: "2020-01-01T00:00:00Z")) == "ends_at: the silence must end in the future, after it starts")
        #expect(refusal(SilenceRequest(matchers: ["a=b"], duration: "400d")) == "ends_at: a silence may last at most a year")
        let made = try AlertRoutes.silence(SilenceRequest(matchers: ["a=b", "c!=d"], duration: "30m"), nowMicros: t0)
        #expect(made.matchers.map(\.description) == ["a=b", "c!=d"] && made.createdBy == "api" && made.comment == "" && made.endsAtMicros == t0 + 1800 * second)
    }
}

/// What a function with a typed error gives for `input`, the error with its own type.
func outcome<Input, Output, Failure: Error>(of function: (Input) throws(Failure) -> Output, _ input: Input) -> Result<Output, Failure> {
    do {
        return .success(try function(input))
    } catch {
        return .failure(error)
    }
}

/// The alerting API's answers keep the JSON they have always had: the same keys, `null`s and
/// numbers (sorted keys, as the server writes them), and they read back as the same values.
@Suite struct AlertAPIViewTests {
    /// `value` encoded, checked byte for byte against `json`, then decoded back.
    func expectJSON<T: Codable & Equatable>(_ value: T, _ json: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let encoded = String(decoding: try APIJSON.encode(value), as: UTF8.self)
        #expect(encoded == json, sourceLocation: sourceLocation)
        #expect(try APIJSON.decode(T.self, from: Data(encoded.utf8)) == value, sourceLocation: sourceLocation)
    }

    static let labels = ["alertname": "HighErrorRate", "severity": "high"]

    static func active(state: AlertState, value: Double, firedAt: Int64?) -> ActiveAlert {
        ActiveAlert(rule: "HighErrorRate", fingerprint: "0123456789abcdef", labels: labels, annotations: ["runbook_url": "https://runbooks.example.com/ai"],
                    severity: .high, state: state, value: value, summary: "5% > 1%", expression: "error_rate over 5m > 1%", activeSinceMicros: t0,
                    firedAtMicros: firedAt)
    }

    @Test func alertsAndTheirHistory() throws {
        let pending = Self.active(state: .pending, value: .nan, firedAt: nil)
        let firing = Self.active(state: .firing, value: 3, firedAt: t0 + 10 * second)
        try expectJSON(ActiveAlertView(alert: AlertView(pending), silencedBy: nil), """
            {"active_since":"2026-11-30T00:53:20.000Z","annotations":{"runbook_url":"https://runbooks.example.com/ai"},"expr":"error_rate over 5m > 1%",\
            "fingerprint":"0123456789abcdef","fired_at":null,"labels":{"alertname":"HighErrorRate","severity":"high"},"rule":"HighErrorRate",\
            "severity":"high","silenced_by":null,"state":"pending","summary":"5% > 1%","value":0}
            """)
        try expectJSON(ActiveAlertView(alert: AlertView(firing), silencedBy: "s-1"), """
            {"active_since":"2026-11-30T00:53:20.000Z","annotations":{"runbook_url":"https://runbooks.example.com/ai"},"expr":"error_rate over 5m > 1%",\
            "fingerprint":"0123456789abcdef","fired_at":"2026-11-30T00:53:30.000Z","labels":{"alertname":"HighErrorRate","severity":"high"},\
            "rule":"HighErrorRate","severity":"high","silenced_by":"s-1","state":"firing","summary":"5% > 1%","value":3}
            """)
        let transition = AlertTransition(timestampMicros: t0, rule: "HighErrorRate", fingerprint: "0123456789abcdef", labels: Self.labels, state: .resolved,
                                         value: 0.005, severity: .high, summary: "0.5%, no longer > 1%")
        try expectJSON(AlertsAnswer(active: [], history: [AlertHistoryEntry(transition)]), """
            {"active":[],"history":[{"fingerprint":"0123456789abcdef","labels":{"alertname":"HighErrorRate","severity":"high"},"rule":"HighErrorRate",\
            "severity":"high","state":"resolved","summary":"0.5%, no longer > 1%","timestamp":"2026-11-30T00:53:20.000Z","value":0.005}]}
            """)
    }

    @Test func rulesWithAndWithoutAWindow() throws {
        let firing = Self.active(state: .firing, value: 0.05, firedAt: t0)
        let windowed = AlertRuleView(try rule(for: 120 * second), alerts: [firing], lastError: nil)
        #expect(windowed.state == .firing && windowed.window == "5m" && windowed.forDuration == "2m")
        let budget = try rule("BudgetNearlySpent", expr: "budget_use by budget >= 80%", severity: .medium)
        let pending = ActiveAlert(rule: "BudgetNearlySpent", fingerprint: "f", labels: [:], annotations: [:], severity: .medium, state: .pending, value: 0.9,
                                  summary: "90% >= 80%", expression: "budget_use by budget >= 80%", activeSinceMicros: t0, firedAtMicros: nil)
        #expect(AlertRuleView(budget, alerts: [pending], lastError: nil).state == .pending)
        try expectJSON(AlertRulesAnswer(data: [AlertRuleView(budget, alerts: [], lastError: "the store is down")], evaluationIntervalSeconds: 15), """
            {"data":[{"alerts":[],"annotations":{"runbook_url":"https://runbooks.example.com/ai","summary":"Too many failed AI calls"},\
            "expr":"budget_use by budget >= 80%","for":"0d","labels":{"team":"ai"},"last_error":"the store is down","name":"BudgetNearlySpent",\
            "severity":"medium","signal":"budget_use","state":"inactive","threshold":">= 80%","window":null}],"evaluation_interval_seconds":15}
            """)
    }

    @Test func deliveriesAndSilences() throws {
        let delivery = DeliveryRecord(timestampMicros: t0, receiver: "hook", groupKey: "hook:{alertname=\"A\"}", status: "firing", attempt: 2,
                                      outcome: .retrying, detail: "answered 500")
        try expectJSON(AlertDeliveriesAnswer(data: [AlertDelivery(delivery)]), """
            {"data":[{"attempt":2,"detail":"answered 500","group_key":"hook:{alertname=\\"A\\"}","outcome":"retrying","receiver":"hook",\
            "status":"firing","timestamp":"2026-11-30T00:53:20.000Z"}]}
            """)
        let silence = Silence(id: "s-1", matchers: [Silence.Matcher("alertname=A")!, Silence.Matcher("severity!=low")!], startsAtMicros: t0,
                              endsAtMicros: t0 + 3600 * second, createdBy: "ops", comment: "deploy of api/v2")
        try expectJSON(SilenceView(silence, now: t0 + 10 * second), """
            {"comment":"deploy of api/v2","created_by":"ops","ends_at":"2026-11-30T01:53:20.000Z","id":"s-1","matchers":["alertname=A","severity!=low"],\
            "starts_at":"2026-11-30T00:53:20.000Z","state":"active"}
            """)
        #expect(SilenceView(silence, now: t0 - second).state == .pending && SilenceView(silence, now: t0 + 3600 * second).state == .expired)
        try expectJSON(SilenceExpiry(id: "s-1"), #"{"id":"s-1","state":"expired"}"#)
    }

    @Test func probesAndHeartbeats() throws {
        let up = ProbeMonitor.State(name: "app", kind: "http", up: true, since: t0, lastCheckMicros: t0 + 10 * second, lastLatencyMicros: 12_500,
                                    lastError: nil)
        let day = [true, true, false].map { ProbeResult(probe: "app", timestampMicros: t0, up: $0, status: 200, latencyMicros: 1000, error: nil) }
        try expectJSON(ProbeView(up, lastDay: day), """
            {"checks_24h":3,"kind":"http","last_check":"2026-11-30T00:53:30.000Z","last_error":null,"last_latency_ms":12.5,"name":"app",\
            "since":"2026-11-30T00:53:20.000Z","status":"up","uptime_24h":66.67}
            """)
        let unchecked = ProbeMonitor.State(name: "new", kind: "http")
        try expectJSON(ProbeView(unchecked, lastDay: []), """
            {"checks_24h":0,"kind":"http","last_check":null,"last_error":null,"last_latency_ms":null,"name":"new","since":null,"status":"unknown","uptime_24h":null}
            """)
        let late = ProbeMonitor.State(name: "nightly", kind: "heartbeat", up: false, lastCheckMicros: t0, lastError: "no ping for 200s")
        try expectJSON(ProbeList(data: [ProbeView(late, lastDay: nil)]), """
            {"data":[{"kind":"heartbeat","last_check":"2026-11-30T00:53:20.000Z","last_error":"no ping for 200s","last_latency_ms":null,\
            "name":"nightly","since":null,"status":"down"}]}
            """)
        let refused = ProbeResult(probe: "app", timestampMicros: t0, up: false, status: nil, latencyMicros: 1500, error: "connection refused")
        let answered = ProbeResult(probe: "app", timestampMicros: t0, up: true, status: 200, latencyMicros: 2000, error: nil)
        try expectJSON(ProbeResultsAnswer(probe: "app", data: [ProbeResultView(refused), ProbeResultView(answered)]), """
            {"data":[{"error":"connection refused","latency_ms":1.5,"status":null,"timestamp":"2026-11-30T00:53:20.000Z","up":false},\
            {"error":null,"latency_ms":2,"status":200,"timestamp":"2026-11-30T00:53:20.000Z","up":true}],"probe":"app"}
            """)
        try expectJSON(HeartbeatReceipt(name: "nightly", received: "2026-11-30T00:53:20.000Z"), #"{"name":"nightly","received":"2026-11-30T00:53:20.000Z"}"#)
    }

    /// A silence body that is not an object, or has a field of the wrong type, is refused naming the field.
    @Test func silenceBodiesAreCheckedFieldByField() throws {
        struct Refusal: Equatable {
            var message: String
            var param: String?
        }
        func refusal(_ body: String) -> Refusal {
            switch outcome(of: AlertRoutes.silenceRequest, Data(body.utf8)) {
            case .success: Refusal(message: "accepted")
            case .failure(let error): Refusal(message: error.message, param: error.param)
            }
        }
        let decoded = try AlertRoutes.silenceRequest(Data(#"{"matchers": ["a=b"], "duration": "2h", "comment": null, "extra": 1}"#.utf8))
        #expect(decoded == SilenceRequest(matchers: ["a=b"], duration: "2h"))
        for body in ["", "[1, 2]", "\"text\"", "null", "{\"matchers\": "] {
            let answer = refusal(body)
            #expect(answer.message.hasPrefix("send a JSON object") && answer.param == nil, "\(body)")
        }
        let badMatchers = Refusal(message: "`matchers` must be 1 to 20 of label=value or label!=value", param: "matchers")
        #expect(refusal(#"{"matchers": "a=b", "duration": "2h"}"#) == badMatchers)
        #expect(refusal(#"{"matchers": ["a=b", 5], "duration": "2h"}"#) == badMatchers)
        #expect(refusal(#"{"matchers": ["a=b"], "duration": 7200}"#) == Refusal(message: "`duration` must be a string", param: "duration"))
        #expect(refusal(#"{"matchers": ["a=b"], "ends_at": true}"#) == Refusal(message: "`ends_at` must be a string", param: "ends_at"))
        #expect(refusal(#"{"matchers": ["a=b"], "duration": "2h", "created_by": {"name": "x"}}"#)
                == Refusal(message: "`created_by` must be a string", param: "created_by"))
    }
}
