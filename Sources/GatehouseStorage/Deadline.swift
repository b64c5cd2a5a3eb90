import Synchronization

/// Deadlines for database calls, which must hold even when the call ignores cancellation.
///
/// A task group that races `Task.sleep` is not enough: a group waits for every child before it
/// returns, and a PostgresNIO query awaits an `EventLoopFuture`, which does not observe task
/// cancellation; a query written to a connection that has just been closed is never answered,
/// so such a group would wait forever. Here the call runs in a task of its own and the caller
/// resumes as soon as the call finishes, the time is up or the caller is cancelled. On time-out
/// `onTimeout` runs (the PostgreSQL driver closes the connection there, which fails whatever
/// waits on it and lets the pool replace it) and the call's task is cancelled and left to end.
enum Deadline {
    /// Runs `operation` within `timeout`; throws `timeoutError()` when it takes longer. The
    /// operation may move the deadline once it knows more (`DeadlineRace.restart`), e.g. from
    /// "a connection within 5 s" to "the statements within 15 s".
    ///
    /// `abandonIf` is asked four times a second while the call runs; when it returns an error
    /// the call is given up at once with that error (the PostgreSQL driver reports there that
    /// the server closed the connection under the call: waiting out the deadline would only
    /// hold the records back).
    static func run<T: Sendable>(_ timeout: Duration,
                                 timeoutError: @escaping @Sendable () -> any Error,
                                 onTimeout: @escaping @Sendable () -> Void = {},
                                 abandonIf: (@Sendable () -> (any Error)?)? = nil,
                                 _ operation: @escaping @Sendable (DeadlineRace<T>) async throws -> T) async throws -> T {
        let race = DeadlineRace<T>(timeoutError: timeoutError, onTimeout: onTimeout, abandonIf: abandonIf)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                guard race.register(continuation) else { return }
                // The clock first: the operation may move it as soon as it runs.
                race.restart(timeout)
                let work = Task {
                    do {
                        race.finish(.success(try await operation(race)))
                    } catch {
                        race.finish(.failure(error))
                    }
                }
                race.attach(work)
            }
        } onCancel: {
            race.finish(.failure(CancellationError()))
        }
    }
}

/// One call racing its deadline; whichever ends first resumes the caller, once.
final class DeadlineRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var early: Result<T, any Error>?
        var finished = false
        var work: Task<Void, Never>?
        var timer: Task<Void, Never>?
    }
    private let state = Mutex(State())
    private let timeoutError: @Sendable () -> any Error
    private let onTimeout: @Sendable () -> Void
    private let abandonIf: (@Sendable () -> (any Error)?)?

    init(timeoutError: @escaping @Sendable () -> any Error, onTimeout: @escaping @Sendable () -> Void,
         abandonIf: (@Sendable () -> (any Error)?)? = nil) {
        self.timeoutError = timeoutError
        self.onTimeout = onTimeout
        self.abandonIf = abandonIf
    }

    /// False when the race already ended (the caller was cancelled first): resumed here.
    fileprivate func register(_ continuation: CheckedContinuation<T, any Error>) -> Bool {
        let early = state.withLock { s -> Result<T, any Error>? in
            if s.finished { return s.early }
            s.continuation = continuation
            return nil
        }
        if let early {
            continuation.resume(with: early)
            return false
        }
        return true
    }

    fileprivate func attach(_ work: Task<Void, Never>) {
        let finished = state.withLock { s -> Bool in
            if !s.finished { s.work = work }
            return s.finished
        }
        if finished { work.cancel() }
    }

    /// Starts the clock again: the call now has `timeout` from this moment.
    func restart(_ timeout: Duration) {
        let deadline = ContinuousClock.now + timeout
        let timer = Task { [self] in
            while true {
                let left = deadline - ContinuousClock.now
                if left <= .zero { break }
                // Short steps: the runtime keeps a cancelled sleep's timer (~700 B) until its deadline,
                // so one long sleep per store call would hold memory for the whole timeout.
                do { try await Task.sleep(for: min(left, abandonIf == nil ? .seconds(1) : .milliseconds(250))) } catch { return }
                if let abandonIf, let error = abandonIf() {
                    finish(.failure(error), beforeResuming: onTimeout)
                    return
                }
            }
            finish(.failure(timeoutError()), beforeResuming: onTimeout)
        }
        let replaced = state.withLock { s -> Task<Void, Never>? in
            if s.finished { return timer }
            defer { s.timer = timer }
            return s.timer
        }
        replaced?.cancel()
    }

    /// Ends the race with `result` unless it has ended; true when this call ended it. When it
    /// did, `beforeResuming` runs before the caller resumes, so a caller that sees the time-out
    /// also sees what the time-out did (the connection closed).
    @discardableResult
    fileprivate func finish(_ result: Result<T, any Error>, beforeResuming: (@Sendable () -> Void)? = nil) -> Bool {
        let ended = state.withLock { s -> (CheckedContinuation<T, any Error>?, Task<Void, Never>?, Task<Void, Never>?)? in
            guard !s.finished else { return nil }
            s.finished = true
            let continuation = s.continuation
            if continuation == nil { s.early = result }
            defer { s.continuation = nil; s.work = nil; s.timer = nil }
            return (continuation, s.work, s.timer)
        }
        guard let ended else { return false }
        let (continuation, work, timer) = ended
        timer?.cancel()
        work?.cancel()
        beforeResuming?()
        continuation?.resume(with: result)
        return true
    }
}
