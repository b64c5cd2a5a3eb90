import Foundation
import GatehouseTestSupport
import Testing

enum Backend: String, CaseIterable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }

    /// nil for SQLite (the default under the data directory), a fresh database for PostgreSQL.
    func databaseURL() throws -> String? {
        self == .postgres ? try TestEnvironment.freshPostgresDatabase() : nil
    }
}

/// Configuration naming the mock upstream as an OpenAI provider and an Anthropic provider.
func upstreamConfig(_ mock: MockUpstream, extra: String = "") -> String {
    """
    providers:
      - name: up
        kind: openai
        base_url: \(mock.baseURL)/v1
        api_key: sk-provider-SECRET-upstream-0001
      - name: upa
        kind: anthropic
        base_url: \(mock.baseURL)/v1
        api_key: sk-ant-provider-SECRET-upstream-0002
    recorder:
      flush_interval_ms: 20
    \(extra)
    """
}

/// Polls the request list until `count` records are stored (the recorder writes in batches).
func waitForRecords(_ gatehouse: GatehouseProcess, count: Int, query: String = "", headers: [(String, String)] = []) async throws -> [[String: Any]] {
    let deadline = ContinuousClock.now + .seconds(20)
    var last: [[String: Any]] = []
    while ContinuousClock.now < deadline {
        let (status, body) = try await HTTP.get(gatehouse.baseURL + "/api/v1/requests?limit=1000" + query, headers: headers)
        if status == 200, let object = try JSONSerialization.jsonObject(with: body) as? [String: Any],
           let data = object["data"] as? [[String: Any]] {
            last = data
            if data.count >= count { return data }
        }
        try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("expected \(count) records, found \(last.count)")
    return last
}

func usage(_ record: [String: Any]) -> [String: Int] {
    ((record["usage"] as? [String: Any]) ?? [:]).compactMapValues { ($0 as? NSNumber)?.intValue }
}

func int(_ value: Any?) -> Int? { (value as? NSNumber)?.intValue }
