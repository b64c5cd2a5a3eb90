import Foundation
import GatehouseTestSupport
import Testing

/// `gatehouse healthcheck` as a container runtime runs it: next to the server, with the server's
/// own environment and configuration, through the real binary.
@Suite struct HealthcheckEndToEndTests {
    /// A stand-in server on 127.0.0.1: `redirect` answers every GET with a 302 to `target`,
    /// `hang` never answers. It prints each request's Authorization header.
    static let standIn = """
        import http.server, sys, time
        mode, target = sys.argv[1], sys.argv[2]
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                print("request", self.path, "authorization=" + str(self.headers.get("Authorization")), flush=True)
                if mode == "hang":
                    time.sleep(60)
                    return
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()
            def log_message(self, *args):
                pass
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        print("port", server.server_address[1], flush=True)
        server.serve_forever()
        """

    static func startStandIn(_ mode: String, target: String = "") async throws -> (ChildProcess, Int) {
        let child = try ChildProcess(executable: try TestEnvironment.python, arguments: ["-c", standIn, mode, target])
        let line = try await child.waitForLine(timeout: .seconds(20)) { $0.hasPrefix("port ") }
        return (child, Int(line.dropFirst("port ".count)) ?? 0)
    }

    /// A redirect is not health, even to a healthy server; the admin token is never sent.
    @Test func aRedirectIsUnhealthyAndNoTokenIsSent() async throws {
        let gatehouse = try await GatehouseProcess.start()
        defer { Task { _ = try? await gatehouse.stop() } }
        let (standIn, port) = try await Self.startStandIn("redirect", target: gatehouse.baseURL + "/health")
        defer { Task { _ = try? await standIn.stop(signal: SIGKILL) } }
        let result = try await CLIEndToEndTests.run(["healthcheck", "--url", "http://127.0.0.1:\(port)"],
                                                    environment: ["GATEHOUSE_ADMIN_TOKEN": "admin-token-never-sent-0123456789"])
        #expect(result.status == 1 && result.output.contains("302"), "\(result.output)")
        #expect(standIn.output.contains { $0.hasPrefix("request /health authorization=None") }, "\(standIn.output)")
        #expect(!standIn.output.joined().contains("admin-token-never-sent"))
    }

    /// The target comes from the configuration `serve` reads (the file's `port:`, a wildcard
    /// host probed on loopback), not from GATEHOUSE_URL, which may name the load balancer.
    @Test func theConfigurationNamesTheTarget() async throws {
        let port = try CLIEndToEndTests.closedPort()
        let gatehouse = try await GatehouseProcess.start(extraArguments: ["--port", "\(port)"])
        defer { Task { _ = try? await gatehouse.stop() } }
        #expect(gatehouse.port == port)
        let config = try TestEnvironment.temporaryDirectory().appendingPathComponent("gatehouse.yaml")
        try "host: 0.0.0.0\nport: \(port)\n".write(to: config, atomically: true, encoding: .utf8)
        let elsewhere = "http://127.0.0.1:\(try CLIEndToEndTests.closedPort())"
        let healthy = try await CLIEndToEndTests.run(["healthcheck", "--path", "/ready"],
                                                     environment: ["GATEHOUSE_CONFIG": config.path, "GATEHOUSE_URL": elsewhere])
        #expect(healthy.status == 0 && healthy.output.contains("http://127.0.0.1:\(port)/ready answered 200"), "\(healthy.output)")
        // --url still wins.
        let explicit = try await CLIEndToEndTests.run(["healthcheck", "--url", elsewhere, "--config", config.path])
        #expect(explicit.status == 1, "\(explicit.output)")
    }

    /// A server that accepts and never answers is unhealthy after the check's own 3 s read
    /// deadline, which the message names. (No wall-clock bound here: under a loaded CI run the
    /// debug binary's start alone took 10 s; the generous bound only tells a deadline from a hang.)
    @Test func aSilentServerIsUnhealthyAfterTheDefaultTimeout() async throws {
        let (standIn, port) = try await Self.startStandIn("hang")
        defer { Task { _ = try? await standIn.stop(signal: SIGKILL) } }
        let result = try await CLIEndToEndTests.run(["healthcheck", "--url", "http://127.0.0.1:\(port)"])
        #expect(result.status == 1, "\(result.output)")
        #expect(result.output.contains("did not answer within 3 s"), "\(result.output)")
        #expect(result.elapsed < .seconds(60), "\(result.elapsed)")
    }

    /// With `tls_cert_file` set the server speaks only HTTPS, and so does the check.
    @Test func aTLSServerIsCheckedOverHTTPS() async throws {
        let pki = try await TestPKI.make()
        try await pki.issue(commonName: "gatehouse-health", serial: "2001")
        let port = try CLIEndToEndTests.closedPort()
        let gatehouse = try await GatehouseProcess.start(yaml: "tls_cert_file: \(pki.certificateFile.path)\ntls_key_file: \(pki.keyFile.path)\n",
                                                         extraArguments: ["--port", "\(port)"])
        defer { Task { _ = try? await gatehouse.stop() } }
        let result = try await CLIEndToEndTests.run(["healthcheck"], environment: [
            "GATEHOUSE_PORT": "\(port)", "GATEHOUSE_TLS_CERT_FILE": pki.certificateFile.path, "GATEHOUSE_TLS_KEY_FILE": pki.keyFile.path,
        ])
        #expect(result.status == 0 && result.output.contains("https://127.0.0.1:\(port)/health answered 200"), "\(result.output)")
    }
}
