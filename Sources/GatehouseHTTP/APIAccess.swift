import Foundation
import GatehouseCore
import HTTPTypes
import Hummingbird
import Synchronization

/// Who may call a route. Every route declares its access when it is registered, and the check
/// wraps that route's own responder: the decision is made for the route that will run, never on
/// a prefix of the raw path (`//api/v1/keys` and `/api/v1/keys/` run the same route, so they get
/// the same check).
public enum APIAccess: String, Sendable, CaseIterable {
    /// Anyone: health checks, the provider-compatible gateway routes (virtual keys), and ingest and
    /// heartbeat routes, which check their own project or heartbeat keys.
    case open
    /// Gatehouse's own API: needs the admin token when one is set; open without one, for local use.
    case team
    /// Keys, kill switches, audit and budgets: need the admin token; off when none is set.
    case admin
    /// The console's HTML pages and forms: they sign people in themselves (sessions, CSRF), so
    /// the token check does not run; not part of the JSON API's contract.
    case console
}

/// One registered route and the access it was given.
public struct APIRouteAccess: Sendable, Hashable, CustomStringConvertible {
    public var method: String
    /// The route's pattern as registered, e.g. `/api/v1/keys/{id}`.
    public var path: String
    public var access: APIAccess
    public var description: String { "\(method) \(path) (\(access.rawValue))" }
}

/// The only way Gatehouse's modules add routes: `api.open`, `api.team` or `api.admin`. It keeps a
/// list of what was registered with which access, so a test can walk every route.
public final class APIRouter {
    public let open: AccessGroup
    public let team: AccessGroup
    public let admin: AccessGroup
    public let console: AccessGroup
    let registry: Registry

    public init(router: Router<GatehouseRequestContext>, adminToken: String?) {
        let registry = Registry()
        self.registry = registry
        open = AccessGroup(access: .open, group: router.group(), registry: registry)
        team = AccessGroup(access: .team, group: router.group().add(middleware: AdminTokenMiddleware(token: adminToken, access: .team)),
                           registry: registry)
        admin = AccessGroup(access: .admin, group: router.group().add(middleware: AdminTokenMiddleware(token: adminToken, access: .admin)),
                            registry: registry)
        console = AccessGroup(access: .console, group: router.group(), registry: registry)
    }

    /// Every route registered through this router, in order.
    public var routes: [APIRouteAccess] { registry.routes.withLock { $0 } }

    final class Registry: Sendable {
        let routes = Mutex<[APIRouteAccess]>([])
    }

    /// Routes of one access level. Conforms to Hummingbird's `RouterMethods`, so `get`, `post`, …
    /// work as on a router; each registration is recorded.
    public struct AccessGroup: RouterMethods {
        public typealias Context = GatehouseRequestContext
        public let access: APIAccess
        let group: RouterGroup<GatehouseRequestContext>
        let registry: Registry

        @discardableResult
        public func on<Responder: HTTPResponder>(_ path: RouterPath, method: HTTPRequest.Method, responder: Responder) -> Self
        where Responder.Context == GatehouseRequestContext {
            registry.routes.withLock { $0.append(APIRouteAccess(method: method.rawValue, path: path.description, access: access)) }
            group.on(path, method: method, responder: responder)
            return self
        }

        @discardableResult
        public func add(middleware: any MiddlewareProtocol<Request, Response, GatehouseRequestContext>) -> Self {
            group.add(middleware: middleware)
            return self
        }
    }
}

/// Checks `Authorization: Bearer <GATEHOUSE_ADMIN_TOKEN>` for the routes of one access level.
/// It runs only for routes registered with that level (group middleware), after routing.
struct AdminTokenMiddleware: RouterMiddleware {
    typealias Context = GatehouseRequestContext
    let token: String?
    let access: APIAccess

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token else {
            if access == .admin {
                return GatewayError(status: .forbidden, message: "The admin API is off. Start Gatehouse with GATEHOUSE_ADMIN_TOKEN set to enable it.",
                                    type: "permission_error", code: "admin_disabled").response(dialect: .openAI)
            }
            return try await next(request, context)
        }
        guard AdminToken.matches(request.headers[.authorization], token: token) else {
            return AdminToken.unauthorized("This API needs `Authorization: Bearer <GATEHOUSE_ADMIN_TOKEN>`.")
        }
        return try await next(request, context)
    }
}

/// The admin token check, shared by the API routes and `/metrics` (when it requires the token).
public enum AdminToken {
    /// Whether an `Authorization` header value carries `token` as a Bearer token.
    public static func matches(_ authorization: String?, token: String) -> Bool {
        guard let given = authorization.flatMap(BearerToken.token) else { return false }
        return ConstantTime.equal(given, token)
    }

    /// The 401 for a missing or wrong admin token, with the challenge clients expect.
    public static func unauthorized(_ message: String) -> Response {
        var response = GatewayError(status: .unauthorized, message: message, type: "invalid_request_error", code: "invalid_admin_token")
            .response(dialect: .openAI)
        response.headers[.wwwAuthenticate] = "Bearer"
        return response
    }
}
