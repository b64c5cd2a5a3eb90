import Foundation
import GatehouseCore
import GatehouseTestSupport
import Logging
import ServiceLifecycle
import Synchronization
import Testing
@testable import GatehouseStorage

/// Deadlines on store calls, and the recorder through an outage (issue 9, defect 4), without a
/// database: the writer is a closure that fails, hangs or succeeds on demand.
@Suite struct RecorderOutageTests {
    /// A writer whose store is down, up, or hanging (a call that never returns and ignores
    /// cancellation, as a query on a connection closed under it did).
    final class Store: Sendable {
        enum Mode { case up, down, hang }
        private let state = Mutex<(mode: Mode, written: [Int], calls: Int)>((.up, [], 0))
        func set(_ mode: Mode) { state.withLock { $0.mode = mode } }
        var written: [Int] { state.withLock { $0.written } }
        var calls: Int { state.withLock { $0.calls } }
        func write(_ batch: [Int]) async throws {
            let mode = state.withLock { s -> Mode in
                s.calls += 1
                return s.mode
            }
            switch mode {
            case .up: state.withLock { $0.written += batch }
            case .down: throw StoreError.unavailable("down")
            case .hang:
                // Never resumed, and deaf to cancellation.
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in Self.parked.withLock { $0.append(continuation) } }
            }
        }
        static let parked = Mutex<[CheckedContinuation<Void, Never>]>([])
    }

    final class Flag: Sendable {
        private let value = Atomic<Bool>(false)
        func set() { value.store(true, ordering: .relaxed) }
        var isSet: Bool { value.load(ordering: .relaxed) }
    }

    func settings(flushMilliseconds: Int = 10) -> GatehouseConfig.RecorderSettings {
        var settings = GatehouseConfig.RecorderSettings()
        settings.flushIntervalMilliseconds = flushMilliseconds
        settings.batchSize = 100
        return settings
    }

    @Test func aDeadlineHoldsWhenTheCallIgnoresCancellation() async throws {
        let closed = Flag()
        let started = ContinuousClock.now
        await #expect(throws: StoreError.self) {
            try await Deadline.run(.milliseconds(200), timeoutError: { StoreError.unavailable("timed out") },
                                   onTimeout: { closed.set() }) { _ -> Int in
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in Store.parked.withLock { $0.append(continuation) } }
                return 1
            }
        }
        // A bound, not a speed: far below "forever", with room for a loaded 2-core machine.
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(closed.isSet, "onTimeout ran (the driver closes the connection there)")
        // A call that finishes in time returns its value; restart moves the clock.
        // (The first clock leaves room for the work task to be scheduled on a loaded machine: the
        // suite's other tests block cooperative threads with child processes now and then.)
        let value = try await Deadline.run(.seconds(5), timeoutError: { StoreError.unavailable("timed out") }) { race -> Int in
            race.restart(.seconds(60))
            try await Task.sleep(for: .seconds(6))
            return 7
        }
        #expect(value == 7)
    }

    @Test func anOutageIsLoggedOnceAtEachEndCountedAndLosesNothing() async throws {
        let store = Store()
        let log = CapturedLog()
        let recorder = Recorder<Int>(kind: "test", settings: settings(), logger: log.logger) { try await store.write($0) }
        let group = ServiceGroup(configuration: .init(services: [.init(service: recorder)], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            _ = recorder.recordAll(Array(0..<10))
            try await Poll.until("10 records written", timeout: .seconds(10)) { store.written.count == 10 }
            store.set(.down)
            _ = recorder.recordAll(Array(10..<30))
            try await Poll.until("6 write attempts", timeout: .seconds(10)) { store.calls >= 6 }
            #expect(log.messages("the store is not taking records").count == 1, "one line at the start, however many failures")
            store.set(.up)
            try await Poll.until("30 records written", timeout: .seconds(10)) { store.written.count == 30 }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(store.written == Array(0..<30), "every record, in order, none twice")
        let ends = log.messages("the store is taking records again")
        #expect(ends.count == 1)
        #expect(ends.first?["records_waited"] == "20" && ends.first?["outage_seconds"] != nil, "\(ends)")
        #expect(log.messages("could not be written").isEmpty)
    }

    @Test func aWriteThatNeverReturnsBecomesAFailureAndTheBatchIsWrittenLater() async throws {
        let store = Store()
        store.set(.hang)
        let log = CapturedLog()
        let recorder = Recorder<Int>(kind: "test", settings: settings(), logger: log.logger, writeTimeout: .milliseconds(300)) { try await store.write($0) }
        let group = ServiceGroup(configuration: .init(services: [.init(service: recorder)], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            _ = recorder.recordAll(Array(0..<5))
            try await Poll.until("the outage logged", timeout: .seconds(10)) { !log.messages("the store is not taking records").isEmpty }
            store.set(.up)
            try await Poll.until("5 records written", timeout: .seconds(10)) { store.written.count == 5 }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(store.written == Array(0..<5))
        #expect(log.messages("the store is taking records again").count == 1)
    }

    @Test func shutdownDuringAnOutageEndsInBoundedTimeAndSaysWhatIsLost() async throws {
        let store = Store()
        store.set(.hang)
        let log = CapturedLog()
        let recorder = Recorder<Int>(kind: "test", settings: settings(), logger: log.logger,
                                     writeTimeout: .milliseconds(300), shutdownFlushLimit: .seconds(1)) { try await store.write($0) }
        let group = ServiceGroup(configuration: .init(services: [.init(service: recorder)], logger: Logger(label: "test")))
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            _ = recorder.recordAll(Array(0..<42))
            try await Task.sleep(for: .milliseconds(100))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        // Bounded (the limit is 1 s; "forever" is the failure), with room for a loaded machine.
        #expect(ContinuousClock.now - started < .seconds(20), "shutdown took \(ContinuousClock.now - started)")
        let lost = log.messages("could not be written before shutdown")
        #expect(lost.count == 1 && lost.first?["records"] == "42", "\(lost)")
        #expect(recorder.queueDepth == 0)
    }

    @Test func aCancelledRecorderStopsInsteadOfSpinning() async throws {
        // The old loop treated a cancelled sleep as a pause: once its ServiceGroup was cancelled
        // (the HTTP server failed to start, say) it spun at 100% CPU and never returned.
        let store = Store()
        let recorder = Recorder<Int>(kind: "test", settings: settings(flushMilliseconds: 50), logger: Logger(label: "test")) { try await store.write($0) }
        let task = Task { try await recorder.run() }
        try await Task.sleep(for: .milliseconds(100))
        task.cancel()
        let finished = Flag()
        let watcher = Task {
            _ = try? await task.value
            finished.set()
        }
        try await Poll.until("the recorder to finish", timeout: .seconds(3)) { finished.isSet }
        watcher.cancel()
        #expect(store.calls < 5, "no flush loop running after cancellation: \(store.calls) writes")
    }

    @Test func storeFailuresAreClassified() {
        #expect(StoreFailure(StoreError.unavailable("x")) == .outage)
        #expect(StoreFailure(CancellationError()) == .outage)
        #expect(StoreFailure(DatabaseError(message: "23502", refusal: true)) == .refusal)
        #expect(StoreFailure(DatabaseError(message: "42P01", refusal: false)) == .unknown)
        struct Other: Error {}
        #expect(StoreFailure(Other()) == .unknown)
    }
}
