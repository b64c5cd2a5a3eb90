import Foundation
import GatehouseCore
import GatehouseTestSupport
import Logging
import Testing
@testable import GatehouseStorage

/// The SQLite writer after a transaction its caller gave up on: the next write must not find
/// the connection still inside the abandoned transaction.
@Suite struct SQLiteTransactionTests {
    @Test func aCancelledTransactionLeavesTheWriterUsable() async throws {
        let directory = try TestEnvironment.temporaryDirectory()
        let driver = try await SQLiteDriver.open(path: directory.appendingPathComponent("t.sqlite").path, logger: Logger(label: "test"))
        _ = try await driver.query("CREATE TABLE t (x INTEGER)", [])
        // Long enough (a few hundred ms) to be cancelled while it runs inside BEGIN IMMEDIATE.
        let slow = SQLStatement("INSERT INTO t SELECT x FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT x FROM c)")
        let abandoned = Task { try await driver.transaction([slow]) }
        try await Task.sleep(for: .milliseconds(100))
        abandoned.cancel()
        _ = await abandoned.result
        do {
            try await driver.transaction([SQLStatement("INSERT INTO t VALUES (1)")])
            let rows = try await driver.query("SELECT COUNT(*) AS n FROM t", [])
            #expect(rows.first?.values["n"] == .int(1), "only the later write is stored: \(rows)")
        } catch {
            Issue.record("the next write failed: \(error)")
        }
        try await driver.close()
    }
}
