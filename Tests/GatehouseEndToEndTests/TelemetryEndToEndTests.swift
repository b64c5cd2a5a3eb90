import Foundation
import GatehouseTestSupport
import Testing

let ingestKey = "ingest-key-web-0123456789"
let telemetryConfig = """
    telemetry:
      projects:
        - name: web
          id: "42"
          key: \(ingestKey)
        - name: tiny
          id: "7"
          key: ingest-key-tiny-0123456789
          events_per_minute: 2
    recorder:
      flush_interval_ms: 20
    """

/// Runs Tests/Support/telemetry_client.py and returns its JSON line.
func telemetryClient(_ arguments: [String]) async throws -> [String: Any] {
    let script = TestEnvironment.repositoryRoot.appendingPathComponent("Tests/Support/telemetry_client.py").path
    let result = try await ProcessRunner.runAsync(try TestEnvironment.python, [script] + arguments)
    guard result.status == 0, let line = result.output.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
          let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
        throw ProcessRunner.Failure(message: "telemetry_client \(arguments.first ?? "") failed (\(result.status)):\n\(result.output)")
    }
    return object
}

/// Polls an API list until `accept` is satisfied by its `data`, or 20 seconds pass.
func poll(_ url: String, headers: [(String, String)] = [], _ accept: ([[String: Any]]) -> Bool) async throws -> [[String: Any]] {
    var last: [[String: Any]] = []
    let deadline = ContinuousClock.now + .seconds(20)
    while ContinuousClock.now < deadline {
        let (status, body) = try await HTTP.get(url, headers: headers)
        if status == 200, let data = (try JSONSerialization.jsonObject(with: body) as? [String: Any])?["data"] as? [[String: Any]] {
            last = data
            if accept(data) { return data }
        }
        try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("\(url) never gave what was expected; last: \(last)")
    return last
}

func logsURL(_ gatehouse: GatehouseProcess, _ query: String, extra: String = "") -> String {
    var components = URLComponents(string: gatehouse.baseURL + "/api/v1/logs")!
    components.queryItems = [URLQueryItem(name: "q", value: query)]
    return components.string! + extra
}

@Suite(.serialized) struct TelemetryEndToEndTests {
    /// The real sentry-sdk, with and without brotli, reports to Gatehouse as its DSN; errors
    /// group into issues with their stack traces, and a resolved issue that recurs regresses.
    @Test(arguments: Backend.allCases)
    func sentrySDKErrorsBecomeIssues(_ backend: Backend) async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: telemetryConfig, databaseURL: try backend.databaseURL())
        let dsn = "http://\(ingestKey)@127.0.0.1:\(gatehouse.port)/42"
        let withBrotli = try await telemetryClient(["sentry", "--dsn", dsn, "--tag", "correlation_id=corr-sentry-1"])
        let withoutBrotli = try await telemetryClient(["sentry", "--dsn", dsn, "--no-brotli"])
        #expect(withBrotli["compression"] as? String == "br" && withoutBrotli["compression"] as? String == "gzip")
        let issues = try await poll(gatehouse.baseURL + "/api/v1/issues") { data in data.reduce(0) { $0 + (int($1["count"]) ?? 0) } == 10 }
        let byType = Dictionary(issues.map { (($0["type"] as? String) ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        #expect(issues.count == 4, "ValueError, KeyError, RuntimeError and the message: \(issues.map { $0["title"] ?? "" })")
        #expect(int(byType["ValueError"]?["count"]) == 4, "User 4821 and User 17 are one issue")
        #expect(int(byType["KeyError"]?["count"]) == 2 && int(byType["RuntimeError"]?["count"]) == 2)
        #expect(int(byType["ValueError"]?["users"]) == 1 && byType["ValueError"]?["last_release"] as? String == "app@1.2.3")
        #expect(byType[""]?["level"] as? String == "warn" && (byType[""]?["title"] as? String)?.hasPrefix("Nightly export") == true)

        let id = try #require(byType["RuntimeError"]?["id"] as? String)
        let (status, body) = try await HTTP.get(gatehouse.baseURL + "/api/v1/issues/\(id)")
        #expect(status == 200)
        let detail = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
        let event = try #require(((detail["events"] as? [[String: Any]])?.first)?["event"] as? [String: Any])
        let chain = ((event["exception"] as? [String: Any])?["values"] as? [[String: Any]]) ?? []
        #expect(chain.compactMap { $0["type"] as? String } == ["ZeroDivisionError", "RuntimeError"], "the chain is kept")
        let frames = ((chain.last?["stacktrace"] as? [String: Any])?["frames"] as? [[String: Any]]) ?? []
        #expect(frames.contains { $0["function"] as? String == "sentry" }, "stack frames are kept")
        #expect((event["breadcrumbs"] as? [String: Any]) != nil && (event["user"] as? [String: Any])?["id"] as? String == "user-1")

        // Resolve it; the next occurrence is a regression.
        let resolved = try await HTTP.send(gatehouse.baseURL + "/api/v1/issues/\(id)", method: .PATCH, body: Data(#"{"status":"resolved"}"#.utf8))
        #expect(resolved.json?["status"] as? String == "resolved")
        _ = try await telemetryClient(["sentry", "--dsn", dsn])
        let regressed = try await poll(gatehouse.baseURL + "/api/v1/issues?q=regressed:true") { !$0.isEmpty }
        #expect(regressed.map { $0["id"] as? String } == [id] && regressed.first?["status"] as? String == "unresolved")

        // The correlation tag ties the error to its request.
        let (_, timeline) = try await HTTP.get(gatehouse.baseURL + "/api/v1/correlation/corr-sentry-1")
        let entries = ((try JSONSerialization.jsonObject(with: timeline) as? [String: Any])?["timeline"] as? [[String: Any]]) ?? []
        #expect(entries.count == 5 && entries.allSatisfy { $0["kind"] as? String == "error" })
        try await gatehouse.stop()
    }

    /// Keys, unknown projects, quotas and malformed envelopes get Sentry-style answers.
    @Test func sentryIngestRefusesWhatItShould() async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: telemetryConfig)
        let event = #"{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","exception":{"values":[{"type":"E","value":"x"}]}}"#
        let envelope = Data((#"{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}"# + "\n" + #"{"type":"event"}"# + "\n" + event + "\n").utf8)
        func send(_ project: String, key: String?, body: Data = envelope, query: String = "") async throws -> HTTP.Reply {
            var headers: [(String, String)] = [("content-type", "application/x-sentry-envelope")]
            if let key { headers.append(("X-Sentry-Auth", "Sentry sentry_version=7, sentry_client=test/1, sentry_key=\(key)")) }
            return try await HTTP.send(gatehouse.baseURL + "/api/\(project)/envelope/" + query, headers: headers, body: body)
        }
        #expect(try await send("42", key: ingestKey).json?["id"] as? String == "9ec79c33ec9942ab8353589fcb2e04dc")
        #expect(try await send("42", key: nil, query: "?sentry_key=\(ingestKey)").status == 200, "the key may come as a query parameter")
        #expect(try await send("42", key: "wrong-key-000000000000").status == 401)
        #expect(try await send("42", key: nil).status == 401)
        #expect(try await send("99", key: ingestKey).status == 404)
        let bad = try await send("42", key: ingestKey, body: Data("{\"event_id\":1}\n{\"type\":\"event\",\"length\":500}\n{}".utf8))
        #expect(bad.status == 400 && (bad.json?["detail"] as? String)?.contains("envelope") == true)
        let store = try await HTTP.send(gatehouse.baseURL + "/api/42/store/", headers: [("X-Sentry-Auth", "Sentry sentry_key=\(ingestKey)")],
                                        body: Data(event.replacingOccurrences(of: "9ec7", with: "1ec7").utf8))
        #expect(store.status == 200, "the legacy store endpoint takes a bare event")
        // Project "tiny" may send 2 events a minute.
        for _ in 0..<2 { #expect(try await send("7", key: "ingest-key-tiny-0123456789").status == 200) }
        let limited = try await send("7", key: "ingest-key-tiny-0123456789")
        #expect(limited.status == 429 && Int(limited.header("Retry-After") ?? "") != nil)
        #expect(limited.header("X-Sentry-Rate-Limits")?.hasSuffix("::project") == true)
        try await gatehouse.stop()
    }

    /// Python's logging with a JSON handler and the OpenTelemetry SDK's OTLP exporter both send
    /// logs that the seed's queries then find; one correlation id gathers logs, errors and AI calls.
    @Test(arguments: Backend.allCases)
    func logsFromPythonLoggingAndOpenTelemetryAreFound(_ backend: Backend) async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: telemetryConfig, databaseURL: try backend.databaseURL())
        let sent = try await telemetryClient(["logging", "--url", gatehouse.baseURL + "/api/v1/logs", "--key", ingestKey])
        #expect(int(sent["accepted"]) == 3)
        let otel = try await telemetryClient(["otel", "--endpoint", gatehouse.baseURL + "/v1/logs", "--key", ingestKey])
        #expect(otel["flushed"] as? Bool == true)
        _ = try await poll(logsURL(gatehouse, "")) { $0.count >= 5 }
        func messages(_ q: String) async throws -> [String] {
            let (status, body) = try await HTTP.get(logsURL(gatehouse, q))
            #expect(status == 200, "\(q): \(String(decoding: body, as: UTF8.self))")
            return (((try? JSONSerialization.jsonObject(with: body)) as? [String: Any])?["data"] as? [[String: Any]] ?? [])
                .compactMap { $0["message"] as? String }.sorted()
        }
        #expect(try await messages("level:error timestamp:>-1h") == ["Payment declined for order A-1001", "Task update failed"])
        #expect(try await messages(#"message:"Slow query detected""#) == ["Slow query detected"])
        #expect(try await messages(#"function:"tasks.list" level:warn"#) == ["Slow query detected"])
        #expect(try await messages("dbCalls:>50") == ["Task listed"])
        #expect(try await messages("service:checkout") == ["Checkout finished", "Payment declined for order A-1001"], "OTel resource → service")
        #expect(try await messages("slow:true") == ["Slow query detected", "Task listed"])
        let (bad, badBody) = try await HTTP.get(logsURL(gatehouse, "level:error AND (service:api"))
        #expect(bad == 400 && String(decoding: badBody, as: UTF8.self).contains("character"), "a bad query says where")

        // An AI call and an error with the same correlation id join the two log lines.
        _ = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: #"{"model":"mock/gpt-4o-mini","messages":[]}"#,
                                headers: [("X-Request-Id", "corr-logging-1")])
        _ = try await telemetryClient(["sentry", "--dsn", "http://\(ingestKey)@127.0.0.1:\(gatehouse.port)/42", "--tag", "correlation_id=corr-logging-1"])
        var kinds: [String] = []
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let (_, body) = try await HTTP.get(gatehouse.baseURL + "/api/v1/correlation/corr-logging-1")
            let timeline = ((try JSONSerialization.jsonObject(with: body) as? [String: Any])?["timeline"] as? [[String: Any]]) ?? []
            kinds = timeline.compactMap { $0["kind"] as? String }
            if kinds.count == 8 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(kinds.filter { $0 == "log" }.count == 2 && kinds.filter { $0 == "error" }.count == 5 && kinds.contains("ai_request"))

        // OTLP/JSON too: hex trace ids become the correlation id.
        let otlpJSON = #"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"billing"}}]},"scopeLogs":[{"scope":{"name":"s"},"logRecords":[{"timeUnixNano":"1764496800000000000","severityNumber":17,"body":{"stringValue":"card declined"},"traceId":"5b8efff798038103d269b633813fc60c","attributes":[{"key":"http.status","value":{"intValue":"402"}}]}]}]}]}"#
        let otlp = try await HTTP.send(gatehouse.baseURL + "/v1/logs", headers: [("Content-Type", "application/json"), ("Authorization", "Bearer \(ingestKey)")],
                                       body: Data(otlpJSON.utf8))
        #expect(otlp.status == 200 && otlp.header("content-type") == "application/json")
        let billing = try await poll(logsURL(gatehouse, "service:billing http.status:402")) { $0.count == 1 }
        #expect(billing.first?["correlation_id"] as? String == "5b8efff798038103d269b633813fc60c" && billing.first?["level"] as? String == "error")
        let (_, metrics) = try await HTTP.get(gatehouse.baseURL + "/metrics")
        let metricText = String(decoding: metrics, as: UTF8.self)
        #expect(metricText.contains(#"gatehouse_slow_operations_total{reason="duration"}"#) && metricText.contains(#"gatehouse_logs_ingested_total{project="web"}"#))

        // NUL characters (which PostgreSQL refuses) are cleaned at the door, not left to block a batch.
        let nul = try await HTTP.send(gatehouse.baseURL + "/api/v1/logs", headers: [("Authorization", "Bearer \(ingestKey)")],
                                      body: Data(#"{"message":"nul\u0000byte","service":"nul","data":{"k":"a\u0000b"}}"#.utf8))
        #expect(nul.status == 200 && int(nul.json?["accepted"]) == 1)
        let cleaned = try await poll(logsURL(gatehouse, "service:nul")) { $0.count == 1 }
        #expect(cleaned.first?["message"] as? String == "nulbyte")

        // Without the key, nothing is taken.
        let refused = try await HTTP.send(gatehouse.baseURL + "/api/v1/logs", body: Data(#"{"message":"x"}"#.utf8))
        #expect(refused.status == 401)
        try await gatehouse.stop()
    }

    /// Bad bodies get per-line reasons and clear statuses; nothing valid is lost beside them.
    @Test func badLogBodiesAreReportedLineByLine() async throws {
        let gatehouse = try await GatehouseProcess.start()  // open mode: no projects configured
        let mixed = try await HTTP.send(gatehouse.baseURL + "/api/v1/logs", headers: [("X-Gatehouse-Project", "demo")],
                                        body: Data("{\"message\":\"kept\"}\n{oops\n\"text\"\n{\"message\":\"also kept\",\"level\":\"ERROR\"}\n".utf8))
        #expect(mixed.status == 200 && int(mixed.json?["accepted"]) == 2)
        #expect((mixed.json?["rejected"] as? [[String: Any]])?.compactMap { int($0["index"]) } == [1, 2])
        let none = try await HTTP.send(gatehouse.baseURL + "/api/v1/logs", body: Data("[1, 2]".utf8))
        #expect(none.status == 400 && int(none.json?["rejected_count"]) == 2)
        let zstd = try await HTTP.send(gatehouse.baseURL + "/api/v1/logs", headers: [("Content-Encoding", "zstd")], body: Data("x".utf8))
        #expect(zstd.status == 415)
        let huge = try await HTTP.send(gatehouse.baseURL + "/api/v1/logs", body: Data(count: 11 * 1024 * 1024))
        #expect(huge.status == 413)
        let lines = try await poll(logsURL(gatehouse, "project:demo")) { $0.count == 2 }
        #expect(lines.compactMap { $0["level"] as? String }.sorted() == ["error", "info"])
        try await gatehouse.stop()
    }

    /// Random and mutated bodies and queries never crash or hang the server: every answer is a
    /// 2xx or a 4xx, and the server still answers afterwards.
    @Test func randomInputNeverBreaksTheServer() async throws {
        let gatehouse = try await GatehouseProcess.start()
        var rng = SystemRandomNumberGenerator()
        let seeds = [
            #"{"level":"warn","message":"Slow query detected","duration":"237.42ms","dbCalls":15,"http":{"status":503}}"# + "\n",
            #"{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}"# + "\n" + #"{"type":"event","length":40}"# + "\n" + #"{"exception":{"values":[{"type":"E"}]}}"# + "\n",
            #"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]}]}"#,
            #"level:error timestamp:>-1h function:"tasks.list" dbCalls:>50 (a OR b) -c"#,
        ]
        func mutate(_ text: String) -> Data {
            var bytes = Array(text.utf8)
            for _ in 0..<Int.random(in: 1...6, using: &rng) where !bytes.isEmpty {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                if Bool.random(using: &rng) { bytes[i] = UInt8.random(in: 0...255, using: &rng) } else { bytes.remove(at: i) }
            }
            return Data(bytes)
        }
        for round in 0..<150 {
            let which = round % 4
            let body = mutate(seeds[which])
            let reply: HTTP.Reply
            switch which {
            case 0: reply = try await HTTP.send(gatehouse.baseURL + "/api/v1/logs", body: body)
            case 1: reply = try await HTTP.send(gatehouse.baseURL + "/api/1/envelope/", body: body)
            case 2: reply = try await HTTP.send(gatehouse.baseURL + "/v1/logs", headers: [("Content-Type", round % 8 == 2 ? "application/json" : "application/x-protobuf")], body: body)
            default:
                var components = URLComponents(string: gatehouse.baseURL + "/api/v1/logs")!
                components.queryItems = [URLQueryItem(name: "q", value: String(decoding: body, as: UTF8.self))]
                reply = try await HTTP.send(components.string ?? gatehouse.baseURL + "/api/v1/logs", method: .GET, body: nil)
            }
            #expect((200..<500).contains(reply.status), "round \(round): \(reply.status) \(String(decoding: reply.body.prefix(200), as: UTF8.self))")
        }
        #expect(try await HTTP.get(gatehouse.baseURL + "/health").0 == 200)
        #expect(try await gatehouse.stop() == 0)
    }

    /// The live tail sends new matching lines as server-sent events; `gatehouse logs` reads both ways.
    @Test func liveTailAndTheLogsCommand() async throws {
        let gatehouse = try await GatehouseProcess.start()
        let base = gatehouse.baseURL
        var components = URLComponents(string: base + "/api/v1/logs/tail")!
        components.queryItems = [URLQueryItem(name: "q", value: "level:error")]
        let (status, text) = try await StreamingClient.get(url: components.string!, whileReading: {
            try await Task.sleep(for: .milliseconds(300))
            _ = try await HTTP.send(base + "/api/v1/logs", body: Data("{\"level\":\"info\",\"message\":\"quiet\"}\n{\"level\":\"error\",\"message\":\"tail me\"}\n".utf8))
        }, done: { $0.contains("tail me") })
        #expect(status == 200 && text.contains("event: log") && text.contains("tail me") && !text.contains("quiet"))
        let (badStatus, _) = try await HTTP.get(base + "/api/v1/logs/tail?q=nope:(")
        #expect(badStatus == 400)

        let cli = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary,
                                                   ["logs", "--url", base, "--since", "1h", "--query", "level:error", "--json"])
        #expect(cli.status == 0)
        let printed = cli.output.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(printed.compactMap { $0["message"] as? String } == ["tail me"])
        let table = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["logs", "--url", base, "--query", "message:quiet"])
        #expect(table.status == 0 && table.output.contains("INFO") && table.output.contains("quiet"))
        let wrong = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["logs", "--url", base, "--query", "level:"])
        #expect(wrong.status != 0 && wrong.output.contains("400"))

        // `--tail` prints lines as they come.
        let tail = try ChildProcess(executable: TestEnvironment.gatehouseBinary, arguments: ["logs", "--url", base, "--tail", "--json", "--query", "service:cron"])
        try await Task.sleep(for: .milliseconds(500))
        _ = try await HTTP.send(base + "/api/v1/logs", body: Data(#"{"service":"cron","message":"nightly run"}"#.utf8))
        let line = try await tail.waitForLine(timeout: .seconds(15)) { $0.contains("nightly run") }
        #expect(line.contains("\"service\":\"cron\""))
        _ = try await tail.stop(signal: SIGINT)
        try await gatehouse.stop()
    }
}
