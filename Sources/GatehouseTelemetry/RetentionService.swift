import GatehouseCore
import Logging
import Metrics
import ServiceLifecycle

/// Deletes what is older than each kind's retention, or beyond its row limit, in small batches
/// so that ingest (which shares the store's one SQLite writer) never waits long behind it. On
/// PostgreSQL requests, logs and error events go by whole UTC days (their day partitions are
/// dropped), so a row is kept between `days` and `days + 1` days.
public struct RetentionService: Service {
    let store: any TelemetryStore
    let retention: Retention
    let logger: Logger
    static let batch = 5_000

    public init(store: any TelemetryStore, retention: Retention, logger: Logger) {
        self.store = store
        self.retention = retention
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await pruneOnce()
                // A cancelled sleep ends the loop: it is not a pause.
                do { try await Task.sleep(for: .seconds(retention.intervalSeconds)) } catch { break }
            }
        }
    }

    /// One pass over every kind; returns how many rows went, by kind.
    @discardableResult
    public func pruneOnce(nowMicros: Int64 = TimeExpressions.nowMicros()) async -> [TelemetryKind: Int] {
        var removed: [TelemetryKind: Int] = [:]
        for kind in TelemetryKind.allCases {
            do {
                if let days = retention.days[kind], days > 0 {
                    let exact = nowMicros.subtractingSaturated(Int64(days).multipliedSaturated(by: TimeExpressions.microsPerDay))
                    // Down to a whole day where the store drops day partitions (PostgreSQL): no row deletes.
                    let step = max(1, store.retentionStepMicros(kind))
                    let cutoff = TimeExpressions.floorMicros(exact, toMultipleOf: step)
                    while !Task.isCancelled {
                        let n = try await store.prune(kind, beforeMicros: cutoff, batch: Self.batch)
                        removed[kind, default: 0] += n
                        if n < Self.batch { break }
                        await Task.yield()
                    }
                }
                if let rows = retention.maxRows[kind], rows > 0 {
                    while !Task.isCancelled {
                        let n = try await store.trim(kind, keep: Int64(rows), batch: Self.batch)
                        removed[kind, default: 0] += n
                        if n == 0 { break }
                        await Task.yield()
                    }
                }
            } catch {
                // Shutdown cancels a pass mid-delete; that is a stop, not a failure.
                if Task.isCancelled { break }
                logger.warning("retention pass failed; will retry", metadata: ["kind": "\(kind.rawValue)", "error": "\(error)"])
            }
            if let n = removed[kind], n > 0 {
                Counter(label: "gatehouse_retention_deleted_rows_total", dimensions: [("kind", kind.rawValue)]).increment(by: n)
                logger.info("retention removed old rows", metadata: ["kind": "\(kind.rawValue)", "rows": "\(n)"])
            }
        }
        return removed
    }
}
