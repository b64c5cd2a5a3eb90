import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

/// Sentry parity for issues, end to end: the real sentry-sdk sends tagged events with a user,
/// environment and release; the API and the `gatehouse issues` CLI search them by tag and by
/// Sentry's keys, ignore until a count, merge, and page through an issue's events.
@Suite(.serialized) struct IssueSearchEndToEndTests {
    @Test(arguments: Backend.allCases)
    func sentryTagsSearchIgnoreAndMerge(_ backend: Backend) async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: telemetryConfig, databaseURL: try backend.databaseURL())
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let dsn = "http://\(ingestKey)@127.0.0.1:\(gatehouse.port)/42"
        // Four issues (ValueError twice, KeyError, RuntimeError, a warning message) from a user
        // with an email, tagged function=tasks.list; then one error message with no user.
        _ = try await telemetryClient(["sentry", "--dsn", dsn, "--tag", "function=tasks.list"], as: SentryClientReport.self)
        _ = try await telemetryClient(["sentry", "--dsn", dsn, "--tag", "function=exports.run", "--no-user", "--message", "Export stalled"],
                                      as: SentryClientReport.self)
        let all = try await Poll.until("6 events in 5 issues") {
            let list = try await api.get("/api/v1/issues", as: IssueList.self).data
            return list.reduce(0) { $0 + $1.count } == 6 ? list : nil
        }
        let byType = Dictionary(all.map { ($0.type.isEmpty ? $0.title : $0.type, $0) }, uniquingKeysWith: { a, _ in a })
        let valueError = try #require(byType["ValueError"]), keyError = try #require(byType["KeyError"])
        let runtimeError = try #require(byType["RuntimeError"]), stalled = try #require(byType["Export stalled"])

        func search(_ q: String) async throws -> Set<String> {
            Set(try await api.get(apiPath("/api/v1/issues", ["q": q]), as: IssueList.self).data.map(\.id))
        }
        let tagged = Set(all.map(\.id)).subtracting([stalled.id])
        #expect(try await search("function:tasks.list") == tagged)
        #expect(try await search(#"function:"tasks.list" level:error"#) == [valueError.id, keyError.id, runtimeError.id])
        #expect(try await search("function:exports.*") == [stalled.id])
        #expect(try await search("-function:tasks.list") == [stalled.id])
        #expect(try await search("user.email:ada@example.com") == tagged)
        #expect(try await search("user.id:user-1 environment:test release:app@1.2.3") == tagged)
        #expect(try await search("has:user") == tagged)
        #expect(try await search("is:unresolved") == Set(all.map(\.id)))
        #expect(try await search("times_seen:>1") == [valueError.id])
        #expect(try await search("level:error timestamp:>-1h first_seen:-1h").count == 4)
        let unknownField = try await api.failure(.GET, apiPath("/api/v1/issues", ["q": "function:>5"]))
        #expect(unknownField.status == 400 && unknownField.error.error.code == "invalid_query")

        // Ignored until 2 more events: the next run sends 2 ValueErrors, which escalate it.
        let ignored = try await api.send(.PATCH, "/api/v1/issues/\(valueError.id)", json: IssueUpdate(status: .ignored, ignoreUntilCount: 2),
                                         as: IssueDetail.self)
        #expect(ignored.issue.status == .ignored && ignored.issue.ignoreUntilCount == 2 && ignored.issue.ignoreEventsLeft == 2)
        let later = try await api.send(.PATCH, "/api/v1/issues/\(stalled.id)", json: IssueUpdate(status: .ignored, ignoreUntil: "+1d"),
                                       as: IssueDetail.self)
        #expect(later.issue.status == .ignored && later.issue.ignoreUntil != nil)
        #expect(try await search("is:ignored") == [valueError.id, stalled.id])
        for (body, param) in [(#"{"status":"ignored","ignore_until_count":0}"#, "ignore_until_count"),
                              (#"{"status":"ignored","ignore_until":"soon"}"#, "ignore_until"),
                              (#"{"status":"resolved","ignore_until_count":3}"#, "status")] {
            let refused = try await api.failure(.PATCH, "/api/v1/issues/\(valueError.id)", body: Data(body.utf8))
            #expect(refused.status == 400 && refused.error.error.param == param, "\(body)")
        }

        // Merge RuntimeError into KeyError: one issue with both counts; the merged one is gone.
        let merged = try await api.send(.POST, "/api/v1/issues/\(keyError.id)/merge", json: IssueMergeRequest(issues: [runtimeError.id]),
                                        as: IssueDetail.self)
        #expect(merged.issue.count == 2 && merged.issue.title == keyError.title && merged.events.count == 2)
        #expect(try await !search("").contains(runtimeError.id))
        let moved = try await RawHTTP.get(port: gatehouse.port, "/api/v1/issues/\(runtimeError.id)")
        #expect(moved.status == 301 && moved.text.lowercased().contains("location: /api/v1/issues/\(keyError.id)"))
        #expect(moved.body.contains(#""merged_into":"\#(keyError.id)""#))
        for (body, status) in [(#"{"issues":[]}"#, 400), (#"{"issues":["\#(keyError.id)"]}"#, 400), (#"{"issues":["nope"]}"#, 400), ("{", 400)] {
            #expect(try await api.failure(.POST, "/api/v1/issues/\(keyError.id)/merge", body: Data(body.utf8)).status == status, "\(body)")
        }
        #expect(try await api.failure(.POST, "/api/v1/issues/nope/merge", body: try APIJSON.encode(IssueMergeRequest(issues: [stalled.id]))).status == 404)

        // The SDK again: ValueError escalates; RuntimeError's events land in KeyError.
        _ = try await telemetryClient(["sentry", "--dsn", dsn, "--tag", "function=tasks.list"], as: SentryClientReport.self)
        let escalated = try await Poll.until("the ignored issue escalated") {
            let issue = try await api.get("/api/v1/issues/\(valueError.id)", as: IssueDetail.self).issue
            return issue.status == .unresolved ? issue : nil
        }
        #expect(escalated.statusReason == "escalated" && escalated.ignoreUntilCount == nil && escalated.count == 4)
        #expect(try await search("is:escalated") == [valueError.id])
        let target = try await Poll.until("the merged issue's new event in the target") {
            let issue = try await api.get("/api/v1/issues/\(keyError.id)", as: IssueDetail.self).issue
            return issue.count == 4 ? issue : nil
        }
        #expect(target.title == keyError.title)
        #expect(try await !search("").contains(runtimeError.id), "a merged issue's new events do not bring it back")

        // Paging through an issue's events, newest first.
        let latest = try await api.get("/api/v1/issues/\(keyError.id)/events/latest", as: IssueEventPage.self)
        #expect(latest.newerEventID == nil && latest.event.event != nil)
        let olderID = try #require(latest.olderEventID)
        let older = try await api.get("/api/v1/issues/\(keyError.id)/events/\(olderID)", as: IssueEventPage.self)
        #expect(older.newerEventID == latest.event.eventID && older.event.eventID == olderID)
        #expect(try await api.failure(.GET, "/api/v1/issues/\(keyError.id)/events/nope").status == 404)

        // The CLI, the real binary.
        func cli(_ arguments: [String]) async throws -> String {
            let result = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["issues"] + arguments + ["--url", gatehouse.baseURL, "--no-links"])
            guard result.status == 0 else { throw ProcessRunner.Failure(message: "gatehouse issues \(arguments) failed:\n\(result.output)") }
            return result.output
        }
        let listed = try await cli(["--query", "function:exports.run"])
        #expect(listed.contains(stalled.id) && !listed.contains(keyError.id))
        let listedJSON = try APIJSON.decode(IssueList.self, from: Data(try await cli(["list", "-q", "user.email:ada@example.com", "--json"]).utf8))
        #expect(Set(listedJSON.data.map(\.id)) == [valueError.id, keyError.id, byType["Nightly export finished with 3 warnings"]?.id ?? "?"])
        #expect(try await cli([keyError.id]).contains("Title:"), "`gatehouse issues ID` still shows one issue")
        let event = try await cli(["show", keyError.id, "--event", "latest"])
        #expect(event.contains(latest.event.eventID) && event.contains("--event \(olderID)") && event.contains("function=tasks.list"))
        #expect(try await cli(["resolve", keyError.id]).contains("resolved"))
        let ignoreCLI = try await cli(["ignore", keyError.id, "--count", "5"])
        #expect(ignoreCLI.contains("Ignored until:") && ignoreCLI.contains("5 more events"))
        #expect(try await cli(["ignore", stalled.id, "--until", "2h"]).contains("Ignored until:"))
        #expect(try await api.get("/api/v1/issues/\(keyError.id)", as: IssueDetail.self).issue.ignoreUntilCount == 5)
        let mergedByCLI = try await cli(["merge", keyError.id, valueError.id])
        #expect(mergedByCLI.contains("Merged 1 issue into \(keyError.id)"))
        #expect(try await api.get("/api/v1/issues/\(keyError.id)", as: IssueDetail.self).issue.count == 8)
        let bad = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["issues", "merge", keyError.id, "nope", "--url", gatehouse.baseURL])
        #expect(bad.status != 0 && bad.output.contains("no issue with id nope"))

        try await api.verifyContract()
        try await gatehouse.stop()
    }

    /// The console's issue search takes the same keys; its buttons ignore for a count or a time,
    /// which the issue page shows; a merged issue's page says where its events went.
    @Test(arguments: Backend.allCases)
    func theConsoleSearchesByTagAndIgnoresUntil(_ backend: Backend) async throws {
        let world = try await ConsoleTelemetryTests.world(backend)
        defer { Task { _ = try? await world.gatehouse.stop() } }
        let browser = world.browser
        let dsn = "http://\(ingestKey)@127.0.0.1:\(world.gatehouse.port)/42"
        _ = try await telemetryClient(["sentry", "--dsn", dsn, "--tag", "function=tasks.list"], as: SentryClientReport.self)
        _ = try await telemetryClient(["sentry", "--dsn", dsn, "--no-user", "--message", "Export stalled"], as: SentryClientReport.self)
        let issues = try await Poll.until("6 events in 5 issues") {
            let list = try await world.api.get("/api/v1/issues", as: IssueList.self).data
            return list.reduce(0) { $0 + $1.count } == 6 ? list : nil
        }
        let stalled = try #require(issues.first { $0.title == "Export stalled" })
        let keyError = try #require(issues.first { $0.type == "KeyError" }), valueError = try #require(issues.first { $0.type == "ValueError" })

        let tagged = try await browser.get("/issues?q=" + (#"function:"tasks.list" has:user"#.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""))
        #expect(tagged.status == 200 && tagged.html.contains(keyError.id) && !tagged.html.contains(stalled.id))
        let untagged = try await browser.get("/issues?q=-has%3Auser")
        #expect(untagged.html.contains(stalled.id) && !untagged.html.contains(keyError.id))

        let byCount = try await browser.post("/issues/\(keyError.id)/status", form: [("status", "ignored"), ("ignore", "100")],
                                             csrfFrom: "/issues/\(keyError.id)")
        #expect(byCount.status == 303 && byCount.location?.contains("ok=Ignored") == true)
        #expect(try await world.api.get("/api/v1/issues/\(keyError.id)", as: IssueDetail.self).issue.ignoreUntilCount == 100)
        #expect(try await browser.get("/issues/\(keyError.id)").html.contains("ignored until 100 more events (100 to go)"))
        #expect(try await browser.get("/issues?status=ignored").html.contains("until 100 more events (100 to go)"), "the list shows it too")
        let byTime = try await browser.post("/issues/\(valueError.id)/status", form: [("status", "ignored"), ("ignore", "24h")],
                                            csrfFrom: "/issues/\(valueError.id)")
        #expect(byTime.status == 303)
        #expect(try await world.api.get("/api/v1/issues/\(valueError.id)", as: IssueDetail.self).issue.ignoreUntil != nil)
        #expect(try await browser.get("/issues/\(valueError.id)").html.contains("ignored until 20"))
        let refused = try await browser.post("/issues/\(stalled.id)/status", form: [("status", "ignored"), ("ignore", "soon")],
                                             csrfFrom: "/issues/\(stalled.id)")
        #expect(refused.status == 303 && refused.location?.contains("error=") == true)
        #expect(try await world.api.get("/api/v1/issues/\(stalled.id)", as: IssueDetail.self).issue.status == .unresolved)

        _ = try await world.api.send(.POST, "/api/v1/issues/\(keyError.id)/merge", json: IssueMergeRequest(issues: [stalled.id]), as: IssueDetail.self)
        let gone = try await browser.get("/issues/\(stalled.id)")
        #expect(gone.status == 404 && gone.html.contains("merged into") && gone.html.contains(keyError.id))
    }
}
