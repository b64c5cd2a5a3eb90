import HTTPTypes
import Hummingbird

/// CORS for browsers calling Gatehouse from an allow-listed origin (`cors_allowed_origins`):
/// answers preflights and adds `Access-Control-Allow-Origin` for listed origins only — never a
/// wildcard unless `*` is listed. Other origins get no CORS headers, so browsers block them.
public struct CORSAllowList: RouterMiddleware {
    public typealias Context = GatehouseRequestContext
    let origins: Set<String>

    public init(origins: [String]) { self.origins = Set(origins.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }) }

    func allowed(_ origin: String) -> String? {
        if origins.contains(origin) { return origin }
        return origins.contains("*") ? "*" : nil
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !origins.isEmpty, let origin = request.headers[.origin] else { return try await next(request, context) }
        let allow = allowed(origin)
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            var headers: HTTPFields = [.vary: "Origin"]
            if let allow {
                headers[.accessControlAllowOrigin] = allow
                headers[.accessControlAllowMethods] = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
                headers[.accessControlAllowHeaders] = request.headers[.accessControlRequestHeaders]
                    ?? "Authorization, Content-Type, X-Request-Id, Gatehouse-Key, Gatehouse-Cache"
                headers[.accessControlMaxAge] = "600"
            }
            return Response(status: .noContent, headers: headers)
        }
        var response = try await next(request, context)
        if let allow {
            response.headers[.accessControlAllowOrigin] = allow
            response.headers[.accessControlExposeHeaders] = "X-Request-Id, Retry-After, x-ratelimit-limit-requests, x-ratelimit-remaining-requests, x-ratelimit-reset-requests, Gatehouse-Cache"
            response.headers[.vary] = "Origin"
        }
        return response
    }
}
