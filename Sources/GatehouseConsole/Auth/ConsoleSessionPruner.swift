import GatehouseCore
import Logging
import ServiceLifecycle

/// Deletes console sessions past their absolute end or idle limit, hourly: `viewer()` removes
/// an expired session only when its browser comes back, and most never do.
public struct ConsoleSessionPruner: Service {
    let accounts: any AccountStore
    let interval: Duration
    let logger: Logger

    public init(accounts: any AccountStore, interval: Duration = .seconds(3600), logger: Logger) {
        self.accounts = accounts
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await pruneOnce()
                // A cancelled sleep ends the loop: it is not a pause.
                do { try await Task.sleep(for: interval) } catch { break }
            }
        }
    }

    /// One pass; a failure is logged and retried on the next pass.
    public func pruneOnce(nowMicros: Int64 = TimeExpressions.nowMicros()) async {
        do {
            try await accounts.pruneSessions(nowMicros: nowMicros, idleMicros: TimeExpressions.micros(ConsoleAuth.idle))
        } catch {
            // Shutdown cancels a pass mid-delete; that is a stop, not a failure.
            if Task.isCancelled { return }
            logger.warning("console session pruning failed; will retry", metadata: ["error": "\(error)"])
        }
    }
}
