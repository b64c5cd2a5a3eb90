import GatehouseCore
@testable import GatehouseServer
import Testing

/// The queues in front of the store are bounded in bytes, not only in entries.
@Suite struct RecorderBoundsTests {
    /// Regression (attack review): a floor of 16 queued calls let the body queue hold 512 MiB at
    /// the largest `capture_max_bytes`, twice the bound its comment promised.
    @Test(arguments: [1024, 64 * 1024, 1 << 20, 16 * 1024 * 1024])
    func capturedBodiesQueueStaysWithin256MiB(_ maxBytes: Int) {
        var config = GatehouseConfig()
        config.gateway.captureMaxBytes = maxBytes
        let settings = GatehouseServer.bodyRecorderSettings(config)
        #expect(settings.capacity >= 1)
        #expect(settings.capacity * 2 * maxBytes <= 256 << 20)
        #expect(settings.batchSize >= 1)
        #expect(settings.batchSize <= settings.capacity)
    }
}
