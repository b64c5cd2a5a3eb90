import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseGateway
import GatehouseHTTP
@testable import GatehouseServer
import GatehouseStorage
import GatehouseTestSupport
import Hummingbird
import Logging
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Regression tests for issue 9, defects 5, 8, 9 and part of 10: a port that cannot be bound,
/// unbounded and unescaped metric labels, ingest parsing on the event loops, slow clients, and
/// malformed bodies answered with the wrong status.
@Suite("Hardening", .serialized)
struct HardeningEndToEndTests {
    // MARK: - Defect 5: a port that cannot be bound

    /// `serve` on a port another process listens on exits 1 at once and says so.
    @Test func busyPortExitsWithAClearError() async throws {
        let (fd, port) = try Self.listeningSocket()
        defer { close(fd) }
        let (status, output) = try await Self.serveUntilExit(host: "127.0.0.1", port: port)
        #expect(status == 1, "exit status \(status.map(String.init) ?? "none: still running after 20 s")\n\(output.suffix(20).joined(separator: "\n"))")
        #expect(output.contains { $0.contains("port \(port) is already in use") }, "\(output.suffix(20).joined(separator: "\n"))")
    }

    /// An address that is not this machine's (TEST-NET-1) cannot be bound: exit 1 with a clear error.
    @Test func unbindableAddressExitsWithAClearError() async throws {
        let (status, output) = try await Self.serveUntilExit(host: "192.0.2.1", port: 18_080)
        #expect(status == 1, "exit status \(status.map(String.init) ?? "none: still running after 20 s")\n\(output.suffix(20).joined(separator: "\n"))")
        #expect(output.contains { $0.contains("cannot listen on 192.0.2.1:18080") }, "\(output.suffix(20).joined(separator: "\n"))")
    }

    /// A listening TCP socket on 127.0.0.1 and the port the kernel gave it.
    static func listeningSocket() throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ProcessRunner.Failure(message: "socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress -> Bool in
                bind(fd, socketAddress, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, socketAddress, &length) == 0
            }
        }
        guard bound else {
            close(fd)
            throw ProcessRunner.Failure(message: "could not listen on a free port")
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// Runs `gatehouse serve` on `host:port` and waits up to 20 s for it to exit; nil status when it did not.
    static func serveUntilExit(host: String, port: Int) async throws -> (Int32?, [String]) {
        let directory = try TestEnvironment.temporaryDirectory()
        let configFile = directory.appendingPathComponent("gatehouse.yaml")
        try "".write(to: configFile, atomically: true, encoding: .utf8)
        var env = ProcessInfo.processInfo.environment
        for key in env.keys where key.hasPrefix("GATEHOUSE_") { env[key] = nil }
        let child = try ChildProcess(executable: TestEnvironment.gatehouseBinary,
                                     arguments: ["serve", "--host", host, "--port", String(port), "--data-dir", directory.appendingPathComponent("data").path,
                                                 "--config", configFile.path, "--log-format", "json"],
                                     environment: env)
        do {
            try await Poll.until("gatehouse serve on \(host):\(port) to exit", timeout: .seconds(20), every: .milliseconds(50)) { !child.isRunning }
        } catch is Poll.TimedOut {
            _ = try? await child.stop(signal: SIGKILL, timeout: .seconds(5))
            return (nil, child.output)
        }
        // `stop` returns once the reader thread has taken the last lines.
        return (try await child.stop(), child.output)
    }

    // MARK: - Defect 8: metric labels

    /// 500 distinct `mock/<name>` models leave a bounded `/metrics`; names with NUL, U+00FF,
    /// quotes and newlines are escaped so `promtool check metrics` still passes.
    @Test func metricLabelsAreBoundedAndEscaped() async throws {
        let gatehouse = try await GatehouseProcess.start()
        // Odd names first, while there is still room for new label values.
        let odd = #"mock/odd\u0000nul\u00ffhigh\"quote\nline\\slash"#
        let oddReply = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions",
                                           json: #"{"model":"\#(odd)","messages":[{"role":"user","content":"hi"}]}"#)
        #expect(oddReply.status == 200, "\(String(decoding: oddReply.body, as: UTF8.self))")
        // Raw bytes that are not UTF-8 inside the model name.
        let raw = Array(#"{"model":"mock/raw"#.utf8) + [0xFF, 0xFE, 0x00] + Array(#"bytes","messages":[{"role":"user","content":"hi"}]}"#.utf8)
        _ = try await HTTP.send(gatehouse.baseURL + "/v1/chat/completions", headers: [("content-type", "application/json")], body: Data(raw))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for i in stride(from: worker, to: 500, by: 8) {
                        let reply = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions",
                                                        json: #"{"model":"mock/flood-\#(i)","messages":[{"role":"user","content":"x"}]}"#)
                        #expect(reply.status == 200)
                    }
                }
            }
            try await group.waitForAll()
        }
        let (_, body) = try await HTTP.get(gatehouse.baseURL + "/metrics")
        #expect(body.count < 1_000_000, "/metrics is \(body.count) bytes after 500 distinct models")
        #expect(!body.contains(0) && !body.contains(0xFF), "raw NUL or 0xFF bytes in /metrics")
        let text = String(decoding: body, as: UTF8.self)
        #expect(String(validating: body, as: UTF8.self) != nil, "/metrics is not valid UTF-8")
        let models = Set(text.split(separator: "\n").filter { $0.hasPrefix("gatehouse_ai_requests_total{") }.compactMap { line -> Substring? in
            guard let start = line.range(of: #"model=""#)?.upperBound else { return nil }
            var end = start
            while end < line.endIndex && line[end] != "\"" { end = line[end] == "\\" ? line.index(end, offsetBy: 2) : line.index(after: end) }
            return line[start..<end]
        })
        #expect(models.count <= 201, "\(models.count) distinct model label values")
        #expect(models.contains("other"), "excess models should collapse into model=\"other\"")
        #expect(models.contains { $0.contains(#"high\"quote\nline\\slash"#) }, "escaped odd name missing: \(models.filter { $0.hasPrefix("odd") })")
        let controlLines = text.split(separator: "\n").filter { $0.unicodeScalars.contains { $0.value < 0x20 && $0 != "\t" } }
        #expect(controlLines.isEmpty, "\(controlLines.count) lines with control characters, such as \(controlLines.first?.debugDescription ?? "")")
        let result = try await ProcessRunner.runAsync(try TestEnvironment.promtool, ["check", "metrics"], input: body)
        #expect(result.status == 0, "promtool: \(result.output.prefix(2000))")
        try await gatehouse.stop()
    }

    /// `metrics.require_token: true` puts `/metrics` behind the admin token; off by default.
    @Test func metricsFollowTheAdminTokenWhenRequired() async throws {
        let token = "metrics-admin-token-0123456789"
        let open = try await GatehouseProcess.start(environment: ["GATEHOUSE_ADMIN_TOKEN": token])
        #expect(try await HTTP.get(open.baseURL + "/metrics").0 == 200, "/metrics is open by default")
        try await open.stop()

        let closed = try await GatehouseProcess.start(yaml: "metrics:\n  require_token: true\n", environment: ["GATEHOUSE_ADMIN_TOKEN": token])
        #expect(try await HTTP.get(closed.baseURL + "/metrics").0 == 401)
        #expect(try await HTTP.get(closed.baseURL + "/metrics", headers: [("Authorization", "Bearer wrong-token-0123456789")]).0 == 401)
        #expect(try await HTTP.get(closed.baseURL + "//metrics").0 == 401)
        let (status, body) = try await HTTP.get(closed.baseURL + "/metrics", headers: [("Authorization", "Bearer \(token)")])
        #expect(status == 200 && String(decoding: body, as: UTF8.self).contains("# TYPE"))
        #expect(try await HTTP.get(closed.baseURL + "/health").0 == 200)
        try await closed.stop()
    }

    // MARK: - Defect 9: ingest work off the event loops

    /// A Sentry event of 500 exceptions × 100 frames, about 1.3 MB of JSON.
    static func bigSentryEvent() -> Data {
        var text = #"{"event_id":"\#(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased())","level":"error","platform":"python","exception":{"values":["#
        for e in 0..<500 {
            if e > 0 { text += "," }
            text += #"{"type":"ValueError\#(e)","value":"bad value \#(e)","stacktrace":{"frames":["#
            for f in 0..<100 {
                if f > 0 { text += "," }
                text += #"{"function":"f\#(f)","lineno":\#(f)}"#
            }
            text += "]}}"
        }
        text += "]}}"
        return Data(text.utf8)
    }

    /// While several big events are parsed, `/health` still answers at once.
    @Test func healthStaysFastWhileBigSentryEventsAreParsed() async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: "telemetry:\n  limits:\n    max_event_bytes: 4194304\n")
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let event = Self.bigSentryEvent()
        let url = gatehouse.baseURL + "/api/77/store/"
        // Warm up (and check the event is taken).
        let first = try await api.raw(.POST, "/api/77/store/", body: event)
        #expect(first.status == 200, "\(String(decoding: first.body.prefix(300), as: UTF8.self))")
        #expect(try decodeAnswer(first, as: SentryIngestAnswer.self).id.count == 32)
        let samples = try await withThrowingTaskGroup(of: [Duration].self) { group in
            let busyUntil = ContinuousClock.now + .seconds(8)
            for _ in 0..<3 {
                group.addTask {
                    repeat {
                        _ = try await HTTP.send(url, headers: [("Content-Type", "application/json")], body: event)
                    } while ContinuousClock.now < busyUntil
                    return []
                }
            }
            group.addTask {
                var taken: [Duration] = []
                // A head start for the load, so the samples are taken while events are being parsed. A
                // sleep: the server shows an event only once it has parsed it (seconds, under load),
                // far too late to wait for.
                try await Task.sleep(for: .milliseconds(300))
                while ContinuousClock.now < busyUntil {
                    let start = ContinuousClock.now
                    let (status, _) = try await HTTP.get(gatehouse.baseURL + "/health")
                    #expect(status == 200)
                    taken.append(ContinuousClock.now - start)
                    // Pacing, not waiting: one health check every 25 ms or so while the load runs.
                    try await Task.sleep(for: .milliseconds(25))
                }
                return taken
            }
            var all: [Duration] = []
            for try await part in group { all += part }
            return all.sorted()
        }
        #expect(samples.count >= 10, "only \(samples.count) health checks were answered in 8 s")
        if !samples.isEmpty {
            let p50 = samples[samples.count / 2], worst = samples[samples.count - 1]
            #expect(p50 < .milliseconds(50) && worst < .milliseconds(500), "/health p50 \(p50), max \(worst) over \(samples.count) checks")
        }
        try await api.verifyContract()
        try await gatehouse.stop()
    }

    // MARK: - Defect 10: slow clients and malformed bodies

    /// A client that sends half a request head, or goes quiet between requests, is disconnected
    /// after the idle timeout.
    @Test func slowAndIdleClientsAreDisconnected() async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: "gateway:\n  client_idle_timeout_seconds: 2\n")
        var start = ContinuousClock.now
        _ = try await RawHTTP.exchange(port: gatehouse.port, bytes: Array("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".utf8), timeout: .seconds(12))
        var elapsed = ContinuousClock.now - start
        #expect(elapsed < .seconds(8), "half a request head was held \(elapsed)")
        start = ContinuousClock.now
        let idle = try await RawHTTP.exchange(port: gatehouse.port, bytes: Array("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8), timeout: .seconds(12))
        elapsed = ContinuousClock.now - start
        #expect(idle.status == 200)
        #expect(elapsed < .seconds(8), "an idle keep-alive connection was held \(elapsed)")
        try await gatehouse.stop()
    }

    /// A lone surrogate escape in a log line is rejected (as documented), not stored with an empty message.
    @Test func loneSurrogateInALogLineIsRejected() async throws {
        let gatehouse = try await GatehouseProcess.start()
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let reply = try await api.raw(.POST, "/api/v1/logs", body: Data(#"{"message":"lone \ud800 surrogate","service":"surrogates"}"#.utf8),
                                      headers: [("X-Gatehouse-Project", "demo")])
        let refused = try decodeAnswer(reply, as: LogIngestResult.self)
        #expect(reply.status == 400 && refused.accepted == 0 && refused.rejectedCount == 1 && refused.rejected.first?.index == 0,
                "\(reply.status) \(String(decoding: reply.body, as: UTF8.self))")
        let pair = try await api.raw(.POST, "/api/v1/logs", body: Data(#"{"message":"pair \ud83d\ude00 ok","service":"surrogates"}"#.utf8),
                                     headers: [("X-Gatehouse-Project", "demo")])
        #expect(try pair.status == 200 && decodeAnswer(pair, as: LogIngestResult.self) == LogIngestResult(accepted: 1, rejected: [], rejectedCount: 0))
        let stored = try await pollLogs(api, "service:surrogates", "the valid line") { $0.count == 1 }
        #expect(stored.first?.message == "pair \u{1F600} ok")
        try await api.verifyContract()
        try await gatehouse.stop()
    }

    /// A deflate (and gzip) bomb is too large (413), not malformed (400).
    @Test func compressionBombsAre413() async throws {
        let gatehouse = try await GatehouseProcess.start()
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let directory = try TestEnvironment.temporaryDirectory()
        for (encoding, script) in [("deflate", "zlib.compress(data, 9)"), ("gzip", "gzip.compress(data, 9)")] {
            let file = directory.appendingPathComponent(encoding)
            let result = try await ProcessRunner.runAsync(try TestEnvironment.python, [
                "-c", "import zlib, gzip, sys; data = b'\\x00' * (20 << 20); open(sys.argv[1], 'wb').write(\(script))", file.path,
            ])
            #expect(result.status == 0, "\(result.output)")
            let bomb = try Data(contentsOf: file)
            let reply = try await api.failure(.POST, "/api/v1/logs", body: bomb, headers: [("Content-Encoding", encoding)])
            #expect(reply.status == 413 && reply.error.error.code == "invalid_encoding", "\(encoding) bomb: \(reply.status) \(reply.error.error.message)")
        }
        try await api.verifyContract()
        try await gatehouse.stop()
    }

    /// Broken framing is a bad request (400, with the route's JSON error), not a body too large.
    @Test func brokenFramingIs400WithAJSONBody() async throws {
        let gatehouse = try await GatehouseProcess.start()
        let head = "POST /api/v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n"
        let cases = [
            ("xchunked", head + "Transfer-Encoding: xchunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"),
            ("bad chunk size", head + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"),
            ("broken header line", "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nthis is not a header\r\n\r\n"),
        ]
        for (name, request) in cases {
            let answer = try await RawHTTP.exchange(port: gatehouse.port, bytes: Array(request.utf8))
            #expect(answer.status == 400, "\(name): \(answer.text.prefix(400))")
            #expect(answer.text.lowercased().contains("content-type: application/json") && answer.body.contains(#""error""#),
                    "\(name): no JSON error body: \(answer.text.prefix(400))")
            if request.hasPrefix("POST /api/v1/logs") {
                // The route's own error (not de-chunked: these answers carry a Content-Length).
                let error = try APIJSON.decode(APIErrorBody.self, from: Data(answer.body.utf8))
                #expect(error.error.code == "invalid_body" && error.error.type == "invalid_request_error", "\(name): \(answer.body)")
            }
        }
        #expect(try await HTTP.get(gatehouse.baseURL + "/health").0 == 200)
        try await gatehouse.stop()
    }
}

/// The HTTP server settings `GatehouseServer.httpServer(_:)` gives, on a bare router: what the
/// end-to-end tests above check through `gatehouse serve`, without the rest of the server.
@Suite("HTTP server settings")
struct HTTPServerSettingsTests {
    @Test func idleClientsAreClosedAndParserErrorsAnswerJSON() async throws {
        var config = GatehouseConfig()
        config.gateway.clientIdleTimeoutSeconds = 1
        let router = Router(context: GatehouseRequestContext.self)
        router.get("/health") { _, _ in "ok" }
        let ports = AsyncStream.makeStream(of: Int.self)
        let app = Application(router: router, server: GatehouseServer.httpServer(config),
                              configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { ports.continuation.yield($0.localAddress?.port ?? 0) })
        let task = Task { try await app.runService(gracefulShutdownSignals: []) }
        defer { task.cancel() }
        var iterator = ports.stream.makeAsyncIterator()
        let port = try #require(await iterator.next())

        var start = ContinuousClock.now
        _ = try await RawHTTP.exchange(port: port, bytes: Array("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".utf8), timeout: .seconds(10))
        #expect(ContinuousClock.now - start < .seconds(5), "half a request head was held \(ContinuousClock.now - start)")
        start = ContinuousClock.now
        let idle = try await RawHTTP.exchange(port: port, bytes: Array("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8), timeout: .seconds(10))
        #expect(idle.status == 200 && ContinuousClock.now - start < .seconds(5), "an idle connection was held \(ContinuousClock.now - start)")

        let broken = try await RawHTTP.exchange(port: port, bytes: Array("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nthis is not a header\r\n\r\n".utf8))
        #expect(broken.status == 400 && broken.text.lowercased().contains("content-type: application/json") && broken.body.contains(#""error""#),
                "\(broken.text)")
        #expect(try await RawHTTP.get(port: port, "/health").status == 200)
    }

    /// `/metrics` with a token to require (what `metrics.require_token: true` passes) answers 401
    /// without it or with a wrong one, on any spelling of the path.
    @Test func metricsRouteRequiresTheTokenItIsGiven() async throws {
        let token = "metrics-admin-token-0123456789"
        let directory = try TestEnvironment.temporaryDirectory()
        let opened = try await StoreFactory.open(databaseURL: "sqlite://" + directory.appendingPathComponent("m.sqlite").path, logger: Logger(label: "test"))
        let router = Router(context: GatehouseRequestContext.self)
        let api = APIRouter(router: router, adminToken: token)
        OpsRoutes(store: opened.store, storeKind: opened.kind, health: ProviderHealth(), providers: [],
                  breakers: CircuitBreakers(settings: BreakerSettings()), metricsToken: token).addRoutes(to: api)
        let ports = AsyncStream.makeStream(of: Int.self)
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { ports.continuation.yield($0.localAddress?.port ?? 0) })
        let task = Task { try await app.runService(gracefulShutdownSignals: []) }
        var iterator = ports.stream.makeAsyncIterator()
        let port = try #require(await iterator.next())
        #expect(try await RawHTTP.get(port: port, "/metrics").status == 401)
        #expect(try await RawHTTP.get(port: port, "//metrics").status == 401)
        #expect(try await RawHTTP.get(port: port, "/metrics", headers: [("Authorization", "Bearer wrong-token-0123456789")]).status == 401)
        let allowed = try await RawHTTP.get(port: port, "/metrics", headers: [("Authorization", "Bearer \(token)")])
        #expect(allowed.status == 200)
        #expect(try await RawHTTP.get(port: port, "/health").status == 200)
        task.cancel()
        _ = try? await task.value
        try await opened.close()
    }
}
