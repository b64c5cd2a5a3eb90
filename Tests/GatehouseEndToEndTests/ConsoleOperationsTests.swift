import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseStorage
import GatehouseTestSupport
import Logging
import Testing

/// The console's operations pages against the real binary: `/alerts` (rules, history, silences
/// previewed then saved or expired, deliveries), `/uptime` (probes, uptime, response times,
/// incidents), the public `/status`, and `/settings`.
@Suite("Console alerts, uptime, status and settings")
struct ConsoleOperationsTests {
    static let token = "console-ops-token-0123456789abcdef"

    static func start(_ backend: Backend, yaml: String, token: String? = ConsoleOperationsTests.token) async throws -> GatehouseProcess {
        try await GatehouseProcess.start(yaml: yaml, databaseURL: try backend.databaseURL(), environment: token.map { ["GATEHOUSE_ADMIN_TOKEN": $0] } ?? [:])
    }

    static func alertsConfig(_ receiver: Receiver) -> String {
        """
        recorder: {flush_interval_ms: 20}
        alerts:
          evaluation_interval_seconds: 1
          group_wait_seconds: 0
          group_interval_seconds: 1
          repeat_interval_seconds: 3600
          external_url: https://gatehouse.example.com
          receivers:
            - {name: hook, webhook: {url: "\(receiver.baseURL)/hook"}}
          default_receiver: hook
          rules:
            - name: AnyAICall
              expr: requests over 5m > 0
              severity: high
              labels: {team: ai}
              summary: AI calls are being made
              runbook_url: https://runbooks.example.com/ai
            - name: HugeTraffic
              expr: requests over 5m > 1000000
              severity: low
        """
    }

    /// The section of `html` from the element with `id` to the next `<section`.
    static func section(_ id: String, of html: String) -> String {
        guard let start = html.range(of: "id=\"\(id)\"") else { return "" }
        let rest = html[start.lowerBound...]
        return String(rest[..<(rest.range(of: "<section")?.lowerBound ?? rest.endIndex)])
    }

    static func silences(_ api: TypedAPI) async throws -> [SilenceView] { try await api.get("/api/v1/silences", as: SilenceList.self).data }

    static func audit(_ api: TypedAPI) async throws -> [AuditRecord] { try await api.get("/api/v1/audit?limit=100", as: AuditPage.self).data }

    @Test("/alerts: each rule's state and value against its threshold, history, deliveries; a silence previewed, saved and expired", arguments: Backend.allCases)
    func alertsPage(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        let gatehouse = try await Self.start(backend, yaml: Self.alertsConfig(receiver))
        defer { Task { _ = try? await gatehouse.stop(); try? await receiver.stop() } }
        let api = TypedAPI(baseURL: gatehouse.baseURL, adminToken: Self.token)
        let call = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: #"{"model":"mock/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#)
        #expect(call.status == 200)
        try await Poll.until("AnyAICall fires and its notification is delivered") {
            let alerts = try await api.get("/api/v1/alerts", as: AlertsAnswer.self)
            let delivered = try await api.get("/api/v1/alerts/deliveries", as: AlertDeliveriesAnswer.self).data.contains { $0.outcome == .delivered }
            return alerts.active.contains { $0.alert.rule == "AnyAICall" && $0.alert.state == .firing } && alerts.history.contains { $0.state == .firing } && delivered
        }
        let browser = ConsoleClient(port: gatehouse.port)
        try await browser.signIn(password: Self.token)

        let page = try await browser.get("/alerts")
        #expect(page.status == 200)
        let rules = Self.section("rules", of: page.html)
        let firingRow = try #require(rules.components(separatedBy: "<tr id=\"AnyAICall\">").dropFirst().first?.components(separatedBy: "</tr>").first)
        #expect(firingRow.contains("<span class=\"pill bad\">firing</span>") && firingRow.contains("1 &gt; 0"), "the value against the threshold: \(firingRow)")
        #expect(firingRow.contains("AI calls are being made") && firingRow.contains("team=ai") && firingRow.contains(">high<"))
        #expect(firingRow.contains("href=\"https://runbooks.example.com/ai\"") && firingRow.contains("requests over 5m &gt; 0"))
        let quietRow = try #require(rules.components(separatedBy: "<tr id=\"HugeTraffic\">").dropFirst().first?.components(separatedBy: "</tr>").first)
        #expect(quietRow.contains(">inactive<") && quietRow.contains("not &gt; 1000000"), "\(quietRow)")
        let history = Self.section("history", of: page.html)
        #expect(history.contains("<a href=\"#AnyAICall\">AnyAICall</a>") && history.contains("pill bad\">firing") && history.contains("pill warn\">pending"))
        let deliveries = Self.section("deliveries", of: page.html)
        #expect(deliveries.contains("<td>hook</td>") && deliveries.contains("pill good\">delivered") && deliveries.contains("hook"))
        #expect(!page.html.contains("Save silence"), "nothing to save before a preview")
        // The notification links to the row above.
        let notified = try #require(try await receiver.received("/hook").compactMap { $0["body"] as? [String: Any] }.first)
        #expect((notified["alerts"] as? [[String: Any]])?.first?["generatorURL"] as? String == "https://gatehouse.example.com/alerts#AnyAICall")

        let filtered = try await browser.get("/alerts?rule=HugeTraffic")
        #expect(filtered.html.contains("<option value=\"HugeTraffic\" selected>") && filtered.html.contains("HugeTraffic has no history yet."))

        // Preview: which active alerts the silence would mute, and nothing saved.
        let matchers = "alertname=AnyAICall\nteam=ai"
        let preview = try await browser.get(Self.url("/alerts", [("preview", "1"), ("matchers", matchers), ("duration", "2h"), ("comment", "deploy")]))
        #expect(preview.status == 200 && preview.html.contains("It would mute 1 of the 1 alerts pending or firing now"))
        #expect(Self.section("silence-preview", of: preview.html).contains("<a href=\"#AnyAICall\">AnyAICall</a>"))
        #expect(preview.html.contains("Save silence") && preview.html.contains(">alertname=AnyAICall\nteam=ai</textarea>"), "the form keeps what was typed")
        let none = try await browser.get(Self.url("/alerts", [("preview", "1"), ("matchers", "alertname=Nope"), ("duration", "1h")]))
        #expect(none.html.contains("It matches none of the 1 alerts pending or firing now"))
        for (typed, duration, problem) in [("oops", "1h", "Give 1 to 20 matchers"), ("severity=~hi.*", "1h", "not regular expressions"),
                                           ("alertname=AnyAICall", "forever", "is not a duration"), ("alertname=AnyAICall", "0s", "is not a duration"),
                                           ("alertname=AnyAICall", "400d", "at most a year"),
                                           ((0...20).map { "label\($0)=x" }.joined(separator: "\n"), "1h", "Give 1 to 20 matchers")] {
            let refused = try await browser.get(Self.url("/alerts", [("preview", "1"), ("matchers", typed), ("duration", duration)]))
            #expect(refused.status == 200 && refused.html.contains(problem) && !refused.html.contains("Save silence"), "\(typed) \(duration)")
        }
        #expect(try await Self.silences(api).isEmpty, "a preview saves nothing")

        let form = [("matchers", matchers), ("duration", "2h"), ("comment", "deploy")]
        let noCSRF = try await browser.post("/alerts/silences", form: form, includeCSRF: false)
        #expect(noCSRF.status == 403)
        let viewerPassword = "viewer-password-0123"
        _ = try await api.raw(.POST, "/api/v1/users", body: Data(#"{"email":"ops@example.com","role":"viewer","password":"\#(viewerPassword)"}"#.utf8))
        let viewer = ConsoleClient(port: gatehouse.port)
        #expect(try await viewer.signIn(email: "ops@example.com", password: viewerPassword).status == 303)
        let viewerPreview = try await viewer.get(Self.url("/alerts", [("preview", "1"), ("matchers", matchers), ("duration", "2h")]))
        #expect(viewerPreview.html.contains("Only an admin can save a silence.") && !viewerPreview.html.contains("Save silence"))
        #expect(try await viewer.post("/alerts/silences", form: form, csrfFrom: "/alerts").status == 403)
        #expect(try await Self.silences(api).isEmpty, "refused saves change nothing")

        let saved = try await browser.post("/alerts/silences", form: form, csrfFrom: "/alerts")
        #expect(saved.status == 303 && saved.location?.hasPrefix("/alerts?ok=Silenced%20alertname%3DAnyAICall") == true && saved.location?.hasSuffix("#silences") == true,
                "\(saved.location ?? "")")
        let silence = try #require(try await Self.silences(api).first)
        #expect(silence.matchers == ["alertname=AnyAICall", "team=ai"] && silence.comment == "deploy" && silence.createdBy == "admin-token" && silence.state == .active)
        let muted = try await browser.get(try #require(saved.location?.components(separatedBy: "#").first))
        #expect(muted.html.contains("Silenced alertname=AnyAICall, team=ai until"), "the flash says what was saved")
        let silenceRow = try #require(muted.html.components(separatedBy: "<tr id=\"silence-\(silence.id)\">").dropFirst().first?.components(separatedBy: "</tr>").first)
        #expect(silenceRow.contains("<code>alertname=AnyAICall</code>") && silenceRow.contains("deploy") && silenceRow.contains("<td class=\"num\">1</td>"),
                "it mutes the one firing alert: \(silenceRow)")
        #expect(Self.section("rules", of: muted.html).contains("href=\"#silence-\(silence.id)\">silenced</a>"))
        let created = try #require(try await Self.audit(api).first)
        #expect(created.action == "silence.create" && created.actor == "console:admin-token" && created.target == silence.id)
        #expect(created.details["matchers"] == .array([.string("alertname=AnyAICall"), .string("team=ai")]))

        let expireAction = "/alerts/silences/\(silence.id)/expire"
        #expect(try await viewer.post(expireAction, form: [], csrfFrom: "/alerts").status == 403)
        #expect(try await browser.post(expireAction, form: [], includeCSRF: false).status == 403)
        #expect(try await Self.silences(api).first?.state == .active, "refused expiries change nothing")
        let expired = try await browser.post(expireAction, form: [], csrfFrom: "/alerts")
        #expect(expired.status == 303 && expired.location?.contains("ok=Silence") == true)
        #expect(try await Self.silences(api).first?.state == .expired)
        let expiry = try #require(try await Self.audit(api).first)
        #expect(expiry.action == "silence.expire" && expiry.target == silence.id && expiry.actor == "console:admin-token")
        let unknown = try await browser.post("/alerts/silences/no-such-silence/expire", form: [], csrfFrom: "/alerts")
        #expect(unknown.status == 303 && unknown.location?.contains("error=No%20silence") == true)
        let after = try await browser.get("/alerts")
        #expect(after.html.contains("Expired silences (1)") && !Self.section("rules", of: after.html).contains(">silenced</a>"))
        #expect(try await Self.audit(api).count == 3, "two silence changes and the viewer account; refusals write nothing")
    }

    /// Without an admin token the console is open to anyone on the port, so it changes nothing.
    @Test("an open console previews silences but cannot save one")
    func openConsoleCannotSilence() async throws {
        let receiver = try await Receiver.start()
        let gatehouse = try await Self.start(.sqlite, yaml: Self.alertsConfig(receiver), token: nil)
        defer { Task { _ = try? await gatehouse.stop(); try? await receiver.stop() } }
        let browser = ConsoleClient(port: gatehouse.port)
        let preview = try await browser.get(Self.url("/alerts", [("preview", "1"), ("matchers", "alertname=AnyAICall"), ("duration", "1h")]))
        #expect(preview.status == 200 && preview.html.contains("Only an admin can save a silence.") && !preview.html.contains("Save silence"))
        // A valid double-submit token (the open console's cookie): the refusal is for the role, not the form.
        let csrf = try #require(browser.cookie("gatehouse-csrf"))
        let refused = try await browser.post("/alerts/silences", form: [("matchers", "alertname=AnyAICall"), ("duration", "1h"), ("_csrf", csrf)])
        #expect(refused.status == 403 && refused.html.contains("GATEHOUSE_ADMIN_TOKEN"))
        #expect(try await Self.silences(TypedAPI(baseURL: gatehouse.baseURL)).isEmpty)
    }

    @Test("/uptime and the public /status: states, uptime per window, response times, incidents; /status shows only what is public", arguments: Backend.allCases)
    func uptimeAndStatus(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        let gatehouse = try await Self.start(backend, yaml: """
            alerts:
              probes:
                - {name: app, url: "\(receiver.baseURL)/health", interval_seconds: 1, public: true}
                - {name: internal-db, url: "http://127.0.0.1:1/health", interval_seconds: 1, timeout_ms: 500}
              heartbeats:
                - {name: nightly, interval_seconds: 86400, token: beat-0123456789, public: true}
            """)
        defer { Task { _ = try? await gatehouse.stop(); try? await receiver.stop() } }
        let api = TypedAPI(baseURL: gatehouse.baseURL, adminToken: Self.token)
        func probe(_ name: String) async throws -> ProbeView? { try await api.get("/api/v1/probes", as: ProbeList.self).data.first { $0.name == name } }
        try await Poll.until("app is up and internal-db down") {
            let app = try await probe("app"), db = try await probe("internal-db")
            return app?.status == .up && db?.status == .down
        }
        try await receiver.control(#"{"health": 503}"#)
        try await Poll.until("app is down") { try await probe("app")?.status == .down }
        try await receiver.control(#"{"health": 200}"#)
        try await Poll.until("app is up again") { try await probe("app")?.status == .up }

        let browser = ConsoleClient(port: gatehouse.port)
        #expect(try await ConsoleClient(port: gatehouse.port).get("/uptime").status == 303, "/uptime needs a session")
        try await browser.signIn(password: Self.token)
        let page = try await browser.get("/uptime?range=1h")
        #expect(page.status == 200)
        let app = try #require(page.html.components(separatedBy: "<tr id=\"app\">").dropFirst().first?.components(separatedBy: "</tr>").first)
        #expect(app.contains("dot good") && app.contains("pill info\">public") && app.contains(">http<") && app.contains("up <span class=\"hint\">since"))
        // The 24-hour cell: a share below 100%, and over how many checks, counted in the store.
        let day = try #require(app.firstMatch(of: /title="([0-9,]+) of ([0-9,]+) checks passed in the last 24 h"><span class="pill [a-z]+">([0-9.]+)%</))
        let passed = Int(day.1.replacingOccurrences(of: ",", with: ""))!, checks = Int(day.2.replacingOccurrences(of: ",", with: ""))!
        #expect(passed < checks && passed >= 2 && String(format: "%.2f", (Double(passed) / Double(checks) * 10_000).rounded(.down) / 100) == day.3)
        let stored = try await api.get("/api/v1/probes/app/results?from=-1d&limit=10000", as: ProbeResultsAnswer.self).data
        #expect(stored.count >= checks && stored.filter { !$0.up }.count >= checks - passed, "the page counts the stored checks")
        let db = try #require(page.html.components(separatedBy: "<tr id=\"internal-db\">").dropFirst().first?.components(separatedBy: "</tr>").first)
        #expect(db.contains("dot bad") && db.contains("connection refused") && !db.contains(">public<") && db.contains(">0.00%<"))
        let nightly = try #require(page.html.components(separatedBy: "<tr id=\"nightly\">").dropFirst().first?.components(separatedBy: "</tr>").first)
        #expect(nightly.contains(">heartbeat<") && nightly.contains("unknown") && nightly.contains("heartbeats keep only their last ping"))
        #expect(page.html.contains("<h2>app <span class=\"hint\">average") && page.html.contains("<svg class=\"chart\"") && page.html.contains("Failed checks"))
        let incidents = Self.section("incidents", of: page.html)
        #expect(incidents.contains("status 503") && incidents.contains("connection refused") && incidents.contains("pill bad\">ongoing"))
        #expect(incidents.contains(Self.url("/uptime", [("probe", "app"), ("range", "1h")]).replacingOccurrences(of: "&", with: "&amp;")), "incidents link to their probe, keeping the range")

        let focused = try await browser.get("/uptime?probe=app&range=1h")
        #expect(focused.html.contains("<h1>Uptime · app</h1>") && Self.section("incidents", of: focused.html).contains("status 503"))
        #expect(!Self.section("incidents", of: focused.html).contains("connection refused") && !focused.html.contains("<h2>internal-db"))
        #expect(try await browser.get("/uptime?probe=nightly").html.contains("A heartbeat has no response time"))
        let missing = try await browser.get("/uptime?probe=nope")
        #expect(missing.status == 404 && missing.html.contains("No probe or heartbeat is named nope."))

        // The public page: no session, only what is marked public, and nothing that leaks.
        let visitor = ConsoleClient(port: gatehouse.port)
        // The public page is reused for 30 s (StatusPage.maxAgeMicros): one read before the incident ended lasts that long.
        let status = try await Poll.until("/status shows app's incident", timeout: .seconds(45), every: .seconds(1)) { () -> ConsoleClient.Page? in
            let page = try await visitor.get("/status")
            return page.html.contains("pill good\">resolved") ? page : nil
        }
        #expect(status.status == 200 && status.html.contains("All systems operational"), "internal-db is down but not public")
        #expect(status.html.contains("<strong>app</strong>") && status.html.contains("<strong>nightly</strong>") && !status.html.contains("internal-db"))
        #expect(status.html.firstMatch(of: /<td class="num" title="[^"]*">[0-9.]+%<\/td>/) != nil, "app's uptime")
        for secret in [receiver.baseURL, "127.0.0.1", "/health", "status 503", "connection refused", "beat-0123456789", "Sign out", "/alerts"] {
            #expect(!status.html.contains(secret), "the public page shows no \(secret)")
        }
        #expect(status.header("content-security-policy")?.contains("default-src 'none'") == true && status.header("x-frame-options") == "DENY")
    }

    /// Checks are kept 31 days, so the 30-day figure covers 30 days; older ones are pruned (the
    /// first prune runs as Gatehouse starts).
    @Test("/uptime's 30-day figure counts a check 20 days old; one 40 days old is pruned", arguments: Backend.allCases)
    func thirtyDaysOfChecksAreKept(_ backend: Backend) async throws {
        let databaseURL = try backend.databaseURL() ?? "sqlite://" + TestEnvironment.temporaryDirectory().appendingPathComponent("store.sqlite").path
        let day: Int64 = 86_400_000_000, now = TimeExpressions.nowMicros()
        try await StoreFactory.withOpenedStore(databaseURL: databaseURL, logger: Logger(label: "test")) { opened in
            try await opened.alerts.recordProbeResults([20, 40].map { age in
                ProbeResult(probe: "app", timestampMicros: now - age * day, up: false, status: 503, latencyMicros: 2000, error: "status 503, expected 2xx")
            })
        }
        let receiver = try await Receiver.start()
        let gatehouse = try await GatehouseProcess.start(yaml: """
            alerts:
              probes:
                - {name: app, url: "\(receiver.baseURL)/health", interval_seconds: 1}
            """, databaseURL: databaseURL, environment: ["GATEHOUSE_ADMIN_TOKEN": Self.token])
        defer { Task { _ = try? await gatehouse.stop(); try? await receiver.stop() } }
        let api = TypedAPI(baseURL: gatehouse.baseURL, adminToken: Self.token)
        let kept = try await Poll.until("the 40-day-old check is pruned and app is checked") { () -> [ProbeResultView]? in
            let results = try await api.get("/api/v1/probes/app/results?from=-60d&limit=10000", as: ProbeResultsAnswer.self).data
            return results.count(where: { !$0.up }) == 1 && results.contains { $0.up } ? results : nil
        }
        let old = try #require(kept.first { !$0.up })
        #expect(old.status == 503 && old.error == "status 503, expected 2xx", "the 20-day-old check is kept")

        let browser = ConsoleClient(port: gatehouse.port)
        try await browser.signIn(password: Self.token)
        let page = try await browser.get("/uptime")
        let row = try #require(page.html.components(separatedBy: "<tr id=\"app\">").dropFirst().first?.components(separatedBy: "</tr>").first)
        func cell(_ span: String) throws -> (passed: Int, checks: Int, text: String) {
            let match = try #require(row.firstMatch(of: try Regex(#"title="([0-9,]+) of ([0-9,]+) checks passed in the last "# + span
                + #""><span class="pill [a-z]*">([0-9.]+%)<"#)), "no \(span) cell in \(row)")
            func number(_ i: Int) -> Int { Int((match.output[i].substring ?? "").replacingOccurrences(of: ",", with: "")) ?? -1 }
            return (number(1), number(2), String(match.output[3].substring ?? ""))
        }
        let week = try cell("7 days"), month = try cell("30 days")
        #expect(week.passed == week.checks && week.text == "100%", "the last 7 days hold only passed checks")
        #expect(month.checks - month.passed == 1 && month.text != "100%",
                "the 30-day figure counts the failed check 20 days ago: \(month)")
    }

    @Test("/settings: version, store, storage against retention, the configuration with secrets redacted; /status is 404 without public probes",
          arguments: Backend.allCases)
    func settingsPage(_ backend: Backend) async throws {
        let gatehouse = try await Self.start(backend, yaml: """
            telemetry:
              retention: {logs_days: 14, logs_max_rows: 500}
            alerts:
              heartbeats:
                - {name: nightly, interval_seconds: 86400, token: beat-secret-0123456789}
            """)
        defer { Task { _ = try? await gatehouse.stop() } }
        let lines = (0..<3).map { #"{"level":"info","service":"api","message":"line \#($0)"}"# }.joined(separator: "\n")
        #expect(try await HTTP.send(gatehouse.baseURL + "/api/v1/logs", body: Data(lines.utf8)).status == 200)
        let api = TypedAPI(baseURL: gatehouse.baseURL, adminToken: Self.token)
        try await Poll.until("the logs are stored") {
            try await api.get("/api/v1/storage", as: StorageReport.self).kinds.contains { $0.kind == .logs && $0.rows == 3 }
        }
        let browser = ConsoleClient(port: gatehouse.port)
        #expect(try await browser.get("/settings").status == 303)
        try await browser.signIn(password: Self.token)
        let page = try await browser.get("/settings")
        #expect(page.status == 200 && page.html.contains("<dt>Version</dt><dd>\(GatehouseVersion.current)</dd>"))
        #expect(page.html.contains("<dt>Store</dt><dd>\(backend == .sqlite ? "sqlite" : "postgres")</dd>"))
        let logs = try #require(page.html.components(separatedBy: "<td>logs</td>").dropFirst().first?.components(separatedBy: "</tr>").first)
        #expect(logs.contains("<td class=\"num\">3</td>") && logs.contains("14 days") && logs.contains("<td class=\"num\">500<meter"), "\(logs)")
        #expect(page.html.contains("value=\"0.006\"") && page.html.contains("0.6% of the row limit"), "3 of 500 rows")
        let requests = try #require(page.html.components(separatedBy: "<td>requests</td>").dropFirst().first?.components(separatedBy: "</tr>").first)
        #expect(requests.contains("90 days") && requests.contains("no limit"))
        let configuration = try #require(page.html.components(separatedBy: "<pre>").dropFirst().first?.components(separatedBy: "</pre>").first)
        #expect(configuration.contains("heartbeats") && configuration.contains("nightly") && configuration.contains("logs_max_rows: 500"))
        let heartbeatLine = try #require(configuration.split(separator: "\n").first { $0.contains("nightly") })
        #expect(heartbeatLine.contains("public: false"), "the configuration says whether /status shows it: \(heartbeatLine)")
        #expect(!page.html.contains("beat-secret-0123456789") && !page.html.contains(Self.token), "secrets are redacted")
        #expect(page.html.contains("off: mark a probe or heartbeat"))

        let status = try await ConsoleClient(port: gatehouse.port).get("/status")
        #expect(status.status == 404 && status.html.contains("There is no public status page here."))
    }

    static func url(_ path: String, _ parameters: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~/")
        return path + "?" + parameters.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&")
    }
}
