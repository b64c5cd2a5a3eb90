import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseTestSupport
import Testing

/// The CLI as a new user meets it: a server that is not running, a search with no hits, and a
/// configuration with several mistakes in one list item.
@Suite(.serialized) struct CLIEndToEndTests {
    /// Runs the real binary with no GATEHOUSE_* variables inherited; kills it after `seconds`.
    static func run(_ arguments: [String], environment: [String: String] = [:], seconds: Double = 20) async throws
        -> (status: Int32, output: String, elapsed: Duration, finished: Bool) {
        var env = ProcessInfo.processInfo.environment
        for key in env.keys where key.hasPrefix("GATEHOUSE_") { env[key] = nil }
        env["NO_COLOR"] = "1"
        env.merge(environment) { $1 }
        let started = ContinuousClock.now
        let child = try ChildProcess(executable: TestEnvironment.gatehouseBinary, arguments: arguments, environment: env)
        // Up to `seconds` for the command to finish on its own; one still running then is reported as not finished.
        do {
            try await Poll.until("gatehouse \(arguments.joined(separator: " ")) to exit", timeout: .milliseconds(Int(seconds * 1000)),
                                 every: .milliseconds(20)) { !child.isRunning }
        } catch is Poll.TimedOut {}
        let elapsed = ContinuousClock.now - started
        let finished = !child.isRunning
        // Returns once the reader thread has taken the output to its end.
        let status = try await child.stop(signal: SIGKILL)
        return (status, child.output.joined(separator: "\n"), elapsed, finished)
    }

    /// A port on 127.0.0.1 that nothing listens on: bound once by the kernel's choice, then closed.
    static func closedPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ProcessRunner.Failure(message: "socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw ProcessRunner.Failure(message: "bind() failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Every subcommand that calls the server says plainly, within seconds, that nothing answers
    /// at the URL: exit 1, one readable line, no type dump, no "answered in 0.0 ms", no hang.
    @Test func everyClientCommandSaysPlainlyThatGatehouseIsNotReachable() async throws {
        let base = "http://127.0.0.1:\(try Self.closedPort())"
        let commands: [[String]] = [
            ["logs", "--url", base],
            ["logs", "--url", base, "--tail"],
            ["usage", "--url", base],
            ["smoke", base],
            ["keys", "list", "--url", base],
            ["monitor", "--url", base, "--once"],
            ["silence", "list", "--url", base],
        ]
        for arguments in commands {
            let result = try await Self.run(arguments)
            let name = arguments.filter { !$0.hasPrefix("http") && $0 != "--url" }.joined(separator: " ")
            #expect(result.finished, "`gatehouse \(name)` still running after 20 s:\n\(result.output)")
            #expect(result.elapsed < .seconds(5), "`gatehouse \(name)` took \(result.elapsed)")
            #expect(result.status == 1, "`gatehouse \(name)` exited \(result.status):\n\(result.output)")
            #expect(result.output.contains("error: Gatehouse is not reachable at \(base) (connection refused). Is 'gatehouse serve' running?"),
                    "`gatehouse \(name)` said:\n\(result.output)")
            for garble in ["NIOConnectionError", "IOError", "SingleConnectionFailure", "errno", "0.0 ms"] {
                #expect(!result.output.contains(garble), "`gatehouse \(name)` printed \(garble):\n\(result.output)")
            }
        }
        // GATEHOUSE_URL is named the same way.
        let fromEnvironment = try await Self.run(["usage"], environment: ["GATEHOUSE_URL": base + "/"])
        #expect(fromEnvironment.status == 1 && fromEnvironment.output.contains("Gatehouse is not reachable at \(base) "), "\(fromEnvironment.output)")
    }

    /// A search that matches nothing says so instead of printing nothing.
    @Test func logsSaysWhenNoLinesMatch() async throws {
        let gatehouse = try await GatehouseProcess.start()
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let sent = try await api.raw(.POST, "/api/v1/logs", body: Data(#"{"level":"info","message":"hello"}"#.utf8))
        #expect(try decodeAnswer(sent, as: LogIngestResult.self).accepted == 1)
        try await pollLogs(api, "message:hello", "the line") { $0.count == 1 }
        let none = try await Self.run(["logs", "--url", gatehouse.baseURL, "--query", "message:nothing-like-this"])
        #expect(none.status == 0, "\(none.output)")
        #expect(none.output.contains("(no lines match 'message:nothing-like-this' since 1h)"), "logs with no hits printed:\n\(none.output)")
        let json = try await Self.run(["logs", "--url", gatehouse.baseURL, "--query", "message:nothing-like-this", "--json"])
        #expect(json.status == 0 && json.output.contains("no lines match"), "\(json.output)")
        try await api.verifyContract()
        try await gatehouse.stop()
    }

    /// `gatehouse logs` prints a line as it always has: time, level, service and function,
    /// message, then correlation id, duration, the first six attributes by name and the slow mark;
    /// `--json` prints the API's `LogLine`; a page that is not the last says so.
    @Test func logsPrintsLinesWithTheirFieldsAndAttributes() async throws {
        let gatehouse = try await GatehouseProcess.start()
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        // A minute and two minutes ago, the first with a fraction of a second.
        let now = TimeExpressions.nowMicros() / 1_000_000 * 1_000_000
        let slowTime = TimeExpressions.format(micros: now - 60_000_000 + 250_000), plainTime = TimeExpressions.format(micros: now - 120_000_000)
        let line = #"{"timestamp":"\#(slowTime)","level":"warn","service":"api","function":"tasks.list","message":"Slow query detected","#
            + #""correlationId":"corr-cli-1","duration":"237.42ms","dbCalls":15,"ratio":0.5,"shard":"eu-1","user":{"id":7,"tags":["a","b"]},"#
            + #""attempt":2,"zone":"b","zz":"not shown"}"#
        let older = #"{"timestamp":"\#(plainTime)","level":"error","message":"plain","duration":12}"#
        let sent = try await api.raw(.POST, "/api/v1/logs", body: Data((line + "\n" + older + "\n").utf8), headers: [("Content-Type", "application/x-ndjson")])
        #expect(try decodeAnswer(sent, as: LogIngestResult.self).accepted == 2)
        let stored = try await pollLogs(api, "", "both lines") { $0.count == 2 }

        let table = try await Self.run(["logs", "--url", gatehouse.baseURL, "--since", "10m"])
        #expect(table.status == 0, "\(table.output)")
        // Colour codes are left out when the output is not a terminal; strip any that are not.
        let printed = table.output.replacingOccurrences(of: "\u{1B}\\[[0-9;]*m", with: "", options: .regularExpression)
            .split(separator: "\n").map(String.init)
        #expect(printed == [
            "\(plainTime) ERROR plain duration=12ms",
            "\(slowTime) WARN  api tasks.list Slow query detected correlation_id=corr-cli-1 duration=237.42ms "
                + #"attempt=2 dbCalls=15 ratio=0.5 shard=eu-1 user={"id":7,"tags":["a","b"]} zone=b SLOW"#,
        ], "\(table.output)")

        let json = try await Self.run(["logs", "--url", gatehouse.baseURL, "--since", "10m", "--json"])
        #expect(json.status == 0)
        let lines = try json.output.split(separator: "\n").map { try APIJSON.decode(LogLine.self, from: Data($0.utf8)) }
        #expect(lines == Array(stored.reversed()), "oldest first, each the API's LogLine")

        let paged = try await Self.run(["logs", "--url", gatehouse.baseURL, "--since", "10m", "--limit", "1"])
        #expect(paged.output.contains("Slow query detected") && !paged.output.contains("plain"))
        #expect(paged.output.contains("(more lines match; narrow the query or raise --limit)"), "\(paged.output)")
        try await api.verifyContract()
        try await gatehouse.stop()
    }

    /// check-config reports every mistake of one list item, not only the first, and prints the
    /// CORS allow-list and the alert routes among the effective settings.
    @Test func checkConfigReportsEveryErrorOfAListItemAndPrintsCORSAndRoutes() async throws {
        let directory = try TestEnvironment.temporaryDirectory()
        let bad = directory.appendingPathComponent("bad.yaml")
        try """
            providers:
              - {kind: openai-ish}
            prices:
              - {provider: acme}
            telemetry:
              projects:
                - {name: web}
            budgets:
              - {scope: nowhere, period: fortnight}
            alerts:
              receivers:
                - {slack: {}}
              routes:
                - {severity: urgent, continue: maybe}
              probes:
                - {method: FETCH, interval_seconds: soon}
              heartbeats:
                - {grace_seconds: soon}
            """.write(to: bad, atomically: true, encoding: .utf8)
        let refused = try await Self.run(["check-config", "--config", bad.path])
        #expect(refused.status == 2, "\(refused.output)")
        for key in ["providers[0].name", "providers[0].kind",
                    "prices[0].model", "prices[0].input", "prices[0].output",
                    "telemetry.projects[0].id", "telemetry.projects[0].key",
                    "budgets[0].scope", "budgets[0].period", "budgets[0].amount_usd",
                    "alerts.receivers[0].name", "alerts.receivers[0].slack.webhook_url",
                    "alerts.routes[0].receiver", "alerts.routes[0].severity", "alerts.routes[0].continue",
                    "alerts.probes[0].name", "alerts.probes[0].url", "alerts.probes[0].interval_seconds",
                    "alerts.heartbeats[0].name", "alerts.heartbeats[0].interval_seconds", "alerts.heartbeats[0].grace_seconds"] {
            #expect(refused.output.contains("  - \(key):"), "check-config did not report \(key):\n\(refused.output)")
        }

        let good = directory.appendingPathComponent("good.yaml")
        try """
            cors_allowed_origins: [https://app.example.com, https://admin.example.com]
            alerts:
              receivers:
                - {name: oncall, webhook: {url: "https://hooks.example.com/T000/secret-path"}}
                - {name: chat, slack: {webhook_url: "https://hooks.slack.com/services/T0/B0/XYZsecret"}}
              routes:
                - {receiver: oncall, severity: [critical, high], match: {service: api}, continue: true}
                - {receiver: chat}
              default_receiver: chat
            """.write(to: good, atomically: true, encoding: .utf8)
        let ok = try await Self.run(["check-config", "--config", good.path])
        #expect(ok.status == 0, "\(ok.output)")
        #expect(ok.output.contains(#"cors_allowed_origins: ["https://app.example.com", "https://admin.example.com"]"#), "\(ok.output)")
        #expect(ok.output.contains("  routes:"), "\(ok.output)")
        #expect(ok.output.contains(#"receiver: "oncall""#) && ok.output.contains("severity: [critical, high]")
                    && ok.output.contains(#""service": "api""#) && ok.output.contains("continue: true"), "\(ok.output)")
        #expect(ok.output.contains(#"default_receiver: "chat""#), "\(ok.output)")
        #expect(!ok.output.contains("XYZsecret") && !ok.output.contains("secret-path"), "\(ok.output)")
    }
}
