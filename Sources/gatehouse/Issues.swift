import ArgumentParser
import Foundation
import GatehouseAPI
import Rainbow

/// `gatehouse issues [ID]`: the error issues (Sentry events grouped by fingerprint) of a running
/// Gatehouse, most recently seen first, or one issue with its latest events; every issue id
/// leads to its page in the console.
struct Issues: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List error issues (most recently seen first) or show one, each id linked to its console page.",
        discussion: """
            Examples:
              gatehouse issues --status unresolved
              gatehouse issues --query 'KeyError' --limit 20
              gatehouse issues 3f0c9a1e5b7d4c2a8e6f1b0d9c7a5e3f
            At a terminal each id is a hyperlink to its console page (GATEHOUSE_CONSOLE_URL overrides the address; --no-links or GATEHOUSE_LINKS=0 turns links off).
            """)

    enum Status: String, ExpressibleByArgument, CaseIterable {
        case unresolved, resolved, ignored
    }

    @Argument(help: "An issue id: show that issue and its latest events instead of the list.")
    var id: String?

    @Option(help: "Gatehouse base URL (GATEHOUSE_URL). Default http://127.0.0.1:8080.")
    var url: String?

    @Option(help: "Only issues in this state: unresolved, resolved or ignored. Default: all.")
    var status: Status?

    @Option(name: [.short, .long], help: "A query over the issues, e.g. 'KeyError' or 'level:error'.")
    var query: String?

    @Option(help: "Most issues to show (1 to 1000).")
    var limit: Int = 100

    @Flag(help: "Print the API's JSON.")
    var json = false

    @OptionGroup var linkOptions: LinkOptions

    func validate() throws {
        if let id, id.isEmpty { throw ValidationError("the issue id is empty") }
    }

    func run() async throws {
        let client = APIClient(url: url)
        if let id {
            let path = "/api/v1/issues/" + ConsoleLinks.segment(id)
            if json { return print(String(decoding: try await client.call(.GET, path), as: UTF8.self)) }
            let detail = try await client.get(path, as: IssueDetail.self)
            print(IssueViews.describe(detail, links: try linkOptions.links(for: client)))
            return
        }
        var items = [URLQueryItem(name: "limit", value: String(limit))]
        if let status { items.append(URLQueryItem(name: "status", value: status.rawValue)) }
        if let query { items.append(URLQueryItem(name: "q", value: query)) }
        if json { return print(String(decoding: try await client.call(.GET, "/api/v1/issues", query: items), as: UTF8.self)) }
        let issues = try await client.get("/api/v1/issues", query: items, as: IssueList.self).data
        let links = try linkOptions.links(for: client)
        guard !issues.isEmpty else {
            let what = [status.map { "\($0.rawValue) " }, "issues"].compactMap { $0 }.joined()
            print("(no \(what)\(query.map { " match '\($0)'" } ?? ""))".dim)
            return
        }
        for line in IssueViews.table(issues, links: links) { print(line) }
        if issues.count == limit { print("(there may be more: raise --limit or narrow the query)".dim) }
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
        ])
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

    /// `unresolved`, `resolved`, `ignored`, and `regressed` beside a resolved issue that came back.
    static func status(_ issue: IssueView) -> String {
        issue.status.rawValue + (issue.regressed ? ", regressed" : "")
    }

    static func styled(_ text: String, _ issue: IssueView) -> String {
        switch issue.status {
        case .unresolved: issue.regressed ? text.red.bold : text.red
        case .resolved: text.green
        case .ignored: text.dim
        }
    }
}
