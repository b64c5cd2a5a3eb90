import Crypto
import Foundation
import GatehouseCore
import GatehouseHTTP
import HTTPTypes
import Hummingbird

/// Who is looking at a console page, and what they may do.
public struct ConsoleViewer: Sendable {
    /// The account's email, `admin-token`, or `local` when no admin token is set.
    public var name: String
    public var role: AccountRole
    /// Goes into every form; a state-changing request without it is refused.
    public var csrfToken: String
    /// No admin token is set: the console is open to whoever reaches the port (local use).
    public var openMode: Bool
    /// The session's token hash, for sign-out; nil in open mode.
    var sessionHash: String?

    public var canChange: Bool { role == .admin }
}

/// Sign-in, sessions and CSRF for the console.
///
/// - With an admin token set, every page needs a session: an account's email and password, or the
///   admin token itself (signs in as admin). The cookie holds 32 random bytes; the store keeps
///   only their SHA-256. Sessions end after `idle` without a request or `absolute` after sign-in.
/// - Without one (local use) the console is open, says so on every page, and guards its forms with
///   a double-submit CSRF cookie; the admin-only pages stay read-only, as the admin API is off.
public struct ConsoleAuth: Sendable {
    let accounts: any AccountStore
    let adminToken: String?
    public static let idle: Duration = .seconds(12 * 3600)
    public static let absolute: Duration = .seconds(7 * 86_400)
    static let sessionCookie = "gatehouse-session"
    static let csrfCookie = "gatehouse-csrf"
    /// How stale a session's last-seen may get before a request writes it again (one write per
    /// minute per session, not one per page).
    static let touchEvery: Int64 = 60_000_000

    public init(accounts: any AccountStore, adminToken: String?) {
        self.accounts = accounts
        self.adminToken = adminToken
    }

    public var openMode: Bool { adminToken == nil }

    /// The viewer of `request`, or nil when it must sign in first.
    public func viewer(_ request: Request) async throws -> ConsoleViewer? {
        let cookies = request.cookies
        if adminToken == nil {
            return ConsoleViewer(name: "local", role: .admin, csrfToken: cookies[Self.csrfCookie]?.value ?? "", openMode: true, sessionHash: nil)
        }
        guard let token = cookies[Self.sessionCookie]?.value, token.utf8.count <= 128 else { return nil }
        let hash = Hex.sha256(token)
        guard let session = try await accounts.session(tokenHash: hash) else { return nil }
        let now = TimeExpressions.nowMicros()
        let idleMicros = TimeExpressions.micros(Self.idle)
        guard session.expiresAtMicros > now, now - session.lastSeenMicros < idleMicros else {
            try? await accounts.deleteSession(tokenHash: hash)
            return nil
        }
        if now - session.lastSeenMicros > Self.touchEvery { try await accounts.touchSession(tokenHash: hash, lastSeenMicros: now) }
        return ConsoleViewer(name: session.accountName, role: session.role, csrfToken: session.csrfToken, openMode: false, sessionHash: hash)
    }

    public enum SignInError: Error { case wrongCredentials, disabled }

    /// Checks an email and password, or the admin token (given as the password with the email
    /// left empty), and opens a session. Returns the `Set-Cookie` value.
    public func signIn(email: String, password: String, secure: Bool) async throws -> String {
        guard let adminToken else { throw SignInError.wrongCredentials }
        let email = email.trimmingCharacters(in: .whitespaces).lowercased()
        let (id, name, role): (String, String, AccountRole)
        if email.isEmpty || email == Account.adminTokenID {
            guard ConstantTime.equal(password, adminToken) else { throw SignInError.wrongCredentials }
            (id, name, role) = (Account.adminTokenID, Account.adminTokenID, .admin)
        } else {
            let account = email.utf8.count <= 254 ? try await accounts.account(email: email) : nil
            // An unknown email costs the same scrypt as a wrong password: no way to probe for accounts.
            guard PasswordHasher.verify(password, against: account?.passwordHash ?? PasswordHasher.decoy), let account else {
                throw SignInError.wrongCredentials
            }
            guard !account.disabled else { throw SignInError.disabled }
            (id, name, role) = (account.id, account.email, account.role)
        }
        let token = Self.randomToken()
        let now = TimeExpressions.nowMicros()
        try await accounts.insertSession(ConsoleSession(
            tokenHash: Hex.sha256(token), accountID: id, accountName: name, role: role, csrfToken: Self.randomToken(),
            createdAtMicros: now, lastSeenMicros: now, expiresAtMicros: now + TimeExpressions.micros(Self.absolute)))
        return Self.cookie(Self.sessionCookie, token, maxAge: Int(Self.absolute.components.seconds), secure: secure)
    }

    /// Ends the viewer's session in the store (every instance stops honouring it).
    public func signOut(_ viewer: ConsoleViewer) async throws {
        if let hash = viewer.sessionHash { try await accounts.deleteSession(tokenHash: hash) }
    }

    /// A double-submit CSRF token for pages without a session (sign-in, open mode): the token the
    /// browser holds in its cookie, or a new one with the `Set-Cookie` that gives it.
    public func cookieCSRF(_ request: Request, secure: Bool) -> (token: String, setCookie: String?) {
        if let existing = request.cookies[Self.csrfCookie]?.value, existing.utf8.count == 43 { return (existing, nil) }
        let token = Self.randomToken()
        return (token, Self.cookie(Self.csrfCookie, token, maxAge: nil, secure: secure))
    }

    /// Whether a state-changing request carries the viewer's CSRF token (form field `_csrf` or
    /// header `X-CSRF-Token`) and, when the browser says where it comes from, comes from here.
    public static func passesCSRF(_ request: Request, form: [String: String], viewer: ConsoleViewer) -> Bool {
        if let origin = request.headers[.origin], let host = request.head.authority {
            guard let url = URL(string: origin), let originHost = url.host else { return false }
            let originAuthority = url.port.map { "\(originHost):\($0)" } ?? originHost
            guard originAuthority == host else { return false }
        }
        guard !viewer.csrfToken.isEmpty else { return false }
        let given = form["_csrf"] ?? request.headers[.csrfToken] ?? ""
        return ConstantTime.equal(given, viewer.csrfToken)
    }

    /// Whether responses should carry `Secure` cookies: the request came over HTTPS (directly or
    /// through a proxy that says so).
    public static func isHTTPS(_ request: Request) -> Bool {
        request.head.scheme == "https" || request.headers[.forwardedProto]?.lowercased() == "https"
    }

    static func randomToken() -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = UInt8.random(in: .min ... .max, using: &generator) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func cookie(_ name: String, _ value: String, maxAge: Int?, secure: Bool) -> String {
        var parts = ["\(name)=\(value)", "Path=/", "HttpOnly", "SameSite=Strict"]
        if let maxAge { parts.append("Max-Age=\(maxAge)") }
        if secure { parts.append("Secure") }
        return parts.joined(separator: "; ")
    }
}

extension HTTPField.Name {
    static let csrfToken = Self("X-CSRF-Token")!
    static let forwardedProto = Self("X-Forwarded-Proto")!
}
