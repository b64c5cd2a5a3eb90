import Foundation
import GatehouseTestSupport
import Testing

/// The console's sign-in throttle behind a reverse proxy: every client arrives from the proxy's
/// address, so with `gateway.trust_forwarded_for` the throttle counts per forwarded client (as
/// the gateway's `ip` rate-limit scope does), and without it the header changes nothing.
@Suite struct ConsoleSignInBehindProxyTests {
    static let token = "console-admin-token-0123456789abcdef"

    /// Signs in with the admin token (or a wrong one) from a fresh browser, claiming `forwardedFor`.
    static func signIn(_ port: Int, password: String, forwardedFor: String) async throws -> Int {
        try await ConsoleClient(port: port).post("/login", form: [("email", ""), ("password", password), ("next", "/")], csrfFrom: "/login",
                                                 headers: [("X-Forwarded-For", forwardedFor + ", 10.0.0.2")]).status
    }

    @Test func trustedForwardedForThrottlesEachClientNotTheProxy() async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: "gateway:\n  trust_forwarded_for: true\n",
                                                         environment: ["GATEHOUSE_ADMIN_TOKEN": Self.token])
        defer { Task { _ = try? await gatehouse.stop() } }
        var guesses: [Int] = []
        for _ in 0..<12 { guesses.append(try await Self.signIn(gatehouse.port, password: "not-the-admin-token", forwardedFor: "203.0.113.7")) }
        #expect(guesses.prefix(10).allSatisfy { $0 == 401 } && guesses.suffix(2).allSatisfy { $0 == 429 }, "\(guesses)")
        #expect(try await Self.signIn(gatehouse.port, password: Self.token, forwardedFor: "203.0.113.7") == 429, "the guessing client stays throttled")
        #expect(try await Self.signIn(gatehouse.port, password: Self.token, forwardedFor: "198.51.100.9") == 303,
                "another client behind the same proxy signs in")
    }

    @Test func untrustedForwardedForIsIgnored() async throws {
        let gatehouse = try await GatehouseProcess.start(environment: ["GATEHOUSE_ADMIN_TOKEN": Self.token])
        defer { Task { _ = try? await gatehouse.stop() } }
        // A guesser that claims a new address each time is still counted by its socket's.
        var guesses: [Int] = []
        for attempt in 0..<12 {
            guesses.append(try await Self.signIn(gatehouse.port, password: "not-the-admin-token", forwardedFor: "203.0.113.\(attempt + 1)"))
        }
        #expect(guesses.prefix(10).allSatisfy { $0 == 401 } && guesses.suffix(2).allSatisfy { $0 == 429 }, "\(guesses)")
        #expect(try await Self.signIn(gatehouse.port, password: Self.token, forwardedFor: "198.51.100.9") == 429)
    }
}
