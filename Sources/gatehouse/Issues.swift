import ArgumentParser
import Foundation
import GatehouseAPI
import GatehouseCore
import Rainbow

/// `gatehouse issues …`: the error issues (Sentry events grouped by fingerprint) of a running
/// Gatehouse: list and search them (the default: `gatehouse issues`, `gatehouse issues ID`),
/// show one and page through its events, resolve, ignore (forever, for N more events or until a
/// time) and merge them. Every issue id leads to its page in the console.
struct Issues: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, search, show, resolve, ignore and merge error issues, each id linked to its console page.",
        discussion: """
            Examples:
              gatehouse issues --status unresolved
              gatehouse issues --query 'function:tasks.list level:error'
              gatehouse issues -q 'user.email:ada@example.com is:unresolved times_seen:>10'
              gatehouse issues 3f0c9a1e5b7d4c2a8e6f1b0d9c7a5e3f
              gatehouse issues show 3f0c9a1e… --event latest
              gatehouse issues resolve 3f0c9a1e…
              gatehouse issues ignore 3f0c9a1e… --count 100
              gatehouse issues ignore 3f0c9a1e… --until 24h
              gatehouse issues merge 3f0c9a1e… 7d2b4c6e… 9a8f7e6d…
            The query takes Sentry's search keys: any tag (key:value, wildcards, quotes, -negation), environment:, release:, user.id:, user.email:, user.username:, is:unresolved|resolved|ignored, has:user, times_seen:>10, first_seen:-24h, last_seen:+7d, level: (docs/query-language.md).
            At a terminal each id is a hyperlink to its console page (GATEHOUSE_CONSOLE_URL overrides the address; --no-links or GATEHOUSE_LINKS=0 turns links off).
            """,
        subcommands: [List.self, Show.self, Resolve.self, Unresolve.self, Ignore.self, Merge.self],
        defaultSubcommand: List.self)

    struct Connection: ParsableArguments {
        @Option(help: "Gatehouse base URL (GATEHOUSE_URL). Default http://127.0.0.1:8080.")
        var url: String?
        @Flag(help: "Print the API's JSON.")
        var json = false
        @OptionGroup var linkOptions: LinkOptions
    }

    enum Status: String, ExpressibleByArgument, CaseIterable {
        case unresolved, resolved, ignored
    }

    static func issuePath(_ id: String) -> String { "/api/v1/issues/" + ConsoleLinks.segment(id) }

    static func validate(id: String) throws {
        if id.isEmpty { throw ValidationError("the issue id is empty") }
    }

    /// `gatehouse issues [list] [ID]`: the issues, or one issue when an id is given.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List issues, most recently seen first (the default), or show one by id.")

        @Argument(help: "An issue id: show that issue and its latest events instead of the list.")
        var id: String?

        @Option(help: "Only issues in this state: unresolved, resolved or ignored. Default: all.")
        var status: Status?

        @Option(name: [.short, .long], help: "A query over the issues, e.g. 'KeyError', 'function:tasks.list level:error' or 'has:user times_seen:>10'.")
        var query: String?

        @Option(help: "Most issues to show (1 to 1000).")
        var limit: Int = 100

        @OptionGroup var connection: Connection

        func validate() throws {
            if let id { try Issues.validate(id: id) }
        }

        func run() async throws {
            if let id { return try await Show.show(id, event: nil, connection: connection) }
            let client = APIClient(url: connection.url)
            var items = [URLQueryItem(name: "limit", value: String(limit))]
            if let status { items.append(URLQueryItem(name: "status", value: status.rawValue)) }
            if let query { items.append(URLQueryItem(name: "q", value: query)) }
            if connection.json { return print(String(decoding: try await client.call(.GET, "/api/v1/issues", query: items), as: UTF8.self)) }
            let issues = try await client.get("/api/v1/issues", query: items, as: IssueList.self).data
            let links = try connection.linkOptions.links(for: client)
            guard !issues.isEmpty else {
                let what = [status.map { "\($0.rawValue) " }, "issues"].compactMap { $0 }.joined()
                print("(no \(what)\(query.map { " match '\($0)'" } ?? ""))".dim)
                return
            }
            for line in IssueViews.table(issues, links: links) { print(line) }
            if issues.count == limit { print("(there may be more: raise --limit or narrow the query)".dim) }
        }
    }

    /// `gatehouse issues show ID [--event EVENT|latest]`.
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one issue and its latest events, or one of its events with the ids of the events before and after it.")

        @Argument(help: "The issue id.")
        var id: String

        @Option(help: "Show this event of the issue (`latest` for the newest), with its neighbours' ids to page with.")
        var event: String?

        @OptionGroup var connection: Connection

        func validate() throws { try Issues.validate(id: id) }

        func run() async throws { try await Self.show(id, event: event, connection: connection) }

        static func show(_ id: String, event: String?, connection: Connection) async throws {
            let client = APIClient(url: connection.url)
            var path = Issues.issuePath(id)
            if let event { path += "/events/" + ConsoleLinks.segment(event) }
            if connection.json { return print(String(decoding: try await client.call(.GET, path), as: UTF8.self)) }
            let links = try connection.linkOptions.links(for: client)
            if event != nil {
                let page = try await client.get(path, as: IssueEventPage.self)
                return print(IssueViews.describe(page, issueID: id, links: links))
            }
            print(IssueViews.describe(try await client.get(path, as: IssueDetail.self), links: links))
        }
    }

    /// Sends a status change and prints the issue as it is then.
    static func change(_ id: String, _ update: IssueUpdate, connection: Connection) async throws {
        let client = APIClient(url: connection.url)
        if connection.json {
            return print(String(decoding: try await client.call(.PATCH, issuePath(id), body: try APIJSON.encode(update)), as: UTF8.self))
        }
        let detail = try await client.send(.PATCH, issuePath(id), json: update, as: IssueDetail.self)
        print(IssueViews.describe(detail, links: try connection.linkOptions.links(for: client)))
    }

    struct Resolve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resolve an issue; its next event makes it unresolved again, marked regressed.")
        @Argument(help: "The issue id.") var id: String
        @OptionGroup var connection: Connection
        func validate() throws { try Issues.validate(id: id) }
        func run() async throws { try await Issues.change(id, IssueUpdate(status: .resolved), connection: connection) }
    }

    struct Unresolve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Mark an issue unresolved again (ends an ignore).")
        @Argument(help: "The issue id.") var id: String
        @OptionGroup var connection: Connection
        func validate() throws { try Issues.validate(id: id) }
        func run() async throws { try await Issues.change(id, IssueUpdate(status: .unresolved), connection: connection) }
    }

    struct Ignore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ignore an issue: forever, until N more events (--count), or until a time (--until); the first event past either makes it unresolved again.")
        @Argument(help: "The issue id.") var id: String
        @Option(help: "Unresolved again after this many more events (1 to 1000000000).") var count: Int64?
        @Option(help: "Unresolved again at the first event after this time: RFC 3339, or a duration from now such as 24h or 7d.") var until: String?
        @OptionGroup var connection: Connection

        func validate() throws {
            try Issues.validate(id: id)
            if let count, count < 1 { throw ValidationError("--count is at least 1") }
            if let until, ignoreUntil(until) == nil { throw ValidationError("--until is an RFC 3339 time or a duration from now such as 24h") }
        }

        /// What the API is sent: a duration from now as `+24h`, a time as it was written.
        func ignoreUntil(_ text: String) -> String? {
            let duration = text.hasPrefix("+") ? String(text.dropFirst()) : text
            if TimeExpressions.durationMicros(duration) != nil { return "+" + duration }
            return TimeExpressions.rfc3339Micros(text) != nil ? text : nil
        }

        func run() async throws {
            let update = IssueUpdate(status: .ignored, ignoreUntilCount: count, ignoreUntil: until.flatMap(ignoreUntil))
            try await Issues.change(id, update, connection: connection)
        }
    }

    struct Merge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Merge issues into the first one: their events move to it, they disappear, and their new events land in it.")
        @Argument(help: "The issue the others are merged into.") var target: String
        @Argument(help: "The issues to merge into it (1 to 100, of the same project).") var sources: [String]
        @OptionGroup var connection: Connection

        func validate() throws {
            try Issues.validate(id: target)
            guard (1...100).contains(sources.count) else { throw ValidationError("name 1 to 100 issues to merge into \(target)") }
            for id in sources { try Issues.validate(id: id) }
        }

        func run() async throws {
            let client = APIClient(url: connection.url)
            let path = Issues.issuePath(target) + "/merge", body = IssueMergeRequest(issues: sources)
            if connection.json { return print(String(decoding: try await client.call(.POST, path, body: try APIJSON.encode(body)), as: UTF8.self)) }
            let detail = try await client.send(.POST, path, json: body, as: IssueDetail.self)
            print("Merged \(sources.count) issue\(sources.count == 1 ? "" : "s") into \(TerminalText.printable(target)).".green)
            print(IssueViews.describe(detail, links: try connection.linkOptions.links(for: client)))
        }
    }
}

/// How the CLI prints issues.
enum IssueViews {
    static func table(_ issues: [IssueView], links: ConsoleLinks) -> [String] {
        var table = TextTable(columns: [
            .init(header: "ID"), .init(header: "STATUS"), .init(header: "COUNT", alignment: .right),
            .init(header: "USERS", alignment: .right), .init(header: "LAST SEEN (UTC)"), .init(header: "TITLE"),
        ])
        for issue in issues {
            table.rows.append([
                .init(text: TerminalText.printable(issue.id), style: { links.link($0, to: links.issue(issue.id)) }),
                .init(text: status(issue), style: { styled($0, issue) }),
                .init(text: UsageTable.number(issue.count)),
                .init(text: UsageTable.number(issue.users)),
                .init(text: TerminalText.time(issue.lastSeen), style: { $0.dim }),
                .init(text: TerminalText.truncated(TerminalText.printable(issue.title), to: 120)),
            ])
        }
        return table.render()
    }

    /// One issue's fields and its latest events, its ids linked; ends with the `Console:` line
    /// when the issue id is not a hyperlink.
    static func describe(_ detail: IssueDetail, links: ConsoleLinks) -> String {
        func text(_ s: String) -> String { TerminalText.printable(s) }
        let issue = detail.issue
        var lines = TerminalText.fields([
            ("Issue", links.link(text(issue.id), to: links.issue(issue.id))),
            ("Title", text(issue.title)),
            ("Status", styled(status(issue), issue)),
            ("Level", issue.level.rawValue),
            ("Project", text(issue.project)),
            ("Culprit", issue.culprit.isEmpty ? "-" : text(issue.culprit)),
            ("Events", "\(UsageTable.number(issue.count)) from \(UsageTable.number(issue.users)) user\(issue.users == 1 ? "" : "s")"),
            ("First seen", text(issue.firstSeen)),
            ("Last seen", text(issue.lastSeen)),
            ("Last release", issue.lastRelease.map(text) ?? "-"),
        ] + (ignoreState(issue).map { [("Ignored until", $0)] } ?? []))
        if !detail.events.isEmpty {
            lines.append("Latest events:".bold)
            var table = TextTable(columns: [.init(header: "  TIME (UTC)"), .init(header: "EVENT"), .init(header: "CORRELATION"),
                                            .init(header: "USER"), .init(header: "MESSAGE")])
            for event in detail.events {
                table.rows.append([
                    .init(text: "  " + TerminalText.time(event.timestamp), style: { $0.dim }),
                    .init(text: text(event.eventID)),
                    event.correlationID.map { id in .init(text: text(id), style: { links.link($0, to: links.correlation(id)) }) } ?? .init(text: "-"),
                    .init(text: event.user.map(text) ?? "-"),
                    .init(text: TerminalText.truncated(text(event.value.isEmpty ? event.title : event.value), to: 100)),
                ])
            }
            lines += table.render()
        }
        if let line = links.consoleLine(links.issue(issue.id)) { lines.append(line) }
        return lines.joined(separator: "\n")
    }

    /// `unresolved`, `resolved`, `ignored`, and `regressed` beside a resolved issue that came
    /// back, `escalated` beside one whose ignore ended.
    static func status(_ issue: IssueView) -> String {
        issue.status.rawValue + (issue.regressed ? ", regressed" : "") + (issue.statusReason.map { ", " + TerminalText.printable($0) } ?? "")
    }

    /// What ends an ignore: `10 more events (4 to go)`, a time, or both; nil when none does.
    static func ignoreState(_ issue: IssueView) -> String? {
        guard issue.status == .ignored else { return nil }
        var parts: [String] = []
        if let count = issue.ignoreUntilCount {
            parts.append("\(UsageTable.number(count)) more event\(count == 1 ? "" : "s")" + (issue.ignoreEventsLeft.map { " (\(UsageTable.number($0)) to go)" } ?? ""))
        }
        if let until = issue.ignoreUntil { parts.append(TerminalText.printable(until)) }
        return parts.isEmpty ? "forever" : parts.joined(separator: " or ")
    }

    /// One event of an issue and the commands that show its neighbours.
    static func describe(_ page: IssueEventPage, issueID: String, links: ConsoleLinks) -> String {
        func text(_ s: String) -> String { TerminalText.printable(s) }
        let event = page.event
        var lines = TerminalText.fields([
            ("Issue", links.link(text(issueID), to: links.issue(issueID))),
            ("Event", text(event.eventID)),
            ("Time", text(event.timestamp)),
            ("Level", event.level.rawValue),
            ("Title", text(event.title)),
            ("Message", text(event.value.isEmpty ? event.title : event.value)),
            ("Culprit", event.culprit.isEmpty ? "-" : text(event.culprit)),
            ("Release", event.release.map(text) ?? "-"),
            ("Environment", event.environment.map(text) ?? "-"),
            ("User", event.user.map(text) ?? "-"),
            ("Correlation", event.correlationID.map { id in links.link(text(id), to: links.correlation(id)) } ?? "-"),
        ])
        if case .object(let tags)? = event.event?["tags"] {
            let shown = tags.sorted { $0.key < $1.key }.compactMap { key, value -> String? in
                if case .string(let v) = value { return "\(text(key))=\(text(v))" }
                return nil
            }
            if !shown.isEmpty { lines.append("Tags:".bold + " " + shown.joined(separator: " ")) }
        }
        let command = "gatehouse issues show \(text(issueID)) --event "
        lines.append("Newer: " + (page.newerEventID.map { command + text($0) } ?? "(this is the newest)").dim)
        lines.append("Older: " + (page.olderEventID.map { command + text($0) } ?? "(this is the oldest)").dim)
        return lines.joined(separator: "\n")
    }

    static func styled(_ text: String, _ issue: IssueView) -> String {
        switch issue.status {
        case .unresolved: issue.regressed ? text.red.bold : text.red
        case .resolved: text.green
        case .ignored: text.dim
        }
    }
}
