import ArgumentParser
import Foundation
import GatehouseAPI
import NIOCore
import Rainbow

struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Search or live-tail the logs a running Gatehouse has taken in, coloured by level.",
        discussion: """
            Examples:
              gatehouse logs --since 1h --query 'level:error'
              gatehouse logs --query 'function:"tasks.list" level:error' --json
              gatehouse logs --tail --query 'dbCalls:>50'
              gatehouse logs 'level:error | count by function'
              gatehouse logs --since 24h 'dbCalls:>50 | p95(duration) by bin(1h)'
            A query that ends in a stage (| count, sum, avg, min, max, p95… by fields or bin(1h))
            prints its groups as a table (or the API's JSON with --json) over --since…--until.
            The query language is described in docs/query-language.md.
            """)

    @Option(help: "Gatehouse base URL (GATEHOUSE_URL). Default http://127.0.0.1:8080.")
    var url: String?

    @Argument(help: "A query, e.g. 'level:error service:api' or 'level:error | count by function' (or use --query).")
    var queryArgument: String?

    @Option(name: [.customShort("q"), .customLong("query")], help: "A query, e.g. 'level:error service:api'.")
    var queryOption: String?

    private var query: String? { queryOption ?? queryArgument }

    @Option(help: "Start: a relative time like 15m, 1h or 7d, a date, or RFC 3339.")
    var since: String = "1h"

    @Option(help: "End; default now.")
    var until: String?

    @Option(help: "Most lines (default 100), or groups of a stage (default 100; 1000 by a bin), to show (1 to 1000).")
    var limit: Int?

    @Flag(help: "Follow new lines as they arrive (server-sent events) until interrupted.")
    var tail = false

    @Flag(help: "Print each line as the API's JSON, one per line.")
    var json = false

    @OptionGroup var linkOptions: LinkOptions

    func run() async throws {
        let client = APIClient(url: url)
        // Correlation ids lead to their timeline in the console; --json prints none of this.
        let links = json ? nil : try linkOptions.links(for: client)
        if tail {
            try await follow(client, links: links)
            return
        }
        if AggregationTable.hasStage(query) {
            try await printGroups(client)
            return
        }
        var items = [URLQueryItem(name: "from", value: since), URLQueryItem(name: "limit", value: String(limit ?? 100))]
        if let query { items.append(URLQueryItem(name: "q", value: query)) }
        if let until { items.append(URLQueryItem(name: "to", value: until)) }
        let page = try await client.get("/api/v1/logs", query: items, as: LogSearchPage.self)
        let lines = page.data
        if lines.isEmpty {
            // Said on standard error with --json, so the output stays one JSON object a line.
            let note = "no lines match \(query.map { "'\($0)' " } ?? "")since \(since)\(until.map { " until \($0)" } ?? "")"
            if json { FileHandle.standardError.write(Data("\(note)\n".utf8)) } else { print("(\(note))".dim) }
            return
        }
        // The API answers newest first; a terminal reads oldest first.
        for line in lines.reversed() { print(line.rendered(json: json, links: links)) }
        if page.hasMore, !json {
            print("(more lines match; narrow the query or raise --limit)".dim)
        }
    }

    /// A stage's groups: the server's bounds apply (`limit` only when given).
    private func printGroups(_ client: APIClient) async throws {
        var items = [URLQueryItem(name: "from", value: since), URLQueryItem(name: "q", value: query)]
        if let until { items.append(URLQueryItem(name: "to", value: until)) }
        if let limit { items.append(URLQueryItem(name: "limit", value: String(limit))) }
        if json { return print(String(decoding: try await client.call(.GET, "/api/v1/logs", query: items), as: UTF8.self)) }
        for line in AggregationTable.render(try await client.get("/api/v1/logs", query: items, as: AggregationResult.self)) { print(line) }
    }

    private func follow(_ client: APIClient, links: ConsoleLinks?) async throws {
        var request = try client.request(.GET, "/api/v1/logs/tail", query: query.map { [URLQueryItem(name: "q", value: $0)] } ?? [])
        request.headers.add(name: "Accept", value: "text/event-stream")
        // The deadline only bounds the whole stream; connecting fails within seconds (APIClient.http).
        let response = try await client.send(request, timeout: .hours(24 * 365))
        guard response.status == .ok else {
            throw client.refusal(response.status, try await client.collect(response, upTo: 1 << 20))
        }
        if !json { FileHandle.standardError.write(Data("tailing \(query ?? "all logs") — Ctrl-C to stop\n".utf8)) }
        var pending = ""
        do {
            for try await chunk in response.body {
                pending += String(buffer: chunk)
                while let end = pending.range(of: "\n\n") {
                    let event = pending[..<end.lowerBound]
                    pending = String(pending[end.upperBound...])
                    for field in event.split(separator: "\n") where field.hasPrefix("data: ") {
                        guard let line = try? APIJSON.decode(LogLine.self, from: Data(field.dropFirst(6).utf8)) else { continue }
                        print(line.rendered(json: json, links: links))
                        fflush(nil)  // every stream: a pipe would otherwise hold lines back
                    }
                }
            }
        } catch {
            throw CLIError("the live tail from Gatehouse at \(client.base) broke off (\(APIClient.reason(error)))")
        }
        throw CLIError("Gatehouse at \(client.base) ended the live tail (it stopped or restarted)")
    }
}

/// One log line for the terminal: time, level in its colour, where, message, then the fields
/// that matter when reading an incident (correlation id, linked to its timeline in the console,
/// duration, slow mark).
extension LogLine {
    func rendered(json: Bool, links: ConsoleLinks? = nil) -> String {
        if json { return (try? APIJSON.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "" }
        let badge = level.rawValue.uppercased().padding(toLength: 5, withPad: " ", startingAt: 0)
        let coloured: String = switch level {
        case .fatal: badge.red.bold
        case .error: badge.red
        case .warn: badge.yellow
        case .info: badge.green
        case .debug: badge.blue
        case .trace: badge.dim
        }
        let place = [service, function].compactMap { $0 }.joined(separator: " ")
        var extras: [String] = []
        if let correlationID {
            // Dimmed before it is linked: Rainbow would take a hyperlink's escape sequence apart.
            let id = links.map { $0.link(correlationID.dim, to: $0.correlation(correlationID)) } ?? correlationID.dim
            extras.append("correlation_id=".dim + id)
        }
        if let durationMilliseconds { extras.append("duration=\(Self.number(durationMilliseconds))ms".dim) }
        for key in attributes.keys.sorted().prefix(6) {
            extras.append("\(key)=\(Self.text(attributes[key] ?? .null))".dim)
        }
        if slow { extras.append("SLOW".magenta.dim) }
        return ([timestamp.dim, coloured] + (place.isEmpty ? [] : [place.cyan]) + [message] + extras)
            .joined(separator: " ")
    }

    /// A number as it has always been printed: whole ones without a decimal point.
    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 9_007_199_254_740_992 ? String(Int64(value)) : "\(value)"
    }

    /// An attribute's value as the CLI has always printed it: strings bare, objects and arrays as
    /// compact JSON, booleans as 1 or 0 and null as `<null>` (Foundation's descriptions).
    static func text(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): return text
        case .integer(let n): return String(n)
        case .number(let n): return number(n)
        case .bool(let b): return b ? "1" : "0"
        case .null: return "<null>"
        case .array, .object:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        }
    }
}
