import Foundation
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
}
