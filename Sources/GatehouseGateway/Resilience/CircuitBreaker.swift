import Foundation
import GatehouseCore
import Synchronization

/// A circuit breaker per deployment (`provider/model`): closed while calls succeed; open after
/// `failureThreshold` consecutive failures, refusing calls for `openSeconds`; then half-open,
/// letting one probe through, which closes it on success or reopens it on failure.
public final class CircuitBreakers: Sendable {
    public enum State: String, Sendable { case closed, open, halfOpen = "half_open" }

    struct Breaker {
        var failures = 0
        var state = State.closed
        var openedAt: ContinuousClock.Instant?
        var probeInFlight = false
    }

    private let breakers = Mutex<[String: Breaker]>([:])
    let settings: BreakerSettings

    public init(settings: BreakerSettings) { self.settings = settings }

    /// Whether a call may go to `deployment` now; in half-open state only one probe at a time.
    func allow(_ deployment: String) -> Bool {
        breakers.withLock { all in
            guard var b = all[deployment] else { return true }
            defer { all[deployment] = b }
            switch b.state {
            case .closed: return true
            case .open:
                guard let opened = b.openedAt, ContinuousClock.now - opened >= .seconds(settings.openSeconds) else { return false }
                b.state = .halfOpen
                b.probeInFlight = true
                return true
            case .halfOpen:
                if b.probeInFlight { return false }
                b.probeInFlight = true
                return true
            }
        }
    }

    func recordSuccess(_ deployment: String) {
        breakers.withLock { all in
            guard all[deployment] != nil else { return }
            all[deployment] = nil
        }
    }

    func recordFailure(_ deployment: String) {
        breakers.withLock { all in
            var b = all[deployment] ?? Breaker()
            b.failures += 1
            b.probeInFlight = false
            if b.state == .halfOpen || b.failures >= settings.failureThreshold {
                b.state = .open
                b.openedAt = .now
            }
            all[deployment] = b
        }
    }

    /// Seconds until the soonest open breaker among `deployments` lets a probe through.
    func secondsUntilProbe(_ deployments: [String]) -> Int {
        breakers.withLock { all in
            let waits = deployments.compactMap { d -> Int? in
                guard let b = all[d], b.state == .open, let opened = b.openedAt else { return nil }
                let left = Duration.seconds(settings.openSeconds) - (ContinuousClock.now - opened)
                return max(1, Int(left.components.seconds) + 1)
            }
            return waits.min() ?? 1
        }
    }

    /// Every breaker that is not closed, for `/api/v1/ai/health`.
    public func snapshot() -> [String: (state: State, failures: Int)] {
        breakers.withLock { all in all.mapValues { ($0.state, $0.failures) } }
    }
}
