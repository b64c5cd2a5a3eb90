import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

/// Times and durations at the ends of Int64 are refused, never subtracted into a trap that takes
/// the whole server down.
@Suite("Extreme times in queries and silences", .serialized)
struct TimeOverflowEndToEndTests {
    @Test("from/to/starts_at/duration far outside any real date answer 400, and the server stays up")
    func extremeTimesAreRefused() async throws {
        let gatehouse = try await GatehouseProcess.start()
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        for query in ["from=-9223372036854", "to=-9223372036854", "from=9223372036854", "to=9223372036854",
                      "from=-9223372036854775808", "from=99999999999999"] {
            let (status, error) = try await api.failure(.GET, "/api/v1/ai/usage?" + query)
            #expect(status == 400, "\(query)")
            #expect(error.error.param == query.split(separator: "=")[0].description, "\(query)")
        }
        let (listStatus, _) = try await api.failure(.GET, "/api/v1/requests?from=-9223372036854")
        #expect(listStatus == 400)
        for body in [#"{"matchers":["a=b"],"duration":"106751991d"}"#,
                     #"{"matchers":["a=b"],"duration":"9223372036854775807us"}"#,
                     #"{"matchers":["a=b"],"starts_at":"-9223372036854","ends_at":"2099-01-01T00:00:00Z"}"#] {
            let (status, _) = try await api.failure(.POST, "/api/v1/silences", body: Data(body.utf8))
            #expect(status == 400, "\(body)")
        }
        let health = try await api.get("/health", as: HealthReport.self)
        #expect(health.status == "ok")
        try await api.verifyContract()
        _ = try await gatehouse.stop()
    }
}
