import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

/// A first start on an empty store is quiet: nothing touches a table before the migrations have
/// made it.
@Suite("Startup order")
struct StartupEndToEndTests {
    @Test("a fresh start logs no warning or error", arguments: Backend.allCases)
    func freshStartIsQuiet(backend: Backend) async throws {
        // Every background service that reads the store runs its first pass at start-up.
        let gatehouse = try await GatehouseProcess.start(yaml: """
            telemetry:
              retention:
                interval_seconds: 1
            alerts:
              evaluation_interval_seconds: 1
            """, databaseURL: try backend.databaseURL())
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        #expect(try await api.get("/ready", as: ReadinessReport.self) == ReadinessReport(status: "ready", store: backend.rawValue))
        // A sleep: the start-up passes leave no trace when they go well, so there is nothing to
        // wait for; this gives each a run, and its 1 s interval time to come round, to log.
        try await Task.sleep(for: .seconds(2))
        try await api.verifyContract()
        try await gatehouse.stop()
        let noisy = gatehouse.child.output.filter { line in
            ["\"level\":\"warning\"", "\"level\":\"error\"", "\"level\":\"critical\"", "no such table", "does not exist"].contains { line.contains($0) }
        }
        #expect(noisy.isEmpty, "a fresh start logged:\n\(noisy.joined(separator: "\n"))")
    }
}
