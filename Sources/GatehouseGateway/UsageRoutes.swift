import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseHTTP
import Hummingbird

/// The read API over request records: `/api/v1/ai/usage`, `/api/v1/requests`,
/// `/api/v1/requests/{id}`.
public struct UsageRoutes: Sendable {
    let store: any RequestStore

    /// Most buckets one usage call may return.
    public static let maxBuckets = 10_000
    /// Longest range one usage call may cover.
    public static let maxRangeMicros: Int64 = 400 * 86_400_000_000

    public init(store: any RequestStore) { self.store = store }

    public func addRoutes(to api: APIRouter) {
        api.team.get("/api/v1/ai/usage") { request, _ in await self.usage(request) }
        api.team.get("/api/v1/requests") { request, _ in await self.list(request) }
        api.team.get("/api/v1/requests/{id}") { _, context in await self.show(context.parameters.get("id") ?? "") }
    }

    func usage(_ request: Request) async -> Response {
        let params = FormParameters(query: request.uri.query)
        return await APIAnswer.run {
            let now = TimeExpressions.nowMicros()
            let to = try params.get("to").map { try Self.instant($0, name: "to") } ?? now
            let from = try params.get("from").map { try Self.instant($0, name: "from") } ?? (to - 86_400_000_000)
            guard from < to else { throw Self.bad("`from` must be before `to`") }
            guard to - from <= Self.maxRangeMicros else { throw Self.bad("the range may cover at most 400 days") }
            var interval: Int64?
            if let text = params.get("interval"), text != "none" {
                guard let micros = TimeExpressions.durationMicros(text), micros >= 1_000_000 else {
                    throw Self.bad("`interval` must be a duration of at least 1s such as 1m, 1h or 1d")
                }
                interval = micros
            } else if params.get("interval") == nil {
                interval = Self.automaticInterval(rangeMicros: to - from)
            }
            if let interval, (to - from) / interval > Int64(Self.maxBuckets) {
                throw Self.bad("the range and interval give more than \(Self.maxBuckets) buckets; use a larger interval")
            }
            let grouping = try params.get("group_by").map { text -> UsageGrouping in
                guard let g = UsageGrouping(text) else {
                    throw Self.bad("`group_by` must be model, provider, key, user, route, status or property.<name>")
                }
                return g
            }
            let query = UsageQuery(fromMicros: from, toMicros: to, intervalMicros: interval, groupBy: grouping, filter: try Self.filter(params))
            let report = try await store.usage(query)
            return JSONResponse.make(UsageReportView(
                from: TimeExpressions.format(micros: from), to: TimeExpressions.format(micros: to),
                interval: interval.map { TimeExpressions.formatDuration(micros: $0) }, groupBy: grouping?.name,
                totals: Self.view(report.totals),
                series: report.series.map { UsageBucketView(start: TimeExpressions.format(micros: $0.startMicros), stats: Self.view($0.stats)) },
                // Only a grouped report has `groups`; an ungrouped one leaves the field out.
                groups: grouping == nil ? nil : report.groups.map { UsageGroupView(key: $0.key, stats: Self.view($0.stats)) }))
        }
    }

    func list(_ request: Request) async -> Response {
        await APIAnswer.run {
            let params = FormParameters(query: request.uri.query)
            if let groups = try await aggregation(params) { return groups }
            let limit = try APIParameters.limit(params.get("limit"), fallback: 50, max: 1000)
            let query = RequestListQuery(
                filter: try Self.filter(params),
                fromMicros: try params.get("from").map { try Self.instant($0, name: "from") },
                toMicros: try params.get("to").map { try Self.instant($0, name: "to") },
                limit: limit, cursor: params.get("cursor"))
            let page = try await store.requests(query)
            return JSONResponse.make(RequestRecordPage(data: page.records.map(Self.view), nextCursor: page.nextCursor,
                                                       hasMore: page.nextCursor != nil))
        }
    }

    func show(_ id: String) async -> Response {
        await APIAnswer.run {
            guard let record = try await store.request(id: id) else { throw GatewayError.notFound("no request record with id \(id)") }
            return JSONResponse.make(Self.view(record))
        }
    }

    // MARK: - Parameters

    static func bad(_ message: String) -> GatewayError { .invalidRequest(message) }

    static func instant(_ text: String, name: String) throws -> Int64 { try APIParameters.instant(text, name: name) }

    /// 1m buckets up to 2 hours, 1h up to 2 days, 1d beyond.
    static func automaticInterval(rangeMicros: Int64) -> Int64 {
        if rangeMicros <= 2 * 3_600_000_000 { return 60_000_000 }
        if rangeMicros <= 2 * 86_400_000_000 { return 3_600_000_000 }
        return 86_400_000_000
    }

    /// The request filter of the API's and the console's request lists (one reading of the parameters).
    public static func filter(_ params: FormParameters) throws -> RequestFilter {
        var filter = RequestFilter()
        filter.model = params.get("model")
        filter.provider = params.get("provider")
        filter.keyID = params.get("key")
        filter.userID = params.get("user")
        filter.correlationID = params.get("correlation_id")
        if let route = params.get("route") {
            guard let r = GatewayRoute(rawValue: route) ?? GatewayRoute(rawValue: "/v1/" + route) else {
                throw bad("`route` must be one of \(GatewayRoute.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            filter.route = r
        }
        if let status = params.get("status") {
            guard let s = Int(status) else { throw bad("`status` must be an HTTP status code") }
            filter.status = s
        }
        if let failed = params.get("failed") { filter.failed = failed == "true" || failed == "1" }
        filter.query = try APIParameters.filter(params.get("q"))
        for (key, value) in params where key.hasPrefix("property.") {
            let name = String(key.dropFirst("property.".count)).lowercased()
            guard !name.isEmpty else { continue }
            filter.properties[name] = String(value)
        }
        return filter
    }

    // MARK: - Answers

    /// Microseconds as milliseconds rounded to the microsecond.
    static func ms(_ micros: Double) -> Double { (micros).rounded() / 1000 }

    static func view(_ stats: UsageStats) -> UsageStatsView {
        UsageStatsView(
            requests: stats.requests, errors: stats.errors,
            inputTokens: stats.usage.inputTokens, outputTokens: stats.usage.outputTokens,
            cachedInputTokens: stats.usage.cachedInputTokens, cacheCreationInputTokens: stats.usage.cacheCreationInputTokens,
            reasoningTokens: stats.usage.reasoningTokens, totalTokens: stats.usage.totalTokens,
            costMicros: stats.cost.value, costUSD: stats.cost.dollarString,
            latencyMs: stats.latency.map { UsageLatencyView(p50: ms($0.p50), p95: ms($0.p95), p99: ms($0.p99)) })
    }

    public static func view(_ r: RequestRecord) -> RequestRecordView {
        RequestRecordView(
            id: r.id, timestamp: TimeExpressions.format(micros: r.timestampMicros), route: r.route.rawValue,
            provider: r.provider, requestedModel: r.requestedModel, model: r.model, status: r.status, stream: r.stream,
            latencyMs: Double(r.latencyMicros) / 1000,
            timeToFirstTokenMs: r.timeToFirstTokenMicros.map { Double($0) / 1000 },
            usage: RequestTokensView(
                inputTokens: r.usage.inputTokens, outputTokens: r.usage.outputTokens, cachedInputTokens: r.usage.cachedInputTokens,
                cacheCreationInputTokens: r.usage.cacheCreationInputTokens, reasoningTokens: r.usage.reasoningTokens,
                totalTokens: r.usage.totalTokens),
            costMicros: r.cost.value, costUSD: r.cost.dollarString,
            keyID: r.keyID, userID: r.userID, properties: r.properties,
            correlationID: r.correlationID, errorClass: r.errorClass?.rawValue, errorMessage: r.errorMessage, complete: r.complete,
            cacheHit: r.cacheHit, usageEstimated: r.usageEstimated, costSavedMicros: r.costSaved.value, costSavedUSD: r.costSaved.dollarString,
            attempts: r.attempts.map { a in
                RequestAttemptView(provider: a.provider, model: a.model, status: a.status, errorClass: a.errorClass?.rawValue,
                                   errorMessage: a.errorMessage, latencyMs: Double(a.latencyMicros) / 1000, delayMs: a.delayMilliseconds)
            })
    }
}
