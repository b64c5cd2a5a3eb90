import Foundation
import GatehouseCore
import Logging
import Testing
@testable import GatehouseStorage

func withControls(_ backend: Backend, _ body: @Sendable (SQLControlStore, SQLRequestStore) async throws -> Void) async throws {
    let url = try backend.databaseURL()
    try await StoreFactory.withStores(databaseURL: url, logger: Logger(label: "test")) { requests, controls in try await body(controls, requests) }
}

@Suite struct ControlStoreTests {
    @Test(arguments: Backend.allCases)
    func keysRoundTripAndBumpTheirVersion(_ backend: Backend) async throws {
        try await withControls(backend) { store, _ in
            let v0 = try await store.keysVersion()
            var key = VirtualKey(id: "key_a", alias: "web", hash: KeyMint.hash("gh-secret"), prefix: "gh-secr", allowedModels: ["mock/*"],
                                 limits: [KeyLimit(unit: .requests, limit: 60, period: .minute)], maxParallel: 4,
                                 budget: KeyBudget(limit: MicroDollars(25_000_000), period: .month), metadata: ["team": "growth"], tags: ["prod"],
                                 createdAtMicros: base, updatedAtMicros: base)
            try await store.insertKey(key)
            let v1 = try await store.keysVersion()
            #expect(v1 != v0)
            #expect(try await store.key(id: "key_a") == key)
            key.blocked = true
            key.updatedAtMicros += 1
            try await store.updateKey(key)
            #expect(try await store.allKeys() == [key])
            #expect(try await store.keysVersion() != v1)
            await #expect(throws: (any Error).self) { try await store.insertKey(key) }
        }
    }

    /// The property multi-instance limits rest on: concurrent claims never hand out more than
    /// the limit in total, and hand out all of it.
    @Test(arguments: Backend.allCases)
    func concurrentClaimsNeverExceedTheLimit(_ backend: Backend) async throws {
        try await withControls(backend) { store, _ in
            let granted = try await withThrowingTaskGroup(of: Int64.self) { group in
                for i in 0..<60 {
                    group.addTask { try await store.claimQuota(counter: "c|x_%", windowStartMicros: base, want: Int64(1 + i % 3), need: 1, limit: 37).granted }
                }
                return try await group.reduce(0, +)
            }
            #expect(granted == 37)
            let (more, total) = try await store.claimQuota(counter: "c|x_%", windowStartMicros: base, want: 1, need: 1, limit: 37)
            #expect(more == 0 && total == 37)
            // A release makes room again; consumption is reported separately.
            let counts = try await store.settleQuota([QuotaChange(counter: "c|x_%", windowStartMicros: base, released: 5, used: 30, limit: 37)])
            #expect(counts == [QuotaCount(counter: "c|x_%", windowStartMicros: base, granted: 32, used: 30, limit: 37)])
            #expect(try await store.claimQuota(counter: "c|x_%", windowStartMicros: base, want: 9, need: 1, limit: 37).granted == 5)
            // LIKE wildcards in a counter name are matched literally.
            _ = try await store.settleQuota([QuotaChange(counter: "c|xy", windowStartMicros: base, released: 0, used: 1, limit: 37)])
            #expect(try await store.quotaCounts(counterPrefix: "c|x_%", sinceWindowMicros: 0).map(\.counter) == ["c|x_%"])
        }
    }

    @Test(arguments: Backend.allCases)
    func budgetEventsAreWrittenOncePerThreshold(_ backend: Backend) async throws {
        try await withControls(backend) { store, _ in
            let event = BudgetEvent(counter: "budget:b|", windowStartMicros: base, thresholdPercent: 80, usedMicros: 80, limitMicros: 100, timestampMicros: base)
            let first = try await store.recordBudgetEvent(event)
            let again = try await store.recordBudgetEvent(event)
            let events = try await store.budgetEvents(sinceMicros: 0, limit: 10)
            #expect(first && !again && events == [event])
        }
    }

    @Test(arguments: Backend.allCases)
    func switchesAuditAndCache(_ backend: Backend) async throws {
        try await withControls(backend) { store, _ in
            let v0 = try await store.switchesVersion()
            let s = KillSwitch(kind: .property, value: "customer=acme", reason: "runaway", createdAtMicros: base)
            try await store.setSwitch(s)
            try await store.setSwitch(s)
            #expect(try await store.allSwitches() == [s])
            #expect(try await store.switchesVersion() != v0)
            #expect(try await store.removeSwitch(kind: .property, value: "customer=acme"))
            #expect(try await store.removeSwitch(kind: .property, value: "customer=acme") == false)

            for i in 0..<5 {
                try await store.appendAudit(AuditEntry(timestampMicros: base + Int64(i), actor: "admin", action: "a\(i)", target: "t", details: "{}"))
            }
            let page = try await store.audit(limit: 3, before: nil)
            #expect(page.map(\.action) == ["a4", "a3", "a2"])
            #expect(try await store.audit(limit: 3, before: page.last?.id).map(\.action) == ["a1", "a0"])

            let entry = CachedResponse(key: "k1", status: 200, contentType: "text/event-stream", body: Array("data: {}\n\n".utf8) + [0, 255],
                                       model: "gpt-4o-mini", provider: "up", usage: TokenUsage(inputTokens: 3, outputTokens: 4),
                                       cost: MicroDollars(9), createdAtMicros: base, expiresAtMicros: base + hour)
            try await store.storeCachedResponses([entry])
            #expect(try await store.cachedResponse(key: "k1", nowMicros: base) == entry)
            #expect(try await store.cachedResponse(key: "k1", nowMicros: base + hour) == nil, "expired entries are not served")
            try await store.pruneCache(nowMicros: base + hour)
            #expect(try await store.cachedResponse(key: "k1", nowMicros: base) == nil)
        }
    }

    /// The audit filters run in the database: actor and target contain, action starts with,
    /// letters in any case, LIKE's wildcards and its escape character taken literally, paging by
    /// id within the matches.
    @Test(arguments: Backend.allCases)
    func auditFiltersMatchInTheStore(_ backend: Backend) async throws {
        try await withControls(backend) { store, _ in
            let entries: [(String, String, String)] = [
                ("admin-token:abc@127.0.0.1", "key.create", "key_1"), ("console:Ada@Example.com", "key.update", "key_1"),
                ("console:ada@example.com", "switch.set", "model:gpt_4o"), ("console:admin-token", "account.create", "usr_9"),
                ("console:bob@example.com", "key.revoke", "key_100%"), ("admin-token:abc@127.0.0.1", "keyx.other", "a\\b"),
            ]
            for (i, (actor, action, target)) in entries.enumerated() {
                try await store.appendAudit(AuditEntry(timestampMicros: base + Int64(i), actor: actor, action: action, target: target, details: "{}"))
            }
            func targets(_ filter: AuditFilter, limit: Int = 100, before: Int64? = nil) async throws -> [String] {
                try await store.audit(limit: limit, before: before, matching: filter).map(\.target)
            }
            #expect(try await targets(.none) == ["a\\b", "key_100%", "usr_9", "model:gpt_4o", "key_1", "key_1"])
            #expect(try await targets(AuditFilter(actor: "ADA@example")) == ["model:gpt_4o", "key_1"], "contains, in any case")
            #expect(try await targets(AuditFilter(actor: "console:")) == ["key_100%", "usr_9", "model:gpt_4o", "key_1"])
            #expect(try await targets(AuditFilter(action: "key.")) == ["key_100%", "key_1", "key_1"], "a prefix: keyx.other is not key.")
            #expect(try await targets(AuditFilter(action: "Key.Update")) == ["key_1"])
            #expect(try await targets(AuditFilter(action: "update")).isEmpty, "the action matches from its start")
            #expect(try await targets(AuditFilter(target: "_1")) == ["key_100%", "key_1", "key_1"], "`_` is not a wildcard")
            #expect(try await targets(AuditFilter(target: "0%")) == ["key_100%"], "`%` is not a wildcard")
            #expect(try await targets(AuditFilter(target: "t_4")) == ["model:gpt_4o"])
            #expect(try await targets(AuditFilter(target: "a\\b")) == ["a\\b"], "the escape character itself is literal")
            #expect(try await targets(AuditFilter(target: "%")) == ["key_100%"])
            #expect(try await targets(AuditFilter(actor: "admin-token", action: "key.", target: "key_1")) == ["key_1"], "every part must match")

            // Paging within the matches: `before` is the last id of the previous page.
            let first = try await store.audit(limit: 2, before: nil, matching: AuditFilter(action: "key"))
            #expect(first.map(\.action) == ["keyx.other", "key.revoke"])
            let second = try await store.audit(limit: 2, before: first.last?.id, matching: AuditFilter(action: "key"))
            #expect(second.map(\.action) == ["key.update", "key.create"])
            #expect(try await store.audit(limit: 2, before: second.last?.id, matching: AuditFilter(action: "key")).isEmpty)
        }
    }

    @Test(arguments: Backend.allCases)
    func attemptsAndCacheHitsAreStoredWithTheRecord(_ backend: Backend) async throws {
        try await withControls(backend) { _, requests in
            var record = makeRecord(1, at: base)
            record.attempts = [CallAttempt(provider: "bad", model: "m", status: 503, errorClass: .upstreamServerError, errorMessage: "down",
                                           latencyMicros: 10, delayMilliseconds: 0)]
            record.cacheHit = true
            record.costSaved = MicroDollars(42)
            try await requests.insert([record])
            #expect(try await requests.request(id: record.id) == record)
        }
    }
}
