import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

let adminToken = "test-admin-token-0123456789"

/// Runs `gatehouse keys … --json` against a running Gatehouse and reads its output as the API type it prints.
func keysCLI<T: Decodable>(_ gatehouse: GatehouseProcess, _ arguments: [String], as type: T.Type) async throws -> T {
    var environment = ProcessInfo.processInfo.environment
    environment["GATEHOUSE_ADMIN_TOKEN"] = adminToken
    let result = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["keys"] + arguments + ["--url", gatehouse.baseURL, "--json"],
                                                  environment: environment)
    guard result.status == 0, let start = result.output.firstIndex(of: "{"),
          let answer = try? APIJSON.decode(T.self, from: Data(result.output[start...].utf8)) else {
        throw ProcessRunner.Failure(message: "gatehouse keys \(arguments) failed (\(result.status)): \(result.output)")
    }
    return answer
}

/// Sends `body` and expects `status`, returning the answer decoded as `T` (TypedAPI's `send`
/// checks only for a 2xx; creations answer 201).
func postExpecting<T: Decodable>(_ api: TypedAPI, _ path: String, body: some Encodable, status: Int, as type: T.Type) async throws -> T {
    let reply = try await api.raw(.POST, path, body: try APIJSON.encode(body))
    #expect(reply.status == status, "POST \(path) answered \(reply.status): \(String(decoding: reply.body, as: UTF8.self))")
    return try APIJSON.decode(T.self, from: reply.body)
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
        let api = TypedAPI(baseURL: gatehouse.baseURL, adminToken: adminToken)
        let anonymous = TypedAPI(baseURL: gatehouse.baseURL)
        // Open mode: no key exists, any caller passes.
        let open = try await SDK.run("openai-chat", baseURL: gatehouse.baseURL, model: "mock/gpt-4o-mini")
        #expect(open["ok"] as? Bool == true)
        let withoutToken = try await anonymous.failure(.GET, "/api/v1/keys")
        #expect(withoutToken.status == 401 && withoutToken.error.error.code == "invalid_admin_token", "the admin API needs the token")

        let created = try await keysCLI(gatehouse, ["create", "--alias", "web", "--rpd", "2", "--models", "mock/*"], as: IssuedKey.self)
        let secret = created.key
        let id = created.view.id
        #expect(secret.hasPrefix("gh-") && created.view.status == "active")

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

        let rotated = try await keysCLI(gatehouse, ["rotate", id], as: IssuedKey.self)
        let newSecret = rotated.key
        let old = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: chatBody("mock/gpt-4o-mini"), headers: [("Authorization", "Bearer \(secret)")])
        #expect(old.status == 401)
        _ = try await keysCLI(gatehouse, ["update", id, "--rpd", "100"], as: KeyView.self)
        let fresh = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: chatBody("mock/gpt-4o-mini"), headers: [("x-api-key", newSecret)])
        #expect(fresh.status == 200, "x-api-key works like a bearer token; rotation keeps the key's limits, updated to 100 a day")
        #expect(fresh.header("x-ratelimit-limit-requests") == "100")
        _ = try await keysCLI(gatehouse, ["revoke", id], as: KeyView.self)
        let revoked = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: chatBody("mock/gpt-4o-mini"), headers: [("Authorization", "Bearer \(newSecret)")])
        #expect(revoked.status == 401)
        #expect(String(decoding: revoked.body, as: UTF8.self).contains("revoked"))

        let auditReply = try await api.raw(.GET, "/api/v1/audit")
        let audit = try APIJSON.decode(AuditPage.self, from: auditReply.body)
        #expect(audit.data.map(\.action) == ["key.revoke", "key.update", "key.rotate", "key.create"])
        let auditText = String(decoding: auditReply.body, as: UTF8.self)
        #expect(!auditText.contains(newSecret) && !auditText.contains(secret))

        let stored = try await waitForRequests(api, count: 10)
        #expect(stored.contains { $0.errorClass == "unauthorized" })
        #expect(stored.contains { $0.errorClass == "rate_limited" && $0.status == 429 })
        #expect(stored.filter { $0.keyID == id }.count >= 4, "calls are recorded under the key's id")
        #expect(!stored.contains { ($0.keyID ?? "").contains(secret) })

        // The query language over the same records.
        let q = "(error:rate_limited OR error:unauthorized) -route:/v1/messages".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let matches = try await api.get("/api/v1/requests?q=\(q)", as: RequestRecordPage.self).data
        #expect(!matches.isEmpty)
        #expect(matches.allSatisfy { record in
            record.errorClass.map { ["rate_limited", "unauthorized"].contains($0) } == true && record.route != "/v1/messages"
        })
        let bad = "status:>".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let badQuery = try await api.failure(.GET, "/api/v1/requests?q=\(bad)")
        #expect(badQuery.status == 400 && badQuery.error.error.code == "invalid_query")
        try await api.verifyContract()
        try await anonymous.verifyContract()
        try await gatehouse.stop()
    }

    @Test(arguments: Backend.allCases)
    func aBudgetUnderConcurrentLoadStopsWithinItsBound(_ backend: Backend) async throws {
        let gatehouse = try await GatehouseProcess.start(databaseURL: try backend.databaseURL(), environment: ["GATEHOUSE_ADMIN_TOKEN": adminToken])
        let api = TypedAPI(baseURL: gatehouse.baseURL, adminToken: adminToken)
        // Each call costs about 11 µ$ (gpt-4o-mini prices); the budget holds about 45 of them.
        let created = try await keysCLI(gatehouse, ["create", "--budget", "0.0005", "--period", "day"], as: IssuedKey.self)
        let secret = created.key
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
        let stored = try await waitForRequests(api, count: outcomes.count)
        let spent = stored.map { Int($0.costMicros) }.reduce(0, +)
        // Reservations are upper bounds here (max_tokens is set), so the bound is zero overshoot;
        // and at most one estimate (about 13 µ$) per call in flight may be left unspent at the end.
        let perCall = spent / max(1, admitted)
        #expect(spent <= 500, "spent \(spent) µ$ of a 500 µ$ budget")
        #expect(spent >= 500 - workers * 13, "stopped early: spent \(spent) µ$ (\(admitted) calls of ~\(perCall) µ$)")

        let refused = try await SDK.run("openai-chat", baseURL: gatehouse.baseURL, model: "mock/gpt-4o-mini", apiKey: secret)
        let error = try #require(refused["error"] as? [String: Any])
        #expect(error["type"] as? String == "RateLimitError" && (error["message"] as? String ?? "").contains("Budget exceeded"))
        let budgets = try await api.get("/api/v1/budgets", as: BudgetReport.self)
        let row = try #require(budgets.data.first)
        #expect(row.name == created.view.id && row.scope == "key" && row.value == nil && row.period == "day" && row.limitUSD == "0.000500")
        #expect(row.spentUSD == String(format: "%.6f", Double(spent) / 1e6))
        #expect(Set(row.thresholdsCrossed).isSuperset(of: [50, 80]))
        let events = budgets.events.map(\.thresholdPercent)
        #expect(Set(events).isSuperset(of: [50, 80]) && events.count == Set(events).count, "each threshold written once: \(events)")
        try await api.verifyContract()
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
        let api = TypedAPI(baseURL: a.baseURL)
        let records = try await waitForRequests(api, count: 70)
        let spent = records.filter { $0.properties["customer"] == "big" }.map { Int($0.costMicros) }.reduce(0, +)
        #expect(spentStatuses.contains(429))
        #expect(spent <= 200, "both instances together stay within the budget: spent \(spent) µ$")
        // Left unspent at most: what the calls in flight reserved beyond their cost, plus one lease.
        #expect(spent >= 100, "and use most of it: spent \(spent) µ$")
        try await api.verifyContract()
        try await a.stop()
        try await b.stop()
    }

    /// Every admin route and every error status it documents, on realistic data (keys with every
    /// setting and with none, nulls that clear, every kind of switch, a configured budget and a
    /// key's, a paged audit log), checked against the OpenAPI document; and what was sent reads
    /// back as sent.
    @Test(arguments: Backend.allCases)
    func theAdminAPIAnswersAsItsContractSays(_ backend: Backend) async throws {
        let yaml = """
            budgets:
              - name: customer
                scope: property.customer
                amount_usd: "0.0002"
                period: day
            """
        let gatehouse = try await GatehouseProcess.start(yaml: yaml, databaseURL: try backend.databaseURL(), environment: ["GATEHOUSE_ADMIN_TOKEN": adminToken])
        let api = TypedAPI(baseURL: gatehouse.baseURL, adminToken: adminToken)
        let wrongToken = try await api.failure(.GET, "/api/v1/budgets", headers: [("Authorization", "Bearer not-the-admin-token")])
        #expect(wrongToken.status == 401 && wrongToken.error.error.code == "invalid_admin_token")

        // A key with every setting.
        let everything = KeyChanges(
            alias: .set("search-prod"), models: ["mock/*", "up/gpt-4o"], routes: ["/v1/chat/completions", "/v1/messages"],
            limits: [KeyRateLimit(tokens: 100_000, per: "hour"), KeyRateLimit(requests: 50, per: "minutes")],
            rpm: .set(30), tpm: .set(50_000), rpd: .set(1000), maxParallel: .set(4),
            budget: .set(KeyBudgetChanges(amountUSD: "1.50", period: "week", softThresholds: [50, 90])),
            expiresAt: .set("+30d"), metadata: ["team": "search", "cost_center": "42"], tags: ["prod", "search"], blocked: false)
        let full = try await postExpecting(api, "/api/v1/keys", body: everything, status: 201, as: IssuedKey.self)
        #expect(full.key.hasPrefix("gh-") && full.view.prefix == String(full.key.prefix(7)) + "…")
        #expect(full.note?.contains("cannot show it again") == true)
        #expect(full.view.alias == "search-prod" && full.view.models == ["mock/*", "up/gpt-4o"] && full.view.routes == ["/v1/chat/completions", "/v1/messages"])
        #expect(full.view.limits == [KeyRateLimit(tokens: 100_000, per: "hour"), KeyRateLimit(requests: 30, per: "minute"),
                                     KeyRateLimit(tokens: 50_000, per: "minute"), KeyRateLimit(requests: 1000, per: "day")],
                "`limits` first; then rpm replaces the per-minute request limit, tpm and rpd add theirs")
        #expect(full.view.maxParallel == 4 && full.view.budget == KeyBudgetView(amountUSD: "1.500000", period: "week", softThresholds: [0.5, 0.9]))
        #expect(full.view.metadata == ["team": "search", "cost_center": "42"] && full.view.tags == ["prod", "search"] && !full.view.blocked)
        #expect(full.view.status == "active" && full.view.expiresAt != nil && full.view.revokedAt == nil)

        // A key with none: no body at all.
        let bareReply = try await api.raw(.POST, "/api/v1/keys")
        #expect(bareReply.status == 201)
        let bare = try APIJSON.decode(IssuedKey.self, from: bareReply.body)
        #expect(bare.view.alias == nil && bare.view.models.isEmpty && bare.view.routes.isEmpty && bare.view.limits.isEmpty && bare.view.tags.isEmpty)
        #expect(bare.view.maxParallel == nil && bare.view.budget == nil && bare.view.expiresAt == nil && bare.view.metadata.isEmpty)
        let bareText = String(decoding: bareReply.body, as: UTF8.self)
        #expect(bareText.contains(#""alias":null"#) && bareText.contains(#""budget":null"#) && bareText.contains(#""revoked_at":null"#),
                "unset fields are written as null: \(bareText)")

        // A budget given as a number is read to six decimals.
        let budgeted = try await api.raw(.PATCH, "/api/v1/keys/\(bare.view.id)", body: Data(#"{"budget":{"amount_usd":0.25,"period":"total"}}"#.utf8))
        #expect(budgeted.status == 200)
        let bareBudget = KeyBudgetView(amountUSD: "0.250000", period: "total", softThresholds: [0.5, 0.8, 1])
        #expect(try APIJSON.decode(KeyView.self, from: budgeted.body).budget == bareBudget)

        // `null` clears; a field left out stays.
        let clearing = KeyChanges(alias: .clear, rpm: .clear, maxParallel: .clear, budget: .clear, expiresAt: .clear, blocked: true)
        #expect(String(decoding: try APIJSON.encode(clearing), as: UTF8.self)
                == #"{"alias":null,"blocked":true,"budget":null,"expires_at":null,"max_parallel":null,"rpm":null}"#)
        let patched = try await api.send(.PATCH, "/api/v1/keys/\(full.view.id)", json: clearing, as: KeyView.self)
        #expect(patched.alias == nil && patched.maxParallel == nil && patched.budget == nil && patched.expiresAt == nil)
        #expect(patched.limits == [KeyRateLimit(tokens: 100_000, per: "hour"), KeyRateLimit(tokens: 50_000, per: "minute"),
                                   KeyRateLimit(requests: 1000, per: "day")])
        #expect(patched.status == "blocked" && patched.models == full.view.models && patched.metadata == full.view.metadata)
        #expect(try await api.get("/api/v1/keys/\(full.view.id)", as: KeyView.self) == patched)
        #expect(Set(try await api.get("/api/v1/keys", as: KeyList.self).data.map(\.id)) == [full.view.id, bare.view.id])

        // Every mistake is a 400 naming the field, in the words used for that field's bounds.
        let keyPath = "/api/v1/keys/\(bare.view.id)"
        let mistakes: [(body: String, message: String)] = [
            (#"{"alias":"x","colour":"red"}"#,
             "unknown field `colour` (expected one of: alias, blocked, budget, capture_bodies, expires_at, limits, max_parallel, metadata, models, routes, rpd, rpm, tags, tpm)"),
            (#"{"rpm":"fast"}"#, "`rpm` must be a whole number of at least 1"),
            (#"{"rpm":0}"#, "`rpm` must be a whole number of at least 1"),
            (#"{"tpm":1.5}"#, "`tpm` must be a whole number of at least 1"),
            (#"[1,2]"#, "the body must be a JSON object"),
            (#"{"alias":"#, "the body must be a JSON object"),
            (#"{"alias":""}"#, "`alias` must be 1 to 128 characters"),
            (#"{"models":null}"#, "`models` must be a list of strings"),
            (#"{"routes":["/v1/chat/completions",""]}"#, "`routes` must be a list of non-empty strings"),
            (#"{"routes":["/v2/anything"]}"#, #"`routes`: "/v2/anything" is not a gateway route (/v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses, /v1/models, /v1/messages)"#),
            (#"{"limits":{"requests":5}}"#, "`limits` must be a list of {requests|tokens, per}"),
            (#"{"limits":[{"requests":2.5,"per":"day"}]}"#, "`limits[0]` needs exactly one of `requests` or `tokens`, at least 1"),
            (#"{"limits":[{"requests":5}]}"#, "`limits[0].per` must be second, minute, hour, day, week or month"),
            (#"{"limits":[{"requests":5,"per":"fortnight"}]}"#, "`limits[0].per` must be second, minute, hour, day, week or month"),
            (#"{"limits":[{"requests":5,"per":"day"},{"requests":5,"tokens":5,"per":"day"}]}"#,
             "`limits[1]` needs exactly one of `requests` or `tokens`, at least 1"),
            (#"{"max_parallel":0}"#, "`max_parallel` must be between 1 and 100000"),
            (#"{"metadata":{"team":5}}"#, "`metadata.team` must be a string of at most 1024 characters"),
            (#"{"budget":"lots"}"#, "`budget` must be {amount_usd, period, soft_thresholds}"),
            (#"{"budget":{"amount_usd":"free"}}"#, #"`budget.amount_usd` must be a positive dollar amount such as "25.00""#),
            (#"{"budget":{"amount_usd":"1","period":"minute"}}"#, "`budget.period` must be hour, day, week, month or total"),
            (#"{"budget":{"amount_usd":"1","soft_thresholds":"high"}}"#, "`budget.soft_thresholds` must be a list of numbers"),
            (#"{"expires_at":"soon"}"#, "`expires_at` must be RFC 3339 (2027-01-31T00:00:00Z) or a duration from now such as +30d"),
            (#"{"blocked":"yes"}"#, "`blocked` must be true or false"),
        ]
        for mistake in mistakes {
            let refused = try await api.failure(.PATCH, keyPath, body: Data(mistake.body.utf8))
            #expect(refused.status == 400 && refused.error.error.type == "invalid_request_error", "\(mistake.body) answered \(refused.status)")
            #expect(refused.error.error.message == mistake.message, "\(mistake.body)")
        }
        let badCreate = try await api.failure(.POST, "/api/v1/keys", body: Data(#"{"tags":[""]}"#.utf8))
        #expect(badCreate.status == 400 && badCreate.error.error.message == "`tags` must be a list of non-empty strings")
        let oversized = Data((#"{"alias":""# + String(repeating: "a", count: 70_000) + #""}"#).utf8)
        for (method, path) in [("POST", "/api/v1/keys"), ("PATCH", keyPath), ("POST", "/api/v1/switches")] {
            let tooLarge = try await (method == "POST" ? api.failure(.POST, path, body: oversized) : api.failure(.PATCH, path, body: oversized))
            #expect(tooLarge.status == 413 && tooLarge.error.error.message == "request body is larger than the limit of 65536 bytes" && tooLarge.error.error.code == "request_too_large", "\(method) \(path)")
        }
        let missing = "/api/v1/keys/key_missing"
        for refused in [try await api.failure(.GET, missing), try await api.failure(.PATCH, missing, body: Data("{}".utf8)),
                        try await api.failure(.DELETE, missing), try await api.failure(.POST, missing + "/revoke"),
                        try await api.failure(.POST, missing + "/rotate")] {
            #expect(refused.status == 404 && refused.error.error.type == "not_found_error" && refused.error.error.message == "no key with id key_missing")
        }

        // A new secret, then calls with it that both the configured budget and the key's count.
        let rotated = try await api.send(.POST, "/api/v1/keys/\(bare.view.id)/rotate", as: IssuedKey.self)
        #expect(rotated.view.id == bare.view.id && rotated.key != bare.key && rotated.note == nil)
        #expect(rotated.view.prefix == String(rotated.key.prefix(7)) + "…" && rotated.view.budget == bareBudget)
        for _ in 0..<2 {
            let reply = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: chatBody("mock/gpt-4o-mini", maxTokens: 8),
                                            headers: [("Authorization", "Bearer \(rotated.key)"), ("Gatehouse-Property-Customer", "big")])
            #expect(reply.status == 200)
        }
        let budgets = try await Poll.until("both budgets to count the calls") { () async throws -> BudgetReport? in
            let report = try await api.get("/api/v1/budgets", as: BudgetReport.self)
            let spent = report.data.filter { ($0.name == "budget:customer" && $0.value == "big") || $0.name == bare.view.id }.map(\.spentUSD)
            return spent.count == 2 && !spent.contains("0.000000") ? report : nil
        }
        let customer = try #require(budgets.data.first { $0.name == "budget:customer" })
        #expect(customer.scope == "property.customer" && customer.period == "day" && customer.windowEnd != nil && customer.limitUSD == "0.000200")
        #expect(customer.softThresholds == [50, 80, 100] && customer.percentUsed > 0 && !customer.exhausted)
        let keyBudget = try #require(budgets.data.first { $0.name == bare.view.id })
        #expect(keyBudget.scope == "key" && keyBudget.value == nil && keyBudget.period == "total" && keyBudget.windowEnd == nil)
        #expect(keyBudget.limitUSD == "0.250000" && keyBudget.softThresholds == [50, 80, 100])
        #expect(!budgets.data.contains { $0.name == full.view.id }, "a cleared budget is no longer reported")

        // Every kind of switch.
        let switches: [(change: SwitchChange, value: String)] = [
            (SwitchChange(kind: "maintenance", reason: "database upgrade", retryAfter: 60), ""),
            (SwitchChange(kind: "provider", value: "up"), "up"),
            (SwitchChange(kind: "model", value: "mock/gpt-4o"), "mock/gpt-4o"),
            (SwitchChange(kind: "key", value: full.view.id, reason: "leaked"), full.view.id),
            (SwitchChange(kind: "property", value: "Customer=acme"), "customer=acme"),
        ]
        for (change, value) in switches {
            let set = try await postExpecting(api, "/api/v1/switches", body: change, status: 201, as: SwitchView.self)
            #expect(set.kind == change.kind && set.value == value && set.reason == change.reason && set.retryAfter == change.retryAfter)
        }
        #expect(try await api.get("/api/v1/switches", as: SwitchList.self).data.map(\.kind).sorted() == ["key", "maintenance", "model", "property", "provider"])
        let switchMistakes: [(body: String, message: String)] = [
            (#"{"kind":"laser"}"#, "`kind` must be one of maintenance, provider, model, key, property"),
            (#"{"kind":7}"#, "`kind` must be one of maintenance, provider, model, key, property"),
            (#"{"kind":"model"}"#, "`value` is required for a model switch"),
            (#"{"kind":"model","value":42}"#, "`value` must be a string"),
            (#"{"kind":"property","value":"acme"}"#, "a property switch's `value` is name=value, e.g. customer=acme"),
            (#"{"kind":"maintenance","retry_after":0}"#, "`retry_after` must be 1 to 86400 seconds"),
            (#"{"kind":"maintenance","retry_after":"soon"}"#, "`retry_after` must be 1 to 86400 seconds"),
            (#"{"kind":"maintenance","retry_after":null}"#, "`retry_after` must be 1 to 86400 seconds"),
            (#""maintenance""#, "the body must be a JSON object"),
        ]
        for mistake in switchMistakes {
            let refused = try await api.failure(.POST, "/api/v1/switches", body: Data(mistake.body.utf8))
            #expect(refused.status == 400 && refused.error.error.message == mistake.message, "\(mistake.body): \(refused.error.error.message)")
        }
        let removed = try await api.send(.DELETE, "/api/v1/switches?kind=maintenance", as: SwitchRemoval.self)
        #expect(removed.removed == SwitchTarget(kind: "maintenance", value: ""))
        let removedProperty = try await api.send(.DELETE, "/api/v1/switches?kind=property&value=customer%3Dacme", as: SwitchRemoval.self)
        #expect(removedProperty.removed == SwitchTarget(kind: "property", value: "customer=acme"))
        let gone = try await api.failure(.DELETE, "/api/v1/switches?kind=maintenance")
        #expect(gone.status == 404 && gone.error.error.type == "not_found_error")
        let badKind = try await api.failure(.DELETE, "/api/v1/switches?kind=laser")
        #expect(badKind.status == 400)
        #expect(try await api.get("/api/v1/switches", as: SwitchList.self).data.count == 3)

        // Revoking: twice changes nothing; DELETE does the same; a revoked key cannot change.
        let revoked = try await api.send(.POST, "/api/v1/keys/\(full.view.id)/revoke", as: KeyView.self)
        #expect(revoked.status == "revoked" && revoked.revokedAt != nil)
        #expect(try await api.send(.POST, "/api/v1/keys/\(full.view.id)/revoke", as: KeyView.self) == revoked, "revoking again changes nothing")
        #expect(try await api.send(.DELETE, keyPath, as: KeyView.self).status == "revoked")
        let revokedMessage = "the key \(full.view.id) is revoked; create a new one"
        let patchRevoked = try await api.failure(.PATCH, "/api/v1/keys/\(full.view.id)", body: Data(#"{"alias":"again"}"#.utf8))
        #expect(patchRevoked.status == 400 && patchRevoked.error.error.message == revokedMessage)
        let rotateRevoked = try await api.failure(.POST, "/api/v1/keys/\(full.view.id)/rotate")
        #expect(rotateRevoked.status == 400 && rotateRevoked.error.error.message == revokedMessage)

        // The audit log, paged: every change once, newest first, its details typed and free of secrets.
        var pages: [[AuditRecord]] = []
        var before: Int64?
        repeat {
            let page = try await api.get("/api/v1/audit?limit=5" + (before.map { "&before=\($0)" } ?? ""), as: AuditPage.self)
            pages.append(page.data)
            #expect(page.nextBefore == (page.data.count == 5 ? page.data.last?.id : nil))
            before = page.nextBefore
        } while before != nil && pages.count < 10
        let entries = pages.flatMap { $0 }
        #expect(pages.map(\.count) == [5, 5, 4])
        #expect(entries == (try await api.get("/api/v1/audit", as: AuditPage.self)).data, "the pages join up to the whole log")
        #expect(entries.map(\.action) == ["key.revoke", "key.revoke", "switch.remove", "switch.remove"] + Array(repeating: "switch.set", count: 5)
                + ["key.rotate", "key.update", "key.update", "key.create", "key.create"])
        let fullCreated = try #require(entries.first { $0.action == "key.create" && $0.target == full.view.id })
        #expect(try fullCreated.details.decode(as: KeyView.self) == full.view, "the key as created, without its secret")
        let cleared = try #require(entries.first { $0.action == "key.update" && $0.target == full.view.id })
        #expect(try cleared.details.decode(as: KeyChangesDetails.self) == KeyChangesDetails(changes: clearing), "the body as read, nulls included")
        let budgetSet = try #require(entries.first { $0.action == "key.update" && $0.target == bare.view.id })
        #expect(budgetSet.details == .object(["changes": .object(["budget": .object(["amount_usd": .string("0.250000"), "period": .string("total")])])]))
        let rotation = try #require(entries.first { $0.action == "key.rotate" })
        #expect(try rotation.details.decode(as: KeyRotationDetails.self) == KeyRotationDetails(prefix: rotated.view.prefix))
        let maintenance = try #require(entries.first { $0.action == "switch.set" && $0.target == "maintenance:" })
        #expect(try maintenance.details.decode(as: SwitchView.self).retryAfter == 60)
        #expect(entries.filter { ["key.revoke", "switch.remove"].contains($0.action) }.allSatisfy { $0.details == .object([:]) })
        #expect(entries.allSatisfy { $0.actor.hasPrefix("admin-token:") })
        let auditText = String(decoding: try await api.raw(.GET, "/api/v1/audit").body, as: UTF8.self)
        #expect(![full.key, bare.key, rotated.key].contains { auditText.contains($0) })
        for limit in ["0", "1001", "many"] {
            let refused = try await api.failure(.GET, "/api/v1/audit?limit=\(limit)")
            #expect(refused.status == 400 && refused.error.error.param == "limit", "limit=\(limit) answered \(refused.status)")
        }
        try await api.verifyContract()
        try await gatehouse.stop()
    }
}
