import Foundation
import GatehouseConsole
import GatehouseCore
import GatehouseStorage
import GatehouseTestSupport
import Logging
import Testing

/// Console sign-in under attack: scrypt kept off the request threads, failures throttled,
/// sessions ended by a token rotation and pruned when they lapse.
@Suite("Console sessions: throttling, token rotation, pruning")
struct ConsoleSessionTests {
    static let token = "console-session-token-0123456789abcdef"

    /// Runs `body` with the account store of a fresh SQLite database.
    static func withAccounts(_ body: @Sendable (SQLAccountStore) async throws -> Void) async throws {
        let url = "sqlite://" + (try TestEnvironment.temporaryDirectory().appendingPathComponent("store.sqlite").path)
        try await StoreFactory.withOpenedStore(databaseURL: url, logger: Logger(label: "test")) { try await body($0.accounts) }
    }

    /// The token in a `Set-Cookie` value (`gatehouse-session=<token>; Path=/; …`).
    static func sessionToken(_ setCookie: String) -> String {
        String(setCookie.split(separator: ";")[0].split(separator: "=", maxSplits: 1)[1])
    }

    @Test("wrong sign-ins in parallel leave the server answering; each gets 401 or 429")
    func parallelWrongSignInsDoNotStallTheServer() async throws {
        let gatehouse = try await GatehouseProcess.start(environment: ["GATEHOUSE_ADMIN_TOKEN": Self.token])
        defer { Task { _ = try? await gatehouse.stop() } }
        let port = gatehouse.port
        // Distinct emails, so the per-email throttle does not end the flood early: every one of
        // them would cost a scrypt run (unknown emails check a decoy hash).
        async let statuses = withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<32 {
                group.addTask { try await ConsoleClient(port: port).signIn(email: "probe\(i)@example.com", password: "wrong-password-\(i)").status }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        try await Task.sleep(for: .milliseconds(300))
        let health = try await RawHTTP.send(port: port, method: "GET", target: "/health")
        #expect(health.status == 200)
        let answered = try await statuses
        #expect(answered.count == 32)
        #expect(answered.allSatisfy { $0 == 401 || $0 == 429 }, "\(answered)")
    }

    @Test("the 11th failure within five minutes, for one email or one client, is refused without checking the password")
    func repeatedFailuresAreThrottled() async throws {
        try await Self.withAccounts { store in
            let auth = ConsoleAuth(accounts: store, adminToken: Self.token)
            for _ in 0..<10 {
                await #expect(throws: ConsoleAuth.SignInError.wrongCredentials) {
                    try await auth.signIn(email: "ada@example.com", password: "not her password", secure: false)
                }
            }
            await #expect(throws: ConsoleAuth.SignInError.throttled) {
                try await auth.signIn(email: "Ada@example.com", password: "not her password", secure: false)
            }
            await #expect(throws: ConsoleAuth.SignInError.wrongCredentials, "another email is not refused") {
                try await auth.signIn(email: "bob@example.com", password: "not his password", secure: false)
            }
            for i in 0..<10 {
                await #expect(throws: ConsoleAuth.SignInError.wrongCredentials) {
                    try await auth.signIn(email: "guess\(i)@example.com", password: "a guess", secure: false, clientIP: "192.0.2.7")
                }
            }
            await #expect(throws: ConsoleAuth.SignInError.throttled, "the same client with a new email") {
                try await auth.signIn(email: "fresh@example.com", password: "a guess", secure: false, clientIP: "192.0.2.7")
            }
            _ = try await auth.signIn(email: "", password: Self.token, secure: false, clientIP: "192.0.2.8")
        }
    }

    @Test("signing in again deletes the browser's previous session; admin-token sessions carry the token's fingerprint")
    func signingInAgainReplacesTheSession() async throws {
        try await Self.withAccounts { store in
            let auth = ConsoleAuth(accounts: store, adminToken: Self.token)
            let first = Self.sessionToken(try await auth.signIn(email: "", password: Self.token, secure: false))
            let session = try #require(try await store.session(tokenHash: Hex.sha256(first)))
            #expect(session.accountName == "admin-token")
            #expect(session.accountID == "admin-token:" + Hex.sha256(Self.token).prefix(16))
            let second = Self.sessionToken(try await auth.signIn(email: "", password: Self.token, secure: false, previousSession: first))
            #expect(try await store.session(tokenHash: Hex.sha256(first)) == nil, "the previous session is gone")
            #expect(try await store.session(tokenHash: Hex.sha256(second)) != nil)
        }
    }

    @Test("rotating the admin token ends the sessions opened with the old one")
    func rotatingTheTokenEndsOldSessions() async throws {
        let database = try TestEnvironment.freshPostgresDatabase()
        let first = try await GatehouseProcess.start(databaseURL: database, environment: ["GATEHOUSE_ADMIN_TOKEN": Self.token])
        let browser = ConsoleClient(port: first.port)
        #expect(try await browser.signIn(password: Self.token).status == 303)
        let signedIn = try await browser.get("/accounts")
        #expect(signedIn.status == 200)
        let oldCSRF = try #require(signedIn.csrfToken)
        let oldCookie = "gatehouse-session=" + (try #require(browser.cookie("gatehouse-session")))
        _ = try await first.stop()

        let rotated = "console-rotated-token-fedcba9876543210"
        let second = try await GatehouseProcess.start(databaseURL: database, environment: ["GATEHOUSE_ADMIN_TOKEN": rotated])
        defer { Task { _ = try? await second.stop() } }
        let stale = ConsoleClient(port: second.port)
        let page = try await stale.get("/accounts", headers: [("Cookie", oldCookie)])
        #expect(page.status == 303 && page.location?.hasPrefix("/login") == true, "status \(page.status) at \(page.location ?? "-")")
        let post = try await stale.post("/accounts", form: [("_csrf", oldCSRF), ("email", "mallory@example.com"), ("role", "admin"),
                                                            ("password", "a long enough passphrase")], headers: [("Cookie", oldCookie)])
        #expect(post.status == 303 && post.location?.hasPrefix("/login") == true, "status \(post.status) at \(post.location ?? "-")")

        let admin = ConsoleClient(port: second.port)
        #expect(try await admin.signIn(password: rotated).status == 303)
        let accounts = try await admin.get("/accounts")
        #expect(accounts.status == 200 && !accounts.html.contains("mallory@example.com"), "the stale session created nothing")
    }

    @Test("the pruner's pass removes sessions past their end or idle limit and keeps the rest")
    func prunerRemovesLapsedSessions() async throws {
        try await Self.withAccounts { store in
            let now = TimeExpressions.nowMicros()
            let idle = TimeExpressions.micros(ConsoleAuth.idle)
            func session(_ name: String, lastSeen: Int64, expires: Int64) -> ConsoleSession {
                ConsoleSession(tokenHash: Hex.sha256(name), accountID: "acc_1", accountName: "ada@example.com", role: .viewer, csrfToken: "csrf",
                               createdAtMicros: now - idle * 2, lastSeenMicros: lastSeen, expiresAtMicros: expires)
            }
            try await store.insertSession(session("expired", lastSeen: now - 1_000_000, expires: now - 1))
            try await store.insertSession(session("idle", lastSeen: now - idle - 1_000_000, expires: now + idle))
            try await store.insertSession(session("live", lastSeen: now - 1_000_000, expires: now + idle))
            await ConsoleSessionPruner(accounts: store, logger: Logger(label: "test")).pruneOnce(nowMicros: now)
            #expect(try await store.session(tokenHash: Hex.sha256("expired")) == nil)
            #expect(try await store.session(tokenHash: Hex.sha256("idle")) == nil)
            #expect(try await store.session(tokenHash: Hex.sha256("live")) != nil)
        }
    }
}
