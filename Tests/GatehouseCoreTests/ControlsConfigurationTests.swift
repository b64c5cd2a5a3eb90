import Foundation
import Testing
@testable import GatehouseCore

@Suite struct ControlsConfigurationTests {
    func load(_ yaml: String, env: [String: String] = [:]) throws -> GatehouseConfig {
        try ConfigurationLoader.load(yaml: yaml, environment: env, overrides: ConfigOverrides())
    }

    func problems(_ yaml: String, env: [String: String] = [:]) -> [String] {
        do {
            _ = try load(yaml, env: env)
            return []
        } catch let e as ConfigErrors {
            return e.errors.map(\.description)
        } catch {
            return ["\(error)"]
        }
    }

    /// The file and the admin API read soft thresholds by one rule (SoftThresholds).
    @Test func softThresholdsReadTheSameEverywhere() throws {
        #expect(SoftThresholds.fractions([50, 0.8, 100]) == [0.5, 0.8, 1.0])
        #expect(SoftThresholds.fractions([0]) == nil && SoftThresholds.fractions([-1]) == nil && SoftThresholds.fractions([.nan]) == nil)
        #expect(SoftThresholds.fractions([1000]) == [10] && SoftThresholds.fractions([1001]) == nil)
        #expect(SoftThresholds.fractions(Array(repeating: 0.5, count: 11)) == nil)
        let budget = { (list: String) in
            "budgets:\n  - {name: b, scope: global, amount_usd: \"5\", period: day, soft_thresholds: \(list)}\n"
        }
        #expect(try load(budget("[80]")).controls.budgets.first?.softThresholds == [0.8])
        #expect(problems(budget("[5000]")).contains { $0.contains("soft_thresholds") && $0.contains("at most 1000%") })
        #expect(problems(budget("[high]")).contains { $0.contains("soft_thresholds") })
    }

    @Test func windowsAlignToUTC() {
        let t: Int64 = 1_795_402_688_123_456  // 2026-11-23T02:58:08.123456Z, a Monday
        #expect(QuotaPeriod.minute.window(containing: t) == (1_795_402_680_000_000, 1_795_402_740_000_000))
        #expect(QuotaPeriod.day.window(containing: t).start == 1_795_392_000_000_000)
        #expect(QuotaPeriod.week.window(containing: t).start == 1_795_392_000_000_000, "weeks start on Monday")
        let month = QuotaPeriod.month.window(containing: t)
        #expect(TimeExpressions.format(micros: month.start) == "2026-11-01T00:00:00.000Z" && TimeExpressions.format(micros: month.end) == "2026-12-01T00:00:00.000Z")
        #expect(QuotaPeriod.total.window(containing: t) == (0, Int64.max))
        #expect(QuotaPeriod(text: "minutes") == .minute && QuotaPeriod(text: "h") == .hour && QuotaPeriod(text: "fortnight") == nil)
    }

    @Test func rateLimitsBudgetsCapsAndDeploymentsAreRead() throws {
        let config = try load("""
            providers:
              - {name: a, kind: openai-compatible, base_url: "http://127.0.0.1:1/v1"}
              - {name: b, kind: openai-compatible, base_url: "http://127.0.0.1:2/v1"}
            aliases:
              - alias: smart
                targets:
                  - {model: a/m, weight: 3}
                  - {model: b/m, priority: 1}
            rate_limits:
              - {name: tenant, scope: property.domain, requests: 60, per: minute}
              - {scope: key, tokens: 100000, per: hour, routes: [/v1/chat/completions]}
            budgets:
              - {name: acme, scope: property.customer, value: acme, amount_usd: "25.50", period: month, soft_thresholds: [50, 80, 100]}
            token_caps:
              - {property: feature=rewrite, max_output_tokens: 1000, mode: reject}
            retries: {max_attempts: 4}
            cache: {enabled: true, ttl_seconds: 60}
            gateway: {trust_forwarded_for: true}
            controls: {when_store_unavailable: refuse, require_keys: true}
            """)
        #expect(config.gateway.trustForwardedFor && config.controls.whenStoreUnavailable == .refuse && config.controls.requireKeys)
        #expect(config.aliases[0].deployments == [.init(target: "a/m", weight: 3), .init(target: "b/m", priority: 1)])
        let c = config.controls
        #expect(c.rateLimits[0] == QuotaRule(id: "limit:tenant", scope: .property("domain"), unit: .requests, limit: 60, period: .minute))
        #expect(c.rateLimits[1].unit == .tokens && c.rateLimits[1].routes == ["/v1/chat/completions"])
        #expect(c.budgets[0].limit == 25_500_000 && c.budgets[0].propertyValue == "acme" && c.budgets[0].softThresholds == [0.5, 0.8, 1.0])
        #expect(c.tokenCaps[0] == TokenCap(property: ("feature", "rewrite"), maxOutputTokens: 1000, mode: .reject))
        #expect(c.retry.maxAttempts == 4 && c.cache.enabled && c.cache.ttlSeconds == 60)
    }

    @Test func mistakesAreExplainedWithTheirPath() {
        let found = problems("""
            rate_limits:
              - {scope: tenant, requests: 5, per: minute}
              - {scope: key, requests: 5, tokens: 9, per: minute}
              - {scope: key, requests: 5, per: fortnight}
              - {scope: key, requests: 5, per: minute, routes: [/v2/chat]}
              - {scope: key, requests: 5, per: minute, models: {gpt: 1}}
            budgets:
              - {scope: global, amount_usd: "-3", period: day}
            token_caps:
              - {mode: clamp}
            retries: {max_attempts: 0}
            admin_token: short
            """)
        for expected in ["rate_limits[0].scope", "rate_limits[1]: give exactly one", "rate_limits[2].per", "rate_limits[3].routes",
                         "rate_limits[4].models", "budgets[0].amount_usd", "token_caps[0]: give max_output_tokens", "retries.max_attempts", "admin_token"] {
            #expect(found.contains { $0.hasPrefix(expected) }, "missing \(expected) in \(found)")
        }
        #expect(!found.contains { $0.hasPrefix(":") }, "every problem names its key: \(found)")
    }

    @Test func encryptedProviderKeysAreDecryptedWithTheEncryptionKey() throws {
        let key = [UInt8](repeating: 7, count: 32)
        let keyText = Data(key).base64EncodedString()
        let sealed = try SecretBox.encrypt("sk-real-provider-key", key: key)
        #expect(sealed.hasPrefix("enc:v1:") && !sealed.contains("sk-real"))
        let yaml = "providers:\n  - {name: openai, kind: openai, api_key: \"\(sealed)\"}\n"
        let config = try load(yaml, env: ["GATEHOUSE_ENCRYPTION_KEY": keyText])
        #expect(config.providers.first { $0.name == "openai" }?.apiKey == "sk-real-provider-key")
        #expect(problems(yaml).contains { $0.contains("GATEHOUSE_ENCRYPTION_KEY is not set") })
        let wrong = Data(repeating: 8, count: 32).base64EncodedString()
        #expect(problems(yaml, env: ["GATEHOUSE_ENCRYPTION_KEY": wrong]).contains { $0.contains("cannot be decrypted") })
        #expect(!config.redactedYAML().contains("sk-real-provider-key"))
    }

    @Test func keySecretsAreRandomAndOnlyTheirHashIsKept() {
        let a = KeyMint.newSecret(), b = KeyMint.newSecret()
        #expect(a != b && a.hasPrefix("gh-") && a.count == 43)
        #expect(KeyMint.hash(a).count == 64 && KeyMint.hash(a) == KeyMint.hash(a) && KeyMint.hash(a) != KeyMint.hash(b))
        let key = VirtualKey(id: "k", hash: KeyMint.hash(a), prefix: KeyMint.displayPrefix(a), allowedModels: ["gpt-4o*", "claude-sonnet-4-5"],
                             createdAtMicros: 0, updatedAtMicros: 0)
        #expect(key.allows(model: "gpt-4o-mini") && key.allows(model: "claude-sonnet-4-5") && !key.allows(model: "claude-opus-4"))
        #expect(!String(decoding: try! JSONEncoder().encode(key), as: UTF8.self).contains(a))
    }
}
