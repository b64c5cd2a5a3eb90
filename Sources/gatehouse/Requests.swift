import ArgumentParser
import Foundation
import GatehouseAPI
import Rainbow

/// `gatehouse requests [ID]`: the AI calls a running Gatehouse recorded, newest first, or one
/// call's fields; every request id leads to its page in the console.
struct Requests: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List recent AI requests (newest first) or show one, each id linked to its console page.",
        discussion: """
            Examples:
              gatehouse requests --since 1h --query 'status:>=400'
              gatehouse requests --query 'model:gpt-4o* cost:>0.01' --limit 20
              gatehouse requests req_0194a1b2c3d4e5f60718293a4b5c6d7e
              gatehouse requests 'status:>=400 | count by model'
              gatehouse requests --since 7d '| sum(cost) by property.customer'
            A query that ends in a stage (| count, sum, avg, min, max, p95… by fields or bin(1d))
            prints its groups as a table (or the API's JSON with --json) over --since…--until.
            The query language is described in docs/query-language.md.
            At a terminal each id is a hyperlink to its console page (GATEHOUSE_CONSOLE_URL overrides the address; --no-links or GATEHOUSE_LINKS=0 turns links off).
            """)

    @Argument(help: "A request id (req_…): show that request's fields instead of the list; or a query (it has a space, : or |).")
    var id: String?

    @Option(help: "Gatehouse base URL (GATEHOUSE_URL). Default http://127.0.0.1:8080.")
    var url: String?

    @Option(name: [.short, .long], help: "A query, e.g. 'status:>=400 model:gpt-4o*'.")
    var query: String?

    @Option(help: "Start: a relative time like 15m, 1h or 7d, a date, or RFC 3339.")
    var since: String = "24h"

    @Option(help: "End; default now.")
    var until: String?

    @Option(help: "Most requests (default 50), or groups of a stage (default 100; 1000 by a bin), to show (1 to 1000).")
    var limit: Int?

    @Option(help: "The next page: the cursor a previous list printed.")
    var cursor: String?

    @Flag(help: "Print the API's JSON.")
    var json = false

    @OptionGroup var linkOptions: LinkOptions

    func validate() throws {
        if let id, id.isEmpty { throw ValidationError("the request id is empty") }
    }

    /// The positional argument is a query when it cannot be an id: ids have no spaces, `:` or `|`.
    private var positionalIsQuery: Bool { id.map { $0.contains { $0 == " " || $0 == ":" || $0 == "|" } } ?? false }
    private var listQuery: String? { query ?? (positionalIsQuery ? id : nil) }

    func run() async throws {
        let client = APIClient(url: url)
        if AggregationTable.hasStage(listQuery) {
            var items = [URLQueryItem(name: "from", value: since), URLQueryItem(name: "q", value: listQuery)]
            if let until { items.append(URLQueryItem(name: "to", value: until)) }
            if let limit { items.append(URLQueryItem(name: "limit", value: String(limit))) }
            if json { return print(String(decoding: try await client.call(.GET, "/api/v1/requests", query: items), as: UTF8.self)) }
            for line in AggregationTable.render(try await client.get("/api/v1/requests", query: items, as: AggregationResult.self)) { print(line) }
            return
        }
        if let id, !positionalIsQuery {
            let path = "/api/v1/requests/" + ConsoleLinks.segment(id)
            if json { return print(String(decoding: try await client.call(.GET, path), as: UTF8.self)) }
            let record = try await client.get(path, as: RequestRecordView.self)
            let aliases = await Self.keyAliases(client, for: [record])
            print(RequestViews.describe(record, alias: record.keyID.flatMap { aliases[$0] }, links: try linkOptions.links(for: client)))
            return
        }
        let query = listQuery
        var items = [URLQueryItem(name: "from", value: since), URLQueryItem(name: "limit", value: String(limit ?? 50))]
        if let query { items.append(URLQueryItem(name: "q", value: query)) }
        if let until { items.append(URLQueryItem(name: "to", value: until)) }
        if let cursor { items.append(URLQueryItem(name: "cursor", value: cursor)) }
        if json { return print(String(decoding: try await client.call(.GET, "/api/v1/requests", query: items), as: UTF8.self)) }
        let page = try await client.get("/api/v1/requests", query: items, as: RequestRecordPage.self)
        let links = try linkOptions.links(for: client)
        guard !page.data.isEmpty else {
            print("(no AI requests match \(query.map { "'\($0)' " } ?? "")since \(since)\(until.map { " until \($0)" } ?? ""))".dim)
            return
        }
        let aliases = await Self.keyAliases(client, for: page.data)
        for line in RequestViews.table(page.data, aliases: aliases, links: links) { print(line) }
        if let next = page.nextCursor {
            print("(more requests match: add --cursor \(next) for the next page, or narrow the query)".dim)
        }
    }

    /// Key aliases by key id, for the rows that name a virtual key. The key list is an admin
    /// route: without the admin token (or with keys off) the ids are shown as they are.
    static func keyAliases(_ client: APIClient, for records: [RequestRecordView]) async -> [String: String] {
        guard records.contains(where: { $0.keyID?.hasPrefix("key_") == true }),
              let keys = try? await client.get("/api/v1/keys", as: KeyList.self) else { return [:] }
        var aliases: [String: String] = [:]
        for key in keys.data { if let alias = key.alias, !alias.isEmpty { aliases[key.id] = alias } }
        return aliases
    }
}

/// How the CLI prints request records.
enum RequestViews {
    static func table(_ records: [RequestRecordView], aliases: [String: String], links: ConsoleLinks) -> [String] {
        var table = TextTable(columns: [
            .init(header: "TIME (UTC)"), .init(header: "MODEL"), .init(header: "STATUS", alignment: .right),
            .init(header: "TOKENS", alignment: .right), .init(header: "COST", alignment: .right),
            .init(header: "LATENCY", alignment: .right), .init(header: "KEY"), .init(header: "REQUEST"),
        ])
        for r in records {
            let id = TerminalText.printable(r.id)
            table.rows.append([
                .init(text: TerminalText.time(r.timestamp), style: { $0.dim }),
                .init(text: TerminalText.printable(r.model)),
                .init(text: String(r.status), style: { status($0, r.status) }),
                .init(text: tokens(r)),
                .init(text: "$" + r.costUSD),
                .init(text: latency(r.latencyMs)),
                .init(text: TerminalText.printable(key(r, aliases: aliases))),
                .init(text: id, style: { links.link($0, to: links.request(r.id)) }),
            ])
        }
        return table.render()
    }

    /// One request's fields, its ids linked; ends with the `Console:` line when they are not.
    static func describe(_ r: RequestRecordView, alias: String?, links: ConsoleLinks) -> String {
        func text(_ s: String) -> String { TerminalText.printable(s) }
        var fields: [(String, String)] = [
            ("Request", links.link(text(r.id), to: links.request(r.id))),
            ("Time", text(r.timestamp)),
            ("Route", text(r.route)),
            ("Model", text(r.model) + (r.requestedModel == r.model ? "" : " (asked for \(text(r.requestedModel)))")),
            ("Provider", r.provider.isEmpty ? "-" : text(r.provider)),
            ("Status", status(String(r.status), r.status) + (r.complete ? "" : " (the response ended early)")),
        ]
        if let errorClass = r.errorClass {
            fields.append(("Error", text(errorClass).red + (r.errorMessage.map { ": " + text($0) } ?? "")))
        }
        fields += [
            ("Stream", r.stream ? "yes" : "no"),
            ("Latency", latency(r.latencyMs) + (r.timeToFirstTokenMs.map { ", first token after \(latency($0))" } ?? "")),
            ("Tokens", "\(UsageTable.number(Int64(r.usage.inputTokens))) in (\(UsageTable.number(Int64(r.usage.cachedInputTokens))) cached), "
                + "\(UsageTable.number(Int64(r.usage.outputTokens))) out"
                + (r.usage.reasoningTokens > 0 ? " (\(UsageTable.number(Int64(r.usage.reasoningTokens))) reasoning)" : "")
                + ", \(UsageTable.number(Int64(r.usage.totalTokens))) total" + (r.usageEstimated ? " — estimated, the provider reported none" : "")),
            ("Cost", "$" + r.costUSD + (r.cacheHit ? " (cache hit, saved $\(r.costSavedUSD))" : "")),
            ("Key", r.keyID.map { id in alias.map { "\(text($0)) (\(text(id)))" } ?? text(id) } ?? "-"),
            ("User", r.userID.map(text) ?? "-"),
            ("Correlation", links.link(text(r.correlationID), to: links.correlation(r.correlationID))),
        ]
        if !r.properties.isEmpty {
            fields.append(("Properties", r.properties.sorted { $0.key < $1.key }.map { text("\($0.key)=\($0.value)") }.joined(separator: ", ")))
        }
        var lines = TerminalText.fields(fields)
        if r.attempts.count > 1 {
            lines.append("Attempts:".bold)
            for (n, a) in r.attempts.enumerated() {
                let outcome = a.status.map(String.init) ?? "no answer"
                lines.append("  \(n + 1). \(text(a.provider))/\(text(a.model))  \(outcome)  \(latency(a.latencyMs))"
                             + (a.delayMs > 0 ? "  after \(a.delayMs) ms" : "")
                             + (a.errorClass.map { "  " + text($0) } ?? ""))
            }
        }
        if let line = links.consoleLine(links.request(r.id)) { lines.append(line) }
        return lines.joined(separator: "\n")
    }

    static func status(_ text: String, _ code: Int) -> String {
        switch code {
        case 200..<300: text.green
        case 400..<500: text.yellow
        case 500...: text.red
        default: text
        }
    }

    /// Total tokens; `~` marks an estimate (the provider never reported usage).
    static func tokens(_ r: RequestRecordView) -> String {
        (r.usageEstimated ? "~" : "") + UsageTable.number(Int64(r.usage.totalTokens))
    }

    /// `840 ms`, `9.5 ms`, `1.24 s`.
    static func latency(_ ms: Double) -> String {
        if ms >= 1000 { return String(format: "%.2f s", ms / 1000) }
        return ms >= 10 ? String(format: "%.0f ms", ms) : String(format: "%.1f ms", ms)
    }

    /// The key's alias when the key list gave one, else the id the record keeps (`key_…`, or the
    /// fingerprint `sk-…` of a provider key passed through); `-` for none.
    static func key(_ r: RequestRecordView, aliases: [String: String]) -> String {
        guard let id = r.keyID else { return "-" }
        return aliases[id] ?? id
    }
}
