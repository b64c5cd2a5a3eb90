import AsyncHTTPClient
import Foundation
import GatehouseCore
import Logging
import Synchronization
import Testing
@testable import GatehouseAlerts

/// A scheduled backup's failure turns its heartbeat DOWN at once, also when the store cannot
/// record it: a full disk fails the backup and the store's write together.
@Suite struct BuiltInHeartbeatTests {
    /// Pings are kept; every write of a failure fails.
    final class FailureWritesFail: NoOpAlertStore, @unchecked Sendable {
        struct DiskFull: Error {}
        let pings = Mutex<[String: Int64]>([:])
        override func recordHeartbeat(name: String, atMicros: Int64) async throws { pings.withLock { $0[name] = max($0[name] ?? .min, atMicros) } }
        override func heartbeats() async throws -> [String: Int64] { pings.withLock { $0 } }
        override func recordHeartbeatFailure(_ failure: HeartbeatFailure) async throws { throw DiskFull() }
    }

    @Test func aFailureTheStoreCannotRecordStillTurnsTheHeartbeatDown() async throws {
        let backups = BackupSettings(directory: "/backups", intervalSeconds: 3600)
        let monitor = ProbeMonitor(probes: [], heartbeats: [backups.heartbeat], store: FailureWritesFail(), client: HTTPClient.shared,
                                   logger: Logger(label: "test"))
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        try await monitor.builtInJobReported(BackupSettings.heartbeatName, atMicros: now - 60_000_000, failure: nil)
        #expect(try await monitor.states(nowMicros: now).first?.up == true)

        await #expect(throws: FailureWritesFail.DiskFull.self) {
            try await monitor.builtInJobReported(BackupSettings.heartbeatName, atMicros: now, failure: "scheduled backup failed: no space left on device")
        }
        let state = try #require(try await monitor.states(nowMicros: now + 1).first)
        #expect(state.up == false && state.lastError == "scheduled backup failed: no space left on device", "\(state)")

        // The next success clears it.
        try await monitor.builtInJobReported(BackupSettings.heartbeatName, atMicros: now + 2, failure: nil)
        #expect(try await monitor.states(nowMicros: now + 3).first?.up == true)
    }
}
