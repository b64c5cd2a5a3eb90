import Foundation
import GatehouseCore
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Takes records (AI calls, log lines, error events) from the hot path without waiting on the
/// database and writes them in batches, one transaction each.
///
/// - A full queue applies the configured policy: `drop` discards the new record, counts it in
///   `gatehouse_recorder_dropped_records_total` and logs once per burst; `block` waits up to a
///   second for room first.
/// - A failed write keeps the batch and retries with backoff; records are only lost when the
///   queue is full (and then counted).
/// - Graceful shutdown drains the queue completely before `run()` returns.
public final class Recorder<Record: Sendable>: Service {
    private struct State {
        var queue: [Record] = []
        var droppedSinceLog = 0
        var wakeup: CheckedContinuation<Void, Never>?
        var shuttingDown = false
    }

    private let write: @Sendable ([Record]) async throws -> Void
    private let kind: String
    private let settings: GatehouseConfig.RecorderSettings
    private let logger: Logger
    private let state = Mutex(State())

    private let depthGauge: Gauge
    private let droppedCounter: Counter
    private let writtenCounter: Counter
    private let failureCounter: Counter

    /// `kind` names the records in metrics (`kind="requests"`) and log lines.
    public init(kind: String, settings: GatehouseConfig.RecorderSettings, logger: Logger, write: @escaping @Sendable ([Record]) async throws -> Void) {
        self.write = write
        self.kind = kind
        self.settings = settings
        self.logger = logger
        let dimensions = [("kind", kind)]
        depthGauge = Gauge(label: "gatehouse_recorder_queue_depth", dimensions: dimensions)
        droppedCounter = Counter(label: "gatehouse_recorder_dropped_records_total", dimensions: dimensions)
        writtenCounter = Counter(label: "gatehouse_recorder_written_records_total", dimensions: dimensions)
        failureCounter = Counter(label: "gatehouse_recorder_write_failures_total", dimensions: dimensions)
    }

    public var queueDepth: Int { state.withLock { $0.queue.count } }

    /// Queues a record. Returns false when it was dropped.
    @discardableResult
    public func record(_ record: Record) async -> Bool {
        if enqueue(record) { return true }
        if settings.whenFull == .block {
            let deadline = ContinuousClock.now + .seconds(1)
            while ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(5))
                if enqueue(record) { return true }
            }
        }
        noteDropped()
        return false
    }

    /// Queues several records at once, as far as there is room; returns how many were taken.
    /// The rest are not queued and not counted as dropped: the caller reports them.
    public func recordAll(_ records: [Record]) -> Int {
        let (taken, wake) = state.withLock { state -> (Int, CheckedContinuation<Void, Never>?) in
            let n = min(records.count, settings.capacity - state.queue.count)
            guard n > 0 else { return (0, nil) }
            state.queue.append(contentsOf: records.prefix(n))
            if state.queue.count >= settings.batchSize, let w = state.wakeup {
                state.wakeup = nil
                return (n, w)
            }
            return (n, nil)
        }
        wake?.resume()
        if taken > 0 { depthGauge.record(queueDepth) }
        return taken
    }

    /// Waits until `needed` more records fit (or `timeout` passes); true when they do. Ingest
    /// calls it before parsing a body, so a full queue slows senders down instead of making
    /// the server parse bodies it would have to refuse.
    public func waitForRoom(_ needed: Int, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while queueDepth + needed > settings.capacity {
            if ContinuousClock.now >= deadline || Task.isCancelled { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }

    private func enqueue(_ record: Record) -> Bool {
        let (accepted, wake) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
            guard state.queue.count < settings.capacity else { return (false, nil) }
            state.queue.append(record)
            if state.queue.count >= settings.batchSize, let w = state.wakeup {
                state.wakeup = nil
                return (true, w)
            }
            return (true, nil)
        }
        wake?.resume()
        if accepted { depthGauge.record(queueDepth) }
        return accepted
    }

    private func noteDropped() {
        droppedCounter.increment()
        let first = state.withLock { state -> Bool in
            state.droppedSinceLog += 1
            return state.droppedSinceLog == 1
        }
        if first {
            logger.error("recorder queue is full; dropping records until it drains",
                         metadata: ["kind": "\(kind)", "capacity": "\(settings.capacity)", "policy": "\(settings.whenFull.rawValue)"])
        }
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            while !state.withLock({ $0.shuttingDown }) {
                await waitForWork()
                await flushAvailable(final: false)
            }
        } onGracefulShutdown: {
            self.beginShutdown()
        }
        // Shutting down: write everything that is left, retrying until it is stored or the
        // process is killed; these records exist nowhere else.
        await flushAvailable(final: true)
        logger.debug("recorder drained")
    }

    private func beginShutdown() {
        let wake = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.shuttingDown = true
            defer { state.wakeup = nil }
            return state.wakeup
        }
        wake?.resume()
    }

    /// Sleeps until a batch is full, the flush interval passes, or shutdown begins.
    private func waitForWork() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [settings] in try? await Task.sleep(for: .milliseconds(settings.flushIntervalMilliseconds)) }
            group.addTask {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = self.state.withLock { state -> Bool in
                        if state.shuttingDown || state.queue.count >= self.settings.batchSize { return true }
                        state.wakeup = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            }
            await group.next()
            // Whichever finished first, release the other.
            let pending = state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.wakeup = nil }
                return state.wakeup
            }
            pending?.resume()
            group.cancelAll()
        }
    }

    /// Writes batches until the queue is empty. Failures back off and retry the same batch.
    public func flushAvailable(final: Bool) async {
        var backoff = 0.05
        var failuresInARow = 0
        while true {
            let batch = state.withLock { state -> [Record] in
                let n = min(state.queue.count, settings.batchSize)
                return Array(state.queue.prefix(n))
            }
            if batch.isEmpty { return }
            do {
                try await write(batch)
                state.withLock { state in
                    state.queue.removeFirst(batch.count)
                    if state.queue.count < settings.capacity / 2 { state.droppedSinceLog = 0 }
                }
                writtenCounter.increment(by: batch.count)
                depthGauge.record(queueDepth)
                backoff = 0.05
                failuresInARow = 0
            } catch {
                failureCounter.increment()
                failuresInARow += 1
                logger.error("writing records failed; will retry", metadata: ["kind": "\(kind)", "records": "\(batch.count)", "error": "\(error)"])
                // A batch that keeps failing may hold one record the store refuses while it takes
                // others: find it by halves, so one bad record cannot block every record behind it.
                if failuresInARow >= 3, await isolateRefusedRecords(batch) {
                    state.withLock { $0.queue.removeFirst(batch.count) }
                    depthGauge.record(queueDepth)
                    failuresInARow = 0
                    continue
                }
                if !final && state.withLock({ $0.shuttingDown }) == false && Task.isCancelled { return }
                try? await Task.sleep(for: .seconds(backoff))
                backoff = min(backoff * 2, 5)
            }
        }
    }
}

extension Recorder {
    /// Writes `batch` in halves, down to single records. Returns true when the store took some
    /// of it (so it is up) and every record was either written or refused alone; the refused
    /// ones are dropped, counted and logged. Returns false, having dropped nothing, when nothing
    /// could be written: the store is down, and the batch waits for it.
    func isolateRefusedRecords(_ batch: [Record]) async -> Bool {
        var wroteAny = false
        var refused: [String] = []
        var pending: [ArraySlice<Record>] = [batch[...]]
        var attempts = 0
        while let part = pending.popLast() {
            attempts += 1
            // Nothing written after a few tries: an outage, not a bad record.
            if !wroteAny && attempts > 4 { return false }
            do {
                try await write(Array(part))
                wroteAny = true
                writtenCounter.increment(by: part.count)
            } catch {
                if part.count == 1 {
                    refused.append("\(error)")
                } else {
                    let middle = part.startIndex + part.count / 2
                    pending.append(part[middle...])
                    pending.append(part[..<middle])
                }
            }
        }
        guard wroteAny || refused.isEmpty else { return false }
        if !refused.isEmpty {
            droppedCounter.increment(by: refused.count)
            logger.error("the store refused records that it cannot take; dropped them so the rest could be written",
                         metadata: ["kind": "\(kind)", "records": "\(refused.count)", "error": "\(refused.first ?? "")"])
        }
        return true
    }
}

extension Recorder: RequestRecordSink where Record == RequestRecord {
    /// The recorder of AI calls.
    public convenience init(store: any RequestStore, settings: GatehouseConfig.RecorderSettings, logger: Logger) {
        self.init(kind: "requests", settings: settings, logger: logger) { try await store.insert($0) }
    }
}
