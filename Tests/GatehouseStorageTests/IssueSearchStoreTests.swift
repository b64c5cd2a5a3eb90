import Foundation
import GatehouseCore
import Testing
@testable import GatehouseStorage

/// Sentry parity for issues on both stores: tag search on issues and events, the first title,
/// ignore until a count or a time, merging with redirects of new events, and tag pruning.
@Suite struct IssueSearchStoreTests {
    /// An event with a Sentry-like document: its tags and user.
    static func event(_ id: String, issue: String, at ts: Int64, project: String = "web", title: String = "ValueError: bad",
                      level: LogLevel = .error, environment: String? = "prod", release: String? = "1.0",
                      tags: String = "{}", user: String? = nil) -> ErrorEvent {
        var document = #"{"event_id":"\#(id)","tags":\#(tags),"transaction":"/tasks""#
        if let user { document += #","user":\#(user)"# }
        document += "}"
        let userKey = user.flatMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
            .flatMap { ($0["id"] ?? $0["email"]).map { "\($0)" } }
        return ErrorEvent(eventID: id, project: project, issueID: issue, timestampMicros: ts, level: level, type: "ValueError",
                          value: "bad \(id)", title: title, culprit: "app in run", release: release, environment: environment,
                          userKey: userKey, documentJSON: document)
    }

    static func tagCount(_ store: SQLTelemetryStore) async throws -> Int64 {
        try await store.driver.query("SELECT COUNT(*) AS n FROM event_tags", []).first?["n"].int ?? -1
    }

    @Test(arguments: Backend.allCases)
    func tagsAndSentryKeysSearchIssuesAndEvents(_ backend: Backend) async throws {
        try await withTelemetryStore(backend) { store, _ in
            let ada = #"{"id":"u1","email":"Ada@Example.com","username":"ada","ip_address":"10.0.0.1"}"#
            try await store.insertErrorEvents([
                Self.event("a1", issue: "A", at: base + 1, title: "ValueError: first", tags: #"{"function":"tasks.list","customer":"acme"}"#, user: ada),
                Self.event("a2", issue: "A", at: base + 2, title: "ValueError: second", tags: #"[["function","tasks.list"]]"#),
                Self.event("b1", issue: "B", at: base + 3, environment: "staging", release: "2.0", tags: #"{"function":"users.get"}"#),
                Self.event("c1", issue: "C", at: base + 2 * hour, level: .warn, environment: nil, release: nil),
            ])
            // The title an issue got first stays (Sentry's); the latest event does not rename it.
            #expect(try await store.issue(id: "A")?.title == "ValueError: first")

            let now = base + 2 * hour + 1
            func issues(_ q: String) async throws -> [String] {
                try await store.issues(IssueListQuery(filter: try QueryParser.parse(q, nowMicros: now).filter)).map(\.id).sorted()
            }
            func events(_ q: String) async throws -> Int64 {
                try await store.countErrorEvents(filter: try QueryParser.parse(q, nowMicros: now).filter, fromMicros: base, toMicros: base + 3 * hour)
            }
            #expect(try await issues("function:tasks.list") == ["A"], "a tag from an object and from a pair list")
            #expect(try await issues(#"function:"tasks.list" level:error"#) == ["A"])
            #expect(try await issues("function:TASKS.*") == ["A"], "wildcards, ignoring case")
            #expect(try await issues("-function:tasks.list") == ["B", "C"])
            #expect(try await issues("function:*") == ["A", "B"])
            #expect(try await issues("user.email:ada@example.com") == ["A"], "values match ignoring case")
            #expect(try await issues("user.id:u1 user.username:ada user.ip:10.0.0.1") == ["A"])
            #expect(try await issues("has:user") == ["A"])
            #expect(try await issues("-has:user") == ["B", "C"])
            #expect(try await issues("environment:staging") == ["B"])
            #expect(try await issues("release:2.0") == ["B"], "a number-like value matches as written")
            #expect(try await issues("transaction:/tasks customer:acme") == ["A"])
            #expect(try await issues("nosuchtag:x").isEmpty, "any other key is a tag, as in Sentry")
            #expect(try await issues("times_seen:>1") == ["A"])
            #expect(try await issues("times_seen:1") == ["B", "C"])
            #expect(try await issues("is:unresolved") == ["A", "B", "C"])
            #expect(try await issues("is:ignored").isEmpty)
            #expect(try await issues("first_seen:-1h") == ["C"], "a relative time alone means since then")
            #expect(try await issues("first_seen:>-1h") == ["C"])
            #expect(try await issues("level:error timestamp:>-3h") == ["A", "B"])
            #expect(try await issues("last_seen:+1h") == ["A", "B", "C"], "+ means longer ago than that (from the real now)")
            #expect(try await issues("last_seen:+3650d").isEmpty)
            #expect(try await issues("level:warn OR customer:acme") == ["A", "C"])

            #expect(try await events("function:tasks.list") == 2)
            #expect(try await events("user.email:ada@example.com") == 1)
            #expect(try await events("has:user") == 1)
            #expect(try await events("is:unresolved times_seen:>1") == 2)
            #expect(try await events("-function:tasks.list environment:prod") == 0)
            #expect(try await events("level:error -function:users.get") == 2)

            _ = try await store.setIssueStatus(id: "B", status: .ignored)
            #expect(try await issues("is:ignored") == ["B"])
            #expect(try await events("is:ignored") == 1)
            await #expect(throws: QueryFieldError.self) { try await issues("function:>5") }
            await #expect(throws: QueryFieldError.self) { try await issues("is:open") }
            await #expect(throws: QueryFieldError.self) { try await issues(String(repeating: "k", count: 65) + ":v") }
        }
    }

    /// What is stored per event is bounded: keys and values too long, and tags beyond the count, are dropped.
    @Test func tagsAreBounded() {
        let many = (0..<100).map { #""k\#($0)":"v""# }.joined(separator: ",")
        let long = String(repeating: "x", count: 201)
        let tags = EventTags.of(Self.event("e", issue: "I", at: base, tags: #"{\#(many),"long":"\#(long)","n":5,"nothing":null}"#))
        #expect(tags.count == EventTags.maxTagsPerEvent)
        #expect(!tags.contains { $0.key == "long" } && tags.contains { $0.key == "level" && $0.value == "error" })
        let few = EventTags.of(Self.event("e", issue: "I", at: base, tags: #"{"N":5,"nothing":null,"Level":"custom"}"#))
        #expect(few.contains { $0.key == "n" && $0.value == "5" } && !few.contains { $0.key == "nothing" })
        #expect(few.filter { $0.key == "level" }.map(\.value) == ["error"], "the event's own fields come first")
        // Review: one character of 2,000 combining marks is 4 KB: bounded in bytes too.
        let heavy = "a" + String(repeating: "\u{301}", count: 2000)
        let marks = EventTags.of(Self.event("e", issue: "I", at: base, tags: #"{"k":"\#(heavy)","\#(heavy)":"v"}"#))
        #expect(!marks.contains { $0.key == "k" || $0.value == "v" }, "\(marks.map(\.key))")
    }

    @Test(arguments: Backend.allCases)
    func ignoreUntilACountOrATimeEscalates(_ backend: Backend) async throws {
        try await withTelemetryStore(backend) { store, _ in
            try await store.insertErrorEvents([Self.event("n1", issue: "N", at: base), Self.event("t1", issue: "T", at: base),
                                               Self.event("f1", issue: "F", at: base)])
            #expect(try await store.updateIssueStatus(id: "N", to: IssueStatusChange(status: .ignored, ignoreUntilCount: 2)))
            #expect(try await store.updateIssueStatus(id: "nope", to: IssueStatusChange(status: .ignored, ignoreUntilCount: 2)) == false)
            try await store.insertErrorEvents([Self.event("n2", issue: "N", at: base + 1)])
            let waiting = try #require(try await store.issue(id: "N"))
            #expect(waiting.status == .ignored && waiting.ignoreUntilCount == 2 && waiting.ignoredAtCount == 1 && waiting.count == 2)
            try await store.insertErrorEvents([Self.event("n3", issue: "N", at: base + 2)])
            let escalated = try #require(try await store.issue(id: "N"))
            #expect(escalated.status == .unresolved && escalated.statusReason == "escalated" && escalated.ignoreUntilCount == nil && escalated.count == 3)
            #expect(try await store.issues(IssueListQuery(filter: try QueryParser.parse("is:escalated").filter)).map(\.id) == ["N"])
            // A change by hand clears the reason.
            _ = try await store.setIssueStatus(id: "N", status: .resolved)
            #expect(try await store.issue(id: "N")?.statusReason == nil)

            let now = TimeExpressions.nowMicros()
            _ = try await store.updateIssueStatus(id: "T", to: IssueStatusChange(status: .ignored, ignoreUntilMicros: now + hour))
            try await store.insertErrorEvents([Self.event("t2", issue: "T", at: base + 1)])
            #expect(try await store.issue(id: "T")?.status == .ignored, "before the time, events keep it ignored")
            #expect(try await store.issue(id: "T")?.ignoreUntilMicros == now + hour)
            _ = try await store.updateIssueStatus(id: "T", to: IssueStatusChange(status: .ignored, ignoreUntilMicros: now - 1))
            try await store.insertErrorEvents([Self.event("t3", issue: "T", at: base + 2)])
            let late = try #require(try await store.issue(id: "T"))
            #expect(late.status == .unresolved && late.statusReason == "escalated" && late.ignoreUntilMicros == nil)

            // Ignored for ever (as before), and an ignore's terms are dropped by another status.
            _ = try await store.updateIssueStatus(id: "F", to: IssueStatusChange(status: .ignored))
            try await store.insertErrorEvents((2...5).map { Self.event("f\($0)", issue: "F", at: base + Int64($0)) })
            #expect(try await store.issue(id: "F")?.status == .ignored)
            _ = try await store.updateIssueStatus(id: "F", to: IssueStatusChange(status: .unresolved, ignoreUntilCount: 3))
            #expect(try await store.issue(id: "F")?.ignoreUntilCount == nil)
        }
    }

    /// Review: two merges the other way round at once (A into B, B into A) leave one issue
    /// holding every event, not two deleted issues and events pointing at nothing.
    @Test(arguments: Backend.allCases)
    func crossedMergesAtOnceLoseNothing(_ backend: Backend) async throws {
        try await withTelemetryStore(backend) { store, _ in
            for round in 0..<5 {
                let a = "A\(round)", b = "B\(round)"
                try await store.insertErrorEvents([Self.event("a\(round)", issue: a, at: base + 10), Self.event("b\(round)", issue: b, at: base + 20)])
                @Sendable func merged(_ into: String, _ from: String) async -> Bool { (try? await store.mergeIssues(into: into, from: [from])) != nil }
                async let x = merged(a, b)
                async let y = merged(b, a)
                let wins = [await x, await y].filter { $0 }.count
                #expect(wins == 1, "exactly one merge wins")
                let left = try await [store.issue(id: a), store.issue(id: b)].compactMap { $0 }
                #expect(left.count == 1 && left.first?.count == 2, "one issue with both events: \(left.map(\.id))")
                #expect(try await store.events(issueID: left.first?.id ?? "", limit: 10).count == 2)
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func mergeMovesEventsAndRedirectsNewOnes(_ backend: Backend) async throws {
        try await withTelemetryStore(backend) { store, _ in
            try await store.insertErrorEvents([
                Self.event("m1", issue: "M1", at: base + 10, release: "1.0", tags: #"{"function":"a"}"#, user: #"{"id":"u1"}"#),
                Self.event("m2", issue: "M1", at: base + 20, release: "1.0", user: #"{"id":"u1"}"#),
                Self.event("s1", issue: "S1", at: base + 5, level: .fatal, release: "1.1", tags: #"{"function":"b"}"#, user: #"{"id":"u2"}"#),
                Self.event("s2", issue: "S1", at: base + 30, release: "1.1"),
                Self.event("s3", issue: "S2", at: base + 7),
                Self.event("o1", issue: "O", at: base + 7, project: "other"),
            ])
            await #expect(throws: IssueMergeError.otherProject(["O"])) { try await store.mergeIssues(into: "M1", from: ["S1", "O"]) }
            await #expect(throws: IssueMergeError.missing(["none"])) { try await store.mergeIssues(into: "M1", from: ["S1", "none"]) }
            await #expect(throws: IssueMergeError.noTarget("none")) { try await store.mergeIssues(into: "none", from: ["S1"]) }
            await #expect(throws: IssueMergeError.targetAmongSources) { try await store.mergeIssues(into: "M1", from: ["M1"]) }
            await #expect(throws: IssueMergeError.noSources) { try await store.mergeIssues(into: "M1", from: []) }
            await #expect(throws: IssueMergeError.tooMany(101)) { try await store.mergeIssues(into: "M1", from: (0...100).map { "x\($0)" }) }
            #expect(try await store.issue(id: "S1")?.count == 2, "a refused merge changes nothing")

            let merged = try await store.mergeIssues(into: "M1", from: ["S1", "S1"])
            #expect(merged.count == 4 && merged.users == 2 && merged.firstSeenMicros == base + 5 && merged.lastSeenMicros == base + 30)
            #expect(merged.level == .fatal && merged.lastRelease == "1.1" && merged.title == "ValueError: bad")
            #expect(try await store.issue(id: "S1") == nil)
            #expect(try await store.mergedIssue(id: "S1") == "M1")
            #expect(try await store.mergedIssue(id: "M1") == nil)
            #expect(try await store.issues(IssueListQuery()).map(\.id).sorted() == ["M1", "O", "S2"], "a merged issue is not listed")
            #expect(try await store.events(issueID: "M1", limit: 10).count == 4)
            #expect(try await store.issues(IssueListQuery(filter: try QueryParser.parse("function:b").filter)).map(\.id) == ["M1"],
                    "the merged issue's tags count for the target")

            // A new event whose fingerprint was the merged issue's lands in the target.
            try await store.insertErrorEvents([Self.event("s4", issue: "S1", at: base + 40, tags: #"{"function":"c"}"#)])
            #expect(try await store.issue(id: "S1") == nil)
            #expect(try await store.issue(id: "M1")?.count == 5)
            #expect(try await store.issues(IssueListQuery(filter: try QueryParser.parse("function:c").filter)).map(\.id) == ["M1"])
            // Merged again: ids merged into a source follow it.
            _ = try await store.mergeIssues(into: "S2", from: ["M1"])
            #expect(try await store.mergedIssue(id: "S1") == "S2")
            #expect(try await store.mergedIssue(id: "M1") == "S2")
            try await store.insertErrorEvents([Self.event("s5", issue: "S1", at: base + 50)])
            #expect(try await store.issue(id: "S2")?.count == 7)
        }
    }

    @Test(arguments: Backend.allCases)
    func tagsArePrunedWithTheirEvents(_ backend: Backend) async throws {
        try await withTelemetryStore(backend) { store, _ in
            try await store.insertErrorEvents([
                Self.event("old", issue: "P", at: base - 48 * hour, tags: #"{"function":"a"}"#),
                Self.event("new", issue: "P", at: base, tags: #"{"function":"b"}"#),
            ])
            // A retried event's tags are stored once.
            try await store.insertErrorEvents([Self.event("new", issue: "P", at: base, tags: #"{"function":"b"}"#)])
            let perEvent = Int64(EventTags.of(Self.event("new", issue: "P", at: base, tags: #"{"function":"b"}"#)).count)
            #expect(try await Self.tagCount(store) == 2 * perEvent)
            var removed = 0
            while true {
                let n = try await store.prune(.errors, beforeMicros: base - 24 * hour, batch: 2)
                removed += n
                if n == 0 { break }
            }
            #expect(removed == 1)
            #expect(try await Self.tagCount(store) == perEvent)
            let q = try QueryParser.parse("function:a").filter
            #expect(try await store.issues(IssueListQuery(filter: q)).isEmpty)
        }
    }
}
