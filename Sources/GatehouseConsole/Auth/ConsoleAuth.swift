import Crypto
import Foundation
import GatehouseCore
import GatehouseHTTP
import HTTPTypes
import Hummingbird
import Synchronization

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

    /// An admin signed in; never in open mode, where changes need the admin token (as the admin API does).
    public var canChange: Bool { role == .admin && !openMode }
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
    /// The account id sessions opened with the current admin token carry: a session opened with
    /// an earlier token no longer matches once the token is rotated.
    let adminTokenSessionID: String?
    let throttle: SignInThrottle
    /// Two scrypt checks at once at most; more sign-ins are refused (`busy`), not queued.
    let scryptSlots: ScryptLimiter
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
        adminTokenSessionID = adminToken.map(Self.adminTokenSessionID(for:))
        throttle = SignInThrottle()
        scryptSlots = ScryptLimiter(maxConcurrent: 2)
    }

    /// `admin-token:<first 16 hex of SHA-256(token)>`: tells tokens apart without storing one.
    static func adminTokenSessionID(for token: String) -> String {
        Account.adminTokenID + ":" + Hex.sha256(token, bytes: 8)
    }

    public var openMode: Bool { adminToken == nil }

    /// An open console answering under a name it was not given: DNS rebinding, a stranger's
    /// page reading the console through the victim's browser.
    public struct ForeignHost: Error {
        static let message = "This open console answers only to 127.0.0.1, localhost or an IP address (no admin token is set). Set GATEHOUSE_ADMIN_TOKEN to serve it under a name."
    }

    /// Whether `authority` (the Host header) names this machine by IP address or as localhost.
    static func isAddressOrLocalhost(_ authority: String?) -> Bool {
        guard var host = authority?.lowercased() else { return false }
        if host.hasPrefix("[") { return host.contains("]") }  // an IPv6 literal
        if let colon = host.lastIndex(of: ":") { host = String(host[..<colon]) }
        return host == "localhost" || (host.split(separator: ".").count == 4 && host.split(separator: ".").allSatisfy { UInt8($0) != nil })
    }

    /// The viewer of `request`, or nil when it must sign in first.
    public func viewer(_ request: Request) async throws -> ConsoleViewer? {
        let cookies = request.cookies
        if adminToken == nil {
            guard Self.isAddressOrLocalhost(request.head.authority) else { throw ForeignHost() }
            return ConsoleViewer(name: "local", role: .admin, csrfToken: cookies[Self.csrfCookie]?.value ?? "", openMode: true, sessionHash: nil)
        }
        guard let token = cookies[Self.sessionCookie]?.value, token.utf8.count <= 128 else { return nil }
        let hash = Hex.sha256(token)
        guard let session = try await accounts.session(tokenHash: hash) else { return nil }
        let now = TimeExpressions.nowMicros()
        let idleMicros = TimeExpressions.micros(Self.idle)
        let openedWithToken = session.accountID == Account.adminTokenID || session.accountID.hasPrefix(Account.adminTokenID + ":")
        let openedWithOtherToken = openedWithToken && session.accountID != adminTokenSessionID
        guard session.expiresAtMicros > now, now - session.lastSeenMicros < idleMicros, !openedWithOtherToken else {
            try? await accounts.deleteSession(tokenHash: hash)
            return nil
        }
        if now - session.lastSeenMicros > Self.touchEvery { try await accounts.touchSession(tokenHash: hash, lastSeenMicros: now) }
        return ConsoleViewer(name: session.accountName, role: session.role, csrfToken: session.csrfToken, openMode: false, sessionHash: hash)
    }

    /// `busy`: every scrypt slot is taken; `throttled`: too many recent failures for this email or
    /// client. Both mean "try again shortly" (429), and neither checked the password.
    public enum SignInError: Error { case wrongCredentials, disabled, busy, throttled }

    /// Checks an email and password, or the admin token (given as the password with the email
    /// left empty), and opens a session. Returns the `Set-Cookie` value.
    ///
    /// `clientIP` adds a per-client failure limit to the per-email one; `previousSession` (the
    /// browser's current session cookie) is deleted, so signing in again leaves no orphan row.
    public func signIn(email: String, password: String, secure: Bool, clientIP: String? = nil,
                       previousSession: String? = nil) async throws -> String {
        guard let adminToken, let adminTokenSessionID else { throw SignInError.wrongCredentials }
        let email = email.trimmingCharacters(in: .whitespaces).lowercased()
        let usesAdminToken = email.isEmpty || email == Account.adminTokenID
        // The admin token is compared in constant time and costs nothing: only the client is
        // limited, so no one can lock the admin out by failing with the token on purpose.
        let throttleKeys: [String] = (usesAdminToken ? [] : ["email:" + email.prefix(254)]) + (clientIP.map { ["ip:" + $0] } ?? [])
        guard !throttle.isRefused(throttleKeys) else { throw SignInError.throttled }
        let (id, name, role): (String, String, AccountRole)
        if usesAdminToken {
            guard ConstantTime.equal(password, adminToken) else {
                throttle.recordFailure(throttleKeys)
                throw SignInError.wrongCredentials
            }
            (id, name, role) = (adminTokenSessionID, Account.adminTokenID, .admin)
        } else {
            let account = email.utf8.count <= 254 ? try await accounts.account(email: email) : nil
            // An unknown email costs the same scrypt as a wrong password: no way to probe for accounts.
            let matches: Bool
            do {
                matches = try await PasswordHasher.verifyOffPool(password, against: account?.passwordHash ?? PasswordHasher.decoy,
                                                              limiter: scryptSlots)
            } catch is PasswordHasher.Busy {
                throw SignInError.busy
            }
            guard matches, let account else {
                throttle.recordFailure(throttleKeys)
                throw SignInError.wrongCredentials
            }
            guard !account.disabled else { throw SignInError.disabled }
            throttle.forget(throttleKeys)
            (id, name, role) = (account.id, account.email, account.role)
        }
        if let previousSession, previousSession.utf8.count <= 128 {
            try await accounts.deleteSession(tokenHash: Hex.sha256(previousSession))
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
        return Base64URL.encode(bytes)
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

/// Refuses sign-ins for a minute after 10 failures within 5 minutes for one key (an email, a
/// client address), without hashing anything. In memory, per process, at most 10,000 keys.
final class SignInThrottle: Sendable {
    struct Entry {
        var windowStart: ContinuousClock.Instant
        var failures: Int
        var refusedUntil: ContinuousClock.Instant?
    }

    static let maxFailures = 10
    static let window: Duration = .seconds(300)
    static let refusal: Duration = .seconds(60)
    static let maxEntries = 10_000

    private let entries = Mutex<[String: Entry]>([:])

    func isRefused(_ keys: [String], now: ContinuousClock.Instant = .now) -> Bool {
        entries.withLock { entries in
            keys.contains { key in entries[key]?.refusedUntil.map { now < $0 } ?? false }
        }
    }

    func recordFailure(_ keys: [String], now: ContinuousClock.Instant = .now) {
        entries.withLock { entries in
            for key in keys {
                var entry = entries[key] ?? Entry(windowStart: now, failures: 0, refusedUntil: nil)
                if now - entry.windowStart > Self.window { entry = Entry(windowStart: now, failures: 0, refusedUntil: nil) }
                entry.failures += 1
                if entry.failures >= Self.maxFailures {
                    entry.refusedUntil = now + Self.refusal
                    entry.windowStart = now
                    entry.failures = 0
                }
                if entries[key] == nil, entries.count >= Self.maxEntries { Self.makeRoom(in: &entries, now: now) }
                entries[key] = entry
            }
        }
    }

    /// A successful sign-in clears its email's count.
    func forget(_ keys: [String]) {
        entries.withLock { entries in
            for key in keys where key.hasPrefix("email:") { entries[key] = nil }
        }
    }

    /// Drops what no longer counts; when everything still does, the entry that started longest
    /// ago (the bound matters more than one key's count).
    private static func makeRoom(in entries: inout [String: Entry], now: ContinuousClock.Instant) {
        entries = entries.filter { _, entry in
            now - entry.windowStart <= window || (entry.refusedUntil.map { now < $0 } ?? false)
        }
        if entries.count >= maxEntries, let oldest = entries.min(by: { $0.value.windowStart < $1.value.windowStart })?.key {
            entries[oldest] = nil
        }
    }
}
