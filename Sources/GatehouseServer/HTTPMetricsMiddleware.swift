import GatehouseHTTP
import Hummingbird
import Metrics

/// Counts every request and times it, labelled by the matched route pattern (not the raw
/// path, which would make one series per id) and status. Logs one access line per request.
///
/// Every label is bounded: routes are the router's patterns (or `unmatched`), methods outside
/// the standard ones read `other`, statuses are the server's own.
struct HTTPMetricsMiddleware: RouterMiddleware {
    typealias Context = GatehouseRequestContext

    struct Key: Hashable, Sendable {
        var route: String
        var method: String
        var status: Int
    }

    static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"]

    static let handles = MetricHandleCache<Key, (Counter, Timer)>(
        maxEntries: 2_000, overflow: Key(route: MetricLabelValues.other, method: MetricLabelValues.other, status: -1)
    ) { key in
        let status = key.status < 0 ? MetricLabelValues.other : String(key.status)
        return (Counter(label: "gatehouse_http_requests_total", dimensions: [("route", key.route), ("method", key.method), ("status", status)]),
                Timer(label: "gatehouse_http_request_duration_seconds", dimensions: [("route", key.route), ("method", key.method)]))
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var status = 500
        defer {
            let route = context.endpointPath ?? "unmatched"
            let method = request.method.rawValue
            let elapsed = ContinuousClock.now - start
            let (counter, timer) = Self.handles(Key(route: route, method: Self.knownMethods.contains(method) ? method : MetricLabelValues.other,
                                                    status: (100...599).contains(status) ? status : -1))
            counter.increment()
            timer.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
            context.logger.info("request", metadata: [
                "method": .string(method), "path": .string(request.uri.path), "status": .stringConvertible(status),
                "duration_ms": .string(String(format: "%.3f", Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000)),
            ])
        }
        do {
            let response = try await next(request, context)
            status = Int(response.status.code)
            return response
        } catch let error as any HTTPResponseError {
            status = Int(error.status.code)
            throw error
        }
    }
}
