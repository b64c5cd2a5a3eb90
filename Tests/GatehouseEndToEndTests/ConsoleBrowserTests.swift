import Foundation
import GatehouseTestSupport
import Testing

/// The console as a person uses it: real headless Chromium (Debian's `chromium`, driven by
/// Playwright for Python, `Tests/Support/console_browser.py`) against the real server, with data
/// made by the real openai, anthropic and sentry-sdk clients. The script signs in and out,
/// visits and screenshots every page, filters, shares a URL, exports, tails logs, resolves an
/// issue, silences an alert, creates a key, and checks a viewer, a form without its CSRF token
/// and the public status page. Screenshots go to `.build/console-screenshots/<backend>/`.
@Suite("Console in a real browser", .serialized)
struct ConsoleBrowserTests {
    static let token = "browser-admin-token-0123456789abcdef"

    @Test("every page works in Chromium with real data", arguments: Backend.allCases)
    func everyPageInChromium(_ backend: Backend) async throws {
        let receiver = try await Receiver.start()
        let gatehouse = try await GatehouseProcess.start(yaml: """
            telemetry:
              projects:
                - {name: web, id: "42", key: \(ingestKey)}
            recorder:
              flush_interval_ms: 20
            gateway:
              capture_bodies: true
            budgets:
              - {name: monthly-ai, scope: global, amount_usd: "0.05", period: month}
            alerts:
              evaluation_interval_seconds: 1
              group_wait_seconds: 0
              rules:
                - {name: AICallsFlowing, expr: "requests over 5m > 0", severity: medium, summary: "AI calls are flowing"}
              probes:
                - {name: website, url: "\(receiver.baseURL)/health", interval_seconds: 1, public: true}
                - {name: internal-db, url: "http://127.0.0.1:1/health", interval_seconds: 1, timeout_ms: 500}
              heartbeats:
                - {name: nightly-backup, interval_seconds: 3600}
            """, databaseURL: try backend.databaseURL(), environment: ["GATEHOUSE_ADMIN_TOKEN": Self.token])
        defer {
            Task {
                _ = try? await gatehouse.stop()
                _ = try? await receiver.child.stop()
            }
        }

        // Data, the way apps make it: the official SDKs through the gateway, Python logging to
        // the log endpoint, sentry-sdk to the DSN.
        for (scenario, model) in SDKEndToEndTests.mockScenarios {
            let result = try await SDK.run(scenario, baseURL: gatehouse.baseURL, model: model,
                                           headers: ["Gatehouse-Property-Customer": scenario.hasPrefix("openai") ? "acme" : "globex",
                                                     "Gatehouse-User-Id": "user-\(scenario.count % 3)", "X-Request-Id": "corr-\(scenario)"])
            #expect(result["ok"] as? Bool == true, "\(scenario): \(result)")
        }
        _ = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: #"{"model":"nowhere/gpt-9","messages":[{"role":"user","content":"hi"}]}"#)
        _ = try await telemetryClient(["logging", "--url", gatehouse.baseURL + "/api/v1/logs", "--key", ingestKey], as: LogIngestAnswer.self)
        _ = try await telemetryClient(["sentry", "--dsn", "http://\(ingestKey)@127.0.0.1:\(gatehouse.port)/42", "--tag", "correlation_id=corr-openai-chat"],
                                      as: SentryClientReport.self)
        let viewer = try await HTTP.post(gatehouse.baseURL + "/api/v1/users",
                                         json: #"{"email":"viewer@example.com","role":"viewer","password":"viewer-password-0123"}"#,
                                         headers: [("Authorization", "Bearer \(Self.token)")])
        #expect(viewer.status == 201, "\(String(decoding: viewer.body, as: UTF8.self))")
        // Records, events and the first probe results are written in the background.
        try await Poll.until("records, an issue and probe results") {
            let (status, body) = try await HTTP.get(gatehouse.baseURL + "/api/v1/issues", headers: [("Authorization", "Bearer \(Self.token)")])
            let (_, probes) = try await HTTP.get(gatehouse.baseURL + "/api/v1/probes", headers: [("Authorization", "Bearer \(Self.token)")])
            return status == 200 && String(decoding: body, as: UTF8.self).contains("\"id\"") && String(decoding: probes, as: UTF8.self).contains("\"status\":\"up\"")
                ? true : nil
        }

        let screenshots = TestEnvironment.repositoryRoot.appendingPathComponent(".build/console-screenshots/\(backend.rawValue)")
        try? FileManager.default.removeItem(at: screenshots)
        try FileManager.default.createDirectory(at: screenshots, withIntermediateDirectories: true)
        let script = TestEnvironment.repositoryRoot.appendingPathComponent("Tests/Support/console_browser.py").path
        let result = try await ProcessRunner.runAsync(try TestEnvironment.python, [
            script, "--base-url", gatehouse.baseURL, "--token", Self.token, "--viewer-email", "viewer@example.com",
            "--viewer-password", "viewer-password-0123", "--ingest-key", ingestKey, "--screenshots", screenshots.path,
        ])
        #expect(result.status == 0, "the browser run failed:\n\(result.output)")
        let shots = try FileManager.default.contentsOfDirectory(atPath: screenshots.path).filter { $0.hasSuffix(".png") }
        #expect(shots.count >= 16, "screenshots: \(shots.sorted())")
    }

    /// The Performance page, a transaction's traces and a trace's waterfall in Chromium: the
    /// script sends Sentry envelopes with `transaction` items (the hour before fast, now slow with
    /// a failed call), the real sentry-sdk sends one with an error, and the script reads the table,
    /// filters it, clicks through to the waterfall and checks where each bar is drawn.
    /// Screenshots go to `.build/console-screenshots/performance-<backend>/`.
    @Test("the Performance page and a trace's waterfall work in Chromium", arguments: Backend.allCases)
    func performanceInChromium(_ backend: Backend) async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: tracesConfig, databaseURL: try backend.databaseURL(),
                                                         environment: ["GATEHOUSE_ADMIN_TOKEN": Self.token])
        defer { Task { _ = try? await gatehouse.stop() } }
        let client = TestEnvironment.repositoryRoot.appendingPathComponent("Tests/Support/trace_client.py").path
        let sent = try await ProcessRunner.runAsync(try TestEnvironment.python, [client, "--dsn", "http://\(ingestKey)@127.0.0.1:\(gatehouse.port)/42"])
        #expect(sent.status == 0, "trace_client failed:\n\(sent.output)")

        let screenshots = TestEnvironment.repositoryRoot.appendingPathComponent(".build/console-screenshots/performance-\(backend.rawValue)")
        try? FileManager.default.removeItem(at: screenshots)
        try FileManager.default.createDirectory(at: screenshots, withIntermediateDirectories: true)
        let script = TestEnvironment.repositoryRoot.appendingPathComponent("Tests/Support/console_browser.py").path
        let result = try await ProcessRunner.runAsync(try TestEnvironment.python, [
            script, "--performance", "--base-url", gatehouse.baseURL, "--token", Self.token, "--ingest-key", ingestKey, "--screenshots", screenshots.path,
        ])
        #expect(result.status == 0, "the browser run failed:\n\(result.output)")
        let shots = try FileManager.default.contentsOfDirectory(atPath: screenshots.path).filter { $0.hasSuffix(".png") }
        #expect(shots.count >= 4, "screenshots: \(shots.sorted())")
    }
}

/// What `telemetry_client.py logging` answers (the log endpoint's reply); only its shape matters here.
struct LogIngestAnswer: Decodable {}
