import Foundation
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
        do {
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
            var object: [String: Any] = [
                "from": TimeExpressions.format(micros: from), "to": TimeExpressions.format(micros: to),
                "interval": interval.map { TimeExpressions.formatDuration(micros: $0) } as Any? ?? NSNull(),
                "group_by": grouping?.name as Any? ?? NSNull(),
                "totals": Self.json(report.totals),
                "series": report.series.map { bucket in
                    var o = Self.json(bucket.stats)
                    o["start"] = TimeExpressions.format(micros: bucket.startMicros)
                    return o
                },
            ]
            if grouping != nil {
                object["groups"] = report.groups.map { group in
                    var o = Self.json(group.stats)
                    o["key"] = group.key as Any? ?? NSNull()
                    return o
                }
            }
            return JSONResponse.make(object)
        } catch let error as GatewayError {
            return error.response(dialect: .openAI)
        } catch let error as QueryFieldError {
            return GatewayError.invalidRequest("`q`: \(error.message)", param: "q", code: "invalid_query").response(dialect: .openAI)
        } catch let error as UsageQueryTooLarge {
            return GatewayError(status: .unprocessableContent, message: error.description, type: "invalid_request_error", code: "query_too_large")
                .response(dialect: .openAI)
        } catch {
            return GatewayError(status: .serviceUnavailable, message: "the store could not answer: \(error)", type: "api_error", code: "store_unavailable")
                .response(dialect: .openAI)
        }
    }

    func list(_ request: Request) async -> Response {
        await APIAnswer.run {
            let params = FormParameters(query: request.uri.query)
            let limit = try APIParameters.limit(params.get("limit"), fallback: 50, max: 1000)
            let query = RequestListQuery(
                filter: try Self.filter(params),
                fromMicros: try params.get("from").map { try Self.instant($0, name: "from") },
                toMicros: try params.get("to").map { try Self.instant($0, name: "to") },
                limit: limit, cursor: params.get("cursor"))
            let page = try await store.requests(query)
            return JSONResponse.make([
                "data": page.records.map(Self.json),
                "next_cursor": page.nextCursor as Any? ?? NSNull(),
                "has_more": page.nextCursor != nil,
            ])
        }
    }

    func show(_ id: String) async -> Response {
        do {
            guard let record = try await store.request(id: id) else {
                return GatewayError.notFound("no request record with id \(id)").response(dialect: .openAI)
            }
            return JSONResponse.make(Self.json(record))
        } catch {
            return GatewayError(status: .serviceUnavailable, message: "the store could not answer: \(error)", type: "api_error", code: "store_unavailable")
                .response(dialect: .openAI)
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

    static func filter(_ params: FormParameters) throws -> RequestFilter {
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

    // MARK: - JSON

    /// Microseconds as milliseconds rounded to the microsecond.
    static func ms(_ micros: Double) -> Double { (micros).rounded() / 1000 }

    static func json(_ stats: UsageStats) -> [String: Any] {
        [
            "requests": stats.requests, "errors": stats.errors,
            "input_tokens": stats.usage.inputTokens, "output_tokens": stats.usage.outputTokens,
            "cached_input_tokens": stats.usage.cachedInputTokens, "cache_creation_input_tokens": stats.usage.cacheCreationInputTokens,
            "reasoning_tokens": stats.usage.reasoningTokens, "total_tokens": stats.usage.totalTokens,
            "cost_micros": stats.cost.value, "cost_usd": stats.cost.dollarString,
            "latency_ms": stats.latency.map { ["p50": ms($0.p50), "p95": ms($0.p95), "p99": ms($0.p99)] } as Any? ?? NSNull(),
        ]
    }

    static func json(_ r: RequestRecord) -> [String: Any] {
        [
            "id": r.id, "timestamp": TimeExpressions.format(micros: r.timestampMicros), "route": r.route.rawValue,
            "provider": r.provider, "requested_model": r.requestedModel, "model": r.model, "status": r.status, "stream": r.stream,
            "latency_ms": Double(r.latencyMicros) / 1000,
            "time_to_first_token_ms": r.timeToFirstTokenMicros.map { Double($0) / 1000 } as Any? ?? NSNull(),
            "usage": [
                "input_tokens": r.usage.inputTokens, "output_tokens": r.usage.outputTokens, "cached_input_tokens": r.usage.cachedInputTokens,
                "cache_creation_input_tokens": r.usage.cacheCreationInputTokens, "reasoning_tokens": r.usage.reasoningTokens,
                "total_tokens": r.usage.totalTokens,
            ],
            "cost_micros": r.cost.value, "cost_usd": r.cost.dollarString,
            "key_id": r.keyID as Any? ?? NSNull(), "user_id": r.userID as Any? ?? NSNull(), "properties": r.properties,
            "correlation_id": r.correlationID, "error_class": r.errorClass?.rawValue as Any? ?? NSNull(),
            "error_message": r.errorMessage as Any? ?? NSNull(), "complete": r.complete,
            "cache_hit": r.cacheHit, "usage_estimated": r.usageEstimated, "cost_saved_micros": r.costSaved.value, "cost_saved_usd": r.costSaved.dollarString,
            "attempts": r.attempts.map { a -> [String: Any] in
                ["provider": a.provider, "model": a.model, "status": a.status as Any? ?? NSNull(),
                 "error_class": a.errorClass?.rawValue as Any? ?? NSNull(), "error_message": a.errorMessage as Any? ?? NSNull(),
                 "latency_ms": Double(a.latencyMicros) / 1000, "delay_ms": a.delayMilliseconds]
            },
        ]
    }
}
