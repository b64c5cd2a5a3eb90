import Foundation
import GatehouseCore
import Testing
@testable import GatehouseStorage

@Suite struct QueryCompilerTests {
    /// The same queries give the same records on SQLite and PostgreSQL.
    @Test(arguments: Backend.allCases)
    func queriesSelectTheRightRequests(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            var records = [
                makeRecord(1, at: base + 1, model: "gpt-4o-mini", latency: 120_000, cost: 20_000, customer: "acme", user: "u1"),
                makeRecord(2, at: base + 2, model: "gpt-4o", latency: 900_000, cost: 5_000, customer: "acme"),
                makeRecord(3, at: base + 3, model: "claude-sonnet-4-5", provider: "anthropic", latency: 50_000, cost: 30_000,
                           customer: "globex", error: .upstreamTimeout, status: 504),
                makeRecord(4, at: base - 2 * hour, model: "gpt-4o-mini", latency: 10_000, cost: 1, user: "u_2", error: .rateLimited, status: 429),
            ]
            records[2].errorMessage = "Upstream TIMEOUT after 30s (100% of budget)"
            try await store.insert(records)
            func ids(_ q: String) async throws -> [Int] {
                let query = try QueryParser.parse(q, nowMicros: base + hour)
                let page = try await store.requests(RequestListQuery(filter: RequestFilter(query: query.filter), limit: 100))
                return page.records.map { Int($0.id.dropFirst(4))! }.sorted()
            }
            #expect(try await ids("model:gpt-4o*") == [1, 2, 4])
            #expect(try await ids("model:GPT-4O") == [2], "text matches ignore case")
            #expect(try await ids("cost:>0.01") == [1, 3])
            #expect(try await ids("latency:>=100ms -status:504") == [1, 2])
            #expect(try await ids("latency:[100 TO 1s]") == [1, 2], "a bare number is milliseconds")
            #expect(try await ids("property.customer:acme") == [1, 2])
            #expect(try await ids("-property.customer:acme") == [3, 4], "a missing property counts as not matching")
            #expect(try await ids(#""timeout""#) == [3])
            #expect(try await ids(#""100%""#) == [3], "LIKE wildcards in the search text are literal")
            #expect(try await ids("user:u_2") == [4])
            #expect(try await ids("user:u?2 OR user:u_*") == [4], "_ is literal too")
            #expect(try await ids("error:* status:5*") == [3])
            #expect(try await ids("timestamp:>-1h") == [1, 2, 3])
            #expect(try await ids("(provider:anthropic OR model:gpt-4o) -error:*") == [2])
            #expect(try await ids("stream:true") == records.filter(\.stream).map { Int($0.id.dropFirst(4))! }.sorted())
            await #expect(throws: QueryFieldError.self) { try await ids("colour:blue") }
            await #expect(throws: QueryFieldError.self) { try await ids("model:>3") }
            await #expect(throws: QueryFieldError.self) { try await ids("status:abc") }
        }
    }
}
