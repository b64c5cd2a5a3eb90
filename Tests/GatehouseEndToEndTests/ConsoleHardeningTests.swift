import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

/// Findings of the attack review of the console, each replayed against the real binary: numbers
/// an anonymous Sentry client chooses must not crash the issue page, and a live tail must end
/// when the session that opened it does.
@Suite("Console hardening")
struct ConsoleHardeningTests {
    static let token = "console-hardening-token-0123456789"

    static func start(_ backend: Backend) async throws -> (GatehouseProcess, ConsoleClient) {
        let gatehouse = try await GatehouseProcess.start(yaml: telemetryConfig, databaseURL: try backend.databaseURL(),
                                                         environment: ["GATEHOUSE_ADMIN_TOKEN": token])
        let browser = ConsoleClient(port: gatehouse.port)
        #expect(try await browser.signIn(password: token).status == 303)
        return (gatehouse, browser)
    }

    /// Sentry events whose frames and breadcrumbs carry the ends of Int64, integers past them,
    /// huge doubles and text where numbers belong. Each has its own fingerprint, so its own issue.
    static let hostileEvents: [String] = [
        // The review's case: next-line numbering past Int64.max, and abs(Int64.min).
        #"""
        {"fingerprint":["overflow-1"],"exception":{"values":[{"type":"Overflow1","value":"lineno max","stacktrace":{"frames":[
          {"filename":"app.py","function":"f","lineno":9223372036854775807,"colno":9223372036854775807,"in_app":true,
           "pre_context":["before_line_1"],"context_line":"boom_line_1","post_context":["after_line_1","after_line_2"]}]}}]},
         "breadcrumbs":{"values":[{"timestamp":-9223372036854775808,"message":"crumb min"},{"timestamp":9223372036854775807,"message":"crumb max"}]}}
        """#,
        // Line numbering back from Int64.min, and the event's own time at an end of Int64.
        #"""
        {"fingerprint":["overflow-2"],"timestamp":9223372036854775807,"exception":{"values":[{"type":"Overflow2","value":"lineno min","stacktrace":{"frames":[
          {"filename":"app.py","function":"g","lineno":-9223372036854775808,"colno":-9223372036854775808,"in_app":true,
           "pre_context":["before_line_2a","before_line_2b"],"context_line":"boom_line_2","post_context":["after"]}]}}]},
         "breadcrumbs":{"values":[{"timestamp":-1e300,"message":"a"},{"timestamp":1e300,"message":"b"},{"timestamp":1.7976931348623157e308,"message":"c"}]}}
        """#,
        // One short of the ends, so the offset (not the number itself) overflows; a library frame; the old list shape.
        #"""
        {"fingerprint":["overflow-3"],"timestamp":-9223372036854775808,"exception":[{"type":"Overflow3","value":"near the ends","stacktrace":{"frames":[
          {"filename":"lib.py","function":"h","lineno":9223372036854775806,"in_app":false,"context_line":"boom_line_3","post_context":["x","y","z"]},
          {"filename":"lib.py","function":"i","lineno":-9223372036854775807,"in_app":false,"pre_context":["p","q","r"],"context_line":"boom_line_3b"}]}}],
         "breadcrumbs":[{"timestamp":"NaN","message":"nan"},{"timestamp":"9999-99-99T99:99:99Z","message":"bad date"},{"timestamp":"Infinity"}]}
        """#,
        // Doubles and integers beyond Int64 where the page reads integers.
        #"""
        {"fingerprint":["overflow-4"],"timestamp":1e300,"exception":{"values":[{"type":"Overflow4","value":"huge doubles","stacktrace":{"frames":[
          {"filename":"app.py","function":"j","lineno":1e300,"colno":-1e300,"in_app":true,"pre_context":["m"],"context_line":"boom_line_4","post_context":["n"]},
          {"filename":"app.py","function":"k","lineno":9.3e18,"in_app":true,"pre_context":["m"],"context_line":"boom_line_4b","post_context":["n"]},
          {"filename":"app.py","function":"l","lineno":9223372036854775808,"in_app":true,"context_line":"boom_line_4c","post_context":["n"]},
          {"filename":"app.py","function":"o","lineno":"9223372036854775807","in_app":true,"context_line":"boom_line_4d","post_context":["n"]}]}}]},
         "breadcrumbs":{"values":[{"timestamp":9223372036854775808,"message":"d"},{"timestamp":-9223372036854775809,"message":"e"},
                                  {"timestamp":-9.3e18,"message":"f"},{"timestamp":99999999999.9,"message":"g"}]}}
        """#,
    ]

    @Test("an event's absurd line numbers and timestamps render as a page, not a crash", arguments: Backend.allCases)
    func hostileNumbersOnTheIssuePage(_ backend: Backend) async throws {
        let (gatehouse, browser) = try await Self.start(backend)
        defer { Task { _ = try? await gatehouse.stop() } }
        for event in Self.hostileEvents {
            // The store endpoint is open to anyone holding the DSN, which ships inside client apps.
            let stored = try await HTTP.send(gatehouse.baseURL + "/api/42/store/", headers: [("X-Sentry-Auth", "Sentry sentry_key=\(ingestKey)")],
                                             body: Data(event.utf8))
            #expect(stored.status == 200, "\(String(decoding: stored.body, as: UTF8.self))")
        }
        let api = TypedAPI(baseURL: gatehouse.baseURL, adminToken: Self.token)
        let issues = try await Poll.until("\(Self.hostileEvents.count) issues") {
            let list = try await api.get("/api/v1/issues?limit=1000", as: IssueList.self).data
            return list.count == Self.hostileEvents.count ? list : nil
        }
        for issue in issues.sorted(by: { $0.type < $1.type }) {
            let page = try await browser.get("/issues/\(issue.id)")
            #expect(page.status == 200, "\(issue.type): \(page.html.prefix(300))")
            #expect(page.html.contains("<h1>\(issue.type): "), "\(issue.type): the page shows the issue")
            let (health, _) = try await HTTP.get(gatehouse.baseURL + "/health")
            #expect(health == 200, "the server still answers after \(issue.type)'s page")
        }
        let first = try #require(issues.first { $0.type == "Overflow1" })
        let page = try await browser.get("/issues/\(first.id)")
        #expect(page.html.contains("boom_line_1") && page.html.contains("after_line_2") && page.html.contains("crumb min"),
                "the frame's source lines and the breadcrumbs are still shown")
        #expect(!page.html.contains("9223372036854775808"), "no line number past the end of Int64 was made up")
    }

    @Test("the console's live tail ends when its session is signed out, before sending another line", arguments: Backend.allCases)
    func tailEndsAtSignOut(_ backend: Backend) async throws {
        let (gatehouse, browser) = try await Self.start(backend)
        defer { Task { _ = try? await gatehouse.stop() } }
        let session = try #require(browser.cookie("gatehouse-session"))
        let seen = SeenText()
        let (status, text) = try await StreamingClient.get(
            url: gatehouse.baseURL + "/logs/tail?q=service%3Ahardening", headers: [("Cookie", "gatehouse-session=\(session)")], timeout: .seconds(20),
            whileReading: {
                // The stream works while signed in…
                try await Self.sendLog(gatehouse, "while signed in")
                try await Poll.until("the first line on the tail") { seen.text.contains("while signed in") }
                // …then the browser signs out and a new line comes.
                let out = try await browser.post("/logout", form: [])
                #expect(out.status == 303 && out.location == "/login")
                try await Self.sendLog(gatehouse, "after sign-out")
            },
            done: { text in
                seen.text = text
                return text.contains("after sign-out")
            })
        #expect(status == 200 && text.contains("while signed in"))
        #expect(!text.contains("after sign-out"), "a signed-out session got a line")
        #expect(text != "(timed out)", "the stream ended instead of staying open")
    }

    static func sendLog(_ gatehouse: GatehouseProcess, _ message: String) async throws {
        let line = #"{"message":"\#(message)","level":"info","service":"hardening"}"# + "\n"
        let reply = try await HTTP.send(gatehouse.baseURL + "/api/v1/logs", headers: [("Authorization", "Bearer \(ingestKey)")], body: Data(line.utf8))
        #expect(reply.status == 200)
    }
}

/// The text a stream has delivered so far, shared between its reader and the test's actions.
private final class SeenText: @unchecked Sendable {
    private let lock = NSLock()
    private var value = ""
    var text: String {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}
