import Foundation
import GatehouseCore
import GatehouseHTTP
import HTTPTypes
import Hummingbird
import Logging

/// The web console: server-rendered pages on the same port as the API. Each page reads through
/// the stores and services the JSON API uses; sign-in and CSRF are `ConsoleAuth`'s.
public struct Console: Sendable {
    let deps: ConsoleDependencies
    let renderer: PageRenderer
    let assets = ConsoleAssets()
    let auth: ConsoleAuth
    static let logger = Logger(label: "gatehouse.console")
    /// Largest form a console page posts.
    static let maxFormBytes = 64 * 1024

    public init(_ deps: ConsoleDependencies) throws {
        self.deps = deps
        self.renderer = try PageRenderer()
        self.auth = ConsoleAuth(accounts: deps.accounts, adminToken: deps.adminToken)
    }

    /// The console's routes skip the API's token check: the console signs people in itself.
    public func addRoutes(to api: APIRouter) {
        let r = api.console
        r.get("/assets/{name}") { request, context in
            self.assets.response(context.parameters.get("name") ?? "", ifNoneMatch: request.headers[.ifNoneMatch])
        }
        r.get("/login") { request, _ in await self.loginPage(request) }
        r.post("/login") { request, context in await self.login(request, context: context) }
        r.post("/logout") { request, _ in await self.logout(request) }
        OverviewPage(console: self).addRoutes(to: r)
        RequestsPage(console: self).addRoutes(to: r)
        SpendPage(console: self).addRoutes(to: r)
        LogsPage(console: self).addRoutes(to: r)
        IssuesPage(console: self).addRoutes(to: r)
        PerformancePage(console: self).addRoutes(to: r)
        TracePage(console: self).addRoutes(to: r)
        AlertsPage(console: self).addRoutes(to: r)
        UptimePage(console: self).addRoutes(to: r)
        StatusPage(console: self).addRoutes(to: r)
        KeysPage(console: self).addRoutes(to: r)
        SwitchesPage(console: self).addRoutes(to: r)
        AuditPage(console: self).addRoutes(to: r)
        AccountsPage(console: self).addRoutes(to: r)
        AccountRoutes(console: self).addRoutes(to: api)
        SettingsPage(console: self).addRoutes(to: r)
    }

    // MARK: Pages

    /// What a page handler gets: who asks, the query parameters, the time range.
    struct PageInput: Sendable {
        var request: Request
        var viewer: ConsoleViewer
        var parameters: [String: String]
        var range: TimeRange
        /// `?ok=` / `?error=` left by the action that redirected here.
        var flash: Flash?
    }

    struct Flash: Sendable {
        var kind: String
        var message: String
    }

    /// A rendered page: its template and the values it shows.
    struct PageOutput: @unchecked Sendable {
        var template: String
        var title: String
        var body: Any
        var showsRange = true
        var status: HTTPResponse.Status = .ok
    }

    /// Runs a page: sign-in first, then `build`; a store that does not answer gives a page that
    /// says so (503), never a stack trace.
    func page(_ request: Request, _ nav: Nav.Item, _ build: (PageInput) async throws -> PageOutput) async -> Response {
        do {
            guard var viewer = try await auth.viewer(request) else { return signInRedirect(request) }
            if viewer.openMode && [.accounts, .audit, .keys].contains(nav) {
                return renderer.page("unavailable", ["message": "Keys, accounts and the audit log need an admin token, as the admin API does: start Gatehouse with GATEHOUSE_ADMIN_TOKEN set and sign in."],
                                     status: .forbidden)
            }
            var cookies: [String] = []
            if viewer.openMode {
                let csrf = auth.cookieCSRF(request, secure: ConsoleAuth.isHTTPS(request))
                viewer.csrfToken = csrf.token
                if let set = csrf.setCookie { cookies.append(set) }
            }
            let parameters = Self.parameters(request.uri.query)
            // `?ok=` / `?error=` come from the console's own redirect after a form, whose page is
            // the referrer; from any other link they would put a stranger's words in the banner.
            let ownRedirect = Self.comesFromHere(request)
            let input = PageInput(request: request, viewer: viewer, parameters: parameters, range: TimeRange(parameters: parameters),
                                  flash: !ownRedirect ? nil : parameters["error"].map { Flash(kind: "error", message: String($0.prefix(300))) }
                                      ?? parameters["ok"].map { Flash(kind: "ok", message: String($0.prefix(300))) })
            let output: PageOutput
            do {
                output = try await build(input)
            } catch let failure as PageFailure {
                output = PageOutput(template: "message", title: failure.title, body: ["message": failure.message], showsRange: false, status: failure.status)
            }
            let chrome = Nav.chrome(title: output.title, active: nav, viewer: viewer, input: input, showsRange: output.showsRange,
                                    firing: await deps.alerting.evaluator.active().filter { $0.state == .firing }.count)
            return renderer.page(output.template, ["chrome": chrome, "body": output.body], status: output.status, setCookie: cookies)
        } catch is ConsoleAuth.ForeignHost {
            return renderer.page("unavailable", ["message": ConsoleAuth.ForeignHost.message], status: .forbidden)
        } catch {
            Self.logger.error("console page failed", metadata: ["path": "\(request.uri.path)", "error": "\(Redactor.scrubText(String(describing: error)))"])
            return renderer.page("unavailable", ["message": "The store did not answer. Try again in a moment."], status: .serviceUnavailable)
        }
    }

    /// A page that cannot be shown (no such issue, a bad filter): its own title and message.
    struct PageFailure: Error {
        var status: HTTPResponse.Status
        var title: String
        var message: String
        static func notFound(_ what: String) -> PageFailure { PageFailure(status: .notFound, title: "Not found", message: what) }
    }

    /// Runs a form's action: sign-in, CSRF, the admin role when `needsAdmin`, a bounded body;
    /// `act` returns where to go next (with `?ok=` or `?error=`).
    /// `successCookie` is set only when `act` succeeded (sign-out clears the session cookie).
    func action(_ request: Request, needsAdmin: Bool, successCookie: String? = nil,
                _ act: (ConsoleViewer, [String: String]) async throws -> String) async -> Response {
        do {
            guard var viewer = try await auth.viewer(request) else { return signInRedirect(request) }
            let body = try await JSONBody.collect(request, limit: Self.maxFormBytes)
            let form = Self.parameters(String(decoding: body, as: UTF8.self))
            if viewer.openMode { viewer.csrfToken = request.cookies[ConsoleAuth.csrfCookie]?.value ?? "" }
            guard ConsoleAuth.passesCSRF(request, form: form, viewer: viewer) else {
                return renderer.page("unavailable", ["message": "This form expired or did not come from this console (CSRF check). Go back, reload and try again."],
                                     status: .forbidden)
            }
            guard !needsAdmin || viewer.canChange else {
                let why = viewer.openMode ? "Changes need an admin token: start Gatehouse with GATEHOUSE_ADMIN_TOKEN set and sign in."
                    : "Your account is a viewer: it can see everything and change nothing."
                return renderer.page("unavailable", ["message": why], status: .forbidden)
            }
            return PageRenderer.redirect(try await act(viewer, form), setCookie: successCookie.map { [$0] } ?? [])
        } catch let error as GatewayError {
            return renderer.page("unavailable", ["message": error.message], status: error.status)
        } catch is ConsoleAuth.ForeignHost {
            return renderer.page("unavailable", ["message": ConsoleAuth.ForeignHost.message], status: .forbidden)
        } catch {
            Self.logger.error("console action failed", metadata: ["path": "\(request.uri.path)", "error": "\(Redactor.scrubText(String(describing: error)))"])
            return renderer.page("unavailable", ["message": "The store did not answer; nothing was changed. Try again in a moment."], status: .serviceUnavailable)
        }
    }

    /// Writes a console change to the audit log under the account's name.
    func audit(_ viewer: ConsoleViewer, action: String, target: String, details: String = "{}") async throws {
        try await deps.controls.appendAudit(AuditEntry(timestampMicros: TimeExpressions.nowMicros(), actor: viewer.auditActor, action: action,
                                                       target: target, details: details))
    }

    /// Where a signed-out browser goes: the sign-in form, then back to what it asked for.
    func signInRedirect(_ request: Request) -> Response {
        let next = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
        return PageRenderer.redirect("/login?next=" + Self.percentEncode(next))
    }

    // MARK: Sign-in

    func loginPage(_ request: Request, error: String? = nil, email: String = "", status: HTTPResponse.Status = .ok) async -> Response {
        if auth.openMode { return PageRenderer.redirect("/") }
        let csrf = auth.cookieCSRF(request, secure: ConsoleAuth.isHTTPS(request))
        let next = Self.safeNext(Self.parameters(request.uri.query)["next"])
        // A nil in a template dictionary still counts as present: add `error` only when there is one.
        var model: [String: Any] = ["csrfToken": csrf.token, "next": next, "email": email]
        if let error { model["error"] = error }
        return renderer.page("login", model, status: status, setCookie: csrf.setCookie.map { [$0] } ?? [])
    }

    func login(_ request: Request, context: GatehouseRequestContext) async -> Response {
        guard !auth.openMode else { return PageRenderer.redirect("/") }
        let body: Data
        do { body = try await JSONBody.collect(request, limit: Self.maxFormBytes) } catch {
            return await loginPage(request, error: "That form was too large.", status: .contentTooLarge)
        }
        let form = Self.parameters(String(decoding: body, as: UTF8.self))
        let cookieToken = request.cookies[ConsoleAuth.csrfCookie]?.value ?? ""
        let anonymous = ConsoleViewer(name: "", role: .viewer, csrfToken: cookieToken, openMode: false, sessionHash: nil)
        guard ConsoleAuth.passesCSRF(request, form: form, viewer: anonymous) else {
            return await loginPage(request, error: "The sign-in form expired. Try again.", status: .forbidden)
        }
        let email = form["email"] ?? "", password = form["password"] ?? ""
        guard password.utf8.count <= PasswordHasher.maxPasswordBytes else {
            return await loginPage(request, error: "Wrong email or password.", email: email, status: .unauthorized)
        }
        do {
            let cookie = try await auth.signIn(email: email, password: password, secure: ConsoleAuth.isHTTPS(request), clientIP: context.clientIP,
                                               previousSession: request.cookies[ConsoleAuth.sessionCookie]?.value)
            return PageRenderer.redirect(Self.safeNext(form["next"]), setCookie: [cookie])
        } catch ConsoleAuth.SignInError.disabled {
            return await loginPage(request, error: "This account is disabled.", email: email, status: .forbidden)
        } catch ConsoleAuth.SignInError.busy, ConsoleAuth.SignInError.throttled {
            return await loginPage(request, error: "Too many sign-in attempts. Wait a minute and try again.", email: email, status: .tooManyRequests)
        } catch is ConsoleAuth.SignInError {
            Self.logger.notice("console sign-in refused", metadata: ["email": "\(String(email.prefix(254)))"])
            return await loginPage(request, error: "Wrong email or password.", email: email, status: .unauthorized)
        } catch {
            Self.logger.error("console sign-in failed", metadata: ["error": "\(Redactor.scrubText(String(describing: error)))"])
            return await loginPage(request, error: "The store did not answer. Try again in a moment.", email: email, status: .serviceUnavailable)
        }
    }

    func logout(_ request: Request) async -> Response {
        let secure = ConsoleAuth.isHTTPS(request)
        return await action(request, needsAdmin: false, successCookie: ConsoleAuth.cookie(ConsoleAuth.sessionCookie, "", maxAge: 0, secure: secure)) { viewer, _ in
            try await auth.signOut(viewer)
            return "/login"
        }
    }

    // MARK: Small parts

    /// Query or form parameters, first value of each name wins; names and values bounded.
    static func parameters(_ query: String?) -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in FormParameters(query: query) where out[k] == nil && k.utf8.count <= 64 { out[k] = String(v.prefix(2000)) }
        return out
    }

    /// Only a path on this console: never another site (`//evil.example`, `https://…`, `/\evil`).
    static func safeNext(_ next: String?) -> String {
        // Browsers drop tabs and newlines from URLs and read `\` as `/`, so `/\t/evil.example`
        // would become `//evil.example`: no control characters, spaces or backslashes at all.
        guard let next, next.hasPrefix("/"), !next.hasPrefix("//"), next.utf8.count <= 1000,
              next.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F && $0 != "\\" }) else { return "/" }
        return next
    }

    /// Whether the browser says the request comes from a page of this console (`Referer`, which
    /// `Referrer-Policy: same-origin` sends only within the console).
    static func comesFromHere(_ request: Request) -> Bool {
        guard let referer = request.headers[.referer], let url = URL(string: referer), let host = url.host,
              let authority = request.head.authority else { return false }
        return (url.port.map { "\(host):\($0)" } ?? host) == authority
    }

    /// A query parameter's name or value, escaped (`/` may stay: it means nothing in a query).
    /// A path segment is `PathSegment.encode`'s.
    static func percentEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~/")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    /// A URL for `path` with `parameters` (empty values left out), escaped.
    static func url(_ path: String, _ parameters: [(String, String)]) -> String {
        let query = parameters.filter { !$0.1.isEmpty }.map { percentEncode($0.0) + "=" + percentEncode($0.1) }.joined(separator: "&")
        return query.isEmpty ? path : path + "?" + query
    }
}

