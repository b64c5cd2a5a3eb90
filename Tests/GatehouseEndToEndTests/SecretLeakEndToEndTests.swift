import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

/// Secrets that arrive from outside never leave again: not in a relayed body, not in a record.
@Suite("Secrets in relayed bodies and call properties")
struct SecretLeakEndToEndTests {
    @Test("an upstream error that echoes the provider key reaches the client masked")
    func providerKeyMaskedInErrorBody() async throws {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(yaml: upstreamConfig(mock))
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        // The mock answers 401 with "Incorrect API key provided: <the key it was sent>", as OpenAI does.
        let reply = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions",
                                        json: #"{"model":"up/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#,
                                        headers: [("x-mock-status", "401")])
        let text = String(decoding: reply.body, as: UTF8.self)
        #expect(reply.status == 401)
        #expect(!text.contains("SECRET-upstream"), "the provider key was relayed: \(text)")
        #expect(text.contains("Incorrect API key provided"), "the provider's message is kept: \(text)")
        #expect(reply.json != nil, "still valid JSON: \(text)")
        // Nor in the stored record, nor in the open health report (a 5xx is a provider fault there).
        _ = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions",
                                json: #"{"model":"up/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#,
                                headers: [("x-mock-status", "401")])
        let records = try await waitForRequests(api, count: 2)
        #expect(records.allSatisfy { $0.errorMessage?.isEmpty == false }, "the provider's message is recorded")
        #expect(records.allSatisfy { !($0.errorMessage ?? "").contains("SECRET-upstream") }, "\(records.map { $0.errorMessage ?? "" })")
        let health = try await api.raw(.GET, "/api/v1/ai/health")
        #expect(health.status == 200 && !String(decoding: health.body, as: UTF8.self).contains("SECRET-upstream"))
        #expect(try APIJSON.decode(ProviderHealthReport.self, from: health.body).providers.contains { $0.name == "up" })
        try await api.verifyContract()
        try await gatehouse.stop()
        try await mock.stop()
    }

    @Test("a property named like a credential is stored masked")
    func credentialPropertyMasked() async throws {
        let gatehouse = try await GatehouseProcess.start()
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let reply = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions",
                                        json: #"{"model":"mock/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#,
                                        headers: [("Gatehouse-Property-Token", "tok-very-secret-value-123"),
                                                  ("Gatehouse-Property-Api-Key", "key-very-secret-value-456"),
                                                  ("Gatehouse-Property-Customer", "acme")])
        #expect(reply.status == 200)
        let record = try #require(try await waitForRequests(api, count: 1).first)
        let properties = record.properties
        #expect(properties["customer"] == "acme")
        #expect(properties["token"] == "[REDACTED]", "\(properties)")
        #expect(properties["api-key"] == "[REDACTED]", "\(properties)")
        let raw = try await api.raw(.GET, "/api/v1/requests")
        #expect(!String(decoding: raw.body, as: UTF8.self).contains("very-secret-value"))
        let detail = try await api.raw(.GET, "/api/v1/requests/\(record.id)")
        #expect(detail.status == 200 && !String(decoding: detail.body, as: UTF8.self).contains("very-secret-value"))
        try await api.verifyContract()
        try await gatehouse.stop()
    }
}
