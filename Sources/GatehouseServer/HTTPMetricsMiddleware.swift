import GatehouseHTTP
import Hummingbird
import Metrics

/// Counts every request and times it, labelled by the matched route pattern (not the raw
/// path, which would make one series per id) and status. Logs one access line per request.
struct HTTPMetricsMiddleware: RouterMiddleware {
    typealias Context = GatehouseRequestContext

    struct Key: Hashable, Sendable {
        var route: String
        var method: String
        var status: Int
    }

    static let handles = MetricHandleCache<Key, (Counter, Timer)> { key in
        (Counter(label: "gatehouse_http_requests_total", dimensions: [("route", key.route), ("method", key.method), ("status", String(key.status))]),
         Timer(label: "gatehouse_http_request_duration_seconds", dimensions: [("route", key.route), ("method", key.method)]))
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var status = 500
        defer {
            let route = context.endpointPath ?? "unmatched"
            let method = request.method.rawValue
            let elapsed = ContinuousClock.now - start
            let (counter, timer) = Self.handles(Key(route: route, method: method, status: status))
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
