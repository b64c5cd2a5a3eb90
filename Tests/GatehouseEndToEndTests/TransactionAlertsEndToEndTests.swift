import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

/// The guides' performance alerts over Sentry transactions: an API p95 target and "Performance
/// regression → Slack", fired by transaction data and delivered to a webhook.
@Suite(.serialized) struct TransactionAlertsEndToEndTests {
    static func hex(_ digits: Int) -> String {
        String((0..<digits).map { _ in "0123456789abcdef".randomElement()! })
    }

    /// One Sentry envelope of `count` `GET /api/tasks` transactions, each `durationMs` long,
    /// started `agoSeconds` before now.
    static func envelope(count: Int, durationMs: Double, agoSeconds: Double, name: String = "GET /api/tasks") -> Data {
        let now = Date().timeIntervalSince1970
        var lines = [#"{"sent_at":"\#(ISO8601DateFormatter().string(from: Date()))"}"#]
        for i in 0..<count {
            let start = now - agoSeconds - Double(i) * 0.5
            let payload: [String: Any] = [
                "type": "transaction", "event_id": hex(32), "transaction": name, "platform": "python",
                "start_timestamp": start, "timestamp": start + durationMs / 1000, "environment": "prod",
                "contexts": ["trace": ["trace_id": hex(32), "span_id": hex(16), "op": "http.server", "status": "ok"]],
                "spans": [] as [Any],
            ]
            let data = try! JSONSerialization.data(withJSONObject: payload)
            lines.append(#"{"type":"transaction","length":\#(data.count)}"#)
            lines.append(String(decoding: data, as: UTF8.self))
        }
        return Data(lines.joined(separator: "\n").utf8)
    }

    static func config(_ r: Receiver) -> String {
        """
        recorder: {flush_interval_ms: 20}
        alerts:
          evaluation_interval_seconds: 1
          group_wait_seconds: 0
          group_interval_seconds: 1
          repeat_interval_seconds: 3600
          receivers:
            - {name: hook, webhook: {url: "\(r.baseURL)/hook"}}
          routes:
            - {receiver: hook}
          rules:
            - name: TasksP95
              expr: transaction_p95(name:"GET /api/tasks") over 10m > 500ms
              severity: high
            - name: TasksRegression
              expr: transaction_regression(name:"GET /api/tasks") over 10m by transaction > 50%
              severity: medium
            - name: OtherP95
              expr: transaction_p95(name:"GET /api/other") over 10m > 500ms
              severity: high
        """
    }

    /// One id joins an AI call, its logs, its errors and its trace: the correlation timeline of a
    /// request id names the traces whose spans carry it, and so does the trace id itself.
    @Test(arguments: Backend.allCases)
    func theCorrelationTimelineNamesItsTraces(_ backend: Backend) async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: "recorder: {flush_interval_ms: 20}", databaseURL: try backend.databaseURL())
        let trace = Self.hex(32), now = Date().timeIntervalSince1970
        let payload: [String: Any] = [
            "type": "transaction", "event_id": Self.hex(32), "transaction": "POST /api/chat", "start_timestamp": now - 1, "timestamp": now,
            "tags": ["request_id": "req-corr-1"], "contexts": ["trace": ["trace_id": trace, "span_id": Self.hex(16), "op": "http.server"]],
            "spans": [["span_id": Self.hex(16), "trace_id": trace, "op": "db.query", "description": "SELECT 1",
                       "start_timestamp": now - 0.9, "timestamp": now - 0.5]],
        ]
        let data = try JSONSerialization.data(withJSONObject: payload)
        let body = "{}\n{\"type\":\"transaction\",\"length\":\(data.count)}\n" + String(decoding: data, as: UTF8.self)
        #expect(try await HTTP.send(gatehouse.baseURL + "/api/1/envelope/", body: Data(body.utf8)).status == 200)
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        try await Poll.until("the spans are stored") {
            try await api.get("/api/v1/correlation/req-corr-1", as: CorrelationTimeline.self).traceIDs == [trace]
        }
        #expect(try await api.get("/api/v1/correlation/\(trace)", as: CorrelationTimeline.self).traceIDs == [trace])
        #expect(try await api.get("/api/v1/correlation/req-other", as: CorrelationTimeline.self).traceIDs == [])
        try await api.verifyContract()
        try await gatehouse.stop()
    }

    @Test(arguments: Backend.allCases)
    func p95AndRegressionRulesFireOnTransactions(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        let gatehouse = try await GatehouseProcess.start(yaml: Self.config(receiver), databaseURL: try backend.databaseURL())
        // A day ago the endpoint took 200 ms (inside the baseline window, which is a day before
        // the rule's 10 minutes); now it takes 900 ms: past the 500 ms target and 350% slower.
        for (duration, ago) in [(200.0, 86_400.0 + 120), (900.0, 60.0)] {
            let reply = try await HTTP.send(gatehouse.baseURL + "/api/1/envelope/", headers: [("content-type", "application/x-sentry-envelope")],
                                            body: Self.envelope(count: 20, durationMs: duration, agoSeconds: ago))
            #expect(reply.status == 200, "\(String(decoding: reply.body, as: UTF8.self))")
        }
        // A fast other endpoint neither fires its own rule nor the first.
        _ = try await HTTP.send(gatehouse.baseURL + "/api/1/envelope/", body: Self.envelope(count: 5, durationMs: 50, agoSeconds: 30, name: "GET /api/other"))
        func firing() async throws -> [String: [String: Any]] {
            var alerts: [String: [String: Any]] = [:]
            for hook in try await receiver.received("/hook") {
                for alert in ((hook["body"] as? [String: Any])?["alerts"] as? [[String: Any]]) ?? [] where alert["status"] as? String == "firing" {
                    if let name = (alert["labels"] as? [String: String])?["alertname"] { alerts[name] = alert }
                }
            }
            return alerts
        }
        try await Poll.until("both rules reach the webhook", timeout: .seconds(30)) {
            let names = try await firing().keys
            return names.contains("TasksP95") && names.contains("TasksRegression")
        }
        let alerts = try await firing()
        #expect(alerts["OtherP95"] == nil, "a fast transaction does not fire")
        #expect((alerts["TasksRegression"]?["labels"] as? [String: String])?["transaction"] == "GET /api/tasks", "by transaction labels the alert")
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let active = try await activeAlerts(api)
        let p95 = try #require(active.first { $0.alert.rule == "TasksP95" }).alert
        #expect(p95.value > 850 && p95.value < 950, "the p95 of 900 ms transactions: \(p95.value)")
        let regression = try #require(active.first { $0.alert.rule == "TasksRegression" }).alert
        #expect(regression.value > 3 && regression.value < 4, "900 ms against 200 ms is 350% slower: \(regression.value)")
        try await gatehouse.stop()
        try await receiver.stop()
    }
}
