import AsyncHTTPClient
import Foundation
import GatehouseCore
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// Sends notifications to their receivers. Each delivery runs on its own task, so a receiver
/// that is slow or down never holds up evaluation or the other receivers; a failed attempt is
/// retried with exponential backoff (1 s, 2 s, 4 s … at most 5 min apart) up to
/// `alerts.delivery_attempts`, and every attempt is recorded with its outcome.
public final class DeliveryService: Service, Sendable {
    let client: HTTPClient
    let store: any AlertStore
    let attempts: Int
    let logger: Logger
    /// The first retry's delay; tests shorten it.
    let initialBackoff: Duration
    private let queue: AsyncStream<AlertNotification>
    private let input: AsyncStream<AlertNotification>.Continuation
    /// The newest notification's number for each receiver and group: an older one still retrying
    /// gives up, so a stale "trigger" can never land after the "resolve" that followed it.
    private let generations = Mutex<[String: Int]>([:])

    public init(client: HTTPClient, store: any AlertStore, attempts: Int, logger: Logger, initialBackoff: Duration = .seconds(1)) {
        self.client = client
        self.store = store
        self.attempts = attempts
        self.logger = logger
        self.initialBackoff = initialBackoff
        (queue, input) = AsyncStream.makeStream(of: AlertNotification.self)
    }

    public func send(_ notification: AlertNotification) { input.yield(notification) }

    private func generationKey(_ n: AlertNotification) -> String { n.receiver.name + "\u{1}" + n.groupKey }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask {
                try? await gracefulShutdown()
                self.input.finish()
            }
            for await notification in queue {
                let key = generationKey(notification)
                let generation = generations.withLock { g -> Int in
                    g[key, default: 0] += 1
                    return g[key]!
                }
                // Shutdown ends the retries (and their sleeps): the recorders flush after this service stops.
                group.addTask { await cancelWhenGracefulShutdown { await self.deliver(notification, generation: generation) } }
            }
        }
    }

    func deliver(_ n: AlertNotification, generation: Int? = nil) async {
        var backoff = Backoff(initial: initialBackoff, maximum: .seconds(300))
        let key = generationKey(n)
        for attempt in 1...max(1, attempts) {
            if let generation, attempt > 1, generations.withLock({ $0[key] }) != generation {
                try? await store.recordDelivery(DeliveryRecord(timestampMicros: TimeExpressions.nowMicros(), receiver: n.receiver.name, groupKey: n.groupKey,
                                                               status: n.status, attempt: attempt, outcome: .failed, detail: "superseded by a newer notification for this group"))
                return
            }
            if Task.isCancelled {
                try? await store.recordDelivery(DeliveryRecord(timestampMicros: TimeExpressions.nowMicros(), receiver: n.receiver.name, groupKey: n.groupKey,
                                                               status: n.status, attempt: attempt, outcome: .failed, detail: "not sent: Gatehouse is shutting down"))
                return
            }
            let outcome: DeliveryRecord.Outcome
            var detail: String
            do {
                detail = try await post(n)
                outcome = .delivered
            } catch {
                detail = "\(error)"
                outcome = attempt == attempts ? .failed : .retrying
            }
            try? await store.recordDelivery(DeliveryRecord(timestampMicros: TimeExpressions.nowMicros(), receiver: n.receiver.name, groupKey: n.groupKey,
                                                           status: n.status, attempt: attempt, outcome: outcome, detail: detail))
            Counter(label: "gatehouse_alert_notifications_total", dimensions: [("receiver", n.receiver.name), ("outcome", outcome.rawValue)]).increment()
            if outcome == .delivered { return }
            if outcome == .failed {
                logger.error("notification given up", metadata: ["receiver": "\(n.receiver.name)", "group": "\(n.groupKey)", "attempts": "\(attempt)", "error": "\(detail)"])
                return
            }
            logger.warning("notification failed; will retry", metadata: ["receiver": "\(n.receiver.name)", "attempt": "\(attempt)", "error": "\(detail)"])
            try? await Task.sleep(for: backoff.next())
        }
    }

    /// One HTTP attempt; throws unless the receiver answered 2xx.
    func post(_ n: AlertNotification) async throws -> String {
        let url: String
        let body: [String: Any]
        var headers: [(String, String)] = []
        switch n.receiver.kind {
        case .slack(let webhookURL):
            url = webhookURL
            body = NotificationPayloads.slack(n)
        case .pagerDuty(let routingKey, let eventsURL):
            url = eventsURL
            body = NotificationPayloads.pagerDuty(n, routingKey: routingKey)
        case .webhook(let hookURL, let extra):
            url = hookURL
            body = NotificationPayloads.webhook(n)
            headers = extra.sorted { $0.key < $1.key }
        }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Gatehouse-Alerts")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes])))
        let response = try await client.execute(request, timeout: .seconds(15))
        let answer = String(buffer: try await response.body.collect(upTo: 64 * 1024))
        guard (200..<300).contains(response.status.code) else { throw DeliveryError(status: Int(response.status.code), body: String(answer.prefix(300))) }
        return "\(response.status.code) \(answer.prefix(200))"
    }

    struct DeliveryError: Error, CustomStringConvertible {
        var status: Int
        var body: String
        var description: String { "the receiver answered \(status): \(body)" }
    }
}
