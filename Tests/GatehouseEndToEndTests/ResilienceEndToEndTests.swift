import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

/// Retries, fallback, the circuit breaker, the response cache, token caps and kill switches,
/// driven by a mock upstream that fails, rate-limits and recovers.
@Suite(.serialized) struct ResilienceEndToEndTests {
    func config(_ mock: MockUpstream, extra: String, breakerThreshold: Int = 5) -> String {
        mock.fallbackConfiguration(healthyName: "good", maxAttempts: 3) + """
        circuit_breaker:
          failure_threshold: \(breakerThreshold)
          open_seconds: 2
        recorder:
          flush_interval_ms: 20
        \(extra)
        """
    }

    func authorizations(_ mock: MockUpstream) async throws -> [String] {
        try await mock.requests().compactMap { ($0["headers"] as? [String: Any])?["authorization"] as? String }
    }

    @Test func fallbackRetriesAndTheBreakerRouteAroundAFailingDeployment() async throws {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(yaml: config(mock, extra: "", breakerThreshold: 2))
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let reply = try await SDK.run("openai-chat", baseURL: gatehouse.baseURL, model: "smart", headers: ["X-Request-Id": "fb-0"])
        #expect(reply["ok"] as? Bool == true, "the SDK never sees the failing deployment: \(reply)")
        // Plain HTTP for the next calls: quick enough that the breaker cannot half-open between them.
        for i in 1..<3 {
            let status = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: chatBody("smart"), headers: [("X-Request-Id", "fb-\(i)")]).status
            #expect(status == 200)
        }
        // Two failures open the bad deployment's breaker: the third call goes straight to good.
        var auths = try await authorizations(mock)
        #expect(auths.filter { $0.contains("bad") }.count == 2 && auths.filter { $0.contains("good") }.count == 3, "\(auths)")
        let breakers = try await api.get("/api/v1/ai/health", as: ProviderHealthReport.self).circuitBreakers
        #expect(breakers.first?.deployment == "bad/gpt-4o-mini" && breakers.first?.state == "open")
        let records = try await waitForRequests(api, count: 3)
        let first = try #require(records.first { $0.correlationID == "fb-0" })
        #expect(first.attempts.map(\.provider) == ["bad", "good"])
        #expect(first.attempts.first?.status == 503 && first.attempts.last?.status == 200)
        #expect(first.provider == "good" && first.costMicros > 0)
        let third = try #require(records.first { $0.correlationID == "fb-2" })
        #expect(third.attempts.isEmpty)
        // Without an admin token the admin API is off, on every route.
        let adminOff = [
            try await api.failure(.GET, "/api/v1/keys"), try await api.failure(.POST, "/api/v1/keys", body: Data("{}".utf8)),
            try await api.failure(.GET, "/api/v1/keys/key_x"), try await api.failure(.PATCH, "/api/v1/keys/key_x", body: Data("{}".utf8)),
            try await api.failure(.DELETE, "/api/v1/keys/key_x"), try await api.failure(.POST, "/api/v1/keys/key_x/revoke"),
            try await api.failure(.POST, "/api/v1/keys/key_x/rotate"), try await api.failure(.GET, "/api/v1/switches"),
            try await api.failure(.POST, "/api/v1/switches", body: Data(#"{"kind":"maintenance"}"#.utf8)),
            try await api.failure(.DELETE, "/api/v1/switches?kind=maintenance"), try await api.failure(.GET, "/api/v1/audit"),
            try await api.failure(.GET, "/api/v1/budgets"),
        ]
        #expect(adminOff.allSatisfy { $0.status == 403 && $0.error.error.code == "admin_disabled" }, "\(adminOff)")

        // After open_seconds one probe goes to bad again; it fails and the breaker reopens.
        // A sleep: open_seconds (2) must pass, and the breaker turns half-open only when a call asks.
        try await Task.sleep(for: .milliseconds(2200))
        for _ in 0..<2 {
            #expect(try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: chatBody("smart")).status == 200)
        }
        auths = try await authorizations(mock)
        #expect(auths.filter { $0.contains("bad") }.count == 3, "one half-open probe, then open again: \(auths)")
        try await api.verifyContract()
        try await gatehouse.stop()
        try await mock.stop()
    }

    @Test func retriesHonourRetryAfterAndBillOnce() async throws {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(yaml: config(mock, extra: ""))
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        // The mock answers 429 with Retry-After: 1 twice, then succeeds.
        let started = ContinuousClock.now
        let reply = try await SDK.run("openai-chat", baseURL: gatehouse.baseURL, model: "good/gpt-4o-mini",
                                      headers: ["x-mock-status": "429", "x-mock-fail-times": "2", "x-mock-key": "retry-1", "X-Request-Id": "rt"])
        let elapsed = ContinuousClock.now - started
        #expect(reply["ok"] as? Bool == true, "\(reply)")
        #expect(elapsed >= .seconds(2), "two waits of Retry-After: 1s, took \(elapsed)")
        let record = try #require(try await waitForRequests(api, count: 1).first)
        #expect(record.attempts.map(\.status) == [429, 429, 200], "\(record) \(reply)")
        #expect(record.attempts.dropFirst().allSatisfy { $0.delayMs >= 1000 })
        #expect(record.usage.outputTokens > 0 && record.costMicros > 0)
        // A client error is not retried.
        _ = try await SDK.run("openai-chat", baseURL: gatehouse.baseURL, model: "good/gpt-4o-mini", headers: ["x-mock-status": "400"])
        let requests = try await mock.requests()
        #expect(requests.count == 4, "3 tries for the 429s, 1 for the 400: \(requests.count)")
        try await api.verifyContract()
        try await gatehouse.stop()
        try await mock.stop()
    }

    @Test(arguments: Backend.allCases)
    func aCachedStreamReplaysIdenticallyAndSurvivesARestart(_ backend: Backend) async throws {
        let mock = try await MockUpstream.start()
        let database = try backend.databaseURL() ?? "sqlite://" + (try TestEnvironment.temporaryDirectory()).appendingPathComponent("cache.sqlite").path
        var gatehouse = try await GatehouseProcess.start(yaml: config(mock, extra: ""), databaseURL: database)
        let headers = [("Gatehouse-Cache", "true"), ("Content-Type", "application/json")]
        let body = chatBody("good/gpt-4o-mini", stream: true, text: "cache me")
        let miss = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: body, headers: headers)
        #expect(miss.header("Gatehouse-Cache") == "MISS")
        // The cache entry is written once the stream has ended, after the caller has it all.
        try await waitForStoredCacheEntries(gatehouse, databaseURL: database, count: 1)
        let hit = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: body, headers: headers)
        #expect(hit.header("Gatehouse-Cache") == "HIT" && hit.header("content-type")?.hasPrefix("text/event-stream") == true)
        #expect(hit.body == miss.body, "the replay is byte for byte the stream the first caller got")
        #expect(!String(decoding: hit.body, as: UTF8.self).contains("prompt_tokens"), "the usage chunk the caller did not ask for stays out")
        // The SDK consumes the replayed stream like a live one.
        let sdk = try await SDK.run("openai-chat-stream-usage", baseURL: gatehouse.baseURL, model: "good/gpt-4o-mini", headers: ["Gatehouse-Cache": "true"])
        let sdkAgain = try await SDK.run("openai-chat-stream-usage", baseURL: gatehouse.baseURL, model: "good/gpt-4o-mini", headers: ["Helicone-Cache-Enabled": "true"])
        #expect(sdk["text"] as? String == sdkAgain["text"] as? String && int(sdkAgain["usage_chunks"]) == 1)
        #expect(try await mock.requests().count == 2, "hits never reach upstream")
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let records = try await waitForRequests(api, count: 4)
        let hits = records.filter(\.cacheHit)
        #expect(hits.count == 2 && hits.allSatisfy { $0.costMicros == 0 && $0.costSavedMicros > 0 })
        try await api.verifyContract()
        try await gatehouse.stop()

        gatehouse = try await GatehouseProcess.start(yaml: config(mock, extra: ""), databaseURL: database)
        let afterRestart = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: body, headers: headers)
        #expect(afterRestart.header("Gatehouse-Cache") == "HIT" && afterRestart.body == miss.body, "the cache is persisted in the store")
        try await gatehouse.stop()
        try await mock.stop()
    }

    @Test func tokenCapsAndKillSwitchesApplyWithoutARestart() async throws {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(yaml: config(mock, extra: """
            token_caps:
              - routes: [/v1/chat/completions]
                max_output_tokens: 50
              - property: feature=autocomplete
                max_output_tokens: 20
                mode: reject
              - property: feature=rewrite
                max_input_tokens: 100
            """), environment: ["GATEHOUSE_ADMIN_TOKEN": adminToken])
        let url = gatehouse.baseURL + "/v1/chat/completions"
        let api = TypedAPI(baseURL: gatehouse.baseURL, adminToken: adminToken)
        #expect(try await HTTP.post(url, json: chatBody("good/gpt-4o-mini", maxTokens: 500)).status == 200)
        #expect(try await HTTP.post(url, json: chatBody("good/gpt-4o-mini")).status == 200)
        let sent = try await mock.requests().compactMap { $0["body"] as? [String: Any] }
        #expect(sent.compactMap { int($0["max_tokens"] ?? $0["max_completion_tokens"]) } == [50, 50], "clamped, and set when absent: \(sent)")
        let rejected = try await HTTP.post(url, json: chatBody("good/gpt-4o-mini", maxTokens: 500), headers: [("Gatehouse-Property-Feature", "autocomplete")])
        #expect(rejected.status == 400 && String(decoding: rejected.body, as: UTF8.self).contains("max_tokens_exceeded"))
        let long = try await HTTP.post(url, json: chatBody("good/gpt-4o-mini", text: String(repeating: "word ", count: 200)),
                                       headers: [("Gatehouse-Property-Feature", "rewrite")])
        #expect(long.status == 400 && String(decoding: long.body, as: UTF8.self).contains("context_length_exceeded"))
        #expect(try await mock.requests().count == 2, "refused calls cost nothing")

        func flip(_ change: SwitchChange) async throws {
            let set = try await postExpecting(api, "/api/v1/switches", body: change, status: 201, as: SwitchView.self)
            #expect(set.kind == change.kind)
        }
        try await flip(SwitchChange(kind: "maintenance", reason: "database upgrade", retryAfter: 120))
        let maintenance = try await SDK.run("openai-chat", baseURL: gatehouse.baseURL, model: "good/gpt-4o-mini")
        let error = try #require(maintenance["error"] as? [String: Any])
        #expect(int(error["status"]) == 503 && error["retry_after"] as? String == "120" && (error["message"] as? String ?? "").contains("database upgrade"))
        #expect(try await api.send(.DELETE, "/api/v1/switches?kind=maintenance", as: SwitchRemoval.self).removed.kind == "maintenance")
        try await flip(SwitchChange(kind: "property", value: "customer=runaway"))
        #expect(try await HTTP.post(url, json: chatBody("good/gpt-4o-mini"), headers: [("Gatehouse-Property-Customer", "runaway")]).status == 403)
        #expect(try await HTTP.post(url, json: chatBody("good/gpt-4o-mini"), headers: [("Gatehouse-Property-Customer", "fine")]).status == 200)
        try await flip(SwitchChange(kind: "provider", value: "good"))
        #expect(try await HTTP.post(url, json: chatBody("good/gpt-4o-mini")).status == 503)
        try await flip(SwitchChange(kind: "model", value: "smart"))
        #expect(try await HTTP.post(url, json: chatBody("smart")).status == 403)
        let actions = try await api.get("/api/v1/audit", as: AuditPage.self).data.map(\.action)
        #expect(actions == ["switch.set", "switch.set", "switch.set", "switch.remove", "switch.set"])
        try await api.verifyContract()
        try await gatehouse.stop()
        try await mock.stop()
    }
}
