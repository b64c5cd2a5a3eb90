import Foundation
import GatehouseCore
import GatehouseHTTP
import GatehouseServer
import GatehouseTestSupport
import Logging
import Testing

/// The admin token is decided on the route that runs: every registered route, every spelling of
/// its path, with no token and with a wrong one.
@Suite("Admin token on every route", .serialized)
struct AdminAuthEndToEndTests {
    static let token = "admin-secret-token-for-tests"

    /// A server built in process (so the test can read its route table), on a free port.
    struct Running {
        var server: GatehouseServer
        var port: Int
        var task: Task<Void, any Error>
        func stop() async { task.cancel(); _ = try? await task.value }
    }

    static func start(adminToken: String?) async throws -> Running {
        var config = GatehouseConfig()
        config.port = 0
        config.dataDirectory = try TestEnvironment.temporaryDirectory().path
        config.controls.adminToken = adminToken
        let portBox = PortBox()
        var logger = Logger(label: "auth-test")
        logger.logLevel = .warning
        let server = try await GatehouseServer.build(config: config, logger: logger) { portBox.set($0) }
        let task = Task { try await server.run(handleSignals: false) }
        do {
            let port = try await Poll.until("the in-process server to listen", timeout: .seconds(30), every: .milliseconds(20)) { portBox.get() }
            return Running(server: server, port: port, task: task)
        } catch {
            task.cancel()
            throw error
        }
    }

    final class PortBox: @unchecked Sendable {
        private let lock = NSLock()
        private var port: Int?
        func set(_ value: Int) { lock.withLock { port = value } }
        func get() -> Int? { lock.withLock { port } }
    }

    /// The route's pattern with a value in each parameter.
    static func concrete(_ pattern: String) -> String {
        pattern.split(separator: "/", omittingEmptySubsequences: false).map { part in
            part.hasPrefix("{") || part.hasPrefix(":") ? "probe-value" : String(part)
        }.joined(separator: "/")
    }

    /// Spellings of one path that an attacker would try.
    static func variants(_ path: String) -> [String] {
        let trimmed = path.hasPrefix("/") ? String(path.dropFirst()) : path
        var list = [path, "/" + path, path + "/", path + "//", "/./" + trimmed, path.uppercased(), path + "?x=1", path + "#f"]
        let parts = trimmed.split(separator: "/").map(String.init)
        for i in 1..<max(parts.count, 1) {
            list.append("/" + parts[..<i].joined(separator: "/") + "//" + parts[i...].joined(separator: "/"))
            list.append("/" + parts[..<i].joined(separator: "/") + "/./" + parts[i...].joined(separator: "/"))
            list.append("/" + parts[..<i].joined(separator: "/") + "%2F" + parts[i...].joined(separator: "/"))
            list.append("/" + parts[..<i].joined(separator: "/") + "%2f" + parts[i...].joined(separator: "/"))
        }
        return list
    }

    @Test("with a token set, no spelling of a team or admin route answers without it")
    func everyRouteEverySpelling() async throws {
        let running = try await Self.start(adminToken: Self.token)
        defer { Task { await running.stop() } }
        #expect(running.server.routesWithoutAccess.isEmpty, "routes added around APIRouter: \(running.server.routesWithoutAccess)")
        let routes = running.server.routes
        #expect(routes.contains { $0.path.contains("api/v1/keys") && $0.access == .admin })
        var failures: [String] = []
        // The console's public pages: its sign-in form, its assets and the public status page.
        let publicConsole: Set<String> = ["GET /login", "POST /login", "GET /assets/{name}", "GET /status"]
        for route in routes where route.access != .open && !publicConsole.contains("\(route.method) \(route.path)") {
            let path = Self.concrete(route.path)
            // The console signs people in itself: without a session a page redirects to the
            // sign-in form (303) and a form is refused (403); never a page or a change.
            let refusals: Set<Int> = route.access == .console ? [303, 400, 401, 403, 404, 405] : [400, 401, 404, 405]
            for target in Self.variants(path) {
                for auth in [[], [("Authorization", "Bearer wrong-token")], [("Authorization", "Bearer ")], [("Authorization", Self.token)]] {
                    let answer = try await RawHTTP.send(port: running.port, method: route.method, target: target,
                                                        headers: auth + [("Content-Type", "application/json")],
                                                        body: route.method == "GET" || route.method == "DELETE" ? nil : "{}")
                    // 401 from the check, or a 4xx from routing (no route has that spelling);
                    // never an answer from the route itself.
                    if !refusals.contains(answer.status) || (answer.status == 303 && !answer.text.contains("Location: /login")) {
                        failures.append("\(route) as \(route.method) \(target) with \(auth.first?.1 ?? "no token") → \(answer.status)")
                    }
                }
            }
        }
        #expect(failures.isEmpty, "\(failures.count) answers without the token:\n\(failures.prefix(30).joined(separator: "\n"))")
        // The right token still works, on each GET route (and no route wrongly says 401).
        for route in routes where route.method == "GET" && !route.path.contains("tail") {
            let answer = try await RawHTTP.send(port: running.port, method: "GET", target: Self.concrete(route.path),
                                                headers: [("Authorization", "Bearer \(Self.token)")])
            #expect(answer.status != 401 && answer.status != 403, "\(route) refused the right token")
        }
        // Open routes stay open.
        for target in ["/health", "/api/v1/health", "/api/v1/ai/health", "/ready"] {
            let answer = try await RawHTTP.send(port: running.port, method: "GET", target: target)
            #expect(answer.status == 200, "\(target) → \(answer.status)")
        }
        await running.stop()
    }

    @Test("the doubled slash that walked past the token: list keys, mint one, turn maintenance on")
    func doubledSlashRegression() async throws {
        let running = try await Self.start(adminToken: Self.token)
        defer { Task { await running.stop() } }
        let list = try await RawHTTP.send(port: running.port, method: "GET", target: "//api/v1/keys")
        #expect(list.status == 401)
        let mint = try await RawHTTP.send(port: running.port, method: "POST", target: "//api/v1/keys",
                                          headers: [("Content-Type", "application/json")], body: #"{"name":"x"}"#)
        #expect(mint.status == 401)
        #expect(!mint.text.contains("gh-"), "a key was minted: \(mint.text)")
        let maintenance = try await RawHTTP.send(port: running.port, method: "POST", target: "//api/v1/switches",
                                                 headers: [("Content-Type", "application/json")], body: #"{"name":"maintenance","enabled":true}"#)
        #expect(maintenance.status == 401)
        for target in ["/api//v1/requests", "//api/v1/audit", "//api/v1/logs", "//api/v1/ai/usage"] {
            let answer = try await RawHTTP.send(port: running.port, method: "GET", target: target)
            #expect(answer.status == 401, "\(target) → \(answer.status)")
        }
        // With the token, the same spelling reaches the route.
        let allowed = try await RawHTTP.send(port: running.port, method: "GET", target: "//api/v1/keys",
                                             headers: [("Authorization", "Bearer \(Self.token)")])
        #expect(allowed.status == 200)
        await running.stop()
    }

    @Test("without a token, admin routes are off in every spelling; team routes stay open")
    func noTokenAdminOff() async throws {
        let running = try await Self.start(adminToken: nil)
        defer { Task { await running.stop() } }
        for route in running.server.routes where route.access == .admin {
            for target in Self.variants(Self.concrete(route.path)) {
                let answer = try await RawHTTP.send(port: running.port, method: route.method, target: target,
                                                    headers: [("Content-Type", "application/json")],
                                                    body: route.method == "GET" || route.method == "DELETE" ? nil : "{}")
                #expect([400, 403, 404, 405].contains(answer.status), "\(route) as \(target) → \(answer.status)")
            }
        }
        let usage = try await RawHTTP.send(port: running.port, method: "GET", target: "/api/v1/ai/usage")
        #expect(usage.status == 200)
        await running.stop()
    }
}
