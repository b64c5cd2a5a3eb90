import Foundation
import GatehouseTestSupport
import Testing

/// Secrets that arrive from outside never leave again: not in a relayed body, not in a record.
@Suite("Secrets in relayed bodies and call properties")
struct SecretLeakEndToEndTests {
    @Test("an upstream error that echoes the provider key reaches the client masked")
    func providerKeyMaskedInErrorBody() async throws {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(yaml: upstreamConfig(mock))
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
        let records = try await waitForRecords(gatehouse, count: 2)
        #expect(records.allSatisfy { !($0["error_message"] as? String ?? "").contains("SECRET-upstream") }, "\(records.map { $0["error_message"] ?? "" })")
        let (_, health) = try await HTTP.get(gatehouse.baseURL + "/api/v1/ai/health")
        #expect(!String(decoding: health, as: UTF8.self).contains("SECRET-upstream"))
        try await gatehouse.stop()
        try await mock.stop()
    }

    @Test("a property named like a credential is stored masked")
    func credentialPropertyMasked() async throws {
        let gatehouse = try await GatehouseProcess.start()
        let reply = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions",
                                        json: #"{"model":"mock/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#,
                                        headers: [("Gatehouse-Property-Token", "tok-very-secret-value-123"),
                                                  ("Gatehouse-Property-Api-Key", "key-very-secret-value-456"),
                                                  ("Gatehouse-Property-Customer", "acme")])
        #expect(reply.status == 200)
        let record = try #require(try await waitForRecords(gatehouse, count: 1).first)
        let properties = record["properties"] as? [String: String] ?? [:]
        #expect(properties["customer"] == "acme")
        #expect(properties["token"] == "[REDACTED]", "\(properties)")
        #expect(properties["api-key"] == "[REDACTED]", "\(properties)")
        let (_, raw) = try await HTTP.get(gatehouse.baseURL + "/api/v1/requests")
        #expect(!String(decoding: raw, as: UTF8.self).contains("very-secret-value"))
        try await gatehouse.stop()
    }
}
