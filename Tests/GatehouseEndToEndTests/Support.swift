import Foundation
import GatehouseAPI
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

/// Polls `GET /api/v1/requests` through `api` until `count` records are stored (the recorder
/// writes in batches), newest first. Each poll is one of `api`'s exchanges, so a later
/// `verifyContract()` checks these answers too.
func waitForRequests(_ api: TypedAPI, count: Int, query: String = "") async throws -> [RequestRecordView] {
    try await Poll.until("\(count) request records") {
        let records = try await api.get("/api/v1/requests?limit=1000" + query, as: RequestRecordPage.self).data
        return records.count >= count ? records : nil
    }
}

/// A number in the JSON a Python SDK scenario or the mock upstream printed.
func int(_ value: Any?) -> Int? { (value as? NSNumber)?.intValue }

/// The sum of the samples of `name` in `gatehouse`'s `/metrics` whose label set satisfies `labels`.
func metricSum(_ gatehouse: GatehouseProcess, _ name: String, labels: (Substring) -> Bool = { _ in true }) async throws -> Double {
    let (status, body) = try await HTTP.get(gatehouse.baseURL + "/metrics")
    guard status == 200 else { throw ProcessRunner.Failure(message: "/metrics answered \(status)") }
    var sum = 0.0
    for line in String(decoding: body, as: UTF8.self).split(separator: "\n") where line.hasPrefix(name + "{") || line.hasPrefix(name + " ") {
        let labelSet = line.dropFirst(name.count).prefix { $0 != " " }
        if labels(labelSet), let value = line.split(separator: " ").last.flatMap({ Double($0) }) { sum += value }
    }
    return sum
}

/// How many `path` requests `gatehouse` has answered with `status`, by its access log. The line
/// is written when the handler returns, so for a stream (the live tail) it comes before the body:
/// once it is there, the stream has fixed where it starts.
func accessLogCount(_ gatehouse: GatehouseProcess, path: String, status: Int = 200) -> Int {
    gatehouse.child.output.filter {
        $0.contains(#""message":"request""#) && $0.contains(#""path":"\#(path)""#) && $0.contains(#""status":"\#(status)""#)
    }.count
}

/// Waits until the response cache has written `count` entries through to the store `gatehouse`
/// uses (`databaseURL`; nil for its default SQLite file). An entry reaches the store after it is
/// in memory, and a lookup that misses memory reads the store: from then on the call is a hit.
func waitForStoredCacheEntries(_ gatehouse: GatehouseProcess, databaseURL: String?, count: Int) async throws {
    let url = databaseURL ?? "sqlite://" + gatehouse.dataDirectory.appendingPathComponent("data/gatehouse.sqlite").path
    let query = "SELECT count(*) FROM cache_entries"
    try await Poll.until("\(count) response cache entries in the store") {
        let result = url.hasPrefix("sqlite://")
            ? try await ProcessRunner.runAsync("/usr/bin/sqlite3", [String(url.dropFirst("sqlite://".count)), query])
            : try await ProcessRunner.runAsync("/usr/bin/env", ["psql", url, "-tAc", query])
        guard result.status == 0, let stored = Int(result.output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw ProcessRunner.Failure(message: "counting cache entries failed (\(result.status)): \(result.output)")
        }
        return stored >= count
    }
}
