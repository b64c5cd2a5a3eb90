import Foundation
import GatehouseCore
import Synchronization

/// Each project's `events_per_minute`, counted per fixed minute in this process. Ingest quotas
/// protect the store from a runaway client; unlike the gateway's limits they are not shared
/// between instances (docs/telemetry.md says so).
final class IngestQuota: Sendable {
    private struct Window {
        var minute: Int64
        var used: Int
    }

    private let windows = Mutex<[String: Window]>([:])

    /// Takes `count` from the project's quota; nil when allowed, else the seconds until the next minute.
    func take(_ count: Int, project: TelemetryProject, nowMicros: Int64 = TimeExpressions.nowMicros()) -> Int? {
        guard project.eventsPerMinute > 0 else { return nil }
        let minute = nowMicros / 60_000_000
        return windows.withLock { windows -> Int? in
            var window = windows[project.name].flatMap { $0.minute == minute ? $0 : nil } ?? Window(minute: minute, used: 0)
            guard window.used + count <= project.eventsPerMinute else {
                return Int(max(1, 60 - (nowMicros / 1_000_000) % 60))
            }
            window.used += count
            windows[project.name] = window
            return nil
        }
    }
}
