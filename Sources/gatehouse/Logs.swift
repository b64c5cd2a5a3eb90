import ArgumentParser
import Foundation
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
            The query language is described in docs/query-language.md.
            """)

    @Option(help: "Gatehouse base URL (GATEHOUSE_URL). Default http://127.0.0.1:8080.")
    var url: String?

    @Option(name: [.short, .long], help: "A query, e.g. 'level:error service:api'.")
    var query: String?

    @Option(help: "Start: a relative time like 15m, 1h or 7d, a date, or RFC 3339.")
    var since: String = "1h"

    @Option(help: "End; default now.")
    var until: String?

    @Option(help: "Most lines to show (1 to 1000).")
    var limit: Int = 100

    @Flag(help: "Follow new lines as they arrive (server-sent events) until interrupted.")
    var tail = false

    @Flag(help: "Print each line as the API's JSON, one per line.")
    var json = false

    func run() async throws {
        let client = APIClient(url: url)
        if tail {
            try await follow(client)
            return
        }
        var items = [URLQueryItem(name: "from", value: since), URLQueryItem(name: "limit", value: String(limit))]
        if let query { items.append(URLQueryItem(name: "q", value: query)) }
        if let until { items.append(URLQueryItem(name: "to", value: until)) }
        let page = try await client.object(.GET, "/api/v1/logs", query: items)
        let lines = (page["data"] as? [[String: Any]]) ?? []
        if lines.isEmpty {
            // Said on standard error with --json, so the output stays one JSON object a line.
            let note = "no lines match \(query.map { "'\($0)' " } ?? "")since \(since)\(until.map { " until \($0)" } ?? "")"
            if json { FileHandle.standardError.write(Data("\(note)\n".utf8)) } else { print("(\(note))".dim) }
            return
        }
        // The API answers newest first; a terminal reads oldest first.
        for line in lines.reversed() { print(LogLine.render(line, json: json)) }
        if page["has_more"] as? Bool == true, !json {
            print("(more lines match; narrow the query or raise --limit)".dim)
        }
    }

    private func follow(_ client: APIClient) async throws {
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
                        guard let object = try? JSONSerialization.jsonObject(with: Data(field.dropFirst(6).utf8)) as? [String: Any] else { continue }
                        print(LogLine.render(object, json: json))
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
/// that matter when reading an incident (correlation id, duration, slow mark).
enum LogLine {
    static func render(_ line: [String: Any], json: Bool) -> String {
        if json {
            let data = (try? JSONSerialization.data(withJSONObject: line, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            return String(decoding: data, as: UTF8.self)
        }
        let level = (line["level"] as? String) ?? "info"
        let badge = level.uppercased().padding(toLength: 5, withPad: " ", startingAt: 0)
        let coloured: String = switch level {
        case "fatal": badge.red.bold
        case "error": badge.red
        case "warn": badge.yellow
        case "info": badge.green
        case "debug": badge.blue
        default: badge.dim
        }
        let place = [line["service"] as? String, line["function"] as? String].compactMap { $0 }.joined(separator: " ")
        var extras: [String] = []
        if let c = line["correlation_id"] as? String { extras.append("correlation_id=\(c)") }
        if let d = line["duration_ms"] as? NSNumber { extras.append("duration=\(d)ms") }
        if let attributes = line["attributes"] as? [String: Any] {
            for key in attributes.keys.sorted().prefix(6) {
                let value = attributes[key]
                let text = value is [String: Any] || value is [Any]
                    ? (try? JSONSerialization.data(withJSONObject: value!, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? ""
                    : "\(value ?? "")"
                extras.append("\(key)=\(text)")
            }
        }
        if line["slow"] as? Bool == true { extras.append("SLOW".magenta) }
        let time = ((line["timestamp"] as? String) ?? "").dim
        return ([time, coloured] + (place.isEmpty ? [] : [place.cyan]) + [(line["message"] as? String) ?? ""] + (extras.isEmpty ? [] : [extras.joined(separator: " ").dim]))
            .joined(separator: " ")
    }
}
