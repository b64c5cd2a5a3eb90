import GatehouseCore
import HTTPTypes
import NIOCore
import Hummingbird
import Logging

/// The request context of every Gatehouse route: Hummingbird's core storage plus the
/// correlation id that ties the request's logs, errors and AI call together.
public struct GatehouseRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `CorrelationMiddleware` before any route runs.
    public var correlationID: String
    /// The client's address: the TCP peer's, or the forwarded one behind a trusted proxy
    /// (`ClientAddressMiddleware`). The `ip` scope of rate limits and the sign-in throttle count by it.
    public var clientIP: String?
    /// The client's connection: closed by a route whose response can no longer be delivered (a
    /// client that stopped reading would otherwise hold a write, and its request, forever).
    public let connection: any Channel
    /// Lets routes that read large bodies (the gateway) collect them with their own limit.
    public var maxUploadSize: Int { 256 * 1024 * 1024 }

    public init(source: Source) {
        coreContext = .init(source: source)
        correlationID = ""
        clientIP = source.channel.remoteAddress?.ipAddress
        connection = source.channel
    }
}

/// Reads `X-Request-Id` (or a W3C `traceparent`), generates an id when neither is usable,
/// puts it on the logger and echoes it back as `X-Request-Id`.
public struct CorrelationMiddleware: RouterMiddleware {
    public typealias Context = GatehouseRequestContext

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let id = CorrelationID.resolve(requestID: request.headers[.xRequestID], traceparent: request.headers[.traceparent])
        context.correlationID = id
        context.logger[metadataKey: "correlation_id"] = .string(id)
        do {
            var response = try await CorrelationID.$current.withValue(id) { try await next(request, context) }
            response.headers[.xRequestID] = id
            // A streamed body is written after `next` returned, outside the scope above; what runs
            // while it is written (usage settlement, logs) still works for this request.
            if response.body.contentLength == nil {
                let body = response.body
                response.body = ResponseBody { writer in
                    try await CorrelationID.$current.withValue(id) { try await body.write(writer) }
                }
            }
            return response
        } catch let error as any HTTPResponseError {
            var response = try error.response(from: request, context: context)
            response.headers[.xRequestID] = id
            return response
        }
    }
}

extension HTTPField.Name {
    public static let xRequestID = Self("X-Request-Id")!
    public static let traceparent = Self("traceparent")!
    public static let retryAfter = Self("Retry-After")!
}
