import Foundation
import GatehouseCore
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Evaluates the rules every `evaluation_interval_seconds` and hands due notifications to the
/// delivery service. With several instances on one PostgreSQL database only the one holding
/// the `alerts` lease evaluates, so each alert is sent once.
public final class AlertService: Service, Sendable {
    public let evaluator: AlertEvaluator
    let dispatcher: NotificationDispatcher
    let delivery: DeliveryService
    let store: any AlertStore
    let interval: Duration
    let holder = UUID().uuidString
    private let lastSilences = Mutex<[Silence]>([])
    let logger: Logger

    public init(settings: AlertSettings, reader: any SignalSource, delivery: DeliveryService, store: any AlertStore, logger: Logger) {
        self.evaluator = AlertEvaluator(rules: settings.rules, reader: reader)
        self.dispatcher = NotificationDispatcher(settings: settings)
        self.delivery = delivery
        self.store = store
        self.interval = .seconds(settings.evaluationIntervalSeconds)
        self.logger = logger
    }

    public func run() async throws {
        guard !evaluator.rules.isEmpty else {
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.tick()
                // A cancelled sleep ends the loop: it is not a pause.
                do { try await Task.sleep(for: self.interval) } catch { break }
            }
        }
    }

    /// One round: evaluate, record what changed, notify what is due.
    public func tick(nowMicros now: Int64 = TimeExpressions.nowMicros()) async {
        do {
            // The lease outlives three rounds, so a stopped leader is replaced within about that.
            guard try await store.acquireLease(name: "alerts", holder: holder, nowMicros: now, durationMicros: TimeExpressions.micros(interval * 3) + 5_000_000) else {
                return
            }
        } catch {
            // Shutdown cancels a round mid-query; that is a stop, not a failure.
            if !Task.isCancelled {
                logger.warning("alert evaluation skipped: the store did not answer", metadata: ["error": "\(error)"])
            }
            return
        }
        let (transitions, current) = await evaluator.evaluate(nowMicros: now)
        Counter(label: "gatehouse_alert_evaluations_total").increment()
        for t in transitions {
            logger.log(level: t.state == .firing ? .warning : .info, "alert \(t.state.rawValue)",
                       metadata: ["alert": "\(t.rule)", "severity": "\(t.severity.rawValue)", "value": "\(t.summary)"])
        }
        do { try await store.recordTransitions(transitions) } catch {
            logger.error("alert history not written", metadata: ["error": "\(error)"])
        }
        let active = await evaluator.active()
        for state in [AlertState.pending, .firing] {
            Gauge(label: "gatehouse_alerts", dimensions: [("state", state.rawValue)]).record(active.filter { $0.state == state }.count)
        }
        // A failed read must not unmute everything: keep the silences last read.
        let silences: [Silence]
        if let fresh = try? await store.silences() {
            lastSilences.withLock { $0 = fresh }
            silences = fresh
        } else {
            silences = lastSilences.withLock { $0 }
        }
        for notification in await dispatcher.update(current, silences: silences, nowMicros: now) {
            delivery.send(notification)
        }
    }
}
