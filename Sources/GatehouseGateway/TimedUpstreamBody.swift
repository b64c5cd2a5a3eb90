import AsyncAlgorithms
import GatehouseCore
import NIOCore
import Synchronization

/// An upstream body read on its own task under three clocks: the call's total deadline
/// (`upstream_timeout_seconds`, counted from the call's start), an idle timeout between chunks
/// from upstream, and — once the client has gone — a short grace for the provider's usage to
/// arrive. Chunks are handed over one at a time (the reader waits while the consumer writes), so
/// a slow client holds the upstream back instead of filling memory; time spent waiting on the
/// client is not upstream silence.
///
/// HTTP clients end their own deadline once the response head arrives, so without this a
/// stream that stalls after its first byte would be held open for as long as the provider likes.
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

    /// Shared by the reader, the watchdog and the consumer.
    final class Clocks: Sendable {
        /// Nanoseconds after `origin` of the last chunk from upstream; `busy` while the consumer
        /// holds a chunk (a slow client must not look like a silent provider).
        fileprivate let lastChunk: Atomic<Int64>
        /// Nanoseconds after `origin` by which reading must end once the client has left; max: not set.
        fileprivate let drainEnd = Atomic<Int64>(.max)
        fileprivate let graceSeconds = Atomic<Int>(0)
        fileprivate let origin: ContinuousClock.Instant
        fileprivate static let busy = Int64.max

        init(origin: ContinuousClock.Instant) {
            self.origin = origin
            lastChunk = Atomic(0)
        }

        fileprivate func now() -> Int64 { TimeExpressions.nanos(ContinuousClock.now - origin) }

        /// The client went away: keep reading at most `grace` longer, for the provider's usage.
        func clientLeft(grace: Duration) {
            let end = now().addingSaturated(TimeExpressions.nanos(grace))
            graceSeconds.store(Int(grace.components.seconds), ordering: .relaxed)
            _ = drainEnd.compareExchange(expected: .max, desired: end, ordering: .relaxed)
        }
    }

    /// Runs `consume` with the body's chunks as a sequence that throws `Timeout` when a clock
    /// runs out, and the clocks (to say when the client left).
    static func read<Body: AsyncSequence & Sendable, Result>(
        _ body: Body, started: ContinuousClock.Instant, totalSeconds: Int, idleTimeout: Duration,
        _ consume: (AsyncThrowingChannel<ByteBuffer, any Error>, Clocks) async throws -> Result
    ) async throws -> Result where Body.Element == ByteBuffer {
        let channel = AsyncThrowingChannel<ByteBuffer, any Error>()
        let clocks = Clocks(origin: started)
        clocks.lastChunk.store(clocks.now(), ordering: .relaxed)
        let deadline = TimeExpressions.nanos(.seconds(totalSeconds))
        let idle = TimeExpressions.nanos(idleTimeout)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await withThrowingTaskGroup(of: Void.self) { inner in
                        inner.addTask {
                            for try await chunk in body {
                                clocks.lastChunk.store(Clocks.busy, ordering: .relaxed)
                                await channel.send(chunk)
                                clocks.lastChunk.store(clocks.now(), ordering: .relaxed)
                            }
                        }
                        inner.addTask {
                            // Wakes at the earliest clock; a cancelled sleep throws, ending the loop.
                            while true {
                                let last = clocks.lastChunk.load(ordering: .relaxed)
                                let idleEnd = last == Clocks.busy ? Int64.max : last.addingSaturated(idle)
                                let drainEnd = clocks.drainEnd.load(ordering: .relaxed)
                                let wake = min(deadline, idleEnd, drainEnd)
                                let now = clocks.now()
                                if now >= wake {
                                    if wake == deadline { throw Timeout(kind: .total, seconds: totalSeconds) }
                                    if wake == drainEnd { throw Timeout(kind: .afterClientLeft, seconds: clocks.graceSeconds.load(ordering: .relaxed)) }
                                    throw Timeout(kind: .idle, seconds: Int(idleTimeout.components.seconds))
                                }
                                // Re-read the clocks at least once a second (a busy client, a newly set grace).
                                let pause = min(wake - now, 1_000_000_000)
                                try await Task.sleep(for: .nanoseconds(pause))
                            }
                        }
                        // The body ends (or fails), or a clock runs out: either way stop both.
                        try await inner.next()
                        inner.cancelAll()
                    }
                    channel.finish()
                } catch {
                    channel.fail(error)
                }
            }
            defer { group.cancelAll() }
            return try await consume(channel, clocks)
        }
    }
}
