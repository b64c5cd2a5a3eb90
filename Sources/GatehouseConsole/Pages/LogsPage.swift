import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseHTTP
import GatehouseTelemetry
import Hummingbird

/// `/logs` and its live tail; `/correlation/{id}`: everything that shares one id.
struct LogsPage: Sendable {
    let console: Console
    var deps: ConsoleDependencies { console.deps }
    static let pageSize = 100

    func addRoutes(to r: APIRouter.AccessGroup) {
        r.get("/logs") { request, _ in await console.page(request, .logs) { try await logs($0) } }
        r.get("/logs/tail") { request, context in await tail(request, context: context) }
        r.get("/correlation/{id}") { request, context in
            let id = PathSegment.decode(context.parameters.get("id") ?? "")
            return await console.page(request, .logs) { try await correlation(id, $0) }
        }
    }

    /// The search: `q` within the time range, newest first, one page per cursor (as `GET /api/v1/logs`).
    func logs(_ input: Console.PageInput) async throws -> Console.PageOutput {
        let q = input.parameters["q"] ?? ""
        let cursor = input.parameters["cursor"]
        let range = input.range
        if let groups = try await aggregation(q, range: range) { return groups }
        var page = LogPage(lines: [], nextCursor: nil)
        var problem: PageProblem?
        do {
            page = try await deps.telemetry.logs(LogListQuery(filter: try APIParameters.filter(q), fromMicros: range.fromMicros,
                                                              toMicros: range.toMicros, limit: Self.pageSize, cursor: cursor))
        } catch {
            guard let found = PageProblem(error) else { throw error }
            problem = found
        }
        let kept = [("q", q)] + range.parameters
        let rows = page.lines.map { LogRow(LogLine($0), range: range) }
        // Mustache shows a section for a nil kept in a dictionary: nil values are left out.
        let body: [String: Any?] = [
            "q": q, "rangeFields": range.parameters.map { Nav.Hidden(name: $0.0, value: $0.1) }, "rangeLabel": range.label,
            "lines": rows, "hasLines": !rows.isEmpty, "searched": !q.trimmingCharacters(in: .whitespaces).isEmpty, "queryError": problem?.message,
            "olderHref": page.nextCursor.map { Console.url("/logs", kept + [("cursor", $0)]) },
            "newestHref": cursor == nil ? nil : Console.url("/logs", kept),
        ]
        return Console.PageOutput(template: "logs", title: "Logs", body: body.compactMapValues { $0 }, status: problem?.status ?? .ok)
    }

    /// The live tail for the page's script: the JSON API's stream, for a browser signed in to the
    /// console (an EventSource cannot send the admin token).
    func tail(_ request: Request, context: GatehouseRequestContext) async -> Response {
        do {
            guard try await console.auth.viewer(request) != nil else {
                return PageRenderer.respond(status: .unauthorized, contentType: "text/plain; charset=utf-8", body: "Sign in to the console to tail logs.")
            }
        } catch {
            return PageRenderer.respond(status: .serviceUnavailable, contentType: "text/plain; charset=utf-8", body: "The store did not answer. Try again in a moment.")
        }
        // The session is checked again while streaming: signing out, deleting the account or the
        // session expiring ends the tail. A store that does not answer ends it too; the browser reconnects.
        let auth = console.auth
        return await APIAnswer.run {
            try await deps.logRoutes.tail(request, connection: context.connection) { (try? await auth.viewer(request)) != nil }
        }
    }

    /// One request's story: its log lines, errors and AI calls in time order (as `GET /api/v1/correlation/{id}`).
    func correlation(_ id: String, _ input: Console.PageInput) async throws -> Console.PageOutput {
        let timeline: CorrelationTimeline
        do {
            timeline = try await deps.logRoutes.correlationTimeline(id)
        } catch let error as GatewayError {
            throw Console.PageFailure(status: error.status, title: "Not a correlation id", message: error.message)
        }
        let stamps = timeline.timeline.map { TimeExpressions.rfc3339Micros($0.timestamp) ?? 0 }
        // The traces whose spans carry the id: a trace with no log line or error still has a page here.
        let traces = timeline.traceIDs.map { ["id": $0, "href": TracePage.href($0)] }
        guard let first = stamps.first, let last = stamps.last else {
            guard !traces.isEmpty else {
                throw Console.PageFailure.notFound("Nothing carries the correlation id “\(Format.foreignID(id))”: no log line, error, AI call or span. It may be older than the retention keeps.")
            }
            return Console.PageOutput(template: "correlation", title: "Correlation \(id)", body: [
                "correlationID": id, "entries": [TimelineRow](), "traces": traces, "summary": "No log line, error or AI call; only spans",
            ] as [String: Any], showsRange: false)
        }
        let entries = zip(timeline.timeline, stamps).map { TimelineRow($0, offsetMicros: $1 - first, range: input.range) }
        // Links to the searches that find the same id, over the span the timeline covers (a little
        // wider, as links carry milliseconds).
        let span = [("from", TimeExpressions.format(micros: first - 1000)), ("to", TimeExpressions.format(micros: last + 2000))]
        func count(_ kind: CorrelationEntry.Kind, _ noun: String) -> String {
            let n = timeline.timeline.filter { $0.kind == kind }.count
            return "\(n) \(noun)\(n == 1 ? "" : "s")"
        }
        return Console.PageOutput(template: "correlation", title: "Correlation \(id)", body: [
            "correlationID": id, "entries": entries, "hasEntries": true, "traces": traces,
            "summary": [count(.log, "log line"), count(.error, "error"), count(.aiRequest, "AI call")].joined(separator: " · "),
            "firstSeen": Format.dateTime(first), "duration": Format.latency(micros: Double(last - first)),
            "logsHref": Console.url("/logs", [("q", TelemetryView.match("correlation_id", id))] + span),
            "requestsHref": Console.url("/requests", [("q", TelemetryView.match("correlation_id", id))] + span),
        ] as [String: Any], showsRange: false)
    }

    /// One entry of a correlation timeline.
    struct TimelineRow {
        var time: String
        var utc: String
        var offset: String
        var kind: String
        var tone: String
        var log: LogRow?
        var error: ErrorSummary?
        var call: CallSummary?

        struct ErrorSummary {
            var title: String
            var culprit: String
            var level: String
            var href: String
        }

        struct CallSummary {
            var model: String
            var provider: String
            var route: String
            var status: String
            var statusTone: String
            var latency: String
            var tokens: String
            var cost: String
            var errorClass: String?
            var href: String
        }

        init(_ entry: CorrelationEntry, offsetMicros: Int64, range: TimeRange) {
            time = Format.millisecondTime(entry.timestamp)
            utc = entry.timestamp
            offset = offsetMicros == 0 ? "0" : "+" + Format.latency(micros: Double(offsetMicros))
            switch entry {
            case .log(let line):
                (kind, tone) = ("log", "")
                log = LogRow(line, range: range)
            case .error(let event):
                (kind, tone) = ("error", "bad")
                error = ErrorSummary(title: event.title, culprit: event.culprit, level: event.level.rawValue,
                                     href: TelemetryView.issueHref(event.issueID, event: event.eventID))
            case .aiRequest(let call):
                (kind, tone) = ("AI call", "info")
                let cost = Double(call.costUSD).map { MicroDollars(Int64(($0 * 1_000_000).rounded())) } ?? MicroDollars(0)
                self.call = CallSummary(model: call.model, provider: call.provider, route: call.route, status: String(call.status),
                                        statusTone: call.status < 400 ? "good" : "bad", latency: Format.latency(micros: call.latencyMilliseconds * 1000),
                                        tokens: Format.count(Int64(call.inputTokens)) + " in / " + Format.count(Int64(call.outputTokens)) + " out",
                                        cost: Format.dollars(cost), errorClass: call.errorClass, href: "/requests/" + PathSegment.encode(call.id))
            }
        }
    }
}

/// One log line as the logs and correlation pages show it: a summary that opens to every field.
struct LogRow {
    var time: String
    var utc: String
    var level: String
    var service: String?
    var message: String
    var slow: Bool
    /// The line's own fields, linked to what they lead to.
    var fields: [TelemetryView.Field]
    /// Everything else the line carried.
    var attributes: [TelemetryView.Field]
    var hasAttributes: Bool

    init(_ line: LogLine, range: TimeRange) {
        time = Format.millisecondTime(line.timestamp)
        utc = line.timestamp
        level = line.level.rawValue
        service = line.service
        message = line.message
        slow = line.slow
        /// A field whose value finds the other lines that share it.
        func searchable(_ name: String, _ field: String, _ value: String?) -> TelemetryView.Field? {
            value.map { TelemetryView.Field(name: name, value: $0, href: Console.url("/logs", [("q", TelemetryView.match(field, $0))] + range.parameters)) }
        }
        fields = [
            line.correlationID.map { TelemetryView.Field(name: "correlation id", value: $0, href: TelemetryView.correlationHref($0)) },
            searchable("service", "service", line.service),
            searchable("function", "function", line.function),
            line.durationMilliseconds.map { TelemetryView.Field(name: "duration", value: Format.latency(micros: $0 * 1000)) },
            searchable("environment", "environment", line.environment),
            TelemetryView.Field(name: "project", value: line.project),
            TelemetryView.Field(name: "time (UTC)", value: line.timestamp),
            line.seq.map { TelemetryView.Field(name: "sequence", value: String($0)) },
        ].compactMap { $0 }
        attributes = line.attributes.sorted { $0.key < $1.key }.map { TelemetryView.Field(name: $0.key, value: $0.value.consoleText) }
        hasAttributes = !attributes.isEmpty
    }
}
