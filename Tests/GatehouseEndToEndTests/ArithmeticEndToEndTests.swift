import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

/// Numbers that come from outside (request bodies, headers, the upstream's usage) must never
/// trap: one request with `"max_tokens": 1000000000000` used to crash the whole server through
/// an arithmetic overflow in the quota estimate (issue 9, defect 2).
@Suite(.serialized) struct ArithmeticEndToEndTests {
    /// A budget and a token rate limit, so every call is estimated and reserved.
    static let limits = """
        rate_limits:
          - name: all-tokens
            scope: global
            tokens: 100000
            per: minute
        budgets:
          - name: all-spend
            scope: global
            amount_usd: "5"
            period: day
        """

    /// Values a client may send where Gatehouse expects a token count.
    static let extremes = ["1000000000000", "9223372036854775807", "9223372036854775808", "18446744073709551616",
                           "-1", "-9223372036854775808", "1e300", "-1e300", "1.5e19", "0", "1e-300", "100000000000000000000000000000000"]

    /// Sends one call; a refused connection or a 5xx means the gateway fell over.
    static func send(_ gatehouse: GatehouseProcess, _ path: String, _ body: String, headers: [(String, String)] = []) async -> HTTP.Reply? {
        do {
            let reply = try await HTTP.post(gatehouse.baseURL + path, json: body, headers: headers)
            #expect(reply.status < 500, "\(path) \(body) answered \(reply.status): \(String(decoding: reply.body, as: UTF8.self))")
            return reply
        } catch {
            Issue.record("\(path) \(body) got no answer (\(error)); the server's last lines:\n\(gatehouse.child.output.suffix(8).joined(separator: "\n"))")
            return nil
        }
    }

    static func expectAlive(_ gatehouse: GatehouseProcess, after what: String) async {
        do {
            #expect(try await HTTP.get(gatehouse.baseURL + "/health").0 == 200, "/health after \(what)")
        } catch {
            Issue.record("/health got no answer after \(what): \(error)")
        }
        #expect(gatehouse.child.isRunning, "the server process is still running after \(what)")
    }

    @Test(arguments: Backend.allCases)
    func hugeTokenLimitsInRequestsNeverCrashTheServer(_ backend: Backend) async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: Self.limits, databaseURL: try backend.databaseURL())
        for value in Self.extremes {
            let calls: [(String, String)] = [
                ("/v1/chat/completions", #"{"model":"mock/gpt-4o-mini","max_tokens":\#(value),"messages":[{"role":"user","content":"hi"}]}"#),
                ("/v1/chat/completions", #"{"model":"mock/gpt-4o","max_completion_tokens":\#(value),"stream":true,"messages":[{"role":"user","content":"hi"}]}"#),
                ("/v1/messages", #"{"model":"mock/claude-sonnet-4-5","max_tokens":\#(value),"messages":[{"role":"user","content":"hi"}]}"#),
                ("/v1/messages", #"{"model":"mock/claude-opus-4-1","max_tokens":\#(value),"stream":true,"messages":[{"role":"user","content":"hi"}]}"#),
                ("/v1/responses", #"{"model":"mock/gpt-4o","max_output_tokens":\#(value),"input":"hi"}"#),
                ("/v1/completions", #"{"model":"mock/gpt-4o-mini","max_tokens":\#(value),"prompt":"hi"}"#),
            ]
            for (path, body) in calls {
                guard await Self.send(gatehouse, path, body) != nil else {
                    _ = try? await gatehouse.stop()
                    return
                }
            }
            await Self.expectAlive(gatehouse, after: "max_tokens \(value)")
        }
        // Helicone's policy header carries a quota and a window: cents × 10,000 overflowed.
        for policy in ["922337203685477580;w=60;u=cents", "9223372036854775807;w=60;u=cents", "9223372036854775807;w=31536000",
                       "-1;w=60", "5;w=9223372036854775807", "5;w=1e300"] {
            _ = await Self.send(gatehouse, "/v1/chat/completions", chatBody("mock/gpt-4o-mini", maxTokens: 4),
                                headers: [("Helicone-RateLimit-Policy", policy)])
        }
        await Self.expectAlive(gatehouse, after: "the policy headers")
        let sane = await Self.send(gatehouse, "/v1/chat/completions", chatBody("mock/gpt-4o-mini", maxTokens: 4))
        #expect(sane?.status == 200, "an ordinary call still passes")
        try await gatehouse.stop()
    }

    /// An upstream that reports absurd usage (a broken or hostile provider) must not crash the
    /// gateway either: counts saturate, the cost saturates, the budget settles.
    @Test func absurdUsageFromTheUpstreamIsSaturated() async throws {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(yaml: upstreamConfig(mock, extra: Self.limits))
        let huge = ["9223372036854775807", "100000000000000000000000000000000"]
        var sent = 0
        for value in huge {
            for stream in [false, true] {
                let streamFlag = stream ? #","stream":true"# : ""
                let openAI = #"{"model":"up/gpt-4o","max_tokens":4\#(streamFlag),"messages":[{"role":"user","content":"hi"}]}"#
                _ = await Self.send(gatehouse, "/v1/chat/completions", openAI,
                                    headers: [("x-mock-reasoning-tokens", value), ("x-mock-cached-tokens", value), ("X-Request-Id", "o-\(value)-\(stream)")])
                let anthropic = #"{"model":"upa/claude-sonnet-4-5","max_tokens":4\#(streamFlag),"messages":[{"role":"user","content":"hi"}]}"#
                _ = await Self.send(gatehouse, "/v1/messages", anthropic,
                                    headers: [("x-mock-cached-tokens", value), ("x-mock-cache-creation-tokens", value), ("X-Request-Id", "a-\(value)-\(stream)")])
                sent += 2
                await Self.expectAlive(gatehouse, after: "usage of \(value) tokens (stream: \(stream))")
            }
        }
        guard gatehouse.child.isRunning else { return }
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let records = try await waitForRequests(api, count: sent)
        for record in records {
            let u = record.usage
            let counts = [u.inputTokens, u.outputTokens, u.cachedInputTokens, u.cacheCreationInputTokens, u.reasoningTokens, u.totalTokens]
            #expect(counts.allSatisfy { $0 >= 0 }, "token counts are never negative: \(u)")
            #expect(record.costMicros >= 0, "the cost is never negative: \(record.costMicros)")
        }
        #expect(records.contains { $0.costMicros > 1_000_000 }, "absurd usage is charged as a large cost, not as zero")
        // The sums over those records saturate too: the report still answers, with no negative count.
        let report = try await api.get("/api/v1/ai/usage?from=-1h&interval=none&group_by=provider", as: UsageReportView.self)
        #expect(report.totals.requests == Int64(records.count) && report.totals.costMicros > 1_000_000 && report.totals.totalTokens >= 0)
        try await api.verifyContract()
        // The budget was spent by those calls; the gateway refuses politely from now on.
        let after = await Self.send(gatehouse, "/v1/chat/completions", chatBody("mock/gpt-4o-mini", maxTokens: 4))
        #expect(after?.status == 429, "the budget is spent")
        try await gatehouse.stop()
        try await mock.stop()
    }

    /// A budget smaller than one call's reservation: the refusal says that the call's estimated
    /// cost exceeds what is left, not that the budget is used up (it is not).
    @Test func aCallDearerThanWhatIsLeftSaysSo() async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: """
            budgets:
              - name: tiny
                scope: global
                amount_usd: "0.0001"
                period: day
            """)
        // gpt-4o-mini output is $0.60 per 1M tokens: 100,000 tokens reserve $0.06 against $0.0001.
        let dear = try #require(await Self.send(gatehouse, "/v1/chat/completions", chatBody("mock/gpt-4o-mini", maxTokens: 100_000)))
        #expect(dear.status == 429)
        let message = ((dear.json?["error"] as? [String: Any])?["message"] as? String) ?? ""
        #expect(message.contains("estimated cost ($0.06"), "\(message)")
        #expect(message.contains("exceeds what is left of the budget ($0.0001"), "\(message)")
        #expect(!message.contains("used up"), "\(message)")
        let huge = try #require(await Self.send(gatehouse, "/v1/messages",
                                                #"{"model":"mock/claude-sonnet-4-5","max_tokens":9223372036854775807,"messages":[{"role":"user","content":"hi"}]}"#))
        #expect(huge.status == 429)
        let hugeMessage = ((huge.json?["error"] as? [String: Any])?["message"] as? String) ?? ""
        #expect(hugeMessage.contains("estimated cost") && !hugeMessage.contains("used up"), "\(hugeMessage)")

        // Small calls still pass, until the budget refuses them too.
        var statuses: [Int] = []
        for _ in 0..<60 {
            statuses.append(await Self.send(gatehouse, "/v1/chat/completions", chatBody("mock/gpt-4o-mini", maxTokens: 4))?.status ?? 0)
            if statuses.last != 200 { break }
        }
        #expect(statuses.first == 200 && statuses.last == 429, "\(statuses)")
        await Self.expectAlive(gatehouse, after: "the budget ran out")
        try await gatehouse.stop()
    }
}
