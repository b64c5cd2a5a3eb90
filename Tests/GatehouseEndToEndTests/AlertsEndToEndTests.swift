import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

func activeAlerts(_ api: TypedAPI) async throws -> [ActiveAlertView] {
    try await api.get("/api/v1/alerts", as: AlertsAnswer.self).active
}

/// CLI output without terminal colours, in case they are on.
func plain(_ text: String) -> String {
    text.replacingOccurrences(of: "\u{1B}\\[[0-9;]*m", with: "", options: .regularExpression)
}

func postErrors(_ gatehouse: GatehouseProcess, _ n: Int) async throws {
    let lines = (0..<n).map { _ in #"{"level":"error","service":"api","message":"boom"}"# }.joined(separator: "\n")
    _ = try await HTTP.send(gatehouse.baseURL + "/api/v1/logs", body: Data(lines.utf8))
}

@Suite(.serialized) struct AlertsEndToEndTests {
    static let errorBurst = """
            - name: ErrorBurst
              expr: count(level:error service:api) over 4s > 2
              for: 2s
              severity: critical
              summary: The API logs errors
              runbook_url: https://runbooks.example.com/errors
        """

    /// `rules` and `extra` are YAML indented for a place under `alerts:`.
    static func config(_ r: Receiver, rules: String = errorBurst, extra: String = "") -> String {
        """
        recorder: {flush_interval_ms: 20}
        alerts:
          evaluation_interval_seconds: 1
          group_wait_seconds: 0
          group_interval_seconds: 1
          repeat_interval_seconds: 3
          external_url: https://gatehouse.example.com
          receivers:
            - {name: slack, slack: {webhook_url: "\(r.baseURL)/slack"}}
            - {name: pager, pagerduty: {routing_key: R0UTING-KEY-0123456789, url: "\(r.baseURL)/pagerduty"}}
            - {name: hook, webhook: {url: "\(r.baseURL)/hook", headers: {X-Token: hook-secret}}}
          routes:
            - {receiver: hook, match: {channel: hook}}
            - {receiver: pager, severity: critical, continue: true}
            - {receiver: slack}
          rules:
        \(rules)
        \(extra)
        """
    }

    /// A rule fires after its `for`, notifies Slack and PagerDuty once, repeats on schedule,
    /// resolves (PagerDuty gets `resolve` with the same dedup key), and a silence mutes it.
    @Test(arguments: Backend.allCases)
    func aRuleFiresRepeatsResolvesAndRespectsSilences(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        let gatehouse = try await GatehouseProcess.start(yaml: Self.config(receiver), databaseURL: try backend.databaseURL())
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        // Keep errors coming for a while: the condition holds, then stops holding.
        let started = ContinuousClock.now
        let load = Task {
            while ContinuousClock.now - started < .seconds(7) {
                try await postErrors(gatehouse, 2)
                // Pacing, not waiting: a steady trickle of errors for 7 s, so the condition holds a while, then stops.
                try await Task.sleep(for: .milliseconds(400))
            }
        }
        try await Poll.until("the alert fires") { try await activeAlerts(api).contains { $0.alert.state == .firing } }
        let firing = try #require(try await activeAlerts(api).first).alert
        let fired = try #require(firing.firedAt)
        let gap = try #require(ISO8601DateFormatter.withFraction.date(from: fired))
            .timeIntervalSince(try #require(ISO8601DateFormatter.withFraction.date(from: firing.activeSince)))
        #expect(gap >= 2, "firing waits for `for: 2s` (waited \(gap) s)")
        #expect(firing.labels == ["alertname": "ErrorBurst", "severity": "critical"] && firing.severity == .critical)
        #expect(firing.annotations["runbook_url"] == "https://runbooks.example.com/errors" && firing.value > 2)
        let rules = try await api.get("/api/v1/alerts/rules", as: AlertRulesAnswer.self)
        let errorBurst = try #require(rules.data.first { $0.name == "ErrorBurst" })
        #expect(rules.evaluationIntervalSeconds == 1 && errorBurst.signal == "count" && errorBurst.threshold == "> 2")
        #expect(errorBurst.window == "4s" && errorBurst.forDuration == "2s" && errorBurst.lastError == nil)
        #expect(errorBurst.state == .firing && errorBurst.alerts.map(\.fingerprint) == [firing.fingerprint])
        try await Poll.until("Slack and PagerDuty hear it") {
            let slack = try await receiver.received("/slack"), pager = try await receiver.received("/pagerduty")
            return !slack.isEmpty && !pager.isEmpty
        }
        #expect(try await receiver.received("/slack").count == 1, "once, not once per evaluation")
        try await Poll.until("it repeats after repeat_interval") { try await receiver.received("/pagerduty").count >= 2 }
        let slackTimes = try await receiver.received("/slack").compactMap { ($0["at"] as? NSNumber)?.doubleValue }
        if slackTimes.count >= 2 { #expect(slackTimes[1] - slackTimes[0] >= 2.5, "repeats are spaced by repeat_interval") }
        let deliveries = try await api.get("/api/v1/alerts/deliveries", as: AlertDeliveriesAnswer.self).data
        #expect(Set(deliveries.filter { $0.outcome == .delivered && $0.status == "firing" && $0.attempt == 1 }.map(\.receiver)) == ["slack", "pager"],
                "\(deliveries)")
        try await load.value
        try await Poll.until("it resolves") { try await activeAlerts(api).isEmpty }
        try await Poll.until("the resolution is told") {
            try await receiver.received("/pagerduty").contains { ($0["body"] as? [String: Any])?["event_action"] as? String == "resolve" }
        }
        let pd = try await receiver.received("/pagerduty").compactMap { $0["body"] as? [String: Any] }
        let trigger = try #require(pd.first)
        #expect(trigger["event_action"] as? String == "trigger" && trigger["routing_key"] as? String == "R0UTING-KEY-0123456789")
        #expect((trigger["payload"] as? [String: Any])?["severity"] as? String == "critical")
        #expect(trigger["client_url"] as? String == "https://gatehouse.example.com/alerts#ErrorBurst", "PagerDuty links to the rule's row in the console")
        #expect((trigger["links"] as? [[String: Any]])?.first?["href"] as? String == "https://gatehouse.example.com/alerts#ErrorBurst")
        #expect(Set(pd.compactMap { $0["dedup_key"] as? String }).count == 1, "one dedup key for trigger, repeats and resolve")
        let slack = try await receiver.received("/slack").compactMap { $0["body"] as? [String: Any] }
        let text = slack.compactMap { ($0["blocks"] as? [[String: Any]])?.description }.joined()
        #expect(text.contains("count(level:error service:api) over 4s > 2") && text.contains("<https://gatehouse.example.com/alerts#ErrorBurst|Open in Gatehouse>"),
                "Slack links to the rule's row in the console: \(text)")
        #expect((slack.last?["text"] as? String)?.contains("RESOLVED") == true)
        #expect(try await receiver.received("/hook").isEmpty, "routes decide who hears what")
        try await Poll.until("the resolution is recorded as delivered") {
            try await api.get("/api/v1/alerts/deliveries", as: AlertDeliveriesAnswer.self).data.contains { $0.status == "resolved" && $0.outcome == .delivered }
        }

        // History keeps every transition.
        let history = try await api.get("/api/v1/alerts?rule=ErrorBurst", as: AlertsAnswer.self).history
        #expect(history.map(\.state).reversed() == [.pending, .firing, .resolved])
        #expect(history.allSatisfy { $0.rule == "ErrorBurst" && $0.fingerprint == firing.fingerprint && $0.severity == .critical })
        #expect(try await api.get("/api/v1/alerts?rule=ErrorBurst&limit=1", as: AlertsAnswer.self).history.map(\.state) == [.resolved])

        // Silenced: it fires again, but nobody is told.
        let silence = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["silence", "add", "--url", gatehouse.baseURL,
                                                                                           "--matcher", "alertname=ErrorBurst", "--duration", "1h", "--comment", "deploy"])
        #expect(silence.status == 0 && silence.output.contains("Silenced alertname=ErrorBurst"))
        let created = try #require(try await api.get("/api/v1/silences", as: SilenceList.self).data.first)
        #expect(created.matchers == ["alertname=ErrorBurst"] && created.comment == "deploy" && created.state == .active)
        #expect(plain(silence.output).contains("Silenced alertname=ErrorBurst until \(created.endsAt) — id \(created.id)"), "\(silence.output)")
        let before = try await receiver.received().count
        let burst = Task {
            while !Task.isCancelled {
                try await postErrors(gatehouse, 3)
                // Pacing, not waiting: errors keep coming, so the condition holds until the burst is cancelled.
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        try await Poll.until("the alert fires again, silenced") {
            try await activeAlerts(api).contains { $0.alert.state == .firing && $0.silencedBy == created.id }
        }
        // With group_wait 0 a firing alert is notified in the round that saw it fire: two more
        // rounds, and a notification the silence failed to stop would have gone out.
        let evaluations = try await metricSum(gatehouse, "gatehouse_alert_evaluations_total")
        try await Poll.until("two more alert evaluations") { try await metricSum(gatehouse, "gatehouse_alert_evaluations_total") >= evaluations + 2 }
        burst.cancel()
        _ = await burst.result
        let silenced = try await activeAlerts(api)
        #expect(silenced.first?.alert.state == .firing && silenced.first?.silencedBy == created.id)
        #expect(try await receiver.received().count == before, "a silence mutes notifications")
        let list = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["silence", "list", "--url", gatehouse.baseURL])
        #expect(list.output.contains("alertname=ErrorBurst") && list.output.contains("active"))

        // Expired: the alert is no longer muted.
        let expired = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["silence", "expire", "--url", gatehouse.baseURL, created.id])
        #expect(expired.status == 0 && plain(expired.output).contains("Silence \(created.id) expired."), "\(expired.output)")
        #expect(try await api.get("/api/v1/silences", as: SilenceList.self).data.map(\.state) == [.expired])
        try await Poll.until("the alert is no longer silenced") { try await activeAlerts(api).allSatisfy { $0.silencedBy == nil } }
        try await api.verifyContract()
        try await gatehouse.stop()
        try await receiver.stop()
    }

    /// A receiver that answers 500 twice still gets the notification; every attempt is recorded.
    @Test func aFailingReceiverGetsTheNotificationWhenItRecovers() async throws {
        let receiver = try await Receiver.start()
        try await receiver.control(#"{"fail": {"/hook": 2}}"#)
        let gatehouse = try await GatehouseProcess.start(yaml: Self.config(receiver, rules: """
                - name: AnyAICall
                  expr: requests over 1m > 0
                  severity: low
                  labels: {channel: hook}
            """))
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        _ = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: #"{"model":"mock/gpt-4o-mini","messages":[]}"#)
        try await Poll.until("the webhook gets it on the third try", timeout: .seconds(30)) {
            try await receiver.received("/hook").contains { ($0["answered"] as? NSNumber)?.intValue == 200 }
        }
        let hooks = try await receiver.received("/hook")
        #expect(hooks.compactMap { ($0["answered"] as? NSNumber)?.intValue }.prefix(3) == [500, 500, 200])
        let payload = try #require(hooks.last?["body"] as? [String: Any])
        #expect(payload["version"] as? String == "4" && payload["status"] as? String == "firing" && payload["receiver"] as? String == "hook")
        let alert = try #require((payload["alerts"] as? [[String: Any]])?.first)
        #expect(alert["labels"] as? [String: String] == ["alertname": "AnyAICall", "severity": "low", "channel": "hook"])
        #expect(alert["generatorURL"] as? String == "https://gatehouse.example.com/alerts#AnyAICall", "the alert links to its rule's row in the console")
        #expect((hooks.last?["headers"] as? [String: String])?["x-token"] == "hook-secret")
        let deliveries = try await api.get("/api/v1/alerts/deliveries", as: AlertDeliveriesAnswer.self).data.filter { $0.receiver == "hook" }
        let outcomes = deliveries.map(\.outcome)
        // The first two attempts are recorded as retrying and one delivery succeeds; with repeats
        // every 3 s, the success may be a newer notification that superseded the first.
        #expect(Array(outcomes.reversed().prefix(2)) == [.retrying, .retrying] && outcomes.contains(.delivered), "\(outcomes)")
        #expect(Array(deliveries.reversed().prefix(2).map(\.attempt)) == [1, 2], "attempts are numbered from 1")
        #expect(deliveries.allSatisfy { $0.groupKey.hasPrefix("hook:") && $0.status == "firing" })
        #expect(deliveries.last?.detail.contains("500") == true, "a failed attempt says what the receiver answered: \(deliveries.last?.detail ?? "")")
        let rule = try #require(try await api.get("/api/v1/alerts/rules", as: AlertRulesAnswer.self).data.first)
        #expect(rule.name == "AnyAICall" && rule.window == "1m" && rule.forDuration == "0d" && rule.labels == ["channel": "hook"])
        #expect(try await api.get("/api/v1/alerts/deliveries?limit=1", as: AlertDeliveriesAnswer.self).data.count == 1)
        try await api.verifyContract()
        try await gatehouse.stop()
        try await receiver.stop()
    }

    /// A probe of a server that goes down and comes back: DOWN and UP, and the alert that goes with them.
    @Test func aProbeGoesDownAndUpWithItsAlert() async throws {
        let receiver = try await Receiver.start()
        let gatehouse = try await GatehouseProcess.start(yaml: Self.config(receiver, rules: """
                - name: AppDown
                  expr: probe_down(app) > 0
                  severity: high
            """, extra: """
              probes:
                - {name: app, url: "\(receiver.baseURL)/health", interval_seconds: 1, retries: 2, expected_json: {path: status, value: ok}}
              heartbeats:
                - {name: nightly, interval_seconds: 60, token: beat-0123456789}
            """))
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        func probe(_ name: String = "app") async throws -> ProbeView? {
            try await api.get("/api/v1/probes", as: ProbeList.self).data.first { $0.name == name }
        }
        try await Poll.until("the probe is up") { try await probe()?.status == .up }
        let heartbeatBefore = try #require(try await probe("nightly"))
        #expect(heartbeatBefore.kind == "heartbeat" && heartbeatBefore.status == .unknown && heartbeatBefore.lastCheck == nil, "no ping yet")
        #expect(heartbeatBefore.checks24h == nil && heartbeatBefore.uptime24h == nil)
        try await receiver.control(#"{"health": 503}"#)
        try await Poll.until("the probe is down") { try await probe()?.status == .down }
        let down = try #require(try await probe())
        #expect(down.lastError?.contains("status 503") == true && down.since != nil && down.lastCheck != nil && down.kind == "http")
        #expect((down.checks24h ?? 0) >= 3 && (down.uptime24h ?? 100) < 100, "\(down)")
        try await Poll.until("AppDown is sent") {
            try await receiver.received("/slack").contains { (($0["body"] as? [String: Any])?["text"] as? String)?.contains("AppDown") == true }
        }
        let appDown = try #require(try await activeAlerts(api).first)
        #expect(appDown.alert.rule == "AppDown" && appDown.alert.state == .firing && appDown.silencedBy == nil)
        try await receiver.control(#"{"health": 200}"#)
        try await Poll.until("the probe is up again") { try await probe()?.status == .up }
        try await Poll.until("AppDown resolves") {
            try await receiver.received("/slack").contains { (($0["body"] as? [String: Any])?["text"] as? String)?.contains("RESOLVED") == true }
        }
        let up = try #require(try await probe())
        #expect(up.lastError == nil && (up.lastLatencyMs ?? -1) >= 0)
        let results = try await api.get("/api/v1/probes/app/results", as: ProbeResultsAnswer.self)
        #expect(results.probe == "app")
        #expect(results.data.contains { $0.up } && results.data.contains { !$0.up }, "results are stored and queryable")
        #expect(Set(results.data.compactMap(\.status)) == [200, 503] && results.data.allSatisfy { ($0.error == nil) == $0.up && $0.latencyMs >= 0 })
        #expect(try await api.get("/api/v1/probes/app/results?from=-1h&limit=2", as: ProbeResultsAnswer.self).data.count == 2)
        let badFrom = try await api.failure(.GET, "/api/v1/probes/app/results?from=yesterday-ish")
        #expect(badFrom.status == 400 && badFrom.error.error.param == "from")
        let badLimit = try await api.failure(.GET, "/api/v1/probes/app/results?limit=10001")
        #expect(badLimit.status == 400 && badLimit.error.error.param == "limit")
        let unknownProbe = try await api.failure(.GET, "/api/v1/probes/nope/results")
        #expect(unknownProbe.status == 404 && unknownProbe.error.error.message == "no probe named nope")
        let (_, metrics) = try await HTTP.get(gatehouse.baseURL + "/metrics")
        #expect(String(decoding: metrics, as: UTF8.self).contains(#"gatehouse_probe_up{probe="app"} 1"#))
        // Heartbeats: the job's token is needed, as ?token= or a bearer token.
        let ping = try await api.send(.POST, "/api/v1/heartbeats/nightly?token=beat-0123456789", as: HeartbeatReceipt.self)
        #expect(ping.name == "nightly" && ISO8601DateFormatter.withFraction.date(from: ping.received) != nil)
        let byGet = try await api.get("/api/v1/heartbeats/nightly/ping", as: HeartbeatReceipt.self, headers: [("Authorization", "Bearer beat-0123456789")])
        #expect(byGet.name == "nightly")
        let wrong = try await api.failure(.POST, "/api/v1/heartbeats/nightly?token=wrong")
        #expect(wrong.status == 401 && wrong.error.error.code == "invalid_heartbeat_token")
        #expect(try await api.failure(.GET, "/api/v1/heartbeats/nightly/ping").status == 401, "no token at all")
        let unknownBeat = try await api.failure(.POST, "/api/v1/heartbeats/weekly")
        #expect(unknownBeat.status == 404 && unknownBeat.error.error.message == "no heartbeat named weekly")
        #expect(try await api.failure(.GET, "/api/v1/heartbeats/weekly/ping").status == 404)
        let heartbeat = try #require(try await probe("nightly"))
        #expect(heartbeat.status == .up && heartbeat.lastCheck == byGet.received && heartbeat.since == nil && heartbeat.lastLatencyMs == nil)
        try await api.verifyContract()
        try await gatehouse.stop()
        try await receiver.stop()
    }

    /// With an admin token, the alerting API needs it; silences are created, listed and expired
    /// through the API and the CLI; and what the API cannot serve is refused with the right status.
    @Test func silencesAndRefusalsKeepTheContract() async throws {
        let token = "admin-token-0123456789"
        let gatehouse = try await GatehouseProcess.start(yaml: """
            alerts:
              evaluation_interval_seconds: 1
              rules:
                - {name: BudgetNearlySpent, expr: "budget_use by budget >= 80%", severity: medium}
              probes:
                - {name: closed, url: "http://127.0.0.1:1/health", interval_seconds: 1, timeout_ms: 500}
              heartbeats:
                - {name: backup, interval_seconds: 3600}
            """, environment: ["GATEHOUSE_ADMIN_TOKEN": token])
        let anonymous = TypedAPI(baseURL: gatehouse.baseURL)
        for path in ["/api/v1/alerts", "/api/v1/alerts/rules", "/api/v1/alerts/deliveries", "/api/v1/silences", "/api/v1/probes", "/api/v1/probes/closed/results"] {
            let refused = try await anonymous.failure(.GET, path)
            #expect(refused.status == 401 && refused.error.error.code == "invalid_admin_token", "\(path)")
        }
        #expect(try await anonymous.failure(.POST, "/api/v1/silences", body: Data(#"{"matchers": ["a=b"], "duration": "1h"}"#.utf8)).status == 401)
        #expect(try await anonymous.failure(.DELETE, "/api/v1/silences/any").status == 401)
        // A heartbeat without a token of its own is open to anyone, admin token or not.
        #expect(try await anonymous.send(.POST, "/api/v1/heartbeats/backup", as: HeartbeatReceipt.self).name == "backup")
        #expect(try await anonymous.get("/api/v1/heartbeats/backup/ping", as: HeartbeatReceipt.self).name == "backup")
        try await anonymous.verifyContract()

        let api = TypedAPI(baseURL: gatehouse.baseURL, adminToken: token)
        let rule = try #require(try await api.get("/api/v1/alerts/rules", as: AlertRulesAnswer.self).data.first)
        #expect(rule.window == nil && rule.state == .inactive && rule.alerts.isEmpty && rule.threshold == ">= 80%" && rule.severity == .medium)
        #expect(try await api.get("/api/v1/alerts", as: AlertsAnswer.self) == AlertsAnswer(active: [], history: []))
        #expect(try await api.get("/api/v1/alerts/deliveries", as: AlertDeliveriesAnswer.self).data.isEmpty)
        try await Poll.until("the closed port's probe is down") {
            try await api.get("/api/v1/probes", as: ProbeList.self).data.first { $0.name == "closed" }?.status == .down
        }
        let refusedCheck = try #require(try await api.get("/api/v1/probes/closed/results", as: ProbeResultsAnswer.self).data.first)
        #expect(refusedCheck.status == nil && refusedCheck.up == false && refusedCheck.error != nil, "no answer, no status")
        let backup = try #require(try await api.get("/api/v1/probes", as: ProbeList.self).data.first { $0.name == "backup" })
        #expect(backup.status == .up && backup.checks24h == nil)

        // Silences through the API: one that starts later, one now; expiring ends either.
        let later = try await api.send(.POST, "/api/v1/silences", json: SilenceRequest(matchers: ["alertname=BudgetNearlySpent", "budget!=team-x"],
                                                                                       startsAt: "2099-01-01T00:00:00Z", endsAt: "2099-01-02T00:00:00Z"),
                                       as: SilenceView.self)
        #expect(later.state == .pending && later.createdBy == "api" && later.comment == "" && later.matchers == ["alertname=BudgetNearlySpent", "budget!=team-x"])
        #expect(later.startsAt.hasPrefix("2099-01-01T00:00:00") && later.endsAt.hasPrefix("2099-01-02T00:00:00"))
        let now = try await api.send(.POST, "/api/v1/silences", json: SilenceRequest(matchers: ["severity=medium"], duration: "30m", comment: "budget review",
                                                                                     createdBy: "ops"), as: SilenceView.self)
        #expect(now.state == .active && now.createdBy == "ops" && now.comment == "budget review")
        let expiry = try await api.send(.DELETE, "/api/v1/silences/\(later.id)", as: SilenceExpiry.self)
        #expect(expiry == SilenceExpiry(id: later.id, state: .expired))
        let states = Dictionary(uniqueKeysWithValues: try await api.get("/api/v1/silences", as: SilenceList.self).data.map { ($0.id, $0.state) })
        #expect(states == [later.id: .expired, now.id: .active])
        let missing = try await api.failure(.DELETE, "/api/v1/silences/no-such-silence")
        #expect(missing.status == 404 && missing.error.error.message == "no silence with id no-such-silence")

        // Bodies and parameters the API refuses, each naming what is wrong.
        func refusal(_ body: String) async throws -> (status: Int, message: String, param: String?) {
            let answer = try await api.failure(.POST, "/api/v1/silences", body: Data(body.utf8))
            return (answer.status, answer.error.error.message, answer.error.error.param)
        }
        let notObject = try await refusal(#"["alertname=X"]"#)
        #expect(notObject.status == 400 && notObject.message.hasPrefix("send a JSON object") && notObject.param == nil)
        let wrongType = try await refusal(#"{"matchers": ["a=b"], "duration": 3600}"#)
        #expect(wrongType.status == 400 && wrongType.message == "`duration` must be a string" && wrongType.param == "duration")
        let commentType = try await refusal(#"{"matchers": ["a=b"], "duration": "1h", "comment": ["x"]}"#)
        #expect(commentType.status == 400 && commentType.param == "comment")
        for body in [#"{"duration": "1h"}"#, #"{"matchers": [], "duration": "1h"}"#, #"{"matchers": ["no spaces allowed here=1"], "duration": "1h"}"#,
                     #"{"matchers": "a=b", "duration": "1h"}"#] {
            let answer = try await refusal(body)
            #expect(answer.status == 400 && answer.param == "matchers" && answer.message.contains("1 to 20 of label=value"), "\(body)")
        }
        let noEnd = try await refusal(#"{"matchers": ["a=b"], "duration": "soon"}"#)
        #expect(noEnd.status == 400 && noEnd.param == "ends_at" && noEnd.message.contains("give `ends_at`"))
        let past = try await refusal(#"{"matchers": ["a=b"], "ends_at": "2020-01-01T00:00:00Z"}"#)
        #expect(past.status == 400 && past.message == "the silence must end in the future, after it starts")
        let long = try await refusal(#"{"matchers": ["a=b"], "duration": "400d"}"#)
        #expect(long.status == 400 && long.message == "a silence may last at most a year")
        let badStart = try await refusal(#"{"matchers": ["a=b"], "starts_at": "someday", "duration": "1h"}"#)
        #expect(badStart.status == 400 && badStart.param == "starts_at")
        let huge = try await api.failure(.POST, "/api/v1/silences", body: Data(repeating: UInt8(ascii: " "), count: 65 * 1024))
        #expect(huge.status == 413 && huge.error.error.code == "request_too_large", "a body over 64 KiB is too large, not a store failure")
        for path in ["/api/v1/alerts?limit=0", "/api/v1/alerts/deliveries?limit=1001"] {
            let answer = try await api.failure(.GET, path)
            #expect(answer.status == 400 && answer.error.error.param == "limit", "\(path)")
        }
        #expect(try await api.get("/api/v1/silences", as: SilenceList.self).data.count == 2, "nothing refused was stored")
        try await api.verifyContract()

        // The CLI: the same silences, its output as before.
        let cli = ProcessInfo.processInfo.environment.merging(["GATEHOUSE_ADMIN_TOKEN": token]) { $1 }
        let added = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["silence", "add", "--url", gatehouse.baseURL, "--matcher", "budget=team-a",
                                                                                        "--duration", "2h", "--comment", "see ops/budgets", "--author", "ana", "--json"],
                                                     environment: cli)
        #expect(added.status == 0, "\(added.output)")
        let addedJSON = try #require(plain(added.output).split(separator: "\n").last)
        #expect(addedJSON.contains(#""comment":"see ops\/budgets","created_by":"ana","ends_at":"#), "--json prints sorted keys, slashes escaped: \(addedJSON)")
        let addedSilence = try APIJSON.decode(SilenceView.self, from: Data(addedJSON.utf8))
        #expect(addedSilence.matchers == ["budget=team-a"] && addedSilence.state == .active)
        let listed = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["silence", "list", "--url", gatehouse.baseURL], environment: cli)
        let lines = plain(listed.output).split(separator: "\n").map(String.init)
        let silences = try await api.get("/api/v1/silences", as: SilenceList.self).data
        let expected = silences.filter { $0.state == .active } + silences.filter { $0.state != .active }
        #expect(lines == expected.map { "\($0.id)  \($0.state.rawValue)  \($0.matchers.joined(separator: ","))  until \($0.endsAt)  \($0.createdBy): \($0.comment)" },
                "\(listed.output)")
        let listedJSON = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["silence", "list", "--url", gatehouse.baseURL, "--json"], environment: cli)
        #expect(try APIJSON.decode(SilenceList.self, from: Data(listedJSON.output.utf8)).data == silences)
        let expiredByCLI = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["silence", "expire", "--url", gatehouse.baseURL, addedSilence.id],
                                                            environment: cli)
        #expect(expiredByCLI.status == 0 && plain(expiredByCLI.output).trimmingCharacters(in: .whitespacesAndNewlines) == "Silence \(addedSilence.id) expired.")
        let unknown = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["silence", "expire", "--url", gatehouse.baseURL, "nope"], environment: cli)
        #expect(unknown.status == 1 && unknown.output.contains("Gatehouse answered 404: no silence with id nope"), "\(unknown.output)")
        var noToken = ProcessInfo.processInfo.environment
        noToken["GATEHOUSE_ADMIN_TOKEN"] = nil
        let unauthorised = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["silence", "list", "--url", gatehouse.baseURL], environment: noToken)
        #expect(unauthorised.status == 1 && unauthorised.output.contains("Gatehouse answered 401") && unauthorised.output.contains("export GATEHOUSE_ADMIN_TOKEN"))
        try await gatehouse.stop()
    }

    /// `gatehouse smoke` passes against a running Gatehouse and fails with a clear line when a check breaks.
    @Test func smokePassesAndFailsClearly() async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: """
            cors_allowed_origins: [https://app.example.com]
            rate_limits:
              - {name: smoke, scope: ip, requests: 3, per: minute, routes: [/v1/chat/completions]}
            """)
        let pass = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["smoke", gatehouse.baseURL, "--origin", "https://app.example.com",
                                                                                      "--rate-limit-requests", "10"])
        #expect(pass.status == 0, "\(pass.output)")
        // Windows are fixed and aligned to the UTC minute: the fourth call is refused, unless the
        // calls straddle a minute's end (then the count starts again, at most once in a run).
        let refusedAfter = pass.output.firstMatch(of: /429 after (\d+) requests/).flatMap { Int($0.1) }
        #expect(pass.output.contains("PASS  rate limiting") && pass.output.contains("All 7 checks passed"), "\(pass.output)")
        #expect(refusedAfter.map { (4...7).contains($0) } == true, "\(pass.output)")
        let cors = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["smoke", gatehouse.baseURL, "--origin", "https://evil.example.com", "--json"])
        #expect(cors.status == 1)
        let report = try #require(try JSONSerialization.jsonObject(with: Data((cors.output.split(separator: "\n").last { $0.hasPrefix("{") } ?? "").utf8)) as? [String: Any])
        let failed = ((report["checks"] as? [[String: Any]]) ?? []).filter { $0["passed"] as? Bool == false }.compactMap { $0["check"] as? String }
        #expect(failed == ["CORS"])
        try await gatehouse.stop()
        let down = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["smoke", gatehouse.baseURL])
        #expect(down.status == 1 && down.output.contains("FAIL  health"))
    }

    /// `gatehouse monitor --once` shows tokens and spend against their thresholds.
    @Test func monitorOnceShowsUseAgainstThresholds() async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: "recorder: {flush_interval_ms: 20}")
        for _ in 0..<3 { _ = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: #"{"model":"mock/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#) }
        let records = try await waitForRequests(TypedAPI(baseURL: gatehouse.baseURL), count: 3)
        let tokens = records.reduce(0) { $0 + $1.usage.totalTokens }
        let out = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["monitor", "--url", gatehouse.baseURL, "--once",
                                                                                     "--tokens-per-hour", String(tokens * 2), "--spend-per-day", "100"])
        #expect(out.status == 0)
        #expect(out.output.contains("Tokens, last hour") && out.output.contains(" 50.0%") && out.output.contains("\(tokens) / \(tokens * 2)"), "\(out.output)")
        #expect(out.output.contains("Spend, today") && out.output.contains("Last hour: 3 calls, 0 errors"))
        try await gatehouse.stop()
    }

    /// The shipped starter rules are valid; mistakes in rules are explained with their key.
    @Test func starterRulesAreValidAndMistakesAreExplained() async throws {
        let starter = TestEnvironment.repositoryRoot.appendingPathComponent("examples/alerts.yaml").path
        let ok = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["check-config", "--config", starter])
        #expect(ok.status == 0 && ok.output.contains("AIErrorRateHigh") && !ok.output.contains("hooks.slack.com/services"), "\(ok.output)")
        let bad = try TestEnvironment.temporaryDirectory().appendingPathComponent("bad.yaml")
        try "alerts:\n  rules:\n    - {name: X, expr: \"eror_rate over 5m > 1%\", severity: urgent}\n    - {name: Y, expr: \"errors over 5m > 5%\"}\n"
            .write(to: bad, atomically: true, encoding: .utf8)
        let refused = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["check-config", "--config", bad.path])
        #expect(refused.status == 2)
        #expect(refused.output.contains("alerts.rules[0].expr: unknown signal `eror_rate`") && refused.output.contains("alerts.rules[0].severity"))
        #expect(refused.output.contains("alerts.rules[1].expr: errors is compared with a number"))
    }

    /// check-config says which probes and heartbeats the public `/status` page shows.
    @Test func checkConfigPrintsWhatIsPublic() async throws {
        let file = try TestEnvironment.temporaryDirectory().appendingPathComponent("public.yaml")
        try """
            alerts:
              probes:
                - {name: app, url: "https://app.example.com/health", public: true}
                - {name: internal-db, url: "https://db.example.com/health"}
              heartbeats:
                - {name: nightly, interval_seconds: 86400, token: beat-secret-0123456789, public: true}
            """.write(to: file, atomically: true, encoding: .utf8)
        let ok = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["check-config", "--config", file.path])
        #expect(ok.status == 0, "\(ok.output)")
        func line(_ name: String) -> String { ok.output.split(separator: "\n").first { $0.contains("name: \"\(name)\"") }.map(String.init) ?? "" }
        #expect(line("app").contains("public: true") && line("internal-db").contains("public: false"), "\(ok.output)")
        #expect(line("nightly").contains("public: true") && !ok.output.contains("beat-secret-0123456789"), "\(ok.output)")
    }
}

extension ISO8601DateFormatter {
    static var withFraction: ISO8601DateFormatter {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }
}
