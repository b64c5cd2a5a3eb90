import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

/// The console's logs (search, paging, live tail), correlation timeline, issue stream and issue
/// page with triage, against the real binary fed by real clients (the Python sentry-sdk, NDJSON
/// logs, the gateway's mock provider).
@Suite("Console logs and issues")
struct ConsoleTelemetryTests {
    static let token = "console-telemetry-token-0123456789"

    struct World {
        var gatehouse: GatehouseProcess
        var api: TypedAPI
        var browser: ConsoleClient
    }

    /// Gatehouse with the telemetry projects, and a browser signed in with the admin token.
    static func world(_ backend: Backend) async throws -> World {
        let gatehouse = try await GatehouseProcess.start(yaml: telemetryConfig, databaseURL: try backend.databaseURL(),
                                                         environment: ["GATEHOUSE_ADMIN_TOKEN": token])
        let browser = ConsoleClient(port: gatehouse.port)
        #expect(try await browser.signIn(password: token).status == 303)
        return World(gatehouse: gatehouse, api: TypedAPI(baseURL: gatehouse.baseURL, adminToken: token), browser: browser)
    }

    /// Posts NDJSON log lines to the ingest API with the project's key.
    static func sendLogs(_ world: World, _ lines: [String]) async throws {
        let reply = try await HTTP.send(world.gatehouse.baseURL + "/api/v1/logs", headers: [("Authorization", "Bearer \(ingestKey)")],
                                        body: Data((lines.joined(separator: "\n") + "\n").utf8))
        #expect(reply.status == 200, "\(String(decoding: reply.body, as: UTF8.self))")
    }

    /// How often `needle` occurs in `html`.
    static func count(_ needle: String, in html: String) -> Int { html.components(separatedBy: needle).count - 1 }

    /// The first link whose text is `label`, as a request target (entities decoded).
    static func link(_ label: String, in html: String) -> String? {
        guard let end = html.range(of: "\">" + label + "</a>") else { return nil }
        guard let start = html[..<end.lowerBound].range(of: "href=\"", options: .backwards) else { return nil }
        return String(html[start.upperBound..<end.lowerBound]).replacingOccurrences(of: "&amp;", with: "&")
    }

    @Test("logs: search within the range, every field of a line, paging, a refused query, and the correlation timeline", arguments: Backend.allCases)
    func logsAndCorrelation(_ backend: Backend) async throws {
        let world = try await Self.world(backend)
        defer { Task { _ = try? await world.gatehouse.stop() } }
        let browser = world.browser
        let empty = try await browser.get("/logs")
        #expect(empty.status == 200 && empty.html.contains("id=\"log-empty\"") && empty.html.contains("No log lines in the last 24h"))

        try await Self.sendLogs(world, [
            #"{"message":"Slow query detected","level":"warn","service":"api","function":"tasks.list","correlationId":"corr-console-1","duration":"237ms","dbCalls":15}"#,
            #"{"message":"Task <b>update</b> failed","level":"error","service":"api","correlationId":"corr-console-1","code":"OCC"}"#,
            #"{"message":"Checkout finished","level":"info","service":"checkout"}"#,
        ] + (0..<105).map { #"{"message":"filler \#($0)","level":"debug","service":"batch"}"# })
        try await pollLogs(world.api, "", "108 lines") { $0.count == 108 }

        let errors = try await browser.get("/logs?q=level%3Aerror")
        #expect(errors.status == 200)
        #expect(errors.html.contains("Task &lt;b&gt;update&lt;/b&gt; failed") && !errors.html.contains("<b>update</b>"), "a message is text, never markup")
        #expect(!errors.html.contains("Checkout finished") && Self.count("<details class=\"row\">", in: errors.html) == 1)
        #expect(errors.html.contains(#"<span class="level-error">error</span>"#) && errors.html.contains(#"<span class="pill">api</span>"#))
        #expect(errors.html.contains(#"href="/correlation/corr-console-1""#), "the correlation id leads to its timeline")
        #expect(errors.html.contains(#"<dt class="mono">code</dt><dd class="mono">OCC</dd>"#), "attributes are in the expanded line")
        #expect(errors.html.contains(#"id="tail-toggle" data-query="level:error" aria-pressed="false""#) && errors.html.contains(#"id="tail-status""#)
                && errors.html.contains(#"id="log-lines""#) && !errors.html.contains("id=\"log-empty\""))
        #expect(errors.html.contains(#"href="/logs?q=level%3Aerror&amp;range=1h""#), "the range links keep the query")

        let slow = try await browser.get("/logs?q=" + "message:\"Slow query\"".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)
        #expect(slow.html.contains("237 ms") && slow.html.contains(#"<dt class="mono">dbCalls</dt><dd class="mono">15</dd>"#))
        #expect(slow.html.contains(#"href="/logs?q=function%3A%22tasks.list%22&amp;range=24h">tasks.list</a>"#), "a field finds the lines that share it")

        // 105 lines of one service: a page of 100, then the rest by cursor, both keeping the query and range.
        let first = try await browser.get("/logs?q=service%3Abatch&range=1h")
        #expect(Self.count("<details class=\"row\">", in: first.html) == 100 && first.html.contains("filler 104") && !first.html.contains("filler 4<"))
        let older = try #require(Self.link("Older →", in: first.html))
        #expect(older.hasPrefix("/logs?q=service%3Abatch&range=1h&cursor="))
        let second = try await browser.get(older)
        #expect(second.status == 200 && Self.count("<details class=\"row\">", in: second.html) == 5 && second.html.contains("filler 0<"))
        #expect(Self.link("← Newest", in: second.html) == "/logs?q=service%3Abatch&range=1h" && Self.link("Older →", in: second.html) == nil)

        // Outside the range nothing is found; a query that does not parse or names a bad value says why.
        let past = try await browser.get("/logs?q=service%3Acheckout&from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z")
        #expect(past.status == 200 && past.html.contains("No log line matches") && !past.html.contains("Checkout finished"))
        let broken = try await browser.get("/logs?q=" + "level:error AND (service:api".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)
        #expect(broken.status == 400 && broken.html.contains("The search did not run") && broken.html.contains("character") && broken.html.contains("id=\"log-empty\""))
        let loud = try await browser.get("/logs?q=level%3Aloud")
        #expect(loud.status == 400 && loud.html.contains("level"))
        #expect(try await browser.get("/logs?cursor=not-a-cursor").status == 400)

        // One id gathers the two log lines, an AI call and an error.
        let call = try await HTTP.post(world.gatehouse.baseURL + "/v1/chat/completions", json: #"{"model":"mock/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#,
                                       headers: [("X-Request-Id", "corr-console-1")])
        #expect(call.status == 200)
        let event = #"{"event_id":"7ec79c33ec9942ab8353589fcb2e04dc","level":"error","tags":{"correlation_id":"corr-console-1"},"exception":{"values":[{"type":"PaymentError","value":"card <declined>"}]}}"#
        let stored = try await HTTP.send(world.gatehouse.baseURL + "/api/42/store/", headers: [("X-Sentry-Auth", "Sentry sentry_key=\(ingestKey)")], body: Data(event.utf8))
        #expect(stored.status == 200)
        let timeline = try await Poll.until("4 entries for corr-console-1") {
            let entries = try await world.api.get("/api/v1/correlation/corr-console-1", as: CorrelationTimeline.self).timeline
            return entries.count == 4 ? entries : nil
        }
        let page = try await browser.get("/correlation/corr-console-1")
        #expect(page.status == 200 && page.html.contains("2 log lines · 1 error · 1 AI call"))
        #expect(page.html.contains("Task &lt;b&gt;update&lt;/b&gt; failed") && page.html.contains("PaymentError: card &lt;declined&gt;"))
        for entry in timeline {
            switch entry {
            case .error(let error):
                #expect(page.html.contains(#"href="/issues/\#(error.issueID)?event=7ec79c33ec9942ab8353589fcb2e04dc""#), "the error links to its issue's event")
            case .aiRequest(let request):
                #expect(page.html.contains(#"href="/requests/\#(request.id)""#) && page.html.contains("gpt-4o-mini"), "the AI call links to its request")
            case .log: break
            }
        }
        let positions = ["Slow query detected", "Task &lt;b&gt;update", "PaymentError"].map { page.html.range(of: $0)?.lowerBound }
        #expect(positions.allSatisfy { $0 != nil } && positions[0]! < positions[1]!, "oldest first")
        #expect(page.html.contains("href=\"/logs?q=correlation_id%3A%22corr-console-1%22&amp;from="), "a link to the same lines in the log search")
        let unknown = try await browser.get("/correlation/nothing-has-this")
        #expect(unknown.status == 404 && unknown.html.contains("Nothing carries the correlation id"))
        #expect(try await browser.get("/correlation/" + String(repeating: "c", count: 257)).status == 400)
        #expect(try await ConsoleClient(port: world.gatehouse.port).get("/correlation/corr-console-1").status == 303, "signed out: to the sign-in page")
    }

    @Test("live tail: a signed-in browser gets new matching lines as the script expects them; others get 401", arguments: Backend.allCases)
    func liveTail(_ backend: Backend) async throws {
        let world = try await Self.world(backend)
        defer { Task { _ = try? await world.gatehouse.stop() } }
        let url = world.gatehouse.baseURL + "/logs/tail?q=service%3Atail"
        let (anonymousStatus, _) = try await StreamingClient.get(url: url) { _ in true }
        #expect(anonymousStatus == 401, "no session, no stream")
        let session = try #require(world.browser.cookie("gatehouse-session"))
        let (status, text) = try await StreamingClient.get(url: url, headers: [("Cookie", "gatehouse-session=\(session)")], whileReading: {
            try await Self.sendLogs(world, [#"{"message":"not for this tail","service":"other"}"#,
                                            #"{"message":"tailed <line>","level":"warn","service":"tail","correlationId":"corr-tail"}"#])
        }) { $0.contains("tailed <line>") }
        #expect(status == 200 && text.contains("event: log") && !text.contains("not for this tail"))
        let data = try #require(text.split(separator: "\n").first { $0.hasPrefix("data: ") && $0.contains("tailed") })
        let line = try APIJSON.decode(LogLine.self, from: Data(data.dropFirst("data: ".count).utf8))
        #expect(line.message == "tailed <line>" && line.level == .warn && line.service == "tail" && line.correlationID == "corr-tail" && !line.timestamp.isEmpty,
                "the fields console.js renders: timestamp, level, service, message")
        let bad = try await world.browser.get("/logs/tail?q=level%3Aloud")
        #expect(bad.status == 400, "a bad query fails before the stream starts")
        let script = try await world.browser.get("/assets/console.js")
        #expect(script.html.contains(#"addEventListener("log""#), "the script listens for the events the server names `log`")
    }

    @Test("issues: the stream by status with sparklines, an issue's stack trace, tags, breadcrumbs and events, and triage", arguments: Backend.allCases)
    func issues(_ backend: Backend) async throws {
        let world = try await Self.world(backend)
        defer { Task { _ = try? await world.gatehouse.stop() } }
        let browser = world.browser
        let none = try await browser.get("/issues")
        #expect(none.status == 200 && none.html.contains("No unresolved issues seen in the last 24h") && none.html.contains("DSN"))

        let dsn = "http://\(ingestKey)@127.0.0.1:\(world.gatehouse.port)/42"
        _ = try await telemetryClient(["sentry", "--dsn", dsn, "--tag", "correlation_id=corr-sentry-console"], as: SentryClientReport.self)
        let issues = try await Poll.until("5 events in 4 issues") {
            let list = try await world.api.get("/api/v1/issues", as: IssueList.self).data
            return list.reduce(0) { $0 + $1.count } == 5 ? list : nil
        }
        let byType = Dictionary(issues.map { ($0.type, $0) }, uniquingKeysWith: { a, _ in a })
        let valueError = try #require(byType["ValueError"]), runtimeError = try #require(byType["RuntimeError"])

        let stream = try await browser.get("/issues")
        #expect(stream.status == 200 && Self.count("<svg class=\"spark\"", in: stream.html) == 4)
        #expect(Self.count("<rect class=\"bar\"", in: stream.html) >= 4, "each issue's events fall in a bucket of its sparkline")
        for issue in issues { #expect(stream.html.contains(#"<a href="/issues/\#(issue.id)">"#), "\(issue.title) is listed") }
        #expect(stream.html.contains(#"<a href="/issues?status=unresolved&amp;range=24h" class="active" aria-current="page">Unresolved</a>"#))
        #expect(stream.html.contains("ValueError: User ") && stream.html.contains("Nightly export finished") && stream.html.contains(#"<span class="pill warn">warn</span>"#))
        #expect(stream.html.contains(#"<td class="num">2</td>"#), "ValueError's two events")

        let searched = try await browser.get("/issues?q=KeyError&range=7d")
        #expect(searched.html.contains(#"<a href="/issues/\#(byType["KeyError"]!.id)">"#) && !searched.html.contains(#"<a href="/issues/\#(valueError.id)">"#))
        #expect(searched.html.contains(#"href="/issues?status=resolved&amp;q=KeyError&amp;range=7d""#), "tabs keep the search and range")
        let badSearch = try await browser.get("/issues?q=level%3Aloud")
        #expect(badSearch.status == 400 && badSearch.html.contains("The search did not run"))

        // The chained exception: the raised one first, its cause after, source lines around each frame.
        let detail = try await browser.get("/issues/\(runtimeError.id)")
        #expect(detail.status == 200 && detail.html.contains("<h1>RuntimeError: report failed</h1>"))
        let raised = try #require(detail.html.range(of: "raised</span> RuntimeError"))
        let cause = try #require(detail.html.range(of: "which was caused by</span> ZeroDivisionError"))
        #expect(raised.lowerBound < cause.lowerBound)
        #expect(detail.html.contains(#"class="current" aria-current="true">"#) && detail.html.contains("raise RuntimeError(&quot;report failed&quot;) from cause"),
                "the current line, highlighted, from the event's context_line")
        #expect(detail.html.contains(#"<details class="frame inapp" open>"#) && detail.html.contains("in <span class=\"mono\">sentry</span>"))
        #expect(detail.html.contains("correlation_id") && detail.html.contains("corr-sentry-console") && detail.html.contains(#"value="1.0""#),
                "the tag's one value on every event")
        #expect(detail.html.contains("app@1.2.3") && detail.html.contains("signed in") && detail.html.contains("auth"), "release and breadcrumbs")
        #expect(detail.html.contains("Context: trace") && detail.html.contains("user-1"))
        #expect(detail.html.contains(#"href="/correlation/corr-sentry-console""#))
        #expect(detail.html.contains(#"<input type="hidden" name="status" value="resolved"><button type="submit" class="primary">Resolve</button>"#)
                && detail.html.contains(">Ignore</button>"))

        // ValueError's two events: the latest first, the older one by link, and back.
        let events = try await world.api.get("/api/v1/issues/\(valueError.id)", as: IssueDetail.self).events
        let latest = try await browser.get("/issues/\(valueError.id)")
        #expect(latest.html.contains("Event <code>\(events[0].eventID)</code>") && Self.link("← Newer", in: latest.html) == nil)
        let olderHref = try #require(Self.link("Older →", in: latest.html))
        #expect(olderHref == "/issues/\(valueError.id)?event=\(events[1].eventID)")
        let olderEvent = try await browser.get(olderHref)
        #expect(olderEvent.html.contains("Event <code>\(events[1].eventID)</code>") && Self.link("Older →", in: olderEvent.html) == nil)
        #expect(Self.link("← Newer", in: olderEvent.html) == "/issues/\(valueError.id)?event=\(events[0].eventID)")
        #expect(try await browser.get("/issues/\(valueError.id)?event=00000000000000000000000000000000").status == 404)
        #expect(try await browser.get("/issues/0123456789abcdef0123456789abcdef").status == 404)

        // Resolve: the API's status changes, the change is audited, the tabs move it.
        let resolved = try await browser.post("/issues/\(runtimeError.id)/status", form: [("status", "resolved")], csrfFrom: "/issues/\(runtimeError.id)")
        #expect(resolved.status == 303 && resolved.location?.hasPrefix("/issues/\(runtimeError.id)?ok=Resolved") == true)
        #expect(try await world.api.get("/api/v1/issues/\(runtimeError.id)", as: IssueDetail.self).issue.status == .resolved)
        let audit = try await world.api.get("/api/v1/audit", as: AuditPage.self).data
        #expect(audit.contains { $0.action == "issue.status" && $0.target == runtimeError.id && $0.actor == "console:admin-token"
            && $0.details == .object(["from": .string("unresolved"), "status": .string("resolved")]) })
        #expect(try await browser.get("/issues?status=resolved").html.contains(#"<a href="/issues/\#(runtimeError.id)">"#))
        #expect(!(try await browser.get("/issues").html.contains(#"<a href="/issues/\#(runtimeError.id)">"#)))
        #expect(try await browser.get("/issues/\(runtimeError.id)").html.contains(">Reopen</button>"))

        // Without the form's CSRF token, or as a viewer, nothing changes.
        let forged = try await browser.post("/issues/\(valueError.id)/status", form: [("status", "ignored")], includeCSRF: false)
        #expect(forged.status == 403)
        let viewer = try await world.api.send(.POST, "/api/v1/users", json: NewAccount(email: "vera@example.com", role: "viewer", password: "a long viewer passphrase"),
                                              as: CreatedAccount.self)
        #expect(viewer.view.role == "viewer")
        let vera = ConsoleClient(port: world.gatehouse.port)
        #expect(try await vera.signIn(email: "vera@example.com", password: "a long viewer passphrase").status == 303)
        let seen = try await vera.get("/issues/\(valueError.id)")
        #expect(seen.status == 200 && !seen.html.contains("/status\"") && !seen.html.contains(">Resolve</button>"), "a viewer sees no buttons")
        let refused = try await vera.post("/issues/\(valueError.id)/status", form: [("status", "ignored")], csrfFrom: "/issues/\(valueError.id)")
        #expect(refused.status == 403)
        #expect(try await world.api.get("/api/v1/issues/\(valueError.id)", as: IssueDetail.self).issue.status == .unresolved, "refused changes changed nothing")
    }
}
