import DequeModule
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
/// - A failed write keeps the batch and retries it with backoff (50 ms doubling to 5 s); every
///   failed attempt is counted in `gatehouse_recorder_write_failures_total`. An outage is logged
///   twice: a warning when the first write fails, and a notice when writes succeed again, with
///   how many records waited and for how long. Records are never dropped because the store is
///   down; only a record the store refuses on its own (a constraint, say) is set aside, so one
///   bad record cannot hold back every record behind it.
/// - Every write has a deadline (`writeTimeout`): a call that never returns becomes a failure.
/// - Graceful shutdown drains the queue before `run()` returns, trying for `shutdownFlushLimit`
///   at most while the store is down; it then logs how many records it could not write.
/// - Nothing polls: the flush loop sleeps until its interval ends, a batch fills or shutdown
///   begins; a sender waiting for room sleeps until a write makes room or its time is up.
public final class Recorder<Record: Sendable>: Service {
    private struct State {
        /// Oldest first; a batch is taken from the front, records join at the back.
        var queue = Deque<Record>()
        var droppedSinceLog = 0
        var shuttingDown = false
        var sleepers: [UInt64: Sleeper] = [:]
        var lastSleeperID: UInt64 = 0
        var outage: Outage?
    }

    /// What ends a sleep early (besides its time running out and cancellation).
    private enum WakeCondition {
        /// The flush loop: a full batch (between flushes, not during a backoff) and/or the
        /// start of graceful shutdown.
        case flush(onBatch: Bool, onShutdown: Bool)
        /// A sender: room for `needed` more records.
        case room(needed: Int)
    }

    /// A task asleep in `sleep(for:until:)`.
    private struct Sleeper {
        var condition: WakeCondition
        /// Nil until the task has suspended.
        var continuation: CheckedContinuation<Void, Never>?
        /// Woken before it suspended: it returns at once instead.
        var woken = false
    }

    private struct Outage {
        var since: ContinuousClock.Instant
        var failures: Int
    }

    private let write: @Sendable ([Record]) async throws -> Void
    private let kind: String
    private let settings: GatehouseConfig.RecorderSettings
    private let logger: Logger
    private let state = Mutex(State())
    /// The longest one write may take before it counts as failed (the drivers' own deadlines
    /// are shorter; this one also holds for writers that are not SQL stores).
    let writeTimeout: Duration
    /// How long graceful shutdown keeps trying to write what is queued while the store is down.
    let shutdownFlushLimit: Duration

    private let depthGauge: Gauge
    private let droppedCounter: Counter
    private let writtenCounter: Counter
    private let failureCounter: Counter

    /// `kind` names the records in metrics (`kind="requests"`) and log lines.
    public init(kind: String, settings: GatehouseConfig.RecorderSettings, logger: Logger,
                writeTimeout: Duration = .seconds(60), shutdownFlushLimit: Duration = .seconds(15),
                write: @escaping @Sendable ([Record]) async throws -> Void) {
        self.write = write
        self.kind = kind
        self.settings = settings
        self.logger = logger
        self.writeTimeout = writeTimeout
        self.shutdownFlushLimit = shutdownFlushLimit
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
            // Another sender may take the room a write made: sleep again, until the deadline.
            while await waitForRoom(1, until: deadline) {
                if enqueue(record) { return true }
            }
        }
        noteDropped()
        return false
    }

    /// Queues a record if there is room, else drops it (counted, logged once) whatever
    /// `whenFull` says: for what must never hold a call up, such as its captured bodies.
    @discardableResult
    public func offer(_ record: Record) -> Bool {
        if enqueue(record) { return true }
        noteDropped()
        return false
    }

    /// Queues several records at once, as far as there is room; returns how many were taken.
    /// The rest are not queued and not counted as dropped: the caller reports them.
    public func recordAll(_ records: [Record]) -> Int {
        let (taken, wake) = state.withLock { state -> (Int, [CheckedContinuation<Void, Never>]) in
            let n = min(records.count, settings.capacity - state.queue.count)
            guard n > 0 else { return (0, []) }
            state.queue.append(contentsOf: records.prefix(n))
            return (n, wakeSleepers(&state))
        }
        wake.forEach { $0.resume() }
        if taken > 0 { depthGauge.record(queueDepth) }
        return taken
    }

    /// Waits until `needed` more records fit (or `timeout` passes); true when they do. Ingest
    /// calls it before parsing a body, so a full queue slows senders down instead of making
    /// the server parse bodies it would have to refuse.
    public func waitForRoom(_ needed: Int, timeout: Duration) async -> Bool {
        await waitForRoom(needed, until: ContinuousClock.now + timeout)
    }

    private func waitForRoom(_ needed: Int, until deadline: ContinuousClock.Instant) async -> Bool {
        while !hasRoom(for: needed) {
            let left = deadline - ContinuousClock.now
            if left <= .zero || Task.isCancelled { return false }
            await sleep(for: left, until: .room(needed: needed))
        }
        return true
    }

    private func hasRoom(for needed: Int) -> Bool {
        state.withLock { $0.queue.count + needed <= settings.capacity }
    }

    private func enqueue(_ record: Record) -> Bool {
        let (accepted, wake) = state.withLock { state -> (Bool, [CheckedContinuation<Void, Never>]) in
            guard state.queue.count < settings.capacity else { return (false, []) }
            state.queue.append(record)
            return (true, wakeSleepers(&state))
        }
        wake.forEach { $0.resume() }
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
            while !state.withLock({ $0.shuttingDown }) && !Task.isCancelled {
                await sleep(for: .milliseconds(settings.flushIntervalMilliseconds), until: .flush(onBatch: true, onShutdown: true))
                await flushAvailable(final: false)
            }
        } onGracefulShutdown: {
            self.beginShutdown()
        }
        // Shutting down: write everything that is left. These records exist nowhere else, so
        // keep trying while the store is down, for `shutdownFlushLimit`; then say what is lost.
        await flushAvailable(final: true)
        logger.debug("recorder drained", metadata: ["kind": "\(kind)"])
    }

    private func beginShutdown() {
        let wake = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.shuttingDown = true
            return wakeSleepers(&state)
        }
        wake.forEach { $0.resume() }
    }

    /// Whether a sleeper waiting for `condition` should wake now.
    private func holds(_ condition: WakeCondition, in state: State) -> Bool {
        switch condition {
        case .flush(let onBatch, let onShutdown):
            (onShutdown && state.shuttingDown) || (onBatch && state.queue.count >= settings.batchSize)
        case .room(let needed):
            state.queue.count + needed <= settings.capacity
        }
    }

    /// After the queue or `shuttingDown` changed: the continuations to resume (outside the
    /// lock) of the sleepers whose condition now holds; one that has not suspended yet is
    /// marked woken instead.
    private func wakeSleepers(_ state: inout State) -> [CheckedContinuation<Void, Never>] {
        var wake: [CheckedContinuation<Void, Never>] = []
        for (id, sleeper) in state.sleepers where !sleeper.woken && holds(sleeper.condition, in: state) {
            if let continuation = sleeper.continuation {
                state.sleepers[id] = nil
                wake.append(continuation)
            } else {
                state.sleepers[id]?.woken = true
            }
        }
        return wake
    }

    /// Wakes sleeper `id` whatever it waits for (its time is up, or its task was cancelled).
    private func wake(_ id: UInt64) {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let sleeper = state.sleepers[id] else { return nil }
            if let continuation = sleeper.continuation {
                state.sleepers[id] = nil
                return continuation
            }
            state.sleepers[id]?.woken = true
            return nil
        }
        continuation?.resume()
    }

    /// Sleeps for `duration`, or less: until `condition` holds or the task is cancelled. The
    /// condition is checked under the lock that guards every change to it, and the timer is a
    /// task of its own, so no wake-up can be missed and no sleep lasts forever.
    private func sleep(for duration: Duration, until condition: WakeCondition) async {
        let id = state.withLock { state -> UInt64 in
            state.lastSleeperID &+= 1
            state.sleepers[state.lastSleeperID] = Sleeper(condition: condition)
            return state.lastSleeperID
        }
        let timer = Task { [self] in
            do { try await Task.sleep(for: duration) } catch { return }
            wake(id)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    guard let sleeper = state.sleepers[id] else { return true }
                    if sleeper.woken || holds(condition, in: state) {
                        state.sleepers[id] = nil
                        return true
                    }
                    state.sleepers[id]?.continuation = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            wake(id)
        }
        timer.cancel()
        state.withLock { state in state.sleepers[id] = nil }
    }

    /// Writes batches until the queue is empty. A failed batch stays at the head of the queue
    /// and is tried again with backoff. Returns early when graceful shutdown begins (the final
    /// flush takes over) or the task is cancelled. With `final`, gives up after
    /// `shutdownFlushLimit` of failures and reports what could not be written.
    public func flushAvailable(final: Bool) async {
        let giveUpAt = ContinuousClock.now + shutdownFlushLimit
        var backoff = Backoff(initial: .milliseconds(50), maximum: .seconds(5))
        var unknownFailuresInARow = 0
        while true {
            let batch = state.withLock { state -> [Record] in Array(state.queue.prefix(settings.batchSize)) }
            if batch.isEmpty { return }
            var limit = writeTimeout
            if final {
                let left = giveUpAt - ContinuousClock.now
                guard left > .zero else { return reportUnwritten() }
                limit = min(limit, left)
            }
            do {
                try await writeWithin(limit, batch)
                let (waited, wake) = state.withLock { state -> (Int, [CheckedContinuation<Void, Never>]) in
                    let waited = state.queue.count
                    state.queue.removeFirst(batch.count)
                    if state.queue.count < settings.capacity / 2 { state.droppedSinceLog = 0 }
                    return (waited, wakeSleepers(&state))
                }
                wake.forEach { $0.resume() }
                writtenCounter.increment(by: batch.count)
                depthGauge.record(queueDepth)
                noteWritten(waited: waited)
                backoff.reset()
                unknownFailuresInARow = 0
            } catch {
                if Task.isCancelled {
                    // Told to stop now: not a store failure. What is left is lost; say so.
                    if final { reportUnwritten(error) }
                    return
                }
                failureCounter.increment()
                let failure = StoreFailure(error)
                if failure == .unknown { unknownFailuresInARow += 1 } else { unknownFailuresInARow = 0 }
                // A batch the store answers with a refusal may hold one record it refuses while
                // it takes the others: find it by halves, so one bad record cannot block every
                // record behind it. An error of unknown kind gets the same after 3 in a row.
                if failure == .refusal || unknownFailuresInARow >= 3 {
                    let (remaining, progress) = await isolate(batch, limit: limit)
                    if progress {
                        let (waited, wake) = state.withLock { state -> (Int, [CheckedContinuation<Void, Never>]) in
                            let waited = state.queue.count
                            state.queue.replaceSubrange(0..<batch.count, with: remaining)
                            return (waited, wakeSleepers(&state))
                        }
                        wake.forEach { $0.resume() }
                        depthGauge.record(queueDepth)
                        unknownFailuresInARow = 0
                        noteWritten(waited: waited)
                        continue
                    }
                }
                noteFailure(error)
                // Shutdown began: the final flush takes over, with its time limit.
                if !final && state.withLock({ $0.shuttingDown }) { return }
                if final && ContinuousClock.now + backoff.current >= giveUpAt { return reportUnwritten(error) }
                await sleep(for: backoff.next(), until: .flush(onBatch: false, onShutdown: !final))
                if Task.isCancelled {
                    if final { reportUnwritten(error) }
                    return
                }
                if !final && state.withLock({ $0.shuttingDown }) { return }
            }
        }
    }

    private func writeWithin(_ limit: Duration, _ records: [Record]) async throws {
        let write = self.write
        try await Deadline.run(limit, timeoutError: { StoreError.unavailable("no answer within \(limit)") }) { _ in
            try await write(records)
        }
    }

    /// The first failure of an outage is logged; the rest are counted (and logged at debug).
    private func noteFailure(_ error: any Error) {
        let (first, queued) = state.withLock { state -> (Bool, Int) in
            if state.outage == nil {
                state.outage = Outage(since: .now, failures: 1)
                return (true, state.queue.count)
            }
            state.outage?.failures += 1
            return (false, state.queue.count)
        }
        if first {
            logger.warning("the store is not taking records; keeping them and retrying until it does",
                           metadata: ["kind": "\(kind)", "queued": "\(queued)", "error": "\(error)"])
        } else {
            logger.debug("writing records failed again", metadata: ["kind": "\(kind)", "queued": "\(queued)", "error": "\(error)"])
        }
    }

    /// Ends an outage, if there was one, with how many records waited and for how long.
    private func noteWritten(waited: Int) {
        guard let outage = state.withLock({ state -> Outage? in
            defer { state.outage = nil }
            return state.outage
        }) else { return }
        let elapsed = ContinuousClock.now - outage.since
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        logger.notice("the store is taking records again",
                      metadata: ["kind": "\(kind)", "records_waited": "\(waited)", "outage_seconds": "\(String(format: "%.1f", seconds))",
                                 "failed_attempts": "\(outage.failures)"])
    }

    /// Shutdown could not write everything: count and say what is lost.
    private func reportUnwritten(_ error: (any Error)? = nil) {
        let (lost, wake) = state.withLock { state -> (Int, [CheckedContinuation<Void, Never>]) in
            let lost = state.queue.count
            state.queue.removeAll()
            return (lost, wakeSleepers(&state))
        }
        wake.forEach { $0.resume() }
        guard lost > 0 else { return }
        droppedCounter.increment(by: lost)
        depthGauge.record(0)
        var metadata: Logger.Metadata = ["kind": "\(kind)", "records": "\(lost)", "tried_for_seconds": "\(shutdownFlushLimit.components.seconds)"]
        if let error { metadata["error"] = .string("\(error)") }
        logger.error("records could not be written before shutdown; they are lost", metadata: metadata)
    }
}

extension Recorder {
    /// Writes `batch` in halves, down to single records. Returns true when the store took some
    /// of it or refused single records on their own (which are dropped, counted and logged);
    /// false, having dropped nothing, when nothing could be written (the store is down, and the
    /// batch waits for it).
    func isolateRefusedRecords(_ batch: [Record]) async -> Bool {
        await isolate(batch, limit: writeTimeout).progress
    }

    /// The records of `batch` neither written nor set aside (in order), and whether anything
    /// was. An outage part-way stops the search and keeps the rest.
    func isolate(_ batch: [Record], limit: Duration) async -> (remaining: [Record], progress: Bool) {
        let giveUpAt = ContinuousClock.now + limit
        var wroteAny = false
        var refusedAlone: [(index: Int, error: any Error, failure: StoreFailure)] = []
        var pending: [Range<Int>] = [batch.indices]
        var untried: [Range<Int>] = []
        var attempts = 0
        var onlyRefusals = true
        while let part = pending.popLast() {
            attempts += 1
            // Nothing written after a few tries, and not because the values were refused: an
            // outage, not a bad record.
            if !wroteAny && !onlyRefusals && attempts > 4 { return (batch, false) }
            let left = giveUpAt - ContinuousClock.now
            if left <= .zero || Task.isCancelled {
                untried.append(part)
                untried.append(contentsOf: pending)
                break
            }
            do {
                try await writeWithin(min(writeTimeout, left), Array(batch[part]))
                wroteAny = true
                writtenCounter.increment(by: part.count)
            } catch {
                let failure = StoreFailure(error)
                if failure != .refusal { onlyRefusals = false }
                if failure == .outage {
                    // The store went away: keep this part and everything not yet tried.
                    untried.append(part)
                    untried.append(contentsOf: pending)
                    break
                }
                if part.count == 1 {
                    refusedAlone.append((part.lowerBound, error, failure))
                } else {
                    let middle = part.lowerBound + part.count / 2
                    pending.append(middle..<part.upperBound)
                    pending.append(part.lowerBound..<middle)
                }
            }
        }
        // A record is set aside only when the store took others, or refused this one's values
        // on their own; otherwise it may be the store that is broken: keep everything.
        let setAside = refusedAlone.filter { wroteAny || $0.failure == .refusal }
        guard wroteAny || !setAside.isEmpty else { return (batch, false) }
        let dropped = Set(setAside.map(\.index))
        var keep = Set(untried.flatMap { Array($0) })
        for refused in refusedAlone where !dropped.contains(refused.index) { keep.insert(refused.index) }
        if !setAside.isEmpty {
            droppedCounter.increment(by: setAside.count)
            logger.error("the store refused records that it cannot take; dropped them so the rest could be written",
                         metadata: ["kind": "\(kind)", "records": "\(setAside.count)", "error": "\(setAside[0].error)"])
        }
        return (batch.indices.filter { keep.contains($0) }.map { batch[$0] }, true)
    }
}

extension Recorder: RequestRecordSink where Record == RequestRecord {
    /// The recorder of AI calls.
    public convenience init(store: any RequestStore, settings: GatehouseConfig.RecorderSettings, logger: Logger) {
        self.init(kind: "requests", settings: settings, logger: logger) { try await store.insert($0) }
    }
}
