import Foundation
import GatehouseTestSupport
import Testing

/// Health, readiness, metrics, the usage API and the CLI against a running server.
@Suite(.serialized) struct OperationsEndToEndTests {
    @Test func metricsUnderLoadPassPromtool() async throws {
        let gatehouse = try await GatehouseProcess.start()
        let scrapes = try await withThrowingTaskGroup(of: String?.self) { group in
            for worker in 0..<6 {
                group.addTask {
                    for i in 0..<30 {
                        let stream = i % 2 == 0 ? "true" : "false"
                        _ = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions",
                                                json: #"{"model":"mock/gpt-4o-mini","stream":\#(stream),"messages":[{"role":"user","content":"w\#(worker)"}]}"#)
                    }
                    return nil
                }
            }
            group.addTask {
                // Scrape while the load runs.
                try await Task.sleep(for: .milliseconds(300))
                let (_, body) = try await HTTP.get(gatehouse.baseURL + "/metrics")
                return String(decoding: body, as: UTF8.self)
            }
            var texts: [String] = []
            for try await text in group { if let text { texts.append(text) } }
            return texts
        }
        // A stream's call is counted once its relay ends, which can be just after the client has read
        // the last byte; every record stored means every call was counted (metrics come first).
        _ = try await waitForRecords(gatehouse, count: 180)
        let (_, final) = try await HTTP.get(gatehouse.baseURL + "/metrics")
        for text in scrapes + [String(decoding: final, as: UTF8.self)] {
            let result = try await ProcessRunner.runAsync(try TestEnvironment.promtool, ["check", "metrics"], input: Data(text.utf8))
            #expect(result.status == 0, "promtool: \(result.output)")
        }
        let text = String(decoding: final, as: UTF8.self)
        for name in ["gatehouse_ai_requests_total", "gatehouse_ai_tokens_total", "gatehouse_ai_cost_microdollars_total",
                     "gatehouse_http_requests_total", "gatehouse_http_request_duration_seconds_bucket", "gatehouse_recorder_queue_depth",
                     "gatehouse_ai_request_duration_seconds_bucket"] {
            #expect(text.contains(name), "\(name) missing from /metrics")
        }
        // 6 workers × 30 calls to mock/gpt-4o-mini, all 200: one series counts exactly 180.
        let series = text.split(separator: "\n").filter {
            $0.hasPrefix("gatehouse_ai_requests_total{") && $0.contains(#"provider="mock""#) && $0.contains(#"model="gpt-4o-mini""#)
                && $0.contains(#"status="200""#)
        }
        #expect(series.count == 1 && series.first?.hasSuffix(" 180") == true, "per-model counter: \(series)")
        try await gatehouse.stop()
    }

    @Test(arguments: Backend.allCases)
    func healthReadinessAndProviderHealth(backend: Backend) async throws {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(yaml: upstreamConfig(mock), databaseURL: try backend.databaseURL())
        #expect(try await HTTP.get(gatehouse.baseURL + "/health").0 == 200)
        #expect(try await HTTP.get(gatehouse.baseURL + "/api/v1/health").0 == 200)
        let (readyStatus, readyBody) = try await HTTP.get(gatehouse.baseURL + "/ready")
        #expect(readyStatus == 200)
        #expect((try JSONSerialization.jsonObject(with: readyBody) as? [String: Any])?["store"] as? String == backend.rawValue)
        for _ in 0..<4 { _ = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: #"{"model":"up/gpt-4o-mini","messages":[]}"#) }
        for _ in 0..<4 {
            _ = try await HTTP.post(gatehouse.baseURL + "/v1/messages", json: #"{"model":"upa/claude-sonnet-4-5","max_tokens":5,"messages":[]}"#,
                                    headers: [("x-mock-status", "500")])
        }
        let (_, healthBody) = try await HTTP.get(gatehouse.baseURL + "/api/v1/ai/health")
        let health = try #require(try JSONSerialization.jsonObject(with: healthBody) as? [String: Any])
        let providers = try #require(health["providers"] as? [[String: Any]])
        let up = try #require(providers.first { $0["name"] as? String == "up" })
        let upa = try #require(providers.first { $0["name"] as? String == "upa" })
        #expect(up["status"] as? String == "ok" && (up["success_rate"] as? Double) == 1)
        #expect(upa["status"] as? String == "down" && int(upa["failures"]) == 4)
        #expect(health["status"] as? String == "degraded")
        try await gatehouse.stop()
        try await mock.stop()
    }

    @Test func readinessFailsWhilePostgreSQLRefusesConnections() async throws {
        let url = try TestEnvironment.freshPostgresDatabase()
        let database = String(try #require(URLComponents(string: url)).path.dropFirst())
        let admin = try TestEnvironment.postgresURL
        let gatehouse = try await GatehouseProcess.start(databaseURL: url)
        #expect(try await HTTP.get(gatehouse.baseURL + "/ready").0 == 200)
        func psql(_ sql: String) async throws {
            let result = try await ProcessRunner.runAsync("/usr/bin/env", ["psql", admin, "-v", "ON_ERROR_STOP=1", "-qc", sql])
            #expect(result.status == 0, "\(result.output)")
        }
        try await psql("ALTER DATABASE \(database) WITH ALLOW_CONNECTIONS false")
        try await psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(database)'")
        let (status, _) = try await HTTP.get(gatehouse.baseURL + "/ready")
        #expect(status == 503)
        try await psql("ALTER DATABASE \(database) WITH ALLOW_CONNECTIONS true")
        var recovered = false
        for _ in 0..<50 where !recovered {
            recovered = try await HTTP.get(gatehouse.baseURL + "/ready").0 == 200
            if !recovered { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(recovered, "readiness comes back once the database does")
        try await gatehouse.stop()
    }

    @Test func usageAPIAndCLIAgree() async throws {
        let gatehouse = try await GatehouseProcess.start()
        for (customer, count) in [("acme", 3), ("globex", 2)] {
            for _ in 0..<count {
                _ = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: #"{"model":"mock/gpt-4o-mini","messages":[]}"#,
                                        headers: [("Helicone-Property-Customer", customer), ("Gatehouse-User-Id", "user-\(customer)")])
            }
        }
        _ = try await waitForRecords(gatehouse, count: 5)
        let (status, body) = try await HTTP.get(gatehouse.baseURL + "/api/v1/ai/usage?from=-1h&group_by=property.customer&interval=1m")
        #expect(status == 200)
        let report = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
        let groups = try #require(report["groups"] as? [[String: Any]])
        #expect(Dictionary(uniqueKeysWithValues: groups.map { ($0["key"] as? String ?? "", int($0["requests"]) ?? 0) }) == ["acme": 3, "globex": 2])
        #expect((report["series"] as? [[String: Any]])?.isEmpty == false)
        let totals = try #require(report["totals"] as? [String: Any])
        #expect(int(totals["requests"]) == 5)
        #expect((totals["latency_ms"] as? [String: Any])?["p95"] != nil)

        let bad = try await HTTP.get(gatehouse.baseURL + "/api/v1/ai/usage?group_by=colour")
        #expect(bad.0 == 400)
        let badTime = try await HTTP.get(gatehouse.baseURL + "/api/v1/ai/usage?from=last-tuesday")
        #expect(badTime.0 == 400)

        let table = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary,
                                                     ["usage", "--url", gatehouse.baseURL, "--by", "property.customer", "--since", "1h"])
        #expect(table.status == 0, "\(table.output)")
        #expect(table.output.contains("acme") && table.output.contains("globex") && table.output.contains("TOTAL"))
        let json = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["usage", "--url", gatehouse.baseURL, "--json"])
        let parsed = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
        #expect(int((parsed?["totals"] as? [String: Any])?["requests"]) == 5)
        let one = try await HTTP.get(gatehouse.baseURL + "/api/v1/requests?limit=2")
        let page = try #require(try JSONSerialization.jsonObject(with: one.1) as? [String: Any])
        #expect((page["data"] as? [Any])?.count == 2 && page["has_more"] as? Bool == true)
        let id = try #require(((page["data"] as? [[String: Any]])?.first)?["id"] as? String)
        #expect(try await HTTP.get(gatehouse.baseURL + "/api/v1/requests/\(id)").0 == 200)
        #expect(try await HTTP.get(gatehouse.baseURL + "/api/v1/requests/req_nope").0 == 404)
        try await gatehouse.stop()
    }

    @Test func invalidConfigurationIsRefusedWithTheKeyNamed() async throws {
        let directory = try TestEnvironment.temporaryDirectory()
        let file = directory.appendingPathComponent("bad.yaml")
        try "port: 99999\nproviders:\n  - {name: x, kind: openai, api_key: sk-live-secretvalue123, base_url: 'not a url'}\n"
            .write(to: file, atomically: true, encoding: .utf8)
        let check = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["check-config", "--config", file.path])
        #expect(check.status == 2)
        #expect(check.output.contains("port") && check.output.contains("providers[0].base_url"))
        #expect(!check.output.contains("secretvalue123"))
        let serve = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["serve", "--config", file.path, "--port", "0"])
        #expect(serve.status == 2 && serve.output.contains("refusing to start"))

        let good = directory.appendingPathComponent("good.yaml")
        try "providers:\n  - {name: openai, kind: openai, api_key: sk-live-secretvalue123}\n".write(to: good, atomically: true, encoding: .utf8)
        let ok = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["check-config", "--config", good.path],
                                                  environment: ["PATH": "/usr/bin:/bin"])
        #expect(ok.status == 0, "\(ok.output)")
        #expect(ok.output.contains("[REDACTED]") && !ok.output.contains("secretvalue123"))
    }
}
