import GatehouseCore
import NIOCore
import Synchronization

/// An upstream body read under three clocks: the call's total deadline
/// (`upstream_timeout_seconds`, counted from the call's start), an idle timeout while waiting
/// for the next chunk from upstream, and — once the client has gone — a short grace for the
/// provider's usage to arrive. Time the consumer spends writing a chunk to the client is not
/// upstream silence.
///
/// HTTP clients end their own deadline once the response head arrives, so without this a
/// stream that stalls after its first byte would be held open for as long as the provider likes.
///
/// The body is read on the caller's own task, with no reader task, channel or sleeping watchdog
/// task per call (those were most of a proxied call's concurrency cost): one timer on an event
/// loop watches the clocks, and when one runs out it cancels the reading task, which ends the
/// upstream read in progress.
enum TimedUpstreamBody {
    /// The body took too long in total, went quiet for too long between chunks, or its usage did
    /// not come within the grace after the client left.
    struct Timeout: Error, CustomStringConvertible {
        enum Kind: Sendable { case total, idle, afterClientLeft }
        var kind: Kind
        var seconds: Int
        var description: String {
            switch kind {
            case .total: "the upstream call exceeded its deadline of \(seconds) s (upstream_timeout_seconds)"
            case .idle: "the upstream stream sent nothing for \(seconds) s (stream_idle_timeout_seconds)"
            case .afterClientLeft: "the client left and the rest of the answer, with its usage, did not come within \(seconds) s (client_disconnect_grace_seconds)"
            }
        }
    }

    /// The clocks of one read, shared by the reading task and its watchdog timer.
    final class Clocks: Sendable {
        /// Nanoseconds after `origin` since when the reader has been waiting on upstream; `busy`
        /// while the consumer holds a chunk (a slow client must not look like a silent provider).
        fileprivate let waitingSince: Atomic<Int64>
        /// Nanoseconds after `origin` by which reading must end once the client has left; max: not set.
        fileprivate let drainEnd = Atomic<Int64>(.max)
        fileprivate let graceSeconds = Atomic<Int>(0)
        fileprivate let origin: ContinuousClock.Instant
        fileprivate static let busy = Int64.max

        init(origin: ContinuousClock.Instant) {
            self.origin = origin
            waitingSince = Atomic(0)
        }

        fileprivate func now() -> Int64 { TimeExpressions.nanos(ContinuousClock.now - origin) }

        /// The client went away: keep reading at most `grace` longer, for the provider's usage.
        func clientLeft(grace: Duration) {
            let end = now().addingSaturated(TimeExpressions.nanos(grace))
            graceSeconds.store(Int(grace.components.seconds), ordering: .relaxed)
            _ = drainEnd.compareExchange(expected: .max, desired: end, ordering: .relaxed)
        }
    }

    /// Runs `consume` with the body's chunks as a sequence, on the calling task; when a clock
    /// runs out, the read in progress is cancelled and `Timeout` is thrown.
    static func read<Body: AsyncSequence & Sendable, Result>(
        _ body: Body, started: ContinuousClock.Instant, totalSeconds: Int, idleTimeout: Duration, timerLoop: any EventLoop,
        _ consume: (Chunks<Body>, Clocks) async throws -> Result
    ) async throws -> Result where Body.Element == ByteBuffer {
        let clocks = Clocks(origin: started)
        let watchdog = Watchdog(clocks: clocks, loop: timerLoop, deadline: TimeExpressions.nanos(.seconds(totalSeconds)),
                                totalSeconds: totalSeconds, idle: idleTimeout)
        withUnsafeCurrentTask { watchdog.start(watching: $0) }
        let result: Result
        do {
            result = try await consume(Chunks(base: body, clocks: clocks), clocks)
        } catch {
            if let timeout = watchdog.stop() { throw timeout }
            throw error
        }
        if let timeout = watchdog.stop() { throw timeout }
        return result
    }

    /// The body's chunks, marking on the clocks when the reader waits on upstream.
    struct Chunks<Base: AsyncSequence>: AsyncSequence where Base.Element == ByteBuffer {
        typealias Element = ByteBuffer
        let base: Base
        let clocks: Clocks

        func makeAsyncIterator() -> Iterator { Iterator(base: base.makeAsyncIterator(), clocks: clocks) }

        struct Iterator: AsyncIteratorProtocol {
            var base: Base.AsyncIterator
            let clocks: Clocks

            mutating func next() async throws -> ByteBuffer? {
                clocks.waitingSince.store(clocks.now(), ordering: .relaxed)
                let chunk = try await base.next()
                clocks.waitingSince.store(Clocks.busy, ordering: .relaxed)
                return chunk
            }
        }
    }

    /// One timer on an event loop, re-armed at the earliest clock (and at least once a second,
    /// so a newly set grace or a chunk handed back is seen); cancels the reading task when a
    /// clock runs out.
    private final class Watchdog: Sendable {
        /// The reading task is cancelled only while `read` runs on it: `stop` clears it, under
        /// the same lock, before `read` returns, so the reference never outlives its use.
        private struct State: @unchecked Sendable {
            var task: UnsafeCurrentTask?
            var timer: Scheduled<Void>?
            var expired: Timeout?
            var stopped = false
        }

        private let clocks: Clocks
        private let loop: any EventLoop
        private let deadline: Int64
        private let totalSeconds: Int
        private let idle: Int64
        private let idleSeconds: Int
        private let state = Mutex(State())

        init(clocks: Clocks, loop: any EventLoop, deadline: Int64, totalSeconds: Int, idle: Duration) {
            self.clocks = clocks
            self.loop = loop
            self.deadline = deadline
            self.totalSeconds = totalSeconds
            self.idle = TimeExpressions.nanos(idle)
            self.idleSeconds = Int(idle.components.seconds)
        }

        func start(watching task: UnsafeCurrentTask?) {
            clocks.waitingSince.store(clocks.now(), ordering: .relaxed)
            state.withLock { $0.task = task }
            check()
        }

        /// Ends the watch; returns the timeout that cancelled the read, if one did.
        func stop() -> Timeout? {
            let (timer, expired) = state.withLock { state in
                state.stopped = true
                state.task = nil
                defer { state.timer = nil }
                return (state.timer, state.expired)
            }
            timer?.cancel()
            return expired
        }

        /// Cancels the read if a clock has run out; otherwise sleeps until the earliest one.
        private func check() {
            let since = clocks.waitingSince.load(ordering: .relaxed)
            let idleEnd = since == Clocks.busy ? Int64.max : since.addingSaturated(idle)
            let drainEnd = clocks.drainEnd.load(ordering: .relaxed)
            let wake = min(deadline, idleEnd, drainEnd)
            let now = clocks.now()
            if now >= wake {
                let timeout = wake == deadline ? Timeout(kind: .total, seconds: totalSeconds)
                    : wake == drainEnd ? Timeout(kind: .afterClientLeft, seconds: clocks.graceSeconds.load(ordering: .relaxed))
                    : Timeout(kind: .idle, seconds: idleSeconds)
                state.withLock { state in
                    guard !state.stopped, state.expired == nil else { return }
                    state.expired = timeout
                    state.task?.cancel()
                }
                return
            }
            let pause = min(wake - now, 1_000_000_000)
            state.withLock { state in
                guard !state.stopped else { return }
                state.timer = loop.scheduleTask(in: .nanoseconds(pause)) { [self] in check() }
            }
        }
    }
}
