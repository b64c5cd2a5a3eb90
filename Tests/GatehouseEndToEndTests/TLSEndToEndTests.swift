import AsyncHTTPClient
import Foundation
import GatehouseTestSupport
import NIOCore
import NIOSSL
import Testing

/// `tls_cert_file` / `tls_key_file`: the real binary serving HTTPS on a real port, with
/// certificates `openssl` makes for each test and clients that trust only that test's CA.
@Suite(.serialized) struct TLSEndToEndTests {
    @Test func servesHTTPSAndHTTP2AndReloadsItsCertificateOnSIGHUP() async throws {
        let mock = try await MockUpstream.start()
        let (pki, gatehouse) = try await Self.startHTTPS(commonName: "gatehouse-one", serial: "1001", yaml: upstreamConfig(mock))
        let base = "https://127.0.0.1:\(gatehouse.port)"
        #expect(gatehouse.child.output.contains { $0.contains("gatehouse is listening") && $0.contains(base) }, "the listening line names https")
        let client = try pki.client()

        // A Swift client (AsyncHTTPClient, which offers h2 by ALPN) through the gateway to the upstream.
        let health = try await client.execute(HTTPClientRequest(url: base + "/health"), timeout: .seconds(30))
        #expect(health.status == .ok)
        #expect(health.version.major == 2, "HTTP/2 is negotiated by ALPN: \(health.version)")
        let chat = try await Self.chat(client, base, model: "up/gpt-4o-mini", stream: false)
        #expect(chat.status == .ok)
        #expect(String(buffer: try await chat.body.collect(upTo: 1 << 20)).contains("chat.completion"))

        // The real OpenAI SDK over httpx, verifying against the CA: a call and a streamed call.
        let sdk = try await Self.python("openai", base: base, ca: pki.caFile, model: "up/gpt-4o-mini")
        #expect(sdk["ok"] as? Bool == true, "\(sdk)")
        #expect(!((sdk["text"] as? String) ?? "").isEmpty && !((sdk["stream_text"] as? String) ?? "").isEmpty, "\(sdk)")
        #expect((int(sdk["chunks"]) ?? 0) > 1, "\(sdk)")

        // curl over HTTP/2: a streamed (SSE) completion arrives whole.
        let curl = try await ProcessRunner.runAsync("/usr/bin/curl", [
            "-sS", "-N", "--http2", "--cacert", pki.caFile.path, "-H", "Content-Type: application/json", "-H", "Authorization: Bearer sk-test",
            "-d", #"{"model":"up/gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
            "-w", "\nhttp_version=%{http_version}", base + "/v1/chat/completions"])
        #expect(curl.status == 0 && curl.output.contains("data: [DONE]") && curl.output.hasSuffix("http_version=2"), "\(curl.output)")

        // Plain HTTP to the TLS port is refused without an answer, and the server serves on.
        await #expect(throws: (any Error).self) { _ = try await HTTP.get("http://127.0.0.1:\(gatehouse.port)/health") }
        let raw = try await ProcessRunner.runAsync("/usr/bin/curl", ["-sS", "--max-time", "10", "http://127.0.0.1:\(gatehouse.port)/health"])
        #expect(raw.status != 0 && raw.status != 28, "curl got an answer or waited for one: \(raw)")
        #expect(try await client.execute(HTTPClientRequest(url: base + "/health"), timeout: .seconds(30)).status == .ok)
        #expect(gatehouse.child.isRunning)
        #expect(try await Self.peer(base, pki)["serial"] as? String == "1001")

        // A slow stream (about 3 s: 14 events 200 ms apart) opened before the reload finishes on
        // the connection it started on.
        let slow = try await Self.chat(client, base, model: "up/gpt-4o-mini", stream: true, headers: [("x-mock-chunk-delay-ms", "200")])
        var events = slow.body.makeAsyncIterator()
        var streamed = String(buffer: try #require(try await events.next()))

        // New certificate (new serial and name) in place, then SIGHUP: new connections get it.
        try await pki.issue(commonName: "gatehouse-two", serial: "2002")
        kill(gatehouse.child.pid, SIGHUP)
        _ = try await gatehouse.child.waitForLine(timeout: .seconds(20)) { $0.contains("TLS certificate reloaded") && $0.contains("gatehouse-two") }
        let renewed = try await Self.peer(base, pki)
        #expect(renewed["serial"] as? String == "2002" && renewed["cn"] as? String == "gatehouse-two", "\(renewed)")
        #expect(renewed["version"] as? String == "TLSv1.3" && renewed["alpn"] as? String == "h2", "\(renewed)")
        while let chunk = try await events.next() { streamed += String(buffer: chunk) }
        #expect(streamed.contains("data: [DONE]"), "the stream opened before the reload was cut: \(streamed)")

        // A broken key file: the reload fails, says so without the file's contents, is counted,
        // and the certificate in use stays.
        let keyText = try String(contentsOf: pki.keyFile, encoding: .utf8)
        try "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n".write(to: pki.keyFile, atomically: true, encoding: .utf8)
        kill(gatehouse.child.pid, SIGHUP)
        let failed = try await gatehouse.child.waitForLine(timeout: .seconds(20)) { $0.contains("TLS certificate reload failed") }
        #expect(failed.contains("tls_key_file") && failed.contains(pki.keyFile.path), "\(failed)")
        #expect(try await Self.peer(base, pki)["serial"] as? String == "2002", "a failed reload keeps the certificate in use")
        let keyBody = keyText.split(separator: "\n").dropFirst().first.map(String.init) ?? "unused"
        #expect(!gatehouse.child.output.contains { $0.contains("PRIVATE KEY") || $0.contains(keyBody) || $0.contains("bm90IGEga2V5") },
                "no key material in the log")
        let metrics = String(buffer: try await client.execute(HTTPClientRequest(url: base + "/metrics"), timeout: .seconds(30)).body.collect(upTo: 1 << 22))
        #expect(metrics.contains(#"gatehouse_tls_reloads_total{result="failed"} 1"#) && metrics.contains(#"gatehouse_tls_reloads_total{result="ok"} 1"#),
                "\(metrics.split(separator: "\n").filter { $0.contains("tls") })")

        #expect(gatehouse.child.isRunning)
        try await client.shutdown()
        #expect(try await gatehouse.stop() == 0)
        try await mock.stop()
    }

    /// check-config (and serve) check the pair before anything listens: both or neither, the
    /// files there and readable, PEM that parses, a key that belongs to the certificate; never
    /// printing the key.
    @Test func checkConfigValidatesTheCertificateAndKey() async throws {
        let pki = try await TestPKI.make()
        try await pki.issue(commonName: "gatehouse-check", serial: "3003")
        let directory = pki.directory
        let otherKey = directory.appendingPathComponent("other.key")
        _ = try await TestPKI.openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", otherKey.path])
        let encryptedKey = directory.appendingPathComponent("encrypted.key")
        _ = try await TestPKI.openssl(["pkey", "-in", pki.keyFile.path, "-aes256", "-passout", "pass:secret", "-out", encryptedKey.path])
        let notPEM = directory.appendingPathComponent("not.pem")
        try "hello".write(to: notPEM, atomically: true, encoding: .utf8)
        // A huge file (or a symlink to one) is refused before it is read, not read whole.
        let huge = directory.appendingPathComponent("huge.pem")
        try Data(("-----BEGIN CERTIFICATE-----\n" + String(repeating: "A", count: 2 << 20)).utf8).write(to: huge)
        let hugeLink = directory.appendingPathComponent("huge-link.pem")
        try FileManager.default.createSymbolicLink(at: hugeLink, withDestinationURL: huge)
        let keyText = try String(contentsOf: pki.keyFile, encoding: .utf8)
        let cert = pki.certificateFile.path, key = pki.keyFile.path

        func check(_ yaml: String, environment: [String: String] = [:]) async throws -> (status: Int32, output: String) {
            let file = directory.appendingPathComponent("gatehouse-\(UUID().uuidString).yaml")
            try yaml.write(to: file, atomically: true, encoding: .utf8)
            var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("GATEHOUSE_") }
            env.merge(environment) { $1 }
            return try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["check-config", "--config", file.path], environment: env)
        }

        let good = try await check("tls_cert_file: \(cert)\ntls_key_file: \(key)\n")
        #expect(good.status == 0 && good.output.contains("tls_cert_file: \"\(cert)\""), "\(good.output)")
        let fromEnvironment = try await check("", environment: ["GATEHOUSE_TLS_CERT_FILE": cert, "GATEHOUSE_TLS_KEY_FILE": key])
        #expect(fromEnvironment.status == 0 && fromEnvironment.output.contains("tls_key_file: \"\(key)\""), "\(fromEnvironment.output)")
        let plain = try await check("")
        #expect(plain.status == 0 && plain.output.contains("tls_cert_file: null"), "\(plain.output)")

        let cases: [(yaml: String, expected: String)] = [
            ("tls_cert_file: \(cert)\n", "tls_key_file: is required when tls_cert_file is set"),
            ("tls_key_file: \(key)\n", "tls_cert_file: is required when tls_key_file is set"),
            ("tls_cert_file: \(directory.path)/missing.pem\ntls_key_file: \(key)\n", "tls_cert_file: \(directory.path)/missing.pem does not exist"),
            ("tls_cert_file: \(directory.path)\ntls_key_file: \(key)\n", "tls_cert_file: \(directory.path) cannot be read"),
            ("tls_cert_file: \(notPEM.path)\ntls_key_file: \(key)\n", "holds no PEM certificate"),
            ("tls_cert_file: \(cert)\ntls_key_file: \(notPEM.path)\n", "tls_key_file: \(notPEM.path) holds no PEM private key"),
            ("tls_cert_file: \(cert)\ntls_key_file: \(cert)\n", "are the two files swapped?"),
            ("tls_cert_file: \(cert)\ntls_key_file: \(otherKey.path)\n", "tls_key_file: \(otherKey.path) is not the private key of the certificate in \(cert)"),
            ("tls_cert_file: \(cert)\ntls_key_file: \(encryptedKey.path)\n", "is encrypted with a passphrase"),
            ("tls_cert_file: \(hugeLink.path)\ntls_key_file: \(key)\n", "tls_cert_file: \(hugeLink.path) is larger than 1 MiB"),
            ("tls_cert_file: \(cert)\ntls_key_file: \(huge.path)\n", "tls_key_file: \(huge.path) is larger than 1 MiB"),
        ]
        for (yaml, expected) in cases {
            let refused = try await check(yaml)
            #expect(refused.status == 2 && refused.output.contains(expected), "expected \(expected):\n\(refused.output)")
            #expect(!refused.output.contains("PRIVATE KEY") && !refused.output.contains(keyText.split(separator: "\n")[1]), "key material printed")
        }

        // serve refuses the same mismatched pair before opening a store or a port.
        let directoryForServe = try TestEnvironment.temporaryDirectory()
        let serve = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, [
            "serve", "--port", "0", "--data-dir", directoryForServe.path],
            environment: ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("GATEHOUSE_") }
                .merging(["GATEHOUSE_TLS_CERT_FILE": cert, "GATEHOUSE_TLS_KEY_FILE": otherKey.path]) { $1 })
        #expect(serve.status == 2 && serve.output.contains("refusing to start") && serve.output.contains("is not the private key"), "\(serve.output)")
    }

    /// A client that connects and never starts its handshake is closed after
    /// `gateway.client_idle_timeout_seconds`: it cannot hold a socket for ever.
    @Test func silentClientIsClosedBeforeItsHandshake() async throws {
        let (pki, gatehouse) = try await Self.startHTTPS(commonName: "gatehouse-idle", serial: "4004", yaml: Self.idleAfterTwoSeconds)
        let script = """
            import socket, time
            s = socket.create_connection(("127.0.0.1", \(gatehouse.port)))
            s.settimeout(30)
            start = time.time()
            print(s.recv(1) == b"", round(time.time() - start))
            """
        let result = try await ProcessRunner.runAsync(try TestEnvironment.python, ["-c", script])
        let words = result.output.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(words.first == "True" && (1...6).contains(Int(words.last ?? "") ?? -1), "closed after the timeout: \(result.output)")
        #expect(try await Self.peer("https://127.0.0.1:\(gatehouse.port)", pki)["serial"] as? String == "4004")
        #expect(try await gatehouse.stop() == 0)
    }

    /// An HTTP/2 client that agrees on h2, sends its preface and SETTINGS and then says nothing
    /// (it answers neither the idle GOAWAY nor its PING) is closed: once idle for
    /// `gateway.client_idle_timeout_seconds`, then given as long again to answer the PING.
    @Test func silentHTTP2ClientIsClosed() async throws {
        let (pki, gatehouse) = try await Self.startHTTPS(commonName: "gatehouse-h2-idle", serial: "5005", yaml: Self.idleAfterTwoSeconds)
        let silent = try await Self.python("silent-h2", base: "https://127.0.0.1:\(gatehouse.port)", ca: pki.caFile, extra: ["--hold", "30"])
        let seconds = (silent["seconds"] as? Double) ?? -1
        #expect(silent["alpn"] as? String == "h2" && silent["closed"] as? Bool == true && (1...7).contains(seconds),
                "closed after the idle timeout and the PING's: \(silent)")
        #expect(try await Self.peer("https://127.0.0.1:\(gatehouse.port)", pki)["serial"] as? String == "5005")
        #expect(try await gatehouse.stop() == 0)
    }

    /// SIGTERM while a silent HTTP/2 client holds a connection: the HTTP drain is bounded, the
    /// process exits 0 in time, and the calls answered before it were written by the recorder's
    /// last flush (the flush interval is longer than the test, so only that flush can write them).
    @Test func sigtermWithASilentHTTP2ClientExitsAndKeepsTheRecords() async throws {
        let (pki, gatehouse) = try await Self.startHTTPS(commonName: "gatehouse-h2-stop", serial: "6006", yaml: """
            recorder:
              flush_interval_ms: 600000
            providers:
              - name: mock
                kind: mock
            """)
        defer { if gatehouse.child.isRunning { kill(gatehouse.child.pid, SIGKILL) } }
        let base = "https://127.0.0.1:\(gatehouse.port)"
        let client = try pki.client()
        for _ in 0..<5 {
            #expect(try await Self.chat(client, base, model: "mock/gpt-4o-mini", stream: false).status == .ok)
        }
        try await client.shutdown()
        let script = TestEnvironment.repositoryRoot.appendingPathComponent("Tests/Support/tls_client.py").path
        let silent = try ChildProcess(executable: try TestEnvironment.python,
                                      arguments: [script, "silent-h2", "--base-url", base, "--ca", pki.caFile.path, "--hold", "300"])
        defer { if silent.isRunning { kill(silent.pid, SIGKILL) } }
        _ = try await silent.waitForLine(timeout: .seconds(20)) { $0.contains("connected") }

        let stopStarted = ContinuousClock.now
        let status = try await gatehouse.child.stop(signal: SIGTERM, timeout: .seconds(90))
        let stopTook = ContinuousClock.now - stopStarted
        #expect(status == 0 && stopTook < .seconds(30), "SIGTERM finished with \(status) in \(stopTook)")
        #expect(gatehouse.child.output.contains { $0.contains("closing the connections still open") }, "the bound is logged")

        let data = gatehouse.dataDirectory.appendingPathComponent("data")
        let file = try #require(try FileManager.default.contentsOfDirectory(atPath: data.path).first { $0.hasSuffix(".sqlite") })
        let rows = try await ProcessRunner.runAsync("/usr/bin/sqlite3", [data.appendingPathComponent(file).path, "SELECT count(*) FROM requests;"])
        #expect(rows.output.trimmingCharacters(in: .whitespacesAndNewlines) == "5", "the answered calls are stored: \(rows.output)")
    }

    /// The console's cookies carry `Secure` when Gatehouse serves HTTPS itself, over HTTP/1.1 too
    /// (Hummingbird reports the scheme of an HTTP/1.1 request as "http" whatever the transport).
    @Test func consoleCookiesAreSecureOverHTTP1OverTLS() async throws {
        let token = "console-admin-token-0123456789abcdef"
        let (pki, gatehouse) = try await Self.startHTTPS(commonName: "gatehouse-cookies", serial: "7007", environment: ["GATEHOUSE_ADMIN_TOKEN": token])
        let result = try await Self.python("console-cookies", base: "https://127.0.0.1:\(gatehouse.port)", ca: pki.caFile,
                                           extra: ["--password", token])
        let login = (result["login_cookies"] as? [String]) ?? [], signIn = (result["signin_cookies"] as? [String]) ?? []
        #expect(int(result["login_status"]) == 200 && login.contains { $0.hasPrefix("gatehouse-csrf=") }, "\(result)")
        #expect(!login.isEmpty && login.allSatisfy { $0.contains("; Secure") }, "sign-in form over HTTP/1.1 and TLS: \(login)")
        #expect(int(result["signin_status"]) == 303 && signIn.contains { $0.hasPrefix("gatehouse-session=") }, "\(result)")
        #expect(!signIn.isEmpty && signIn.allSatisfy { $0.contains("; Secure") }, "session cookie over HTTP/1.1 and TLS: \(signIn)")
        #expect(try await gatehouse.stop() == 0)
    }

    /// Without TLS, SIGHUP has nothing to reload, and it does not stop the server either.
    @Test func hangupWithoutTLSKeepsServing() async throws {
        let gatehouse = try await GatehouseProcess.start()
        kill(gatehouse.child.pid, SIGHUP)
        _ = try await gatehouse.child.waitForLine(timeout: .seconds(20)) { $0.contains("SIGHUP: nothing to reload") }
        #expect(try await HTTP.get(gatehouse.baseURL + "/health").0 == 200)
        #expect(try await gatehouse.stop() == 0)
    }

    /// A new CA and a server certificate (`commonName`, `serial`) from it, and Gatehouse serving
    /// HTTPS with that pair and the rest of its configuration from `yaml`.
    static func startHTTPS(commonName: String, serial: String, yaml: String = "",
                           environment: [String: String] = [:]) async throws -> (pki: TestPKI, gatehouse: GatehouseProcess) {
        let pki = try await TestPKI.make()
        try await pki.issue(commonName: commonName, serial: serial)
        let gatehouse = try await GatehouseProcess.start(yaml: """
            tls_cert_file: \(pki.certificateFile.path)
            tls_key_file: \(pki.keyFile.path)
            \(yaml)
            """, environment: environment)
        return (pki, gatehouse)
    }

    static let idleAfterTwoSeconds = """
        gateway:
          client_idle_timeout_seconds: 2
        """

    static func chat(_ client: HTTPClient, _ base: String, model: String, stream: Bool,
                     headers: [(String, String)] = []) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: base + "/v1/chat/completions")
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Authorization", value: "Bearer sk-test-client-key-000")
        request.body = .bytes(ByteBuffer(string: #"{"model":"\#(model)","stream":\#(stream),"messages":[{"role":"user","content":"Hello"}]}"#))
        return try await client.execute(request, timeout: .seconds(60))
    }

    static func python(_ scenario: String, base: String, ca: URL, model: String = "mock/gpt-4o-mini", extra: [String] = []) async throws -> [String: Any] {
        let script = TestEnvironment.repositoryRoot.appendingPathComponent("Tests/Support/tls_client.py").path
        let result = try await ProcessRunner.runAsync(try TestEnvironment.python, [script, scenario, "--base-url", base, "--ca", ca.path, "--model", model] + extra)
        guard result.status == 0, let line = result.output.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
              let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw ProcessRunner.Failure(message: "tls_client \(scenario) failed (\(result.status)):\n\(result.output)")
        }
        return object
    }

    /// The certificate a new connection is shown.
    static func peer(_ base: String, _ pki: TestPKI) async throws -> [String: Any] {
        try await python("peer", base: base, ca: pki.caFile)
    }
}

/// A throwaway CA and the server certificates it signs, made with `openssl` (P-256 keys, for
/// 127.0.0.1 and localhost).
struct TestPKI {
    let directory: URL
    var caFile: URL { directory.appendingPathComponent("ca.pem") }
    var caKey: URL { directory.appendingPathComponent("ca.key") }
    var certificateFile: URL { directory.appendingPathComponent("server.pem") }
    var keyFile: URL { directory.appendingPathComponent("server.key") }

    static func make() async throws -> TestPKI {
        let pki = TestPKI(directory: try TestEnvironment.temporaryDirectory())
        try await openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                           "-subj", "/CN=Gatehouse Test CA", "-keyout", pki.caKey.path, "-out", pki.caFile.path])
        return pki
    }

    /// A new key and certificate, written elsewhere and renamed over the served files (as a
    /// renewal tool does), so the server never reads half a file.
    func issue(commonName: String, serial: String) async throws {
        let work = directory.appendingPathComponent("issue-\(serial)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let key = work.appendingPathComponent("server.key"), request = work.appendingPathComponent("server.csr")
        let certificate = work.appendingPathComponent("server.pem"), extensions = work.appendingPathComponent("ext.cnf")
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n".write(to: extensions, atomically: true, encoding: .utf8)
        try await Self.openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=\(commonName)",
                                "-keyout", key.path, "-out", request.path])
        try await Self.openssl(["x509", "-req", "-in", request.path, "-CA", caFile.path, "-CAkey", caKey.path, "-set_serial", "0x" + serial,
                                "-days", "2", "-extfile", extensions.path, "-out", certificate.path])
        for (from, to) in [(key, keyFile), (certificate, certificateFile)] {
            guard rename(from.path, to.path) == 0 else { throw ProcessRunner.Failure(message: "rename \(from.path) failed: \(errno)") }
        }
    }

    /// An HTTP client that trusts only this CA.
    func client() throws -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile.path))
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .init(tlsConfiguration: tls))
    }

    @discardableResult
    static func openssl(_ arguments: [String]) async throws -> String {
        let result = try await ProcessRunner.runAsync("/usr/bin/openssl", arguments)
        guard result.status == 0 else { throw ProcessRunner.Failure(message: "openssl \(arguments.first ?? "") failed:\n\(result.output)") }
        return result.output
    }
}
