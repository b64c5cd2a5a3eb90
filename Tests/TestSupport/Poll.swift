import Foundation

/// The one way tests wait for something that happens in the background (a record written, an
/// alert firing, a line logged): check, and check again every `every` until `timeout`.
public enum Poll {
    public struct TimedOut: Error, CustomStringConvertible {
        public var what: String
        public var timeout: Duration
        public var description: String { "timed out after \(timeout) waiting for \(what)" }
    }

    /// Returns the first non-nil value `check` gives; throws `TimedOut` when none came in time.
    /// Errors `check` throws are retried until the deadline, then rethrown.
    @discardableResult
    public static func until<T>(_ what: String, timeout: Duration = .seconds(20), every interval: Duration = .milliseconds(50),
                                _ check: () async throws -> T?) async throws -> T {
        let deadline = ContinuousClock.now + timeout
        while true {
            do {
                if let value = try await check() { return value }
            } catch {
                if ContinuousClock.now >= deadline { throw error }
            }
            if ContinuousClock.now >= deadline { throw TimedOut(what: what, timeout: timeout) }
            try await Task.sleep(for: interval)
        }
    }

    /// Waits until `condition` holds.
    public static func until(_ what: String, timeout: Duration = .seconds(20), every interval: Duration = .milliseconds(50),
                             _ condition: () async throws -> Bool) async throws {
        try await until(what, timeout: timeout, every: interval) { try await condition() ? () : nil }
    }
}
