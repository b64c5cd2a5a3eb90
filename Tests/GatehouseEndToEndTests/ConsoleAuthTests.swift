import Foundation
import GatehouseTestSupport
import Testing

/// The console's front door: sign-in with the admin token, sessions in the store, sign-out,
/// CSRF on every form, the security headers on every answer, and the open console without a token.
@Suite("Console sign-in, sessions and headers")
struct ConsoleAuthTests {
    static let token = "console-admin-token-0123456789abcdef"

    static func start(_ backend: Backend, token: String? = ConsoleAuthTests.token) async throws -> GatehouseProcess {
        try await GatehouseProcess.start(databaseURL: try backend.databaseURL(),
                                         environment: token.map { ["GATEHOUSE_ADMIN_TOKEN": $0] } ?? [:])
    }

    static func expectSecurityHeaders(_ page: ConsoleClient.Page, _ what: String) {
        let csp = page.header("content-security-policy") ?? ""
        #expect(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "\(what): CSP \(csp)")
        #expect(page.header("x-content-type-options") == "nosniff", "\(what)")
        #expect(page.header("x-frame-options") == "DENY", "\(what)")
        #expect(page.header("referrer-policy") == "same-origin", "\(what)")
    }

    @Test("with a token, pages need a session; the token signs in; sign-out ends the session", arguments: Backend.allCases)
    func signInAndOut(_ backend: Backend) async throws {
        let gatehouse = try await Self.start(backend)
        defer { Task { _ = try? await gatehouse.stop() } }
        let browser = ConsoleClient(port: gatehouse.port)

        let anonymous = try await browser.get("/requests?range=7d")
        #expect(anonymous.status == 303 && anonymous.location == "/login?next=/requests%3Frange%3D7d")
        Self.expectSecurityHeaders(anonymous, "redirect")
        let form = try await browser.get("/login")
        #expect(form.status == 200 && form.html.contains("Sign in to Gatehouse"))
        #expect(!form.html.contains("flash error") && !form.html.contains("nil"), "a fresh sign-in form shows no error box")
        Self.expectSecurityHeaders(form, "login page")

        let wrong = try await browser.post("/login", form: [("email", ""), ("password", "not-the-token")], csrfFrom: "/login")
        #expect(wrong.status == 401 && wrong.html.contains("Wrong email or password"))
        #expect(browser.cookie("gatehouse-session") == nil)
        let unknown = try await browser.post("/login", form: [("email", "nobody@example.com"), ("password", "whatever-password")], csrfFrom: "/login")
        #expect(unknown.status == 401 && unknown.html.contains("Wrong email or password"), "an unknown email reads like a wrong password")

        let signedIn = try await browser.post("/login", form: [("email", ""), ("password", Self.token), ("next", "/spend?range=1h")], csrfFrom: "/login")
        #expect(signedIn.status == 303 && signedIn.location == "/spend?range=1h")
        let setCookie = signedIn.headers.filter { $0.0.lowercased() == "set-cookie" }.map(\.1).joined(separator: "\n")
        #expect(setCookie.contains("gatehouse-session=") && setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict"))
        #expect(!setCookie.contains("Secure"), "plain HTTP: a Secure cookie would never come back")
        #expect(!signedIn.html.contains(Self.token) && !setCookie.contains(Self.token), "the token is never echoed")

        let overview = try await browser.get("/")
        #expect(overview.status == 200 && overview.html.contains("admin-token · admin") && overview.html.contains("Requests"))
        // A link from elsewhere must not put its words in the console's own banner (phishing).
        let planted = try await browser.get("/?error=Your%20session%20expired%2C%20sign%20in%20at%20evil.example",
                                            headers: [("Referer", "https://mail.example/inbox")])
        #expect(planted.status == 200 && !planted.html.contains("evil.example"), "a flash message from a foreign link")
        let ownFlash = try await browser.get("/?ok=Key%20created", headers: [("Referer", "http://127.0.0.1:\(gatehouse.port)/keys/new")])
        #expect(ownFlash.html.contains("Key created"), "the console's own redirect after a form keeps its message")
        Self.expectSecurityHeaders(overview, "overview")
        #expect(!overview.html.contains(Self.token))

        let out = try await browser.post("/logout", form: [])
        #expect(out.status == 303 && out.location == "/login")
        let after = try await browser.get("/")
        #expect(after.status == 303, "the session is gone from the store, not only from the browser")
    }

    @Test("a stolen or made-up cookie, a foreign next, and a form without its token get nowhere")
    func hostileSignIns() async throws {
        let gatehouse = try await Self.start(.sqlite)
        defer { Task { _ = try? await gatehouse.stop() } }
        let browser = ConsoleClient(port: gatehouse.port)
        let forged = try await browser.get("/", headers: [("Cookie", "gatehouse-session=" + String(repeating: "A", count: 43))])
        #expect(forged.status == 303)
        let huge = try await browser.get("/", headers: [("Cookie", "gatehouse-session=" + String(repeating: "A", count: 5000))])
        #expect(huge.status == 303)

        let noToken = try await browser.post("/login", form: [("email", ""), ("password", Self.token)], csrfFrom: "/login", includeCSRF: false)
        #expect(noToken.status == 403 && browser.cookie("gatehouse-session") == nil, "sign-in without the form's CSRF token")

        for next in ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"] {
            let fresh = ConsoleClient(port: gatehouse.port)
            let page = try await fresh.post("/login", form: [("email", ""), ("password", Self.token), ("next", next)], csrfFrom: "/login")
            #expect(page.status == 303 && page.location == "/", "next=\(next) must stay on the console")
        }

        let signedIn = ConsoleClient(port: gatehouse.port)
        try await signedIn.signIn(password: Self.token)
        let noCSRF = try await signedIn.post("/logout", form: [], includeCSRF: false)
        #expect(noCSRF.status == 403)
        let crossSite = try await signedIn.post("/logout", form: [], headers: [("Origin", "https://evil.example")])
        #expect(crossSite.status == 403, "a form posted from another origin")
        #expect(try await signedIn.get("/").status == 200, "refused sign-outs changed nothing")
        // Guessing is throttled (last: the failures also count against this client's address): after 10 failures for one email the form answers 429 without checking.
        let guesser = ConsoleClient(port: gatehouse.port)
        var statuses: [Int] = []
        for _ in 0..<11 {
            statuses.append(try await guesser.post("/login", form: [("email", "ada@example.com"), ("password", "guess-guess-guess")], csrfFrom: "/login").status)
        }
        #expect(statuses.prefix(10).allSatisfy { $0 == 401 } && statuses.last == 429, "\(statuses)")

    }

    @Test("without a token the console is open, says so, and serves its assets with ETags")
    func openConsole() async throws {
        let gatehouse = try await Self.start(.sqlite, token: nil)
        defer { Task { _ = try? await gatehouse.stop() } }
        let browser = ConsoleClient(port: gatehouse.port)
        let overview = try await browser.get("/")
        #expect(overview.status == 200 && overview.html.contains("Open console."))
        Self.expectSecurityHeaders(overview, "open overview")
        #expect(try await browser.get("/login").location == "/")

        // Admin-only records stay behind the token, as the admin API does without one.
        for path in ["/accounts", "/audit", "/keys"] {
            let page = try await browser.get(path)
            #expect(page.status == 403 && page.html.contains("GATEHOUSE_ADMIN_TOKEN"), "\(path) in open mode answered \(page.status)")
        }
        // DNS rebinding: a page under another site's name that resolves to 127.0.0.1 reads nothing.
        let rebound = try await browser.get("/", headers: [("Host", "attacker.example:\(gatehouse.port)")])
        #expect(rebound.status == 403 && !rebound.html.contains("Requests"), "open console served to Host attacker.example")
        // A doubled slash must not turn the page's own links into links to another host.
        let doubled = try await browser.get("//uptime?custom=1")
        #expect(!doubled.html.contains("href=\"//") && !doubled.html.contains("action=\"//"), "protocol-relative links on //uptime")
        let css = try await browser.get("/assets/console.css")
        #expect(css.status == 200 && css.header("content-type")?.hasPrefix("text/css") == true)
        let etag = try #require(css.header("etag"))
        #expect(try await browser.get("/assets/console.css", headers: [("If-None-Match", etag)]).status == 304)
        #expect(try await browser.get("/assets/../gatehouse.yaml").status == 404)
        #expect(try await browser.get("/assets/nope.js").status == 404)
    }
}
