import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseTestSupport
import Testing

/// Health, readiness, metrics, the usage API and the CLI against a running server.
@Suite(.serialized) struct OperationsEndToEndTests {
    @Test func metricsUnderLoadPassPromtool() async throws {
        let gatehouse = try await GatehouseProcess.start()
        let api = TypedAPI(baseURL: gatehouse.baseURL)
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
                // Scrape while the load runs: the first scrape that has counted some of its calls.
                try await Poll.until("a scrape with the load's first calls counted") { () -> String? in
                    let (_, body) = try await HTTP.get(gatehouse.baseURL + "/metrics")
                    let text = String(decoding: body, as: UTF8.self)
                    return text.contains("gatehouse_ai_requests_total{") ? text : nil
                }
            }
            var texts: [String] = []
            for try await text in group { if let text { texts.append(text) } }
            return texts
        }
        // A stream's call is counted once its relay ends, which can be just after the client has read
        // the last byte; every record stored means every call was counted (metrics come first).
        _ = try await waitForRequests(api, count: 180)
        let final = try await api.raw(.GET, "/metrics")
        #expect(final.status == 200 && final.header("content-type")?.hasPrefix("text/plain") == true)
        for text in scrapes + [String(decoding: final.body, as: UTF8.self)] {
            let result = try await ProcessRunner.runAsync(try TestEnvironment.promtool, ["check", "metrics"], input: Data(text.utf8))
            #expect(result.status == 0, "promtool: \(result.output)")
        }
        let text = String(decoding: final.body, as: UTF8.self)
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
        try await api.verifyContract()
        try await gatehouse.stop()
    }

    @Test(arguments: Backend.allCases)
    func healthReadinessAndProviderHealth(backend: Backend) async throws {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(yaml: upstreamConfig(mock), databaseURL: try backend.databaseURL())
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        for path in ["/health", "/api/v1/health"] {
            let alive = try await api.get(path, as: HealthReport.self)
            #expect(alive.status == "ok" && alive.version == GatehouseVersion.current && alive.uptimeSeconds >= 0, "\(path): \(alive)")
        }
        let ready = try await api.get("/ready", as: ReadinessReport.self)
        #expect(ready == ReadinessReport(status: "ready", store: backend.rawValue))

        // Before any call every provider is unknown, and that is not an outage.
        let quiet = try await api.get("/api/v1/ai/health", as: ProviderHealthReport.self)
        #expect(quiet.status == "ok" && quiet.providers.map(\.status) == ["unknown", "unknown", "unknown"], "\(quiet)")
        #expect(quiet.providers.allSatisfy { $0.successRate == nil && $0.lastCallAt == nil })

        // Only the Anthropic provider called, and it fails: every provider called lately is down.
        for _ in 0..<4 {
            _ = try await HTTP.post(gatehouse.baseURL + "/v1/messages", json: #"{"model":"upa/claude-sonnet-4-5","max_tokens":5,"messages":[]}"#,
                                    headers: [("x-mock-status", "500")])
        }
        let downReply = try await api.raw(.GET, "/api/v1/ai/health")
        #expect(downReply.status == 503)
        let down = try APIJSON.decode(ProviderHealthReport.self, from: downReply.body)
        #expect(down.status == "down", "\(down)")

        for _ in 0..<4 { _ = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: #"{"model":"up/gpt-4o-mini","messages":[]}"#) }
        let health = try await api.get("/api/v1/ai/health", as: ProviderHealthReport.self)
        let up = try #require(health.providers.first { $0.name == "up" })
        let upa = try #require(health.providers.first { $0.name == "upa" })
        #expect(up.status == "ok" && up.successRate == 1 && up.kind == "openai" && up.p95LatencyMs != nil && up.lastCallAt != nil)
        #expect(upa.status == "down" && upa.failures == 4 && upa.kind == "anthropic" && upa.lastError != nil)
        #expect(health.status == "degraded")
        #expect(health.windowCalls > 0)
        try await api.verifyContract()
        try await gatehouse.stop()
        try await mock.stop()
    }

    @Test func readinessFailsWhilePostgreSQLRefusesConnections() async throws {
        let url = try TestEnvironment.freshPostgresDatabase()
        let database = String(try #require(URLComponents(string: url)).path.dropFirst())
        let admin = try TestEnvironment.postgresURL
        let gatehouse = try await GatehouseProcess.start(databaseURL: url)
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        #expect(try await api.get("/ready", as: ReadinessReport.self).status == "ready")
        func psql(_ sql: String) async throws {
            let result = try await ProcessRunner.runAsync("/usr/bin/env", ["psql", admin, "-v", "ON_ERROR_STOP=1", "-qc", sql])
            #expect(result.status == 0, "\(result.output)")
        }
        try await psql("ALTER DATABASE \(database) WITH ALLOW_CONNECTIONS false")
        try await psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(database)'")
        let refused = try await api.raw(.GET, "/ready")
        #expect(refused.status == 503)
        let unavailable = try APIJSON.decode(ReadinessReport.self, from: refused.body)
        #expect(unavailable.status == "unavailable" && unavailable.store == "postgres" && unavailable.error?.isEmpty == false, "\(unavailable)")
        try await psql("ALTER DATABASE \(database) WITH ALLOW_CONNECTIONS true")
        try await Poll.until("readiness comes back once the database does", timeout: .seconds(10), every: .milliseconds(100)) {
            try await HTTP.get(gatehouse.baseURL + "/ready").0 == 200
        }
        try await api.verifyContract()
        try await gatehouse.stop()
    }

    @Test func usageAPIAndCLIAgree() async throws {
        let gatehouse = try await GatehouseProcess.start()
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        for (customer, count) in [("acme", 3), ("globex", 2)] {
            for _ in 0..<count {
                _ = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: #"{"model":"mock/gpt-4o-mini","messages":[]}"#,
                                        headers: [("Helicone-Property-Customer", customer), ("Gatehouse-User-Id", "user-\(customer)")])
            }
        }
        _ = try await waitForRequests(api, count: 5)
        let report = try await api.get("/api/v1/ai/usage?from=-1h&group_by=property.customer&interval=1m", as: UsageReportView.self)
        let groups = try #require(report.groups)
        #expect(Dictionary(uniqueKeysWithValues: groups.map { ($0.key ?? "", $0.stats.requests) }) == ["acme": 3, "globex": 2])
        #expect(!report.series.isEmpty)
        #expect(report.totals.requests == 5)
        #expect(report.totals.latencyMs?.p95 != nil)

        #expect(try await api.failure(.GET, "/api/v1/ai/usage?group_by=colour").status == 400)
        #expect(try await api.failure(.GET, "/api/v1/ai/usage?from=last-tuesday").status == 400)

        let table = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary,
                                                     ["usage", "--url", gatehouse.baseURL, "--by", "property.customer", "--since", "1h"])
        #expect(table.status == 0, "\(table.output)")
        #expect(table.output.contains("acme") && table.output.contains("globex") && table.output.contains("TOTAL"))
        let json = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["usage", "--url", gatehouse.baseURL, "--json"])
        let printed = try APIJSON.decode(UsageReportView.self, from: Data(json.output.utf8))
        #expect(printed.totals.requests == 5 && printed.groupBy == "model" && printed.interval == nil)
        let page = try await api.get("/api/v1/requests?limit=2", as: RequestRecordPage.self)
        #expect(page.data.count == 2 && page.hasMore && page.nextCursor != nil)
        let id = try #require(page.data.first?.id)
        #expect(try await api.get("/api/v1/requests/\(id)", as: RequestRecordView.self) == page.data.first)
        #expect(try await api.failure(.GET, "/api/v1/requests/req_nope").status == 404)
        try await api.verifyContract()
        try await gatehouse.stop()
    }

    /// Calls of every kind (a fallback with its attempts, upstream errors, a refused request, a
    /// cache hit, a stream, with and without key, user and properties), then every way of reading
    /// them back: grouped each way, bucketed, filtered, paged, one by one, and the refusals.
    @Test(arguments: Backend.allCases)
    func usageAndRequestRecordsAnswerAsDocumented(backend: Backend) async throws {
        let mock = try await MockUpstream.start()
        let database = try backend.databaseURL()
        let gatehouse = try await GatehouseProcess.start(yaml: mock.fallbackConfiguration(healthyName: "up", maxAttempts: 2) + """
            recorder:
              flush_interval_ms: 20
            """, databaseURL: database)
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        func call(_ id: String, _ body: String, _ headers: [(String, String)] = []) async throws {
            _ = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: body, headers: [("X-Request-Id", id)] + headers)
        }
        let chat = #"{"model":"up/gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}"#
        try await call("fallback", #"{"model":"smart","messages":[{"role":"user","content":"hi"}]}"#,
                       [("Authorization", "Bearer sk-client-usage-0123456789"), ("Gatehouse-User-Id", "user-1"), ("Gatehouse-Property-Customer", "acme")])
        try await call("failed", chat, [("x-mock-status", "500"), ("Gatehouse-User-Id", "user-2")])
        try await call("refused", #"{"messages":[]}"#)
        try await call("streamed", #"{"model":"up/gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
                       [("Gatehouse-Property-Customer", "globex")])
        try await call("cache-miss", chat, [("Gatehouse-Cache", "true")])
        // The cache entry is written after the answer.
        try await waitForStoredCacheEntries(gatehouse, databaseURL: database, count: 1)
        try await call("cache-hit", chat, [("Gatehouse-Cache", "true")])
        try await call("mock", #"{"model":"mock/gpt-4o-mini","messages":[]}"#, [("Gatehouse-User-Id", "user-1")])

        let records = try await waitForRequests(api, count: 7)
        #expect(records.count == 7)
        func record(_ correlationID: String) throws -> RequestRecordView {
            try #require(records.first { $0.correlationID == correlationID }, "no record for \(correlationID)")
        }
        let fallback = try record("fallback")
        #expect(fallback.attempts.map(\.provider) == ["bad", "up"] && fallback.attempts.map(\.status) == [503, 200], "\(fallback.attempts)")
        #expect(fallback.attempts.first?.errorClass == "upstream_5xx" && fallback.attempts.last?.errorClass == nil)
        #expect(fallback.provider == "up" && fallback.status == 200 && fallback.costMicros > 0 && fallback.errorClass == nil)
        #expect(fallback.keyID?.hasPrefix("sk-") == true && fallback.userID == "user-1" && fallback.properties == ["customer": "acme"])
        #expect(try await api.get("/api/v1/requests/\(fallback.id)", as: RequestRecordView.self) == fallback, "the list and the record agree")
        let failed = try record("failed")
        #expect(failed.status == 500 && failed.errorClass == "upstream_5xx" && failed.errorMessage != nil && failed.costMicros == 0)
        #expect(failed.attempts.map(\.status) == [500, 500], "a 5xx is retried once: \(failed.attempts)")
        let refused = try record("refused")
        #expect(refused.status == 400 && refused.errorClass == "invalid_request" && refused.timeToFirstTokenMs == nil && refused.keyID == nil)
        let streamed = try record("streamed")
        #expect(streamed.stream && streamed.complete && streamed.timeToFirstTokenMs != nil && streamed.usage.outputTokens > 0)
        let hit = try record("cache-hit")
        #expect(hit.cacheHit && hit.costMicros == 0 && hit.costSavedMicros > 0 && hit.costSavedUSD != "0.000000")
        #expect(try record("cache-miss").cacheHit == false)

        // Paging walks every record once, newest first, and the last page says so.
        var paged: [RequestRecordView] = []
        var cursor: String?
        repeat {
            let page = try await api.get("/api/v1/requests?limit=3" + (cursor.map { "&cursor=" + Self.encoded($0) } ?? ""), as: RequestRecordPage.self)
            paged += page.data
            cursor = page.nextCursor
            #expect(page.hasMore == (page.nextCursor != nil))
        } while cursor != nil && paged.count <= records.count
        #expect(paged.map(\.id) == records.map(\.id))
        let filtered = try await api.get("/api/v1/requests?provider=up&status=200&q=" + Self.encoded("cache_hit:true"), as: RequestRecordPage.self)
        #expect(filtered.data.map(\.correlationID) == ["cache-hit"] && !filtered.hasMore && filtered.nextCursor == nil)

        // Usage, grouped each way: the groups add up to the totals; calls without the value form a `null` group.
        let expectedNullGroup = ["model": false, "provider": false, "key": true, "user": true, "route": false, "status": false,
                                 "property.customer": true]
        for (grouping, hasNullGroup) in expectedNullGroup.sorted(by: { $0.key < $1.key }) {
            let report = try await api.get("/api/v1/ai/usage?from=-1h&interval=none&group_by=" + grouping, as: UsageReportView.self)
            let groups = try #require(report.groups, "\(grouping)")
            #expect(report.groupBy == grouping && report.interval == nil && report.series.isEmpty)
            #expect(report.totals.requests == 7 && groups.map(\.stats.requests).reduce(0, +) == 7, "\(grouping): \(groups)")
            #expect(groups.contains { $0.key == nil } == hasNullGroup, "\(grouping): \(groups.map(\.key))")
        }
        let byStatus = try await api.get("/api/v1/ai/usage?from=-1h&interval=none&group_by=status", as: UsageReportView.self)
        #expect(Set(byStatus.groups?.compactMap(\.key) ?? []) == ["200", "400", "500"])
        let series = try await api.get("/api/v1/ai/usage?from=-1h&interval=1m", as: UsageReportView.self)
        #expect(series.interval == "1m" && series.groups == nil && series.groupBy == nil && !series.series.isEmpty)
        #expect(series.series.map(\.stats.requests).reduce(0, +) == 7)
        let automatic = try await api.get("/api/v1/ai/usage?from=-3d", as: UsageReportView.self)
        #expect(automatic.interval == "1d" && automatic.totals.costMicros == series.totals.costMicros)
        let failures = try await api.get("/api/v1/ai/usage?interval=none&failed=true", as: UsageReportView.self)
        #expect(failures.totals.requests == 2 && failures.totals.errors == 2)
        let empty = try await api.get("/api/v1/ai/usage?from=2020-01-01&to=2020-01-02&group_by=model", as: UsageReportView.self)
        #expect(empty.totals.requests == 0 && empty.totals.latencyMs == nil && empty.groups == [] && empty.series.isEmpty)

        // Refusals name the parameter at fault.
        for (query, param) in [("from=last-tuesday", "from"), ("to=soon", "to"), ("interval=fortnight", nil), ("interval=0s", nil),
                               ("group_by=colour", nil), ("q=" + Self.encoded("(model:x"), "q"), ("q=" + Self.encoded("status:abc"), "q"),
                               ("from=now&to=-1h", nil)] as [(String, String?)] {
            let refusal = try await api.failure(.GET, "/api/v1/ai/usage?" + query)
            #expect(refusal.status == 400 && refusal.error.error.type == "invalid_request_error", "\(query): \(refusal)")
            if let param { #expect(refusal.error.error.param == param, "\(query): \(refusal.error)") }
        }
        for (query, param) in [("limit=0", "limit"), ("cursor=not-a-cursor", "cursor"), ("route=nope", nil), ("status=abc", nil),
                               ("from=last-tuesday", "from"), ("q=" + Self.encoded("status:abc"), "q")] as [(String, String?)] {
            let refusal = try await api.failure(.GET, "/api/v1/requests?" + query)
            #expect(refusal.status == 400, "\(query): \(refusal)")
            if let param { #expect(refusal.error.error.param == param, "\(query): \(refusal.error)") }
        }
        let missing = try await api.failure(.GET, "/api/v1/requests/req_unknown")
        #expect(missing.status == 404 && missing.error.error.type == "not_found_error")
        try await api.verifyContract()
        try await gatehouse.stop()
        try await mock.stop()
    }

    /// The routes around the API: the version is the one the code declares, the document and its
    /// page are served, `/metrics` honours `metrics.require_token`, and the usage routes need the
    /// admin token once one is set.
    @Test func operationsRoutesAnswerAsDocumented() async throws {
        let token = "operations-admin-token-0123456789"
        let gatehouse = try await GatehouseProcess.start(yaml: "metrics:\n  require_token: true\n", environment: ["GATEHOUSE_ADMIN_TOKEN": token])
        let api = TypedAPI(baseURL: gatehouse.baseURL, adminToken: token)
        let anonymous = TypedAPI(baseURL: gatehouse.baseURL)

        #expect(try await anonymous.get("/health", as: HealthReport.self).version == GatehouseVersion.current)
        let documentReply = try await anonymous.raw(.GET, "/openapi.json")
        #expect(documentReply.status == 200)
        let document = try #require(try JSONSerialization.jsonObject(with: documentReply.body) as? [String: Any])
        #expect((document["info"] as? [String: Any])?["version"] as? String == GatehouseVersion.current,
                "gatehouse.yaml's info.version must be GatehouseVersion.current")
        // The enumerations the document lists are the ones the code has.
        let schemas = try #require((document["components"] as? [String: Any])?["schemas"] as? [String: Any])
        func enumeration(_ schema: String, _ property: String? = nil) -> Set<String> {
            var node = schemas[schema] as? [String: Any]
            if let property { node = (node?["properties"] as? [String: Any])?[property] as? [String: Any] }
            return Set(node?["enum"] as? [String] ?? [])
        }
        #expect(enumeration("RequestErrorClass") == Set(ErrorClass.allCases.map(\.rawValue)))
        #expect(enumeration("RequestRecord", "route") == Set(GatewayRoute.allCases.map(\.rawValue)))
        let page = try await anonymous.raw(.GET, "/docs")
        #expect(page.status == 200 && page.header("content-type")?.hasPrefix("text/html") == true)

        let refusedMetrics = try await anonymous.failure(.GET, "/metrics")
        #expect(refusedMetrics.status == 401 && refusedMetrics.error.error.code == "invalid_admin_token")
        let metrics = try await api.raw(.GET, "/metrics")
        #expect(metrics.status == 200 && String(decoding: metrics.body, as: UTF8.self).contains("# TYPE"))

        for path in ["/api/v1/ai/usage", "/api/v1/requests", "/api/v1/requests/req_any"] {
            let refused = try await anonymous.failure(.GET, path)
            #expect(refused.status == 401 && refused.error.error.code == "invalid_admin_token", "\(path)")
        }
        let report = try await api.get("/api/v1/ai/usage", as: UsageReportView.self)
        #expect(report.totals.requests == 0 && report.interval == "1h", "a day's range is bucketed by the hour: \(report)")
        #expect(try await api.get("/api/v1/requests", as: RequestRecordPage.self) == RequestRecordPage(data: [], nextCursor: nil, hasMore: false))
        try await api.verifyContract()
        try await anonymous.verifyContract()
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

    /// A query-string value with its reserved characters escaped.
    static func encoded(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? value
    }
}
