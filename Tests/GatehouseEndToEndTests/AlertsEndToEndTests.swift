import Foundation
import GatehouseTestSupport
import Testing

/// Waits until `condition` holds (polling every 100 ms) or `seconds` pass; records an issue then.
func eventually(_ what: String, seconds: Double = 20, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    Issue.record("timed out waiting for: \(what)")
}

func activeAlerts(_ gatehouse: GatehouseProcess) async throws -> [[String: Any]] {
    let (_, body) = try await HTTP.get(gatehouse.baseURL + "/api/v1/alerts")
    return ((try JSONSerialization.jsonObject(with: body) as? [String: Any])?["active"] as? [[String: Any]]) ?? []
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
        // Keep errors coming for a while: the condition holds, then stops holding.
        let started = ContinuousClock.now
        let load = Task {
            while ContinuousClock.now - started < .seconds(7) {
                try await postErrors(gatehouse, 2)
                try await Task.sleep(for: .milliseconds(400))
            }
        }
        try await eventually("the alert fires") { try await activeAlerts(gatehouse).contains { $0["state"] as? String == "firing" } }
        let firing = try #require(try await activeAlerts(gatehouse).first)
        let since = try #require(firing["active_since"] as? String), fired = try #require(firing["fired_at"] as? String)
        let gap = try #require(ISO8601DateFormatter.withFraction.date(from: fired)).timeIntervalSince(try #require(ISO8601DateFormatter.withFraction.date(from: since)))
        #expect(gap >= 2, "firing waits for `for: 2s` (waited \(gap) s)")
        try await eventually("Slack and PagerDuty hear it") {
            let slack = try await receiver.received("/slack"), pager = try await receiver.received("/pagerduty")
            return !slack.isEmpty && !pager.isEmpty
        }
        #expect(try await receiver.received("/slack").count == 1, "once, not once per evaluation")
        try await eventually("it repeats after repeat_interval") { try await receiver.received("/pagerduty").count >= 2 }
        let slackTimes = try await receiver.received("/slack").compactMap { ($0["at"] as? NSNumber)?.doubleValue }
        if slackTimes.count >= 2 { #expect(slackTimes[1] - slackTimes[0] >= 2.5, "repeats are spaced by repeat_interval") }
        try await load.value
        try await eventually("it resolves") { try await activeAlerts(gatehouse).isEmpty }
        try await eventually("the resolution is told") {
            try await receiver.received("/pagerduty").contains { ($0["body"] as? [String: Any])?["event_action"] as? String == "resolve" }
        }
        let pd = try await receiver.received("/pagerduty").compactMap { $0["body"] as? [String: Any] }
        let trigger = try #require(pd.first)
        #expect(trigger["event_action"] as? String == "trigger" && trigger["routing_key"] as? String == "R0UTING-KEY-0123456789")
        #expect((trigger["payload"] as? [String: Any])?["severity"] as? String == "critical")
        #expect(Set(pd.compactMap { $0["dedup_key"] as? String }).count == 1, "one dedup key for trigger, repeats and resolve")
        let slack = try await receiver.received("/slack").compactMap { $0["body"] as? [String: Any] }
        let text = slack.compactMap { ($0["blocks"] as? [[String: Any]])?.description }.joined()
        #expect(text.contains("count(level:error service:api) over 4s > 2") && text.contains("https://gatehouse.example.com/api/v1/alerts"))
        #expect((slack.last?["text"] as? String)?.contains("RESOLVED") == true)
        #expect(try await receiver.received("/hook").isEmpty, "routes decide who hears what")

        // History keeps every transition.
        let (_, body) = try await HTTP.get(gatehouse.baseURL + "/api/v1/alerts?rule=ErrorBurst")
        let history = ((try JSONSerialization.jsonObject(with: body) as? [String: Any])?["history"] as? [[String: Any]]) ?? []
        #expect(history.compactMap { $0["state"] as? String }.reversed() == ["pending", "firing", "resolved"])

        // Silenced: it fires again, but nobody is told.
        let silence = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["silence", "add", "--url", gatehouse.baseURL,
                                                                                           "--matcher", "alertname=ErrorBurst", "--duration", "1h", "--comment", "deploy"])
        #expect(silence.status == 0 && silence.output.contains("Silenced alertname=ErrorBurst"))
        let before = try await receiver.received().count
        for _ in 0..<6 {
            try await postErrors(gatehouse, 3)
            try await Task.sleep(for: .milliseconds(500))
        }
        let silenced = try await activeAlerts(gatehouse)
        #expect(silenced.first?["state"] as? String == "firing" && silenced.first?["silenced_by"] is String)
        #expect(try await receiver.received().count == before, "a silence mutes notifications")
        let list = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["silence", "list", "--url", gatehouse.baseURL])
        #expect(list.output.contains("alertname=ErrorBurst") && list.output.contains("active"))
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
        _ = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: #"{"model":"mock/gpt-4o-mini","messages":[]}"#)
        try await eventually("the webhook gets it on the third try", seconds: 30) {
            try await receiver.received("/hook").contains { ($0["answered"] as? NSNumber)?.intValue == 200 }
        }
        let hooks = try await receiver.received("/hook")
        #expect(hooks.compactMap { ($0["answered"] as? NSNumber)?.intValue }.prefix(3) == [500, 500, 200])
        let payload = try #require(hooks.last?["body"] as? [String: Any])
        #expect(payload["version"] as? String == "4" && payload["status"] as? String == "firing" && payload["receiver"] as? String == "hook")
        #expect((payload["alerts"] as? [[String: Any]])?.first?["labels"] as? [String: String] == ["alertname": "AnyAICall", "severity": "low", "channel": "hook"])
        #expect((hooks.last?["headers"] as? [String: String])?["x-token"] == "hook-secret")
        let (_, body) = try await HTTP.get(gatehouse.baseURL + "/api/v1/alerts/deliveries")
        let outcomes = (((try JSONSerialization.jsonObject(with: body) as? [String: Any])?["data"] as? [[String: Any]]) ?? [])
            .filter { $0["receiver"] as? String == "hook" }.compactMap { $0["outcome"] as? String }
        // The first two attempts are recorded as retrying and one delivery succeeds; with repeats
        // every 3 s, the success may be a newer notification that superseded the first.
        #expect(Array(outcomes.reversed().prefix(2)) == ["retrying", "retrying"] && outcomes.contains("delivered"), "\(outcomes)")
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
        func probe() async throws -> [String: Any] {
            let (_, body) = try await HTTP.get(gatehouse.baseURL + "/api/v1/probes")
            return ((try JSONSerialization.jsonObject(with: body) as? [String: Any])?["data"] as? [[String: Any]])?.first { $0["name"] as? String == "app" } ?? [:]
        }
        try await eventually("the probe is up") { try await probe()["status"] as? String == "up" }
        try await receiver.control(#"{"health": 503}"#)
        try await eventually("the probe is down") { try await probe()["status"] as? String == "down" }
        #expect((try await probe()["last_error"] as? String)?.contains("status 503") == true)
        try await eventually("AppDown is sent") {
            try await receiver.received("/slack").contains { (($0["body"] as? [String: Any])?["text"] as? String)?.contains("AppDown") == true }
        }
        try await receiver.control(#"{"health": 200}"#)
        try await eventually("the probe is up again") { try await probe()["status"] as? String == "up" }
        try await eventually("AppDown resolves") {
            try await receiver.received("/slack").contains { (($0["body"] as? [String: Any])?["text"] as? String)?.contains("RESOLVED") == true }
        }
        let (_, results) = try await HTTP.get(gatehouse.baseURL + "/api/v1/probes/app/results")
        let ups = (((try JSONSerialization.jsonObject(with: results) as? [String: Any])?["data"] as? [[String: Any]]) ?? []).compactMap { $0["up"] as? Bool }
        #expect(ups.contains(true) && ups.contains(false), "results are stored and queryable")
        let (_, metrics) = try await HTTP.get(gatehouse.baseURL + "/metrics")
        #expect(String(decoding: metrics, as: UTF8.self).contains(#"gatehouse_probe_up{probe="app"} 1"#))
        // Heartbeats: the job's token is needed.
        #expect(try await HTTP.send(gatehouse.baseURL + "/api/v1/heartbeats/nightly?token=beat-0123456789", body: nil).status == 200)
        #expect(try await HTTP.send(gatehouse.baseURL + "/api/v1/heartbeats/nightly?token=wrong", body: nil).status == 401)
        let (_, list) = try await HTTP.get(gatehouse.baseURL + "/api/v1/probes")
        #expect(String(decoding: list, as: UTF8.self).contains(#""kind":"heartbeat""#) && String(decoding: list, as: UTF8.self).contains(#""status":"up""#))
        try await gatehouse.stop()
        try await receiver.stop()
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
        #expect(pass.output.contains("PASS  rate limiting") && pass.output.contains("429 after 4 requests") && pass.output.contains("All 7 checks passed"))
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
        let records = try await waitForRecords(gatehouse, count: 3)
        let tokens = records.reduce(0) { $0 + (usage($1)["total_tokens"] ?? 0) }
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
}

extension ISO8601DateFormatter {
    static var withFraction: ISO8601DateFormatter {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }
}
