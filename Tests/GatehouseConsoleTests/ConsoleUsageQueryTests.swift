import GatehouseCore
import Hummingbird
import Synchronization
import Testing
@testable import GatehouseConsole

/// What the pages ask the request store for: latency percentiles, which can mean ranking every
/// call in the range, only where the page shows them.
@Suite struct ConsoleUsageQueryTests {
    let range = TimeRange(parameters: ["range": "30d"], nowMicros: 1_795_305_600_000_000)

    @Test func spendAndKeysAskForNoLatency() {
        let spend = SpendPage.queries(range, grouping: .model, filter: RequestFilter(model: "gpt-4o"))
        #expect(!spend.current.includeLatency && !spend.previous.includeLatency)
        #expect(spend.current.groupBy == .model && spend.current.intervalMicros == range.bucketMicros && spend.previous.filter.model == "gpt-4o")
        #expect(!KeysPage.listQuery(range).includeLatency && KeysPage.listQuery(range).groupBy == .key)
        #expect(!KeysPage.detailQuery(range, keyID: "k1").includeLatency && KeysPage.detailQuery(range, keyID: "k1").filter.keyID == "k1")
    }

    /// The overview's p50 and p95 carry a trend, so the range before is read with latency too
    /// (through the rollups' histogram when it holds many calls).
    @Test func theOverviewComparesLatencyWithTheRangeBefore() async throws {
        let overview = OverviewPage.queries(range)
        #expect(overview.current.includeLatency && overview.previous.includeLatency)
        #expect(overview.previous.toMicros == range.fromMicros)
        let store = TooLargeToRank()
        let report = try await OverviewPage.usage(store, overview.previous)
        #expect(report.totals.latency == nil && store.asked.withLock { $0 } == [true, false])
    }

    /// The latency figures read like the others: a trend against the range before, "new" after
    /// a range without calls, and none where either range has no percentiles.
    @Test func latencyHasItsTrend() {
        var now = UsageStats(), before = UsageStats()
        now.requests = 10
        now.latency = LatencyPercentiles(p50: 35_000, p95: 76_000, p99: 90_000)
        #expect(OverviewPage.latencyKPIs(now: now, before: before).map(\.trend) == ["new in this range", "new in this range"])
        before.requests = 8
        before.latency = LatencyPercentiles(p50: 70_000, p95: 76_000, p99: 80_000)
        let kpis = OverviewPage.latencyKPIs(now: now, before: before)
        #expect(kpis.map(\.value) == ["35 ms", "76 ms"] && kpis[0].trend == "▼ 50% vs previous" && kpis[0].direction == "down")
        #expect(kpis[1].trend == "≈ previous range")
        before.latency = nil
        #expect(OverviewPage.latencyKPIs(now: now, before: before).map(\.trend) == ["", ""])
        now.latency = nil
        #expect(OverviewPage.latencyKPIs(now: now, before: before).map(\.value) == ["–", "–"])
    }

    /// A range too large for SQLite's percentiles still shows its sums, without latency.
    @Test func aRangeTooLargeToRankIsShownWithoutLatency() async throws {
        let store = TooLargeToRank()
        let report = try await OverviewPage.usage(store, OverviewPage.queries(range).current)
        #expect(report.totals.requests == 3_000_000 && report.totals.latency == nil)
        #expect(store.asked.withLock { $0 } == [true, false])
    }

    /// The public status page is read at most every 30 seconds, whoever asks.
    @Test func theStatusPageIsKeptThirtySeconds() {
        let kept = RecentAnswer(maxAgeMicros: StatusPage.maxAgeMicros)
        kept.keep(Response(status: .ok), at: 0)
        #expect(kept.answer(at: 29_000_000) != nil)
        #expect(kept.answer(at: 30_000_000) == nil)
    }
}

/// A store whose ranges hold more calls than SQLite ranks: usage with latency throws, as
/// `SQLRequestStore` does; without, it answers.
final class TooLargeToRank: RequestStore {
    let asked = Mutex<[Bool]>([])
    func usage(_ query: UsageQuery) async throws -> UsageReport {
        asked.withLock { $0.append(query.includeLatency) }
        if query.includeLatency { throw UsageQueryTooLarge(rows: 3_000_000, limit: 2_000_000) }
        var totals = UsageStats()
        totals.requests = 3_000_000
        return UsageReport(totals: totals, groups: [], series: [])
    }
    func insert(_ records: [RequestRecord]) async throws {}
    func requests(_ query: RequestListQuery) async throws -> RequestPage { RequestPage(records: [], nextCursor: nil) }
    func aggregate(_ query: AggregationQuery, filter: RequestFilter) async throws -> AggregationOutcome {
        AggregationOutcome(unit: .count, groups: [], truncated: false)
    }
    func request(id: String) async throws -> RequestRecord? { nil }
    func bodies(requestID: String) async throws -> CapturedBodies? { nil }
    func insertBodies(_ bodies: [CapturedBodies]) async throws {}
    func ping() async throws {}
}
