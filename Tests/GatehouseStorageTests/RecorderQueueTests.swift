import Foundation
import GatehouseCore
import Logging
import ServiceLifecycle
import Synchronization
import Testing
@testable import GatehouseStorage

/// The recorder's queue and wake-ups: a full batch is written at once, a lone record at the
/// flush interval, a sender waiting for room is let in when a write makes it.
@Suite struct RecorderQueueTests {
    /// A writer that keeps what it is given, optionally held until `open()`.
    final class Store: Sendable {
        private struct State {
            var written: [Int] = []
            var batches: [Int] = []
            var open: Bool
            var waiting: [CheckedContinuation<Void, Never>] = []
        }
        private let state: Mutex<State>
        init(open: Bool = true) { state = Mutex(State(open: open)) }

        var written: [Int] { state.withLock { $0.written } }
        var batches: [Int] { state.withLock { $0.batches } }

        func open() {
            let waiting = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.open = true
                defer { state.waiting = [] }
                return state.waiting
            }
            waiting.forEach { $0.resume() }
        }

        func write(_ batch: [Int]) async {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let go = state.withLock { state -> Bool in
                    if !state.open { state.waiting.append(continuation) }
                    return state.open
                }
                if go { continuation.resume() }
            }
            state.withLock {
                $0.written += batch
                $0.batches.append(batch.count)
            }
        }
    }

    func settings(capacity: Int, batchSize: Int, flushMilliseconds: Int, whenFull: GatehouseConfig.OverflowPolicy = .drop)
        -> GatehouseConfig.RecorderSettings {
        var settings = GatehouseConfig.RecorderSettings()
        settings.capacity = capacity
        settings.batchSize = batchSize
        settings.flushIntervalMilliseconds = flushMilliseconds
        settings.whenFull = whenFull
        return settings
    }

    func running(_ recorder: Recorder<Int>, _ body: () async throws -> Void) async throws {
        let group = ServiceGroup(configuration: .init(services: [.init(service: recorder)], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await body()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test func aFullBatchIsWrittenAtOnceALoneRecordWaitsForTheInterval() async throws {
        let store = Store()
        // A minute between flushes: only a full batch (or shutdown) can start a write in this test.
        let recorder = Recorder<Int>(kind: "test", settings: settings(capacity: 100, batchSize: 10, flushMilliseconds: 60_000),
                                     logger: Logger(label: "test")) { await store.write($0) }
        let started = ContinuousClock.now
        try await running(recorder) {
            _ = recorder.recordAll([0])
            try await Task.sleep(for: .milliseconds(300))
            #expect(store.written.isEmpty, "a lone record waits for the flush interval")
            _ = recorder.recordAll(Array(1..<10))
            try await waitUntil { store.written.count == 10 }
            #expect(store.batches == [10], "the full batch, in one write")
            _ = recorder.recordAll([10, 11])
        }
        // Well under the minute-long interval: the batch woke the writer, shutdown wrote the rest.
        #expect(ContinuousClock.now - started < .seconds(30))
        #expect(store.written == Array(0..<12))
    }

    @Test func aRecordIsWrittenWithinTheFlushInterval() async throws {
        let store = Store()
        let recorder = Recorder<Int>(kind: "test", settings: settings(capacity: 100, batchSize: 100, flushMilliseconds: 100),
                                     logger: Logger(label: "test")) { await store.write($0) }
        try await running(recorder) {
            for i in 0..<3 {
                #expect(await recorder.record(i))
                try await waitUntil { store.written.count == i + 1 }
            }
        }
        #expect(store.written == [0, 1, 2] && store.batches == [1, 1, 1])
    }

    @Test func aBlockedSenderIsLetInWhenAWriteMakesRoom() async throws {
        let store = Store(open: false)
        let recorder = Recorder<Int>(kind: "test", settings: settings(capacity: 5, batchSize: 5, flushMilliseconds: 60_000, whenFull: .block),
                                     logger: Logger(label: "test")) { await store.write($0) }
        try await running(recorder) {
            #expect(recorder.recordAll(Array(0..<5)) == 5)
            // The queue is full and its batch is being written (held by the store).
            let sender = Task { await recorder.record(5) }
            try await Task.sleep(for: .milliseconds(100))
            #expect(recorder.queueDepth == 5)
            store.open()
            #expect(await sender.value, "let in once the write made room, within the second it may wait")
        }
        #expect(store.written == Array(0...5))
    }

    @Test func aBlockedSenderGivesUpAfterASecond() async throws {
        let store = Store(open: false)
        let recorder = Recorder<Int>(kind: "test", settings: settings(capacity: 2, batchSize: 100, flushMilliseconds: 60_000, whenFull: .block),
                                     logger: Logger(label: "test")) { await store.write($0) }
        #expect(recorder.recordAll([0, 1]) == 2)
        let started = ContinuousClock.now
        #expect(await recorder.record(2) == false)
        let waited = ContinuousClock.now - started
        #expect(waited >= .milliseconds(900) && waited < .seconds(10), "waited \(waited)")
        #expect(recorder.queueDepth == 2)
        // A cancelled sender stops waiting and drops its record.
        let cancelled = Task {
            try? await Task.sleep(for: .seconds(5))  // cancelled here first
            return await recorder.record(3)
        }
        cancelled.cancel()
        #expect(await cancelled.value == false)
        store.open()
    }

    @Test func waitForRoomWakesWhenRoomIsMadeAndTimesOutOtherwise() async throws {
        let store = Store()
        let recorder = Recorder<Int>(kind: "test", settings: settings(capacity: 3, batchSize: 3, flushMilliseconds: 60_000),
                                     logger: Logger(label: "test")) { await store.write($0) }
        #expect(recorder.recordAll([0, 1, 2]) == 3)
        #expect(await recorder.waitForRoom(1, timeout: .milliseconds(50)) == false)
        #expect(await recorder.waitForRoom(4, timeout: .milliseconds(50)) == false, "more than fits never fits")
        let waiter = Task { await recorder.waitForRoom(2, timeout: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(50))
        let started = ContinuousClock.now
        await recorder.flushAvailable(final: true)
        #expect(await waiter.value)
        #expect(ContinuousClock.now - started < .seconds(20))
        #expect(await recorder.waitForRoom(3, timeout: .zero))
    }

    /// 200,000 queued records (the issue's case) go out in order, one batch at a time.
    @Test func aLongQueueIsWrittenInOrderInBatches() async throws {
        let store = Store()
        let recorder = Recorder<Int>(kind: "test", settings: settings(capacity: 200_000, batchSize: 1_000, flushMilliseconds: 60_000),
                                     logger: Logger(label: "test")) { await store.write($0) }
        #expect(recorder.recordAll(Array(0..<200_000)) == 200_000)
        #expect(recorder.recordAll([1]) == 0, "full")
        await recorder.flushAvailable(final: true)
        #expect(store.written == Array(0..<200_000))
        #expect(store.batches == Array(repeating: 1_000, count: 200))
        #expect(recorder.queueDepth == 0)
    }

    func waitUntil(_ limit: Duration = .seconds(10), _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + limit
        while !condition() {
            if ContinuousClock.now > deadline {
                Issue.record("condition not met within \(limit)")
                return
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}
