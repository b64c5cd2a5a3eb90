import Foundation
import Testing
import Yams
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

    /// The examples' placeholders (deploy/compose/.env.example, the example Secret) are long
    /// enough to pass the length check: a copy left unedited must not start.
    @Test func placeholderSecretsAreRefused() throws {
        for token in ["replace-with-a-long-random-admin-token", "change-me-0123456789abcdef", "ChangeMe0123456789abcdef"] {
            do {
                _ = try ConfigurationLoader.load(yaml: nil, environment: ["GATEHOUSE_ADMIN_TOKEN": token], overrides: ConfigOverrides())
                Issue.record("the placeholder admin token \(token) was accepted")
            } catch let errors as ConfigErrors {
                let problem = errors.errors.first { $0.key == "admin_token" }?.problem ?? ""
                #expect(problem.contains("placeholder"), "\(errors)")
            }
        }
        do {
            _ = try ConfigurationLoader.load(yaml: nil, environment: ["GATEHOUSE_ENCRYPTION_KEY": "replace-with-a-32-byte-base64-key"], overrides: ConfigOverrides())
            Issue.record("the placeholder encryption key was accepted")
        } catch let errors as ConfigErrors {
            #expect(errors.errors.first { $0.key == "encryption_key" }?.problem.contains("placeholder") == true, "\(errors)")
        }
        // A real token that merely contains the words is fine.
        let real = try ConfigurationLoader.load(yaml: nil, environment: ["GATEHOUSE_ADMIN_TOKEN": "0123456789abcdef-change-me"], overrides: ConfigOverrides())
        #expect(real.controls.adminToken == "0123456789abcdef-change-me")
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

    /// A provider's URL carries credentials in its user info and query, and its headers carry
    /// gateway keys under names no list can foresee (`Ocp-Apim-Subscription-Key`): only headers
    /// known to be harmless print their values.
    @Test func redactedYAMLMasksProviderURLCredentialsAndUnknownHeaders() throws {
        var config = GatehouseConfig()
        config.providers = [
            ProviderConfig(name: "azure", kind: .openAICompatible, baseURL: "https://svc:PASS-in-url@proxy.example/v1?subscription-key=QUERY-SECRET&region=eu",
                           headers: ["Ocp-Apim-Subscription-Key": "APIM-SECRET", "X-Signature": "SIG-SECRET", "X-Session": "SESSION-SECRET",
                                     "X-Custom-Thing": "UNKNOWN-HEADER-VALUE", "HTTP-Referer": "https://app.example", "X-Title": "demo app",
                                     "anthropic-version": "2023-06-01", "User-Agent": "gatehouse-test"]),
            ProviderConfig(name: "tokenuser", kind: .openAICompatible, baseURL: "https://USER-TOKEN-SECRET@proxy.example/v1"),
        ]
        let printed = config.redactedYAML()
        for secret in ["PASS-in-url", "QUERY-SECRET", "APIM-SECRET", "SIG-SECRET", "SESSION-SECRET", "UNKNOWN-HEADER-VALUE", "USER-TOKEN-SECRET"] {
            #expect(!printed.contains(secret), "\(secret) leaked into:\n\(printed)")
        }
        let tree = try #require(try Yams.load(yaml: printed) as? [String: Any], "\(printed)")
        let providers = try #require(tree["providers"] as? [[String: Any]])
        let azure = try #require(providers.first)
        let baseURL = try #require(azure["base_url"] as? String)
        #expect(baseURL.contains("proxy.example/v1") && baseURL.contains("region=eu"), "the URL stays recognisable: \(baseURL)")
        let headers = try #require(azure["headers"] as? [String: String])
        #expect(headers["HTTP-Referer"] == "https://app.example" && headers["X-Title"] == "demo app"
                && headers["anthropic-version"] == "2023-06-01" && headers["User-Agent"] == "gatehouse-test")
        for name in ["Ocp-Apim-Subscription-Key", "X-Signature", "X-Session", "X-Custom-Thing"] {
            #expect(headers[name] == Redactor.mask, "\(name) printed as \(headers[name] ?? "nothing")")
        }
    }

    /// Every value reads back as the text it was, however YAML-like it looks; secrets stay masked.
    @Test func redactedYAMLReadsBackEveryHostileValue() throws {
        let hostile = ["a: b", "# not a comment", "*alias", "&anchor", "yes", "no", "null", "~", "1e3", "0x1F", "- item", "[x]", "{y}",
                       "line one\nline two", "tab\there", "  padded  ", "ünïcödé 模型 🚀", "quote \" and \\ backslash", "'single'", "%directive",
                       "", "@at", "`tick`", "2026-11-22", "true"]
        var config = GatehouseConfig()
        config.host = hostile[0]
        config.dataDirectory = hostile[1]
        config.corsAllowedOrigins = hostile
        config.providers = hostile.enumerated().map { index, name in
            ProviderConfig(name: name, kind: .openAICompatible, baseURL: "https://x.example/\(index)?q=\(index)#frag",
                           headers: ["X-Title": name, "Authorization": "Bearer sk-header-secret", "X-Auth-Token": "tok-header-secret"])
        }
        config.aliases = hostile.map { ModelAlias(alias: "alias " + $0, target: $0) }
        config.telemetry.projects = hostile.map { TelemetryProject(name: $0, id: $0, key: "project-key-secret") }
        config.alerts.groupBy = hostile
        config.alerts.routes = [AlertRoute(receiver: hostile[2], match: Dictionary(uniqueKeysWithValues: hostile.map { ("k " + $0, $0) }))]
        config.alerts.defaultReceiver = hostile[3]
        config.alerts.heartbeats = [HeartbeatConfig(name: hostile[4], intervalSeconds: 60, token: "heartbeat-token-secret")]
        config.controls.adminToken = "admin-token-secret"

        let printed = config.redactedYAML()
        for secret in ["sk-header-secret", "tok-header-secret", "project-key-secret", "heartbeat-token-secret", "admin-token-secret"] {
            #expect(!printed.contains(secret), "\(secret) leaked")
        }
        let tree = try #require(try Yams.load(yaml: printed) as? [String: Any], "\(printed)")
        #expect(tree["host"] as? String == hostile[0] && tree["data_dir"] as? String == hostile[1])
        #expect(tree["cors_allowed_origins"] as? [String] == hostile)
        let providers = try #require(tree["providers"] as? [[String: Any]])
        #expect(providers.compactMap { $0["name"] as? String } == hostile)
        for (provider, name) in zip(providers, hostile) {
            let headers = try #require(provider["headers"] as? [String: String])
            #expect(headers == ["X-Title": name, "Authorization": Redactor.mask, "X-Auth-Token": Redactor.mask])
            #expect(provider["api_key"] is NSNull && provider["kind"] as? String == "openai-compatible")
        }
        let aliases = try #require(tree["aliases"] as? [String: String])
        #expect(aliases == Dictionary(uniqueKeysWithValues: hostile.map { ("alias " + $0, $0) }))
        let telemetry = try #require(tree["telemetry"] as? [String: Any])
        let projects = try #require(telemetry["projects"] as? [[String: Any]])
        #expect(projects.compactMap { $0["name"] as? String } == hostile && projects.compactMap { $0["id"] as? String } == hostile)
        #expect(projects.allSatisfy { $0["key"] as? String == Redactor.mask })
        let alerts = try #require(tree["alerts"] as? [String: Any])
        #expect(alerts["group_by"] as? [String] == hostile && alerts["default_receiver"] as? String == hostile[3])
        let route = try #require((alerts["routes"] as? [[String: Any]])?.first)
        #expect(route["receiver"] as? String == hostile[2] && route["continue"] as? Bool == false)
        #expect(route["match"] as? [String: String] == Dictionary(uniqueKeysWithValues: hostile.map { ("k " + $0, $0) }))
        let heartbeat = try #require((alerts["heartbeats"] as? [[String: Any]])?.first)
        #expect(heartbeat["name"] as? String == hostile[4] && heartbeat["token"] as? String == Redactor.mask)
        #expect(tree["admin_token"] as? String == Redactor.mask && tree["port"] as? Int == 8080)
        let gateway = try #require(tree["gateway"] as? [String: Any])
        #expect(gateway["trust_forwarded_for"] as? Bool == false)
    }

    /// Empty settings print as YAML's empty values, with the line saying what that means.
    @Test func redactedYAMLExplainsEmptySettings() throws {
        var config = GatehouseConfig()
        config.providers = [ProviderConfig(name: "passthrough", kind: .openAI, baseURL: "https://api.openai.com/v1")]
        let printed = config.redactedYAML()
        for line in ["cors_allowed_origins: []  # no CORS headers: browsers on other origins cannot call",
                     "  api_key: null  # caller's own credential is passed through",
                     "admin_token: null  # admin API off", "prices: []  # shipped table only",
                     "  projects: []  # open mode: ingest takes logs and events without a key",
                     "  routes: []  # every alert goes to default_receiver",
                     "  default_receiver: null  # alerts no route matches are recorded, not sent"] {
            #expect(printed.contains("\n" + line + "\n") || printed.hasPrefix(line + "\n"), "no line \(line) in:\n\(printed)")
        }
        let tree = try #require(try Yams.load(yaml: printed) as? [String: Any])
        #expect(tree["cors_allowed_origins"] as? [Any] != nil && tree["admin_token"] is NSNull && tree["aliases"] as? [String: Any] != nil)
    }

    @Test func malformedYAMLIsAClearError() {
        #expect(throws: ConfigErrors.self) {
            try ConfigurationLoader.load(yaml: "providers: [unclosed", environment: [:], overrides: ConfigOverrides())
        }
    }
}
