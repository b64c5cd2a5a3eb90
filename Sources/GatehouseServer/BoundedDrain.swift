import Logging
import ServiceLifecycle

/// The HTTP server with its graceful shutdown bounded. Hummingbird's drain waits until every
/// open connection has closed, and a client decides when that is (an HTTP/2 client that never
/// answers the GOAWAY's PING, a stream that never ends). The recorders flush only after the
/// server has stopped, so an unbounded drain would lose acknowledged records to the SIGKILL a
/// supervisor sends at its own deadline. After `limit` the server is cancelled, which closes
/// the connections still open, and the shutdown goes on.
struct BoundedDrain: Service {
    let service: any Service
    let limit: Duration
    let logger: Logger

    private enum Ended {
        case server(Result<Void, any Error>)
        case limitReached
        /// The watch was cancelled: the server ended first.
        case watchCancelled
    }

    func run() async throws {
        let (service, limit, logger) = (self.service, self.limit, self.logger)
        try await withTaskGroup(of: Ended.self) { group in
            group.addTask {
                do { try await service.run() } catch { return .server(.failure(error)) }
                return .server(.success(()))
            }
            group.addTask {
                do {
                    try await gracefulShutdown()
                    try await Task.sleep(for: limit)
                } catch { return .watchCancelled }
                return .limitReached
            }
            var outcome: Result<Void, any Error> = .success(())
            for await ended in group {
                switch ended {
                case .server(let result):
                    outcome = result
                    group.cancelAll()
                case .limitReached:
                    logger.warning("the HTTP drain did not finish within \(limit.components.seconds) s: closing the connections still open")
                    group.cancelAll()
                case .watchCancelled:
                    break
                }
            }
            return outcome
        }.get()
    }
}

extension GatehouseServer {
    /// How long in-flight requests get to finish at shutdown. With the recorders' own 15 s for a
    /// store that is down, the shutdown fits in systemd's `TimeoutStopSec=45s` and in Kubernetes'
    /// 45 s grace period less its 5 s `preStop` sleep.
    static let httpDrainLimit: Duration = .seconds(20)
}
