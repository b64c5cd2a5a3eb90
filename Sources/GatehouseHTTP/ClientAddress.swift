import Foundation
import HTTPTypes
import Hummingbird

/// The client's address, one rule for everything that counts per client (the gateway's `ip`
/// rate-limit scope, the console's sign-in throttle, the audit log's actor): the TCP peer's,
/// or, with `gateway.trust_forwarded_for` (behind a proxy that sets the header), the first
/// `X-Forwarded-For` entry, else `X-Real-IP`. Untrusted, the headers are ignored: a client
/// could otherwise pick a new address for every attempt.
public enum ClientAddress {
    /// The first address of `X-Forwarded-For`, else `X-Real-IP`.
    public static func forwarded(_ headers: HTTPFields) -> String? {
        if let list = headers[.xForwardedFor], let first = list.split(separator: ",").first?.trimmingCharacters(in: .whitespaces), !first.isEmpty {
            return String(first.prefix(64))
        }
        return headers[.xRealIP].map { String($0.trimmingCharacters(in: .whitespaces).prefix(64)) }.flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// Sets `GatehouseRequestContext.clientIP` by `ClientAddress`'s rule before any route runs.
public struct ClientAddressMiddleware: RouterMiddleware {
    public typealias Context = GatehouseRequestContext
    let trustForwardedFor: Bool

    public init(trustForwardedFor: Bool) { self.trustForwardedFor = trustForwardedFor }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard trustForwardedFor, let forwarded = ClientAddress.forwarded(request.headers) else { return try await next(request, context) }
        var context = context
        context.clientIP = forwarded
        return try await next(request, context)
    }
}

extension HTTPField.Name {
    public static let xForwardedFor = Self("X-Forwarded-For")!
    public static let xRealIP = Self("X-Real-IP")!
}
