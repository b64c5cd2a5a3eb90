import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseHTTP
import Hummingbird

/// `/traces/{id}`: one trace as a waterfall (the tree `GET /api/v1/traces/{id}` answers), the
/// errors linked to it, and the way to the logs and AI calls of the same id.
struct TracePage: Sendable {
    let console: Console
    var deps: ConsoleDependencies { console.deps }
    /// Deepest indent drawn: deeper spans line up at this depth (their depth is still shown).
    static let maxIndent = 16
    /// Attributes shown per span when it is opened.
    static let maxAttributes = 50
    /// Spans drawn: past this a page would run to megabytes; the rest are counted, and the API
    /// and `gatehouse traces ID --json` give them all.
    static let maxShownSpans = 2000

    func addRoutes(to r: APIRouter.AccessGroup) {
        r.get("/traces/{id}") { request, context in
            let id = PathSegment.decode(context.parameters.get("id") ?? "")
            return await console.page(request, .performance) { try await detail(id, $0) }
        }
    }

    static func href(_ traceID: String) -> String { "/traces/" + PathSegment.encode(traceID) }

    struct SpanRow {
        var name: String
        var op: String?
        var service: String?
        var indent: Int
        var depth: Int
        var duration: String
        var offset: String
        var bar: String
        var status: String
        var error: Bool
        var slow: Bool
        var isTransaction: Bool
        var fields: [TelemetryView.Field]
    }

    struct ErrorRow {
        var title: String
        var culprit: String
        var href: String
        var level: String
        var time: String
        var utc: String
    }

    func detail(_ id: String, _ input: Console.PageInput) async throws -> Console.PageOutput {
        let trace: TraceDetail
        do {
            trace = try await deps.traceRoutes.trace(id)
        } catch let error as GatewayError {
            if error.status == .notFound {
                throw Console.PageFailure.notFound("No trace has the id “\(Format.foreignID(id))”. Its spans may be older than the retention keeps, or not sent yet: "
                                                   + "spans are written a moment after they arrive.")
            }
            throw Console.PageFailure(status: error.status, title: "Not a trace id", message: error.message)
        }
        let total = max(trace.durationMilliseconds, 0.001)
        let spans = trace.spans.prefix(Self.maxShownSpans).map { placed in
            let s = placed.span
            let tone = s.error ? "error" : s.slow ? "slow" : "ok"
            let duration = Format.latency(micros: s.durationMilliseconds * 1000)
            let offset = placed.offsetMilliseconds < 0.001 ? "+0" : "+" + Format.latency(micros: placed.offsetMilliseconds * 1000)
            return SpanRow(name: s.name, op: s.op, service: s.service, indent: min(placed.depth, Self.maxIndent), depth: placed.depth,
                           duration: duration, offset: offset,
                           bar: Self.bar(offset: placed.offsetMilliseconds, duration: s.durationMilliseconds, total: total, tone: tone,
                                         title: "\(s.name): \(duration) at \(offset)"),
                           status: s.status, error: s.error, slow: s.slow, isTransaction: s.isTransaction, fields: Self.fields(s))
        }
        let errors = trace.errors.map { e in
            ErrorRow(title: e.title, culprit: e.culprit, href: TelemetryView.issueHref(e.issueID, event: e.eventID), level: e.level.rawValue,
                     time: Format.millisecondTime(e.timestamp), utc: e.timestamp)
        }
        let root = trace.spans.first { $0.depth == 0 }?.span
        let services = Array(Set(trace.spans.compactMap(\.span.service))).sorted()
        // The transaction's own correlation id (an X-Request-Id it carried) leads to more than the trace id does.
        var correlations = [trace.traceID]
        if let other = root?.correlationID, other != trace.traceID { correlations.append(other) }
        let start = TimeExpressions.instantMicros(trace.start) ?? 0
        let ticks = ["0"] + (1...4).map { Format.latency(micros: total * 1000 * Double($0) / 4) }
        var body: [String: Any] = [
            "traceID": trace.traceID, "rootName": trace.rootName, "start": Format.dateTime(start), "ago": Format.ago(start),
            "duration": Format.latency(micros: trace.durationMilliseconds * 1000), "spanCount": Format.count(Int64(trace.spanCount)),
            "services": services.joined(separator: ", "), "hasServices": !services.isEmpty, "truncated": trace.truncated, "maxSpans": TraceDetail.maxSpans,
            "spans": spans, "ticks": ticks, "maxShownSpans": Format.count(Int64(Self.maxShownSpans)), "errors": errors, "hasErrors": !errors.isEmpty, "errorCount": errors.count,
            "correlations": correlations.map { ["id": $0, "href": TelemetryView.correlationHref($0)] },
        ]
        // A section shows for a value and skips a missing key (an empty string or 0 would still show).
        let failed = trace.spans.filter(\.span.error).count, slow = trace.spans.filter(\.span.slow).count
        if failed > 0 { body["errorSpans"] = failed }
        if slow > 0 { body["slowSpans"] = slow }
        if trace.spans.count > Self.maxShownSpans { body["hiddenSpans"] = Format.count(Int64(trace.spans.count - Self.maxShownSpans)) }
        if let root, root.isTransaction, let name = root.transaction {
            body["transactionHref"] = Console.url("/performance", [("transaction", name)] + input.range.parameters)
        }
        return Console.PageOutput(template: "trace", title: "Trace \(trace.rootName)", body: body, showsRange: false)
    }

    /// A span's bar: its start and length as shares of the trace's, drawn on the server as SVG
    /// (the console's CSP allows no inline style). At least a sliver, so an instant span shows.
    static func bar(offset: Double, duration: Double, total: Double, tone: String, title: String) -> String {
        let scale = 1000.0
        let sliver = 2.0
        let x = min(max(offset / total * scale, 0), scale - sliver)
        let width = min(max(duration / total * scale, sliver), scale - x)
        return "<svg class=\"waterfall-bar\" viewBox=\"0 0 1000 16\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"\(SVGChart.escape(title))\">"
            + "<title>\(SVGChart.escape(title))</title>"
            + "<rect class=\"span-\(tone)\" x=\"\(String(format: "%.1f", x))\" y=\"3\" width=\"\(String(format: "%.1f", width))\" height=\"10\" rx=\"2\"/></svg>"
    }

    /// What opening a span shows: its ids, where it came from, and its attributes.
    static func fields(_ s: SpanView) -> [TelemetryView.Field] {
        var fields: [TelemetryView.Field] = [
            .init(name: "span id", value: s.spanID), .init(name: "parent", value: s.parentSpanID ?? "–"),
            .init(name: "status", value: s.status), .init(name: "source", value: s.source), .init(name: "project", value: s.project),
            .init(name: "started", value: Format.millisecondTime(s.timestamp)),
        ]
        if let transaction = s.transaction { fields.append(.init(name: "transaction", value: transaction)) }
        if let environment = s.environment { fields.append(.init(name: "environment", value: environment)) }
        if let release = s.release { fields.append(.init(name: "release", value: release)) }
        if let id = s.correlationID { fields.append(.init(name: "correlation id", value: id, href: TelemetryView.correlationHref(id))) }
        for key in s.attributes.keys.sorted().prefix(maxAttributes) {
            fields.append(.init(name: key, value: s.attributes[key]?.consoleText ?? ""))
        }
        return fields
    }
}
