import Foundation
import Testing
@testable import GatehouseCore

@Suite struct ConfigurationTests {
    @Test func defaultsNeedNoConfiguration() throws {
        let config = try ConfigurationLoader.load(yaml: nil, environment: [:], overrides: ConfigOverrides())
        #expect(config.host == "127.0.0.1")
        #expect(config.port == 8080)
        #expect(config.resolvedDatabaseURL == "sqlite://gatehouse-data/gatehouse.sqlite" || config.resolvedDatabaseURL.hasSuffix("gatehouse-data/gatehouse.sqlite"))
        #expect(config.providers.map(\.name) == ["mock"])
    }

    @Test func precedenceIsFileThenEnvironmentThenFlags() throws {
        let yaml = "port: 9000\nhost: 0.0.0.0\nlog_level: debug\n"
        let fromFile = try ConfigurationLoader.load(yaml: yaml, environment: [:], overrides: ConfigOverrides())
        #expect(fromFile.port == 9000 && fromFile.host == "0.0.0.0" && fromFile.logLevel == .debug)
        let fromEnv = try ConfigurationLoader.load(yaml: yaml, environment: ["GATEHOUSE_PORT": "9100"], overrides: ConfigOverrides())
        #expect(fromEnv.port == 9100)
        let fromFlag = try ConfigurationLoader.load(yaml: yaml, environment: ["GATEHOUSE_PORT": "9100"], overrides: ConfigOverrides(port: 9200))
        #expect(fromFlag.port == 9200)
    }

    @Test func providersAliasesAndPricesAreRead() throws {
        let yaml = """
        providers:
          - name: openai
            kind: openai
            api_key_env: TEST_OPENAI_KEY
          - name: local
            kind: openai-compatible
            base_url: http://127.0.0.1:11434/v1/
            headers: {X-Title: demo}
        aliases:
          fast: openai/gpt-4o-mini
        prices:
          - {provider: local, model: llama3, input: "0.10", output: 0.2}
        """
        let config = try ConfigurationLoader.load(yaml: yaml, environment: ["TEST_OPENAI_KEY": "sk-test-123456"], overrides: ConfigOverrides())
        #expect(config.providers.map(\.name) == ["openai", "local", "mock"])
        #expect(config.providers[0].apiKey == "sk-test-123456")
        #expect(config.providers[0].baseURL == "https://api.openai.com/v1")
        #expect(config.providers[1].baseURL == "http://127.0.0.1:11434/v1")
        #expect(config.providers[1].headers == ["X-Title": "demo"])
        #expect(config.aliases == [ModelAlias(alias: "fast", target: "openai/gpt-4o-mini")])
        #expect(config.prices.first?.output == "0.200000")
    }

    @Test func everyProblemIsReportedWithItsKey() {
        let yaml = """
        port: 70000
        colour: blue
        encryption_key: short
        providers:
          - name: a
            kind: openai
            api_key: not-an-openai-key
          - name: a
            kind: anthropic
            base_url: ftp://x
          - name: c
            kind: teleport
        aliases:
          fast: nowhere/model
        recorder:
          batch_size: 0
        """
        do {
            _ = try ConfigurationLoader.load(yaml: yaml, environment: [:], overrides: ConfigOverrides())
            Issue.record("an invalid configuration was accepted")
        } catch let errors as ConfigErrors {
            let keys = Set(errors.errors.map(\.key))
            for key in ["port", "colour", "encryption_key", "providers[0].api_key", "providers[1].name", "providers[1].base_url",
                        "providers[2].kind", "aliases[0].target", "recorder.batch_size"] {
                #expect(keys.contains(key), "no error for \(key) in \(errors)")
            }
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func encryptionKeyMustBe32Bytes() throws {
        let hex = String(repeating: "ab", count: 32)
        #expect(EncryptionKeyParser.parse(hex)?.count == 32)
        let base64 = Data(repeating: 7, count: 32).base64EncodedString()
        #expect(EncryptionKeyParser.parse(base64)?.count == 32)
        #expect(EncryptionKeyParser.parse(Data(repeating: 7, count: 16).base64EncodedString()) == nil)
        #expect(throws: ConfigErrors.self) {
            try ConfigurationLoader.load(yaml: nil, environment: ["GATEHOUSE_ENCRYPTION_KEY": "abc"], overrides: ConfigOverrides())
        }
    }

    @Test func redactedYAMLHidesEverySecret() throws {
        let yaml = """
        database_url: postgres://gh:hunter2secret@db.internal:5432/gatehouse
        encryption_key: \(String(repeating: "cd", count: 32))
        providers:
          - {name: openai, kind: openai, api_key: sk-live-abcdefghijklmnop}
          - {name: or, kind: openai-compatible, base_url: "https://openrouter.ai/api/v1", headers: {Authorization: Bearer sk-or-secretvalue}}
        """
        let config = try ConfigurationLoader.load(yaml: yaml, environment: [:], overrides: ConfigOverrides())
        let printed = config.redactedYAML()
        for secret in ["hunter2secret", "sk-live-abcdefghijklmnop", String(repeating: "cd", count: 32), "sk-or-secretvalue"] {
            #expect(!printed.contains(secret), "\(secret) leaked into: \(printed)")
        }
        #expect(printed.contains("db.internal"))
    }

    @Test func malformedYAMLIsAClearError() {
        #expect(throws: ConfigErrors.self) {
            try ConfigurationLoader.load(yaml: "providers: [unclosed", environment: [:], overrides: ConfigOverrides())
        }
    }
}
