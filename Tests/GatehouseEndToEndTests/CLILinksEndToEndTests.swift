import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

/// `gatehouse requests`, `gatehouse issues` and the correlation ids of `gatehouse logs` against
/// the real binary and server: plain ids and a `Console:` line in a pipe, OSC 8 hyperlinks at a
/// real pseudo-terminal, each leading to the console page a signed-in browser gets, and none of
/// it in `--json`.
@Suite("CLI links to the console")
struct CLILinksEndToEndTests {
    static let token = "cli-links-admin-token-0123456789"
    /// Every character the path of a link must escape: `/`, `?`, `#` and `%`.
    static let correlationID = "corr/links?1#x%y"
    static let escapedCorrelationID = "corr%2Flinks%3F1%23x%25y"
    static let escape = "\u{1B}"

    struct World {
        var gatehouse: GatehouseProcess
        var api: TypedAPI
        var browser: ConsoleClient
    }

    /// Gatehouse with an admin token and the telemetry projects, and a browser signed in.
    static func world(_ backend: Backend) async throws -> World {
        let gatehouse = try await GatehouseProcess.start(yaml: telemetryConfig, databaseURL: try backend.databaseURL(),
                                                         environment: ["GATEHOUSE_ADMIN_TOKEN": token])
        let browser = ConsoleClient(port: gatehouse.port)
        #expect(try await browser.signIn(password: token).status == 303)
        return World(gatehouse: gatehouse, api: TypedAPI(baseURL: gatehouse.baseURL, adminToken: token), browser: browser)
    }

    /// The environment of a CLI run: none of the caller's GATEHOUSE_* or colour settings, a
    /// terminal type that takes colour and links (so only standard output decides), the token.
    static func environment(_ extra: [String: String]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        for key in env.keys where key.hasPrefix("GATEHOUSE_") || key == "NO_COLOR" || key == "FORCE_COLOR" { env[key] = nil }
        env["TERM"] = "xterm-256color"
        env["GATEHOUSE_ADMIN_TOKEN"] = token
        env.merge(extra) { $1 }
        return env
    }

    /// The binary with its standard output a pipe.
    static func piped(_ arguments: [String], environment extra: [String: String] = [:]) async throws -> (status: Int32, output: String) {
        try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, arguments, environment: environment(extra))
    }

    /// Runs argv[1:] on a new pseudo-terminal (standard input, output and error) and copies
    /// what it wrote to standard output; exits with its status.
    static let ptyScript = """
        import os, pty, sys
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(sys.argv[1], sys.argv[1:])
        out = bytearray()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        _, status = os.waitpid(pid, 0)
        sys.stdout.buffer.write(bytes(out))
        sys.stdout.flush()
        sys.exit(os.waitstatus_to_exitcode(status))
        """

    /// The binary at a real terminal (Python's `pty`); the terminal's CR LF read as LF.
    static func atTerminal(_ arguments: [String], environment extra: [String: String] = [:]) async throws -> (status: Int32, output: String) {
        let result = try await ProcessRunner.runAsync(try TestEnvironment.python, ["-c", ptyScript, TestEnvironment.gatehouseBinary] + arguments,
                                                      environment: environment(extra))
        return (result.status, result.output.replacingOccurrences(of: "\r\n", with: "\n"))
    }

    /// Every OSC 8 hyperlink in `output`: its URL and its text without colour codes.
    static func hyperlinks(in output: String) -> [(url: String, text: String)] {
        let open = escape + "]8;;", terminator = escape + "\\"
        var links: [(url: String, text: String)] = []
        var rest = output[...]
        while let start = rest.range(of: open) {
            rest = rest[start.upperBound...]
            guard let urlEnd = rest.range(of: terminator) else { break }
            let url = String(rest[..<urlEnd.lowerBound])
            rest = rest[urlEnd.upperBound...]
            guard !url.isEmpty, let close = rest.range(of: open + terminator) else { continue }
            let text = String(rest[..<close.lowerBound]).replacingOccurrences(of: escape + "\\[[0-9;]*m", with: "", options: .regularExpression)
            links.append((url, text))
            rest = rest[close.upperBound...]
        }
        return links
    }

    /// The output's lines with colour codes removed (links left in place).
    static func lines(_ output: String) -> [String] {
        output.replacingOccurrences(of: escape + "\\[[0-9;]*m", with: "", options: .regularExpression).split(separator: "\n").map(String.init)
    }

    /// The page behind a console URL of `world`'s server, fetched by the signed-in browser.
    static func consolePage(_ world: World, _ url: String) async throws -> ConsoleClient.Page {
        let target = try #require(url.hasPrefix(world.gatehouse.baseURL) ? String(url.dropFirst(world.gatehouse.baseURL.count)) : nil,
                                  "\(url) is not on \(world.gatehouse.baseURL)")
        return try await world.browser.get(target)
    }

    @Test("requests and issues say plainly, within seconds, that nothing answers at the URL")
    func unreachable() async throws {
        let base = "http://127.0.0.1:\(try CLIEndToEndTests.closedPort())"
        for arguments in [["requests"], ["requests", "req_0"], ["issues"], ["issues", "0123"]] {
            let started = ContinuousClock.now
            let result = try await Self.piped(arguments + ["--url", base])
            #expect(ContinuousClock.now - started < .seconds(5))
            #expect(result.status == 1 && result.output.trimmingCharacters(in: .whitespacesAndNewlines)
                        == "error: Gatehouse is not reachable at \(base) (connection refused). Is 'gatehouse serve' running?", "\(arguments): \(result.output)")
        }
    }

    @Test("requests: ids in a pipe with a Console: URL, OSC 8 at a terminal, both leading to the request's and the correlation's pages",
          arguments: Backend.allCases)
    func requests(_ backend: Backend) async throws {
        let world = try await Self.world(backend)
        defer { Task { _ = try? await world.gatehouse.stop() } }
        let base = world.gatehouse.baseURL
        let issued = try await world.api.send(.POST, "/api/v1/keys", json: KeyChanges(alias: .set("web-app")), as: IssuedKey.self)
        for correlation in ["corr-links-first", Self.correlationID] {
            let call = try await HTTP.post(base + "/v1/chat/completions", json: #"{"model":"mock/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#,
                                           headers: [("Authorization", "Bearer \(issued.key)"), ("X-Request-Id", correlation)])
            #expect(call.status == 200, "\(String(decoding: call.body, as: UTF8.self))")
        }
        let records = try await waitForRequests(world.api, count: 2)
        let newest = try #require(records.first)
        #expect(newest.correlationID == Self.correlationID && newest.keyID == issued.view.id)

        // A pipe: plain ids, newest first as the API answers, the key by its alias; no escape sequence.
        let list = try await Self.piped(["requests", "--url", base])
        #expect(list.status == 0, "\(list.output)")
        #expect(!list.output.contains(Self.escape), "no colour or link codes in a pipe:\n\(list.output)")
        let rows = Self.lines(list.output)
        #expect(rows.first?.hasPrefix("TIME (UTC)") == true && rows.first?.hasSuffix("REQUEST") == true, "\(list.output)")
        #expect(rows.count == 3 && rows[1].hasSuffix(records[0].id) && rows[2].hasSuffix(records[1].id), "newest first:\n\(list.output)")
        #expect(rows.dropFirst().allSatisfy { $0.contains("gpt-4o-mini") && $0.contains(" 200 ") && $0.contains("web-app") }, "\(list.output)")

        // One request in a pipe ends with its page's URL, which opens that request in the console.
        let one = try await Self.piped(["requests", newest.id, "--url", base + "/"])
        #expect(one.status == 0 && !one.output.contains(Self.escape), "\(one.output)")
        let shown = Self.lines(one.output)
        #expect(shown.contains { $0.hasPrefix("Request:") && $0.hasSuffix(newest.id) }, "\(one.output)")
        #expect(shown.contains { $0.hasPrefix("Correlation:") && $0.hasSuffix(Self.correlationID) }, "\(one.output)")
        #expect(shown.contains { $0.hasPrefix("Key:") && $0.contains("web-app (\(issued.view.id))") }, "\(one.output)")
        let consoleURL = base + "/requests/" + newest.id
        #expect(shown.last == "Console: " + consoleURL, "\(one.output)")
        let requestPage = try await Self.consolePage(world, consoleURL)
        #expect(requestPage.status == 200 && requestPage.html.contains(newest.id) && requestPage.html.contains("Request id"))

        // At a terminal: each id is an OSC 8 hyperlink to its page, and no Console: line is needed.
        let terminalList = try await Self.atTerminal(["requests", "--url", base])
        #expect(terminalList.status == 0, "\(terminalList.output)")
        let listed = Self.hyperlinks(in: terminalList.output)
        #expect(listed.map(\.url) == records.map { base + "/requests/" + $0.id } && listed.map(\.text) == records.map(\.id),
                "\(terminalList.output.debugDescription)")
        #expect(terminalList.output.contains(Self.escape + "]8;;" + consoleURL + Self.escape + "\\" + newest.id + Self.escape + "]8;;" + Self.escape + "\\"),
                "the id itself is the link's text: \(terminalList.output.debugDescription)")
        let terminalOne = try await Self.atTerminal(["requests", newest.id, "--url", base])
        #expect(terminalOne.status == 0 && !terminalOne.output.contains("Console:"), "\(terminalOne.output.debugDescription)")
        let correlationURL = base + "/correlation/" + Self.escapedCorrelationID
        let oneLinks = Self.hyperlinks(in: terminalOne.output)
        #expect(oneLinks.contains { $0.url == consoleURL && $0.text == newest.id }, "\(terminalOne.output.debugDescription)")
        #expect(oneLinks.contains { $0.url == correlationURL && $0.text == Self.correlationID }, "\(terminalOne.output.debugDescription)")
        let correlationPage = try await Self.consolePage(world, correlationURL)
        #expect(correlationPage.status == 200 && correlationPage.html.contains("href=\"/requests/\(newest.id)\"")
                    && !correlationPage.html.contains("href=\"/requests/\(records[1].id)\""),
                "the escaped id reaches the console as one segment and finds its call")

        // --no-links, GATEHOUSE_LINKS=0 and NO_COLOR keep a terminal free of links (the URL is printed instead).
        let plainVariants: [(arguments: [String], environment: [String: String])] = [
            (["--no-links"], [:]), ([], ["GATEHOUSE_LINKS": "0"]), ([], ["NO_COLOR": "1"]),
        ]
        for (arguments, extra) in plainVariants {
            let plain = try await Self.atTerminal(["requests", newest.id, "--url", base] + arguments, environment: extra)
            #expect(plain.status == 0 && !plain.output.contains(Self.escape + "]8;"), "\(arguments) \(extra): \(plain.output.debugDescription)")
            #expect(Self.lines(plain.output).last == "Console: " + consoleURL, "\(arguments) \(extra): \(plain.output.debugDescription)")
        }
        // GATEHOUSE_LINKS=1 links into a pipe too (for `less -R`).
        let forced = try await Self.piped(["requests", "--url", base], environment: ["GATEHOUSE_LINKS": "1"])
        #expect(Self.hyperlinks(in: forced.output).map(\.text) == records.map(\.id), "\(forced.output.debugDescription)")
        // A console behind a proxy under another name.
        let proxied = try await Self.atTerminal(["requests", newest.id, "--url", base], environment: ["GATEHOUSE_CONSOLE_URL": "https://ops.example.com/gatehouse/"])
        #expect(Self.hyperlinks(in: proxied.output).contains { $0.url == "https://ops.example.com/gatehouse/requests/" + newest.id }, "\(proxied.output.debugDescription)")
        let proxiedPipe = try await Self.piped(["requests", newest.id, "--url", base], environment: ["GATEHOUSE_CONSOLE_URL": "https://ops.example.com/gatehouse"])
        #expect(Self.lines(proxiedPipe.output).last == "Console: https://ops.example.com/gatehouse/requests/" + newest.id, "\(proxiedPipe.output)")
        let badConsole = try await Self.piped(["requests", "--url", base], environment: ["GATEHOUSE_CONSOLE_URL": "ops.example.com"])
        #expect(badConsole.status == 1 && badConsole.output.contains("error: GATEHOUSE_CONSOLE_URL=ops.example.com is not a URL"), "\(badConsole.output)")

        // --json is the API's answer, escape-free even at a terminal.
        let pipedJSON = try await Self.piped(["requests", "--url", base, "--json"])
        let terminalJSON = try await Self.atTerminal(["requests", "--url", base, "--json"])
        for run in [pipedJSON, terminalJSON] {
            #expect(run.status == 0 && !run.output.contains(Self.escape), "\(run.output.debugDescription)")
            let page = try APIJSON.decode(RequestRecordPage.self, from: Data(run.output.utf8))
            #expect(page.data.map(\.id) == records.map(\.id))
        }
        let oneJSON = try await Self.atTerminal(["requests", newest.id, "--url", base, "--json"])
        #expect(!oneJSON.output.contains(Self.escape), "\(oneJSON.output.debugDescription)")
        #expect(try APIJSON.decode(RequestRecordView.self, from: Data(oneJSON.output.utf8)).id == newest.id)

        // The logs' correlation ids lead to the same timeline; in a pipe the line is as it always was.
        let logLine = #"{"level":"warn","message":"checkout slow","correlationId":"\#(Self.correlationID)"}"#
        let sent = try await HTTP.send(base + "/api/v1/logs", headers: [("Authorization", "Bearer \(ingestKey)")], body: Data((logLine + "\n").utf8))
        #expect(sent.status == 200)
        try await pollLogs(world.api, "", "the log line") { $0.count == 1 }
        let logs = try await Self.atTerminal(["logs", "--url", base, "--since", "10m"])
        #expect(logs.status == 0 && Self.hyperlinks(in: logs.output).map(\.url) == [correlationURL]
                    && Self.hyperlinks(in: logs.output).map(\.text) == [Self.correlationID], "\(logs.output.debugDescription)")
        let logsPiped = try await Self.piped(["logs", "--url", base, "--since", "10m"])
        #expect(!logsPiped.output.contains(Self.escape) && logsPiped.output.contains("checkout slow correlation_id=\(Self.correlationID)"), "\(logsPiped.output)")
        let logsNoLinks = try await Self.atTerminal(["logs", "--url", base, "--since", "10m", "--no-links"])
        #expect(logsNoLinks.status == 0 && !logsNoLinks.output.contains(Self.escape + "]8;") && logsNoLinks.output.contains("checkout slow"))
        let logsJSON = try await Self.atTerminal(["logs", "--url", base, "--since", "10m", "--json"])
        #expect(!logsJSON.output.contains(Self.escape), "\(logsJSON.output.debugDescription)")
        #expect(try APIJSON.decode(LogLine.self, from: Data(logsJSON.output.utf8)).correlationID == Self.correlationID)

        // An id nothing has: the API's reason, on one line, and exit 1.
        let unknownPiped = try await Self.piped(["requests", "req_nothing-has-this", "--url", base])
        let unknownAtTerminal = try await Self.atTerminal(["requests", "req_nothing-has-this", "--url", base])
        for run in [unknownPiped, unknownAtTerminal] {
            #expect(run.status == 1, "\(run.output)")
            #expect(run.output.trimmingCharacters(in: .whitespacesAndNewlines)
                        == "error: Gatehouse answered 404: no request record with id req_nothing-has-this", "\(run.output.debugDescription)")
        }
        // Without the admin token the server's refusal says what to do.
        let anonymous = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["requests", "--url", base],
                                                         environment: Self.environment([:]).filter { $0.key != "GATEHOUSE_ADMIN_TOKEN" })
        #expect(anonymous.status == 1 && anonymous.output.contains("Gatehouse answered 401") && anonymous.output.contains("export GATEHOUSE_ADMIN_TOKEN"),
                "\(anonymous.output)")
        try await world.api.verifyContract()
    }

    @Test("issues: ids in a pipe with a Console: URL, OSC 8 at a terminal, filters, one issue with its events, an unknown id",
          arguments: Backend.allCases)
    func issues(_ backend: Backend) async throws {
        let world = try await Self.world(backend)
        defer { Task { _ = try? await world.gatehouse.stop() } }
        let base = world.gatehouse.baseURL
        let none = try await Self.piped(["issues", "--url", base, "--status", "unresolved"])
        #expect(none.status == 0 && none.output.trimmingCharacters(in: .whitespacesAndNewlines) == "(no unresolved issues)", "\(none.output)")

        let events = [
            #"{"event_id":"5b1d0c2e9f8a4b7c8d6e5f4a3b2c1d0e","level":"error","user":{"id":"user-1"},"tags":{"correlation_id":"\#(Self.correlationID)"},"#
                + #""exception":{"values":[{"type":"PaymentError","value":"card declined"}]}}"#,
            #"{"event_id":"6c2e1d3f0a9b4c8d9e7f6a5b4c3d2e1f","level":"error","user":{"id":"user-2"},"#
                + #""exception":{"values":[{"type":"PaymentError","value":"card declined"}]}}"#,
            #"{"event_id":"7d3f2e4a1b0c4d9e0f8a7b6c5d4e3f2a","level":"warning","message":"Nightly export finished late"}"#,
        ]
        for event in events {
            let stored = try await HTTP.send(base + "/api/42/store/", headers: [("X-Sentry-Auth", "Sentry sentry_key=\(ingestKey)")], body: Data(event.utf8))
            #expect(stored.status == 200, "\(String(decoding: stored.body, as: UTF8.self))")
        }
        let issues = try await Poll.until("3 events in 2 issues") {
            let list = try await world.api.get("/api/v1/issues", as: IssueList.self).data
            return list.reduce(0) { $0 + $1.count } == 3 ? list : nil
        }
        let payment = try #require(issues.first { $0.type == "PaymentError" })
        #expect(payment.count == 2 && payment.users == 2 && issues.count == 2)

        // A pipe: the API's order, plain ids, status, counts and titles.
        let list = try await Self.piped(["issues", "--url", base])
        #expect(list.status == 0 && !list.output.contains(Self.escape), "\(list.output)")
        let rows = Self.lines(list.output)
        #expect(rows.first?.hasPrefix("ID") == true && rows.first?.hasSuffix("TITLE") == true && rows.count == 3, "\(list.output)")
        for (row, issue) in zip(rows.dropFirst(), issues) {
            #expect(row.hasPrefix(issue.id + "  unresolved") && row.hasSuffix(issue.title), "\(row)")
        }
        let paymentRow = try #require(rows.first { $0.hasPrefix(payment.id) })
        #expect(paymentRow.split(separator: " ").contains("2") && paymentRow.contains("PaymentError: card declined"), "\(paymentRow)")
        let searched = try await Self.piped(["issues", "--url", base, "-q", "PaymentError"])
        #expect(Self.lines(searched.output).count == 2 && searched.output.contains(payment.id), "\(searched.output)")
        let resolved = try await Self.piped(["issues", "--url", base, "--status", "resolved"])
        #expect(resolved.status == 0 && resolved.output.contains("(no resolved issues)"), "\(resolved.output)")
        let badStatus = try await Self.piped(["issues", "--url", base, "--status", "fixed"])
        #expect(badStatus.status == 64 && badStatus.output.contains("unresolved"), "\(badStatus.output)")

        // One issue in a pipe: its fields, its events with their correlation id, and its page's URL last.
        let one = try await Self.piped(["issues", payment.id, "--url", base])
        #expect(one.status == 0 && !one.output.contains(Self.escape), "\(one.output)")
        let shown = Self.lines(one.output)
        #expect(shown.contains { $0.hasPrefix("Issue:") && $0.hasSuffix(payment.id) } && shown.contains { $0.hasPrefix("Title:") && $0.hasSuffix(payment.title) },
                "\(one.output)")
        #expect(shown.contains { $0.contains("5b1d0c2e9f8a4b7c8d6e5f4a3b2c1d0e") && $0.contains(Self.correlationID) && $0.contains("user-1") }, "\(one.output)")
        let consoleURL = base + "/issues/" + payment.id
        #expect(shown.last == "Console: " + consoleURL, "\(one.output)")
        let page = try await Self.consolePage(world, consoleURL)
        #expect(page.status == 200 && page.html.contains("<h1>PaymentError: card declined</h1>"), "\(page.status)")

        // At a terminal: the ids are OSC 8 hyperlinks, the event's correlation id too.
        let terminalList = try await Self.atTerminal(["issues", "--url", base])
        #expect(terminalList.status == 0, "\(terminalList.output)")
        let listed = Self.hyperlinks(in: terminalList.output)
        #expect(listed.map(\.url) == issues.map { base + "/issues/" + $0.id } && listed.map(\.text) == issues.map(\.id), "\(terminalList.output.debugDescription)")
        let terminalOne = try await Self.atTerminal(["issues", payment.id, "--url", base])
        let oneLinks = Self.hyperlinks(in: terminalOne.output)
        #expect(terminalOne.status == 0 && !terminalOne.output.contains("Console:"), "\(terminalOne.output.debugDescription)")
        #expect(oneLinks.contains { $0.url == consoleURL && $0.text == payment.id }, "\(terminalOne.output.debugDescription)")
        #expect(oneLinks.contains { $0.url == base + "/correlation/" + Self.escapedCorrelationID && $0.text == Self.correlationID },
                "\(terminalOne.output.debugDescription)")
        let noLinks = try await Self.atTerminal(["issues", payment.id, "--url", base, "--no-links"])
        #expect(!noLinks.output.contains(Self.escape + "]8;") && Self.lines(noLinks.output).last == "Console: " + consoleURL, "\(noLinks.output.debugDescription)")

        // --json: the API's answers, escape-free at a terminal.
        let json = try await Self.atTerminal(["issues", "--url", base, "--json"])
        #expect(json.status == 0 && !json.output.contains(Self.escape))
        #expect(try APIJSON.decode(IssueList.self, from: Data(json.output.utf8)).data.map(\.id) == issues.map(\.id))
        let oneJSON = try await Self.atTerminal(["issues", payment.id, "--url", base, "--json"])
        #expect(!oneJSON.output.contains(Self.escape), "\(oneJSON.output.debugDescription)")
        #expect(try APIJSON.decode(IssueDetail.self, from: Data(oneJSON.output.utf8)).issue.id == payment.id)

        let unknown = try await Self.piped(["issues", "0123456789abcdef0123456789abcdef", "--url", base])
        #expect(unknown.status == 1 && unknown.output.trimmingCharacters(in: .whitespacesAndNewlines)
                    == "error: Gatehouse answered 404: no issue with id 0123456789abcdef0123456789abcdef", "\(unknown.output)")
        try await world.api.verifyContract()
    }
}
