import Foundation
import GatehouseCore
import Logging
import ServiceLifecycle

/// Keeps this instance's controls in step with the shared store: reports quota consumption and
/// returns idle leases every sync interval, reloads keys and switches when they change, writes
/// new cache entries. On shutdown it reports everything and returns every lease.
public struct ControlSyncService: Service {
    let controls: Controls
    let cache: ResponseCache
    let interval: Duration
    let logger: Logger

    public init(controls: Controls, cache: ResponseCache, interval: Duration, logger: Logger) {
        self.controls = controls
        self.cache = cache
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        // Cancellation on graceful shutdown ends the loop; the final sync runs after it.
        await cancelWhenGracefulShutdown {
            var lastRefresh = ContinuousClock.now
            var lastPrune = ContinuousClock.now
            while !Task.isCancelled {
                // A cancelled sleep ends the loop: it is not a pause (`try?` here would spin).
                do { try await Task.sleep(for: interval) } catch { break }
                await controls.ledger.sync()
                await cache.flush()
                if ContinuousClock.now - lastRefresh >= .seconds(1) {
                    lastRefresh = .now
                    // Shutdown cancels a reload mid-query; that is a stop, not a failure.
                    do { try await controls.state.refresh() } catch where !Task.isCancelled {
                        logger.warning("could not reload keys and switches", metadata: ["error": "\(error)"])
                    } catch {}
                }
                if ContinuousClock.now - lastPrune >= .seconds(60) {
                    lastPrune = .now
                    await cache.pruneStore()
                }
            }
        }
        await controls.ledger.sync(releaseAll: true)
        await cache.flush()
    }
}
