import GatehouseCore
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix
import Testing
@testable import GatehouseGateway

/// The upstream body's clocks, read on the caller's own task with one event-loop timer
/// (TimedUpstreamBody): each clock cuts the read it governs, and only that.
@Suite struct TimedUpstreamBodyTests {
    /// Chunks on demand; after `silentAfter` chunks, nothing until cancelled (or the end, with `ends`).
    struct Body: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        var silentAfter: Int
        var gap: Duration = .zero
        var ends = false
        struct Iterator: AsyncIteratorProtocol {
            var left: Int
            var gap: Duration
            var ends: Bool
            mutating func next() async throws -> ByteBuffer? {
                if left == 0 {
                    if ends { return nil }
                    try await Task.sleep(for: .seconds(3600))
                }
                left -= 1
                if gap > .zero { try await Task.sleep(for: gap) }
                return ByteBuffer(string: "data: {}\n\n")
            }
        }
        func makeAsyncIterator() -> Iterator { Iterator(left: silentAfter, gap: gap, ends: ends) }
    }

    /// A client that stopped reading: every write waits until the task is cancelled.
    struct StuckWriter: ResponseBodyWriter {
        mutating func write(_ buffer: ByteBuffer) async throws { try await Task.sleep(for: .seconds(3600)) }
        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }

    /// A client that reads everything.
    struct Sink: ResponseBodyWriter {
        mutating func write(_ buffer: ByteBuffer) async throws {}
        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }

    struct Outcome: Sendable {
        var timeout: TimedUpstreamBody.Timeout.Kind?
        var error: String?
        var clientGone: Bool
        var took: Duration
    }

    /// Reads `body` on a task of its own: the clocks cancel the task that reads, which must not
    /// be the test's (Swift Testing takes that for cancelling the test).
    func read(_ body: Body, total: Int, idle: Duration, stuckClient: Bool = false) async -> Outcome {
        await Task {
            var relay = StreamRelay(route: .chatCompletions, eventStream: true, dropInjectedUsage: false, status: 200)
            var meter = CallMeter(route: .chatCompletions, correlationID: "c")
            var writer: any ResponseBodyWriter = stuckClient ? StuckWriter() : Sink()
            let started = ContinuousClock.now
            var outcome = Outcome(clientGone: false, took: .zero)
            do {
                try await TimedUpstreamBody.read(body, started: started, totalSeconds: total, idleTimeout: idle,
                                                 timerLoop: MultiThreadedEventLoopGroup.singleton.any()) {
                    try await relay.pump($0, into: &writer, meter: &meter, clocks: $1)
                }
            } catch let timeout as TimedUpstreamBody.Timeout {
                outcome.timeout = timeout.kind
            } catch {
                outcome.error = "\(error)"
            }
            outcome.clientGone = relay.clientGone != nil
            outcome.took = ContinuousClock.now - started
            // A timer of this read left armed would cancel this task after the read.
            try? await Task.sleep(for: .milliseconds(1500))
            if Task.isCancelled { outcome.error = "the task was cancelled after its read ended" }
            return outcome
        }.value
    }

    @Test("a provider that goes quiet is cut by the idle clock, within about a second of it")
    func idle() async {
        let outcome = await read(Body(silentAfter: 2), total: 60, idle: .seconds(1))
        #expect(outcome.timeout == .idle, "\(outcome)")
        #expect(outcome.took < .seconds(3), "\(outcome)")
    }

    @Test("a slow but steady stream is cut by the total deadline, not the idle clock")
    func total() async {
        let outcome = await read(Body(silentAfter: 1000, gap: .milliseconds(100)), total: 1, idle: .seconds(1))
        #expect(outcome.timeout == .total, "\(outcome)")
        #expect(outcome.took < .seconds(3), "\(outcome)")
    }

    @Test("a deadline reached while the client's write is blocked is the deadline, not the client leaving")
    func deadlineDuringABlockedWrite() async {
        let outcome = await read(Body(silentAfter: 1000), total: 1, idle: .seconds(30), stuckClient: true)
        #expect(outcome.timeout == .total, "\(outcome)")
        #expect(!outcome.clientGone, "the clocks' own cancel was taken for the client leaving")
        #expect(outcome.took < .seconds(3), "\(outcome)")
    }

    @Test("a body that ends in time is read whole, and no clock of it fires afterwards")
    func inTime() async {
        let outcome = await read(Body(silentAfter: 5, ends: true), total: 1, idle: .milliseconds(500))
        #expect(outcome.timeout == nil && outcome.error == nil, "\(outcome)")
    }
}
