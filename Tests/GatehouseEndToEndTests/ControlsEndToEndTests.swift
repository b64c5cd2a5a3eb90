import Foundation
import GatehouseTestSupport
import Testing

let adminToken = "test-admin-token-0123456789"
let admin = [("Authorization", "Bearer \(adminToken)")]

/// Runs `gatehouse keys …` against a running Gatehouse and returns its JSON output.
func keysCLI(_ gatehouse: GatehouseProcess, _ arguments: [String]) async throws -> [String: Any] {
    var environment = ProcessInfo.processInfo.environment
    environment["GATEHOUSE_ADMIN_TOKEN"] = adminToken
    let result = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["keys"] + arguments + ["--url", gatehouse.baseURL, "--json"],
                                                  environment: environment)
    guard result.status == 0, let start = result.output.firstIndex(of: "{"),
          let object = try JSONSerialization.jsonObject(with: Data(result.output[start...].utf8)) as? [String: Any] else {
        throw ProcessRunner.Failure(message: "gatehouse keys \(arguments) failed (\(result.status)): \(result.output)")
    }
    return object
}

func chatBody(_ model: String, maxTokens: Int? = nil, stream: Bool = false, text: String = "hello") -> String {
    var body = #"{"model":"\#(model)","messages":[{"role":"user","content":"\#(text)"}]"#
    if let maxTokens { body += #","max_tokens":\#(maxTokens)"# }
    if stream { body += #","stream":true"# }
    return body + "}"
}

@Suite(.serialized) struct ControlsEndToEndTests {
    @Test(arguments: Backend.allCases)
    func virtualKeysGateCallsAndTheSDKsSeeTheirOwnErrors(_ backend: Backend) async throws {
        let gatehouse = try await GatehouseProcess.start(databaseURL: try backend.databaseURL(), environment: ["GATEHOUSE_ADMIN_TOKEN": adminToken])
        // Open mode: no key exists, any caller passes.
        let open = try await SDK.run("openai-chat", baseURL: gatehouse.baseURL, model: "mock/gpt-4o-mini")
        #expect(open["ok"] as? Bool == true)
        #expect(try await HTTP.get(gatehouse.baseURL + "/api/v1/keys").0 == 401, "the admin API needs the token")

        let created = try await keysCLI(gatehouse, ["create", "--alias", "web", "--rpd", "2", "--models", "mock/*"])
        let secret = try #require(created["key"] as? String)
        let id = try #require(created["id"] as? String)
        #expect(secret.hasPrefix("gh-") && created["status"] as? String == "active")

        let unknown = try await SDK.run("openai-chat", baseURL: gatehouse.baseURL, model: "mock/gpt-4o-mini", apiKey: "gh-not-a-real-key-000000")
        let unknownError = try #require(unknown["error"] as? [String: Any])
        #expect(unknownError["type"] as? String == "AuthenticationError" && int(unknownError["status"]) == 401)
        #expect(!(unknownError["message"] as? String ?? "").contains("gh-not-a-real-key-000000"), "the key must not be echoed")
        let anthropicUnknown = try await SDK.run("anthropic-messages", baseURL: gatehouse.baseURL, model: "mock/claude-sonnet-4-5", apiKey: "gh-wrong-00000000")
        #expect((anthropicUnknown["error"] as? [String: Any])?["type"] as? String == "AuthenticationError")

        let first = try await SDK.run("openai-chat", baseURL: gatehouse.baseURL, model: "mock/gpt-4o-mini", apiKey: secret)
        #expect(first["ok"] as? Bool == true)
        let viaAnthropic = try await SDK.run("anthropic-messages", baseURL: gatehouse.baseURL, model: "mock/claude-sonnet-4-5", apiKey: secret)
        #expect(viaAnthropic["ok"] as? Bool == true, "the Anthropic SDK authenticates with the same key: \(viaAnthropic)")
        let limited = try await SDK.run("openai-chat", baseURL: gatehouse.baseURL, model: "mock/gpt-4o-mini", apiKey: secret)
        let limitError = try #require(limited["error"] as? [String: Any])
        #expect(limitError["type"] as? String == "RateLimitError" && int(limitError["status"]) == 429)
        #expect(Int(limitError["retry_after"] as? String ?? "") ?? 0 >= 1)
        let anthropicLimited = try await SDK.run("anthropic-messages", baseURL: gatehouse.baseURL, model: "mock/claude-sonnet-4-5", apiKey: secret)
        #expect((anthropicLimited["error"] as? [String: Any])?["type"] as? String == "RateLimitError")
        let forbidden = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: chatBody("up/gpt-4o"),
                                            headers: [("Authorization", "Bearer \(secret)")])
        #expect(forbidden.status == 403, "the key may only use mock/* models")
        #expect(try await HTTP.get(gatehouse.baseURL + "/v1/models").0 == 401, "listing models needs a key once keys exist")
        #expect(try await HTTP.get(gatehouse.baseURL + "/v1/models", headers: [("Authorization", "Bearer \(secret)")]).0 == 200)

        let rotated = try await keysCLI(gatehouse, ["rotate", id])
        let newSecret = try #require(rotated["key"] as? String)
        let old = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: chatBody("mock/gpt-4o-mini"), headers: [("Authorization", "Bearer \(secret)")])
        #expect(old.status == 401)
        _ = try await keysCLI(gatehouse, ["update", id, "--rpd", "100"])
        let fresh = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: chatBody("mock/gpt-4o-mini"), headers: [("x-api-key", newSecret)])
        #expect(fresh.status == 200, "x-api-key works like a bearer token; rotation keeps the key's limits, updated to 100 a day")
        #expect(fresh.header("x-ratelimit-limit-requests") == "100")
        _ = try await keysCLI(gatehouse, ["revoke", id])
        let revoked = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: chatBody("mock/gpt-4o-mini"), headers: [("Authorization", "Bearer \(newSecret)")])
        #expect(revoked.status == 401)
        #expect(String(decoding: revoked.body, as: UTF8.self).contains("revoked"))

        let (_, auditBody) = try await HTTP.get(gatehouse.baseURL + "/api/v1/audit", headers: admin)
        let audit = try #require((try JSONSerialization.jsonObject(with: auditBody) as? [String: Any])?["data"] as? [[String: Any]])
        #expect(audit.compactMap { $0["action"] as? String } == ["key.revoke", "key.update", "key.rotate", "key.create"])
        #expect(!String(decoding: auditBody, as: UTF8.self).contains(newSecret) && !String(decoding: auditBody, as: UTF8.self).contains(secret))

        let stored = try await waitForRecords(gatehouse, count: 10, headers: admin)
        #expect(stored.contains { $0["error_class"] as? String == "unauthorized" })
        #expect(stored.contains { $0["error_class"] as? String == "rate_limited" && int($0["status"]) == 429 })
        #expect(stored.filter { $0["key_id"] as? String == id }.count >= 4, "calls are recorded under the key's id")
        #expect(!stored.contains { ($0["key_id"] as? String ?? "").contains(secret) })

        // The query language over the same records.
        let q = "(error:rate_limited OR error:unauthorized) -route:/v1/messages".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let (queried, queryBody) = try await HTTP.get(gatehouse.baseURL + "/api/v1/requests?q=\(q)", headers: admin)
        let matches = ((try JSONSerialization.jsonObject(with: queryBody) as? [String: Any])?["data"] as? [[String: Any]]) ?? []
        #expect(queried == 200 && !matches.isEmpty)
        #expect(matches.allSatisfy { ["rate_limited", "unauthorized"].contains($0["error_class"] as? String) && $0["route"] as? String != "/v1/messages" })
        let bad = "status:>".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let (badStatus, badBody) = try await HTTP.get(gatehouse.baseURL + "/api/v1/requests?q=\(bad)", headers: admin)
        #expect(badStatus == 400 && String(decoding: badBody, as: UTF8.self).contains("invalid_query"))
        try await gatehouse.stop()
    }

    @Test(arguments: Backend.allCases)
    func aBudgetUnderConcurrentLoadStopsWithinItsBound(_ backend: Backend) async throws {
        let gatehouse = try await GatehouseProcess.start(databaseURL: try backend.databaseURL(), environment: ["GATEHOUSE_ADMIN_TOKEN": adminToken])
        // Each call costs about 11 µ$ (gpt-4o-mini prices); the budget holds about 45 of them.
        let created = try await keysCLI(gatehouse, ["create", "--budget", "0.0005", "--period", "day"])
        let secret = try #require(created["key"] as? String)
        let workers = 24
        let outcomes = try await withThrowingTaskGroup(of: [Int].self) { group in
            for w in 0..<workers {
                group.addTask {
                    var statuses: [Int] = []
                    // Each worker calls until the budget refuses it.
                    while statuses.last != 429 && statuses.count < 200 {
                        let reply = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: chatBody("mock/gpt-4o-mini", maxTokens: 16, text: "worker \(w)"),
                                                        headers: [("Authorization", "Bearer \(secret)")])
                        statuses.append(reply.status)
                    }
                    return statuses
                }
            }
            return try await group.reduce(into: [Int]()) { $0 += $1 }
        }
        let admitted = outcomes.filter { $0 == 200 }.count
        #expect(outcomes.filter { $0 == 429 }.count == workers)
        let stored = try await waitForRecords(gatehouse, count: outcomes.count, headers: admin)
        let spent = stored.compactMap { int($0["cost_micros"]) }.reduce(0, +)
        // Reservations are upper bounds here (max_tokens is set), so the bound is zero overshoot;
        // and at most one estimate (about 13 µ$) per call in flight may be left unspent at the end.
        let perCall = spent / max(1, admitted)
        #expect(spent <= 500, "spent \(spent) µ$ of a 500 µ$ budget")
        #expect(spent >= 500 - workers * 13, "stopped early: spent \(spent) µ$ (\(admitted) calls of ~\(perCall) µ$)")

        let refused = try await SDK.run("openai-chat", baseURL: gatehouse.baseURL, model: "mock/gpt-4o-mini", apiKey: secret)
        let error = try #require(refused["error"] as? [String: Any])
        #expect(error["type"] as? String == "RateLimitError" && (error["message"] as? String ?? "").contains("Budget exceeded"))
        let (_, budgetBody) = try await HTTP.get(gatehouse.baseURL + "/api/v1/budgets", headers: admin)
        let budgets = try #require((try JSONSerialization.jsonObject(with: budgetBody) as? [String: Any]))
        let row = try #require((budgets["data"] as? [[String: Any]])?.first)
        #expect(row["spent_usd"] as? String == String(format: "%.6f", Double(spent) / 1e6))
        #expect(Set((row["thresholds_crossed"] as? [Int]) ?? []).isSuperset(of: [50, 80]))
        let events = ((budgets["events"] as? [[String: Any]]) ?? []).compactMap { int($0["threshold_percent"]) }
        #expect(Set(events).isSuperset(of: [50, 80]) && events.count == Set(events).count, "each threshold written once: \(events)")
        try await gatehouse.stop()
    }

    @Test func twoInstancesOnOnePostgresHoldOneRateLimitAndOneBudget() async throws {
        let database = try TestEnvironment.freshPostgresDatabase()
        let yaml = """
            rate_limits:
              - name: tenant
                scope: property.tenant
                requests: 10
                per: day
            budgets:
              - name: customer
                scope: property.customer
                amount_usd: "0.0002"
                period: day
            controls:
              sync_interval_ms: 50
            """
        let a = try await GatehouseProcess.start(yaml: yaml, databaseURL: database)
        let b = try await GatehouseProcess.start(yaml: yaml, databaseURL: database)
        var statuses: [Int] = []
        for i in 0..<30 {
            let target = i % 2 == 0 ? a : b
            statuses.append(try await HTTP.post(target.baseURL + "/v1/chat/completions", json: chatBody("mock/gpt-4o-mini", maxTokens: 8),
                                                headers: [("Gatehouse-Property-Tenant", "acme")]).status)
        }
        #expect(statuses.filter { $0 == 200 }.count == 10, "two instances admit the limit once, not twice: \(statuses)")
        // The budget, in parallel from both instances.
        let spentStatuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<40 {
                group.addTask {
                    try await HTTP.post((i % 2 == 0 ? a : b).baseURL + "/v1/chat/completions", json: chatBody("mock/gpt-4o-mini", maxTokens: 8),
                                        headers: [("Gatehouse-Property-Customer", "big")]).status
                }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        let records = try await waitForRecords(a, count: 70)
        let spent = records.filter { ($0["properties"] as? [String: String])?["customer"] == "big" }.compactMap { int($0["cost_micros"]) }.reduce(0, +)
        #expect(spentStatuses.contains(429))
        #expect(spent <= 200, "both instances together stay within the budget: spent \(spent) µ$")
        // Left unspent at most: what the calls in flight reserved beyond their cost, plus one lease.
        #expect(spent >= 100, "and use most of it: spent \(spent) µ$")
        try await a.stop()
        try await b.stop()
    }
}
