import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseHTTP
import HTTPTypes
import Logging
import Synchronization
import Testing
@testable import GatehouseGateway

/// A store that keeps counters in memory with the same atomic semantics as the SQL stores, so
/// the ledger's arithmetic can be exercised with many simulated instances.
final class MemoryQuotaStore: QuotaStore, BudgetEventStore {
    private let counters = Mutex<[String: (granted: Int64, used: Int64)]>([:])
    let claims = Atomic<Int>(0)
    /// While true every claim fails as if the database were down.
    let failing = Atomic<Bool>(false)
    /// The correlation id each claim ran under.
    let claimCorrelationIDs = Mutex<[String?]>([])
    struct Down: Error {}

    func claimQuota(counter: String, windowStartMicros: Int64, want: Int64, need: Int64, limit: Int64) async throws -> (granted: Int64, total: Int64) {
        claims.add(1, ordering: .relaxed)
        claimCorrelationIDs.withLock { $0.append(CorrelationID.current) }
        if failing.load(ordering: .relaxed) { throw Down() }
        try await Task.sleep(for: .microseconds(50))
        return counters.withLock { all in
            let key = "\(counter)@\(windowStartMicros)"
            var c = all[key] ?? (0, 0)
            let give = min(want, limit - c.granted)
            guard give >= need, give > 0 else { return (0, c.granted) }
            c.granted += give
            all[key] = c
            return (give, c.granted)
        }
    }

    func settleQuota(_ changes: [QuotaChange]) async throws -> [QuotaCount] {
        counters.withLock { all in
            changes.map { ch in
                let key = "\(ch.counter)@\(ch.windowStartMicros)"
                var c = all[key] ?? (0, 0)
                c.granted = max(0, c.granted - ch.released)
                c.used += ch.used
                all[key] = c
                return QuotaCount(counter: ch.counter, windowStartMicros: ch.windowStartMicros, granted: c.granted, used: c.used, limit: ch.limit)
            }
        }
    }

    func used(_ counter: String) -> Int64 { counters.withLock { $0.first { $0.key.hasPrefix(counter + "@") }?.value.used ?? 0 } }

    func quotaCounts(counterPrefix: String, sinceWindowMicros: Int64) async throws -> [QuotaCount] { [] }
    func recordBudgetEvent(_ event: BudgetEvent) async throws -> Bool { true }
    func budgetEvents(sinceMicros: Int64, limit: Int) async throws -> [BudgetEvent] { [] }
}

/// No keys and no switches: controls in open mode.
struct NoKeysOrSwitches: KeyStore, SwitchStore {
    func insertKey(_ key: VirtualKey) async throws {}
    func updateKey(_ key: VirtualKey) async throws {}
    func key(id: String) async throws -> VirtualKey? { nil }
    func allKeys() async throws -> [VirtualKey] { [] }
    func keysVersion() async throws -> String { "0" }
    func setSwitch(_ s: KillSwitch) async throws {}
    func removeSwitch(kind: KillSwitch.Kind, value: String) async throws -> Bool { false }
    func allSwitches() async throws -> [KillSwitch] { [] }
    func switchesVersion() async throws -> String { "0" }
}

/// A cache store that keeps nothing.
struct NoCachedAnswers: ResponseCacheStore {
    func cachedResponse(key: String, nowMicros: Int64) async throws -> CachedResponse? { nil }
    func storeCachedResponses(_ entries: [CachedResponse]) async throws {}
    func pruneCache(nowMicros: Int64) async throws {}
}

@Suite struct ControlsTests {
    let logger = Logger(label: "test")

    /// A lease claim is shared by every call waiting on its counter, so it must not run (and
    /// log, and reach the store) under the id of whichever request happened to start it.
    @Test func aSharedLeaseClaimCarriesNoOneRequestsCorrelationID() async throws {
        let store = MemoryQuotaStore()
        let ledger = QuotaLedger(store: store, leaseFraction: 0.05, logger: logger)
        let rule = QuotaRule(id: "limit:c", scope: .global, unit: .requests, limit: 1000, period: .day)
        let reservation = try await CorrelationID.$current.withValue("request-a") {
            try await ledger.acquire(counter: "limit:c|", rule: rule, amount: 1)
        }
        ledger.settle(reservation, actual: 1)
        #expect(store.claimCorrelationIDs.withLock { $0 } == [nil])
    }

    /// Four instances hammer one request limit: together they admit exactly the limit, and
    /// ask the store far less often than once per call.
    @Test func instancesSharingACounterNeverAdmitMoreThanTheLimit() async throws {
        let store = MemoryQuotaStore()
        let ledgers = (0..<4).map { _ in QuotaLedger(store: store, leaseFraction: 0.05, logger: logger) }
        let rule = QuotaRule(id: "limit:t", scope: .global, unit: .requests, limit: 1000, period: .day)
        let admitted = await withTaskGroup(of: Int.self) { group in
            for i in 0..<1500 {
                group.addTask {
                    guard let r = try? await ledgers[i % 4].acquire(counter: "limit:t|", rule: rule, amount: 1) else { return 0 }
                    ledgers[i % 4].settle(r, actual: 1)
                    return 1
                }
            }
            return await group.reduce(0, +)
        }
        #expect(admitted <= 1000)
        // Unused leases at the moment the limit is reached: at most one per other instance.
        #expect(admitted >= 1000 - 3 * 50, "admitted \(admitted)")
        #expect(store.claims.load(ordering: .relaxed) < 600, "leases spare most round trips: \(store.claims.load(ordering: .relaxed)) claims")
        for ledger in ledgers { await ledger.sync(releaseAll: true) }
        #expect(store.used("limit:t|") == Int64(admitted))
    }

    /// Costs are reserved from an estimate and settled with the real amount; a call that costs
    /// more than reserved is paid from the lease, so the overshoot is bounded by the calls in
    /// flight when the budget runs out.
    @Test func budgetOvershootIsBoundedByTheCallsInFlight() async throws {
        let store = MemoryQuotaStore()
        let ledger = QuotaLedger(store: store, leaseFraction: 0.05, logger: logger)
        let rule = QuotaRule(id: "budget:b", scope: .global, unit: .cost, limit: 10_000, period: .month)
        final class Total: Sendable { let value = Atomic<Int64>(0) }
        let spent = Total()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    // Each call reserves 100 and really costs 130: a 30 underestimate.
                    while let r = try? await ledger.acquire(counter: "budget:b|", rule: rule, amount: 100) {
                        try? await Task.sleep(for: .microseconds(100))
                        ledger.settle(r, actual: 130)
                        spent.value.add(130, ordering: .relaxed)
                    }
                }
            }
        }
        let total = spent.value.load(ordering: .relaxed)
        #expect(total <= 10_000 + 16 * 130, "overshoot \(total - 10_000) beyond 16 calls in flight")
        #expect(total >= 10_000 - 130, "spent \(total)")
    }

    @Test func anUnreachableStoreAdmitsOrRefusesAsConfigured() async throws {
        let store = MemoryQuotaStore()
        store.failing.store(true, ordering: .relaxed)
        let rule = QuotaRule(id: "limit:x", scope: .global, unit: .requests, limit: 5, period: .day)
        let open = QuotaLedger(store: store, leaseFraction: 0.05, failOpen: true, logger: logger)
        let admitted = try await open.acquire(counter: "limit:x|", rule: rule, amount: 1)
        #expect(admitted.amount == 0, "admitted without holding anything")
        let closed = QuotaLedger(store: store, leaseFraction: 0.05, failOpen: false, logger: logger)
        await #expect(throws: QuotaLedger.StoreUnavailable.self) { try await closed.acquire(counter: "limit:x|", rule: rule, amount: 1) }
        // Once the store is back, counting resumes.
        store.failing.store(false, ordering: .relaxed)
        #expect(try await closed.acquire(counter: "limit:x|", rule: rule, amount: 1).amount == 1)
    }

    @Test func theForwardedClientAddressIsTheFirstHop() {
        var headers = HTTPFields()
        headers[HTTPField.Name("X-Forwarded-For")!] = " 203.0.113.7 , 10.0.0.2"
        #expect(ClientAddress.forwarded(headers) == "203.0.113.7")
        var real = HTTPFields()
        real[HTTPField.Name("X-Real-IP")!] = "198.51.100.9"
        #expect(ClientAddress.forwarded(real) == "198.51.100.9")
        #expect(ClientAddress.forwarded(HTTPFields()) == nil)
    }

    @Test func heliconePoliciesParse() throws {
        let rule = try HeliconePolicy.parse("1000;w=3600;u=cents;s=tenant")
        #expect(rule.limit == 10_000_000 && rule.unit == .cost && rule.customWindowSeconds == 3600 && rule.scope == .property("tenant"))
        let user = try HeliconePolicy.parse("5; w=60; s=user")
        #expect(user.unit == .requests && user.limit == 5 && user.scope == .user)
        for bad in ["", "x;w=60", "10", "10;w=0", "10;w=60;u=bytes", "10;w=60;z=1", "10;w"] {
            #expect(throws: ControlRejection.self) { try HeliconePolicy.parse(bad) }
        }
        // Random input never crashes the parser.
        var rng = SplitMix(seed: 7)
        let alphabet = Array("0123456789;=wus, user.-x")
        for _ in 0..<2000 {
            let text = String((0..<Int(rng.next() % 24)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
            _ = try? HeliconePolicy.parse(text)
        }
    }

    @Test func backoffIsJitteredCappedAndHonoursRetryAfter() {
        var settings = RetrySettings()
        settings.initialBackoffMilliseconds = 100
        settings.maxBackoffMilliseconds = 1000
        let policy = RetryPolicy(settings: settings)
        #expect(policy.delayMilliseconds(retry: 1, retryAfterSeconds: nil, random: 1) == 100)
        #expect(policy.delayMilliseconds(retry: 3, retryAfterSeconds: nil, random: 1) == 400)
        #expect(policy.delayMilliseconds(retry: 9, retryAfterSeconds: nil, random: 1) == 1000)
        #expect(policy.delayMilliseconds(retry: 2, retryAfterSeconds: nil, random: 0) == 0)
        #expect(policy.delayMilliseconds(retry: 1, retryAfterSeconds: 2.5, random: 0.5) == 2500)
        #expect(RetryPolicy.retryAfterSeconds([("Retry-After", "7")]) == 7)
        #expect(RetryPolicy.retryAfterSeconds([("retry-after-ms", "250"), ("Retry-After", "7")]) == 0.25)
        #expect(RetryPolicy.retryAfterSeconds([("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")]) == 0)
        #expect(RetryPolicy.retryAfterSeconds([("Retry-After", "soon")]) == nil)
        #expect([429, 500, 502, 503, 504, 529].allSatisfy { RetryPolicy.isRetryable(status: $0) })
        #expect(![400, 401, 403, 404, 422, 501].contains { RetryPolicy.isRetryable(status: $0) })
    }

    @Test func deploymentsShareLoadByWeightWithinATierAndFallBackAcrossTiers() {
        let p = ProviderConfig(name: "a", kind: .openAICompatible, baseURL: "http://x")
        let heavy = RoutedModel(provider: p, upstreamModel: "heavy", weight: 3, priority: 0)
        let light = RoutedModel(provider: p, upstreamModel: "light", weight: 1, priority: 0)
        let backup = RoutedModel(provider: p, upstreamModel: "backup", weight: 100, priority: 1)
        var rng = SplitMix(seed: 42)
        var heavyFirst = 0
        for _ in 0..<4000 {
            let order = DeploymentOrder.order([backup, light, heavy], using: &rng)
            #expect(order.last == backup)
            if order.first == heavy { heavyFirst += 1 }
        }
        #expect(abs(Double(heavyFirst) / 4000 - 0.75) < 0.03, "heavy first \(heavyFirst) of 4000")
    }

    @Test func breakersOpenAfterRepeatedFailuresAndCloseOnSuccess() {
        var settings = BreakerSettings()
        settings.failureThreshold = 3
        settings.openSeconds = 60
        let breakers = CircuitBreakers(settings: settings)
        for _ in 0..<2 { breakers.recordFailure("p/m") }
        #expect(breakers.allow("p/m"))
        breakers.recordSuccess("p/m")
        for _ in 0..<2 { breakers.recordFailure("p/m") }
        #expect(breakers.allow("p/m"), "a success resets the count")
        breakers.recordFailure("p/m")
        #expect(!breakers.allow("p/m") && breakers.allow("q/m"))
        #expect(breakers.snapshot()["p/m"]?.state == .open && breakers.secondsUntilProbe(["p/m"]) > 50)
    }

    func inbound(_ json: String, route: GatewayRoute = .chatCompletions) throws -> InboundRequest {
        try InboundRequest(route: route, body: Array(json.utf8))
    }

    @Test func tokenCapsClampRejectOrSetTheLimit() throws {
        let caps = TokenCaps(caps: [
            TokenCap(routes: ["/v1/chat/completions"], maxOutputTokens: 2000),
            TokenCap(property: ("feature", "autocomplete"), maxOutputTokens: 500, mode: .reject),
            TokenCap(routes: ["/v1/responses"], maxOutputTokens: 100, maxInputTokens: 10),
        ])
        let clamped = try caps.apply(route: .chatCompletions, properties: [:], request: try inbound(#"{"model":"m","max_tokens":9000}"#))
        #expect(clamped.integers.map(\.key) == ["max_tokens"] && clamped.integers.map(\.value) == [2000] && clamped.maxOutputTokens == 2000)
        let set = try caps.apply(route: .chatCompletions, properties: [:], request: try inbound(#"{"model":"m"}"#))
        #expect(set.integers.map(\.key) == ["max_completion_tokens"])
        let fine = try caps.apply(route: .chatCompletions, properties: [:], request: try inbound(#"{"model":"m","max_tokens":10}"#))
        #expect(fine.integers.isEmpty && fine.maxOutputTokens == 10)
        #expect(throws: ControlRejection.self) {
            try caps.apply(route: .chatCompletions, properties: ["feature": "autocomplete"], request: try inbound(#"{"model":"m","max_completion_tokens":600}"#))
        }
        #expect(throws: ControlRejection.self) {
            try caps.apply(route: .responses, properties: [:], request: try inbound(#"{"model":"m","input":"a long prompt that is over ten tokens"}"#, route: .responses))
        }
        let rewritten = try inbound(#"{"model":"m","max_tokens":9000}"#).rewritten(upstreamModel: nil, injectUsageOption: false, integers: clamped.integers)
        #expect(String(decoding: rewritten, as: UTF8.self) == #"{"model":"m","max_tokens":2000}"#)
        let inserted = try inbound(#"{"model":"m"}"#).rewritten(upstreamModel: nil, injectUsageOption: true, integers: set.integers)
        #expect(String(decoding: inserted, as: UTF8.self) == #"{"max_completion_tokens":2000,"stream_options":{"include_usage":true},"model":"m"}"#)
    }

    @Test func cacheKeysIgnoreKeyOrderWhitespaceAndStreamOptions() {
        let a = ResponseCache.key(route: .chatCompletions, body: Array(#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#.utf8), seed: nil)
        let b = ResponseCache.key(route: .chatCompletions, body: Array(#"{ "messages": [{"content":"hi","role":"user"}], "model":"m", "stream_options":{"include_usage":true} }"#.utf8), seed: nil)
        let c = ResponseCache.key(route: .completions, body: Array(#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#.utf8), seed: nil)
        let d = ResponseCache.key(route: .chatCompletions, body: Array(#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#.utf8), seed: "tenant-a")
        #expect(a != nil && a == b && a != c && a != d)
        let settings = CacheSettings()
        let cache = ResponseCache(settings: settings, store: NoCachedAnswers())
        #expect(cache.decision(route: .chatCompletions, headers: []) == nil)
        #expect(cache.decision(route: .chatCompletions, headers: [("Helicone-Cache-Enabled", "true")]) == 3600)
        #expect(cache.decision(route: .chatCompletions, headers: [("Cache-Control", "max-age=120")]) == 120)
        #expect(cache.decision(route: .chatCompletions, headers: [("Gatehouse-Cache", "true"), ("Cache-Control", "no-store")]) == nil)
    }
}

@Suite struct AdminInputTests {
    /// Random JSON objects built from the fields the key API knows, with values of every type:
    /// the reader either applies them or names what is wrong, and never crashes.
    @Test func randomKeyRequestsAreAppliedOrRefusedWithAReason() throws {
        let fields = ["alias", "models", "routes", "limits", "max_parallel", "budget", "expires_at", "metadata", "tags", "blocked",
                      "rpm", "tpm", "rpd", "unknown"]
        var rng = SplitMix(seed: 99)
        func value(_ depth: Int) -> Any {
            switch rng.next() % (depth > 2 ? 6 : 9) {
            case 0: return NSNull()
            case 1: return Int(truncatingIfNeeded: rng.next() % 2_000_000) - 1_000_000
            case 2: return Double(rng.next() % 1000) / 7
            case 3: return rng.next() % 2 == 0
            case 4: return ["", "gh-x", "+30d", "2027-01-01T00:00:00Z", "month", "/v1/chat/completions", "25.00", String(repeating: "a", count: 300)][Int(rng.next() % 8)]
            case 5: return "per"
            case 6: return (0..<Int(rng.next() % 4)).map { _ in value(depth + 1) }
            case 7: return ["requests": value(depth + 1), "per": ["minute", "fortnight", "total"][Int(rng.next() % 3)]]
            default: return ["amount_usd": value(depth + 1), "period": value(depth + 1), "soft_thresholds": value(depth + 1)]
            }
        }
        var applied = 0
        for _ in 0..<3000 {
            var object: [String: Any] = [:]
            for _ in 0..<Int(rng.next() % 4) { object[fields[Int(rng.next() % UInt64(fields.count))]] = value(0) }
            var key = VirtualKey(id: "k", hash: "h", prefix: "gh-x", createdAtMicros: 0, updatedAtMicros: 0)
            do {
                let body = try JSONSerialization.data(withJSONObject: object)
                try KeyRequest.apply(try KeyRequest.changes(from: body), to: &key)
                applied += 1
                #expect((try? APIJSON.encode(KeyRequest.view(key))) != nil)
            } catch let error as KeyRequest.Invalid {
                #expect(!error.message.isEmpty)
            }
        }
        #expect(applied > 100, "some random requests are valid: \(applied)")
    }
}
