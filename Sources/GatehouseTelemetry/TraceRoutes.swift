import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseHTTP
import Hummingbird

/// The read side of traces: one trace as a tree with its linked errors, per-transaction
/// performance with the change from the window before, and span search.
public struct TraceRoutes: Sendable {
    let traces: any TraceStore
    let telemetry: any TelemetryStore
    let slow: SlowThresholds

    public init(traces: any TraceStore, telemetry: any TelemetryStore, slow: SlowThresholds) {
        self.traces = traces
        self.telemetry = telemetry
        self.slow = slow
    }

    public func addRoutes(to api: APIRouter) {
        api.team.get("/api/v1/traces/{trace_id}") { _, context in
            await APIAnswer.run { JSONResponse.make(try await self.trace(context.parameters.get("trace_id") ?? "")) }
        }
        api.team.get("/api/v1/transactions") { request, _ in await APIAnswer.run { JSONResponse.make(try await self.transactions(request)) } }
        api.team.get("/api/v1/spans") { request, _ in
            await APIAnswer.run {
                if let groups = try await self.spanAggregation(request) { return groups }
                return JSONResponse.make(try await self.spans(request))
            }
        }
    }

    /// Error events linked to a trace, at most.
    static let maxLinkedErrors = 100

    /// Public for the console, which shows the same tree.
    public func trace(_ rawID: String) async throws -> TraceDetail {
        let id = rawID.replacingOccurrences(of: "-", with: "").lowercased()
        guard TraceParent.isID(id, digits: 32) else {
            throw GatewayError.invalidRequest("the trace id must be 32 hex digits, not all zeros", param: "trace_id")
        }
        let stored = try await traces.spans(traceID: id, limit: TraceDetail.maxSpans + 1)
        guard !stored.isEmpty else { throw GatewayError.notFound("no trace with id \(id)") }
        let truncated = stored.count > TraceDetail.maxSpans
        let spans = Array(stored.prefix(TraceDetail.maxSpans))
        let placed = Self.treeOrder(spans)
        let start = spans.map(\.startMicros).min() ?? 0
        let end = spans.map { $0.startMicros.addingSaturated($0.durationMicros) }.max() ?? start
        let root = placed.first { $0.depth == 0 && $0.span.isTransaction }?.span ?? placed.first?.span
        // Sentry's error events inside a transaction carry its trace id; a transaction tagged
        // with a correlation id of its own links the errors tagged with it too.
        var linked: [ErrorEvent] = try await telemetry.errorEvents(correlationID: id, limit: Self.maxLinkedErrors)
        if let other = root?.correlationID, other != id {
            let ids = Set(linked.map(\.eventID))
            linked += try await telemetry.errorEvents(correlationID: other, limit: Self.maxLinkedErrors).filter { !ids.contains($0.eventID) }
        }
        linked.sort { $0.timestampMicros < $1.timestampMicros }
        let queries = Self.databaseSpansPerTransaction(placed)
        // Attributes in tree order until the answer's budget is spent; later spans keep their timings.
        var budget = TraceDetail.maxAttributeBytes, attributesLeftOut = false
        let tree = placed.enumerated().map { index, entry -> TraceSpan in
            var span = entry.span
            let size = span.attributesJSON.utf8.count
            if size > budget {
                span.attributesJSON = "{}"
                attributesLeftOut = true
            } else {
                budget -= size
            }
            return TraceSpan(depth: entry.depth, offsetMilliseconds: Double(span.startMicros.subtractingSaturated(start)) / 1000,
                             span: view(span, databaseSpans: queries[index] ?? 0))
        }
        return TraceDetail(
            traceID: id, rootName: root?.name ?? "", start: TimeExpressions.format(micros: start),
            durationMilliseconds: Double(end.subtractingSaturated(start)) / 1000, spanCount: spans.count, truncated: truncated || attributesLeftOut,
            spans: tree,
            errors: linked.prefix(Self.maxLinkedErrors).map { ErrorEventView($0, withDocument: false) })
    }

    /// Spans in tree order: each root (no parent, or a parent not in the trace) by start, then
    /// its children depth first, siblings by start. Walked with a stack and a visited set, so a
    /// sender's cycle of parent ids or a repeated span id cannot loop or nest without end.
    static func treeOrder(_ spans: [Span]) -> [(depth: Int, span: Span)] {
        let byStart = spans.sorted { ($0.startMicros, $0.spanID) < ($1.startMicros, $1.spanID) }
        let ids = Set(byStart.map(\.spanID))
        var children: [String: [Span]] = [:]
        var roots: [Span] = []
        for span in byStart {
            if let parent = span.parentSpanID, parent != span.spanID, ids.contains(parent) {
                children[parent, default: []].append(span)
            } else {
                roots.append(span)
            }
        }
        var result: [(depth: Int, span: Span)] = []
        var visited = Set<String>()
        func walk(from root: Span) {
            var stack: [(Int, Span)] = [(0, root)]
            while let (depth, span) = stack.popLast() {
                guard visited.insert(span.spanID).inserted else { continue }
                result.append((depth, span))
                for child in (children[span.spanID] ?? []).reversed() { stack.append((depth + 1, child)) }
            }
        }
        for root in roots { walk(from: root) }
        // Spans only reachable through a cycle have no root: shown at the top level, by start.
        for span in byStart where !visited.contains(span.spanID) { walk(from: span) }
        return result
    }

    func transactions(_ request: Request) async throws -> TransactionList {
        let params = FormParameters(query: request.uri.query)
        let now = TimeExpressions.nowMicros()
        let to = try params.get("to").map { try APIParameters.instant($0, name: "to") } ?? now
        let from = try params.get("from").map { try APIParameters.instant($0, name: "from") } ?? to.subtractingSaturated(TimeExpressions.microsPerDay)
        guard from < to else { throw GatewayError.invalidRequest("`from` must be before `to`", param: "from") }
        let sort: TransactionSort
        if let text = params.get("sort") {
            guard let value = TransactionSort(rawValue: text) else {
                throw GatewayError.invalidRequest("`sort` must be one of \(TransactionSort.allCases.map(\.rawValue).joined(separator: ", "))", param: "sort")
            }
            sort = value
        } else {
            sort = .count
        }
        let limit = try APIParameters.limit(params.get("limit"), fallback: 50, max: 1000)
        func name(_ parameter: String) throws -> String? {
            guard let value = params.get(parameter), !value.isEmpty else { return nil }
            guard value.count <= 256 else { throw GatewayError.invalidRequest("`\(parameter)` is longer than 256 characters", param: parameter) }
            return value
        }
        let query = TransactionSummaryQuery(fromMicros: from, toMicros: to, project: try name("project"), environment: try name("environment"),
                                            filter: try APIParameters.filter(params.get("q")))
        return try await transactions(query, sort: sort, limit: limit)
    }

    /// The rows of `GET /api/v1/transactions` for a read query: public for the console's
    /// Performance page, which shows the same table.
    public func transactions(_ query: TransactionSummaryQuery, sort: TransactionSort, limit: Int) async throws -> TransactionList {
        let (from, to) = (query.fromMicros, query.toMicros)
        let minutes = Double(to - from) / 60_000_000
        let rows = try await traces.transactionSummaries(query).map { s in
            let change = s.previousP95.flatMap { previous in previous > 0 ? (s.durations.p95 - previous) / previous * 100 : nil }
            return TransactionRow(
                name: s.name, count: s.count, throughputPerMinute: Double(s.count) / minutes,
                errorRate: s.count > 0 ? Double(s.errorCount) / Double(s.count) : 0,
                p50Milliseconds: s.durations.p50 / 1000, p95Milliseconds: s.durations.p95 / 1000, p99Milliseconds: s.durations.p99 / 1000,
                previousCount: s.previousCount, previousP95Milliseconds: s.previousP95.map { $0 / 1000 }, p95ChangePercent: change)
        }
        return TransactionList(from: TimeExpressions.format(micros: from), to: TimeExpressions.format(micros: to),
                               data: Array(Self.sorted(rows, by: sort).prefix(limit)))
    }

    static func sorted(_ rows: [TransactionRow], by sort: TransactionSort) -> [TransactionRow] {
        let key: (TransactionRow) -> Double = switch sort {
        case .count, .throughput: { Double($0.count) }
        case .p50: \.p50Milliseconds
        case .p95: \.p95Milliseconds
        case .p99: \.p99Milliseconds
        case .errorRate: \.errorRate
        // Rows without a previous window sort after every change.
        case .change: { $0.p95ChangePercent ?? -.infinity }
        case .name: { _ in 0 }
        }
        if sort == .name { return rows.sorted { $0.name < $1.name } }
        return rows.sorted { (key($0), $1.name) > (key($1), $0.name) }
    }

    func spans(_ request: Request) async throws -> SpanSearchResult {
        let params = FormParameters(query: request.uri.query)
        let query = SpanSearchQuery(
            filter: try APIParameters.filter(params.get("q")),
            fromMicros: try params.get("from").map { try APIParameters.instant($0, name: "from") },
            toMicros: try params.get("to").map { try APIParameters.instant($0, name: "to") },
            limit: try APIParameters.limit(params.get("limit"), fallback: 100, max: 1000))
        return SpanSearchResult(data: try await traces.searchSpans(query).map { view($0) })
    }

    /// A span as the API shows it, marked slow by the slow-operation thresholds log lines are
    /// flagged by (`telemetry.slow`): its duration; the database calls or documents scanned it
    /// records (`dbCalls`, `db_calls`, `docsScanned`); or, for a transaction, more database spans
    /// inside it than `db_calls` (`databaseSpans`, counted over its trace: an N+1 query).
    public func view(_ s: Span, databaseSpans: Int = 0) -> SpanView {
        let attributes = JSONValue.object(text: s.attributesJSON)
        func number(_ keys: [String]) -> Double {
            for key in keys {
                switch attributes[key] {
                case .integer(let n)?: return Double(n)
                case .number(let n)?: return n
                default: continue
                }
            }
            return 0
        }
        let isSlow = Double(s.durationMicros) > slow.durationMilliseconds * 1000 || Double(databaseSpans) > slow.dbCalls
            || number(["dbCalls", "db_calls"]) > slow.dbCalls || number(["docsScanned", "docs_scanned"]) > slow.docsScanned
        return SpanView(traceID: s.traceID, spanID: s.spanID, parentSpanID: s.parentSpanID, project: s.project, source: s.source.rawValue,
                        service: s.service, name: s.name, op: s.op, transaction: s.transaction, isTransaction: s.isTransaction,
                        timestamp: TimeExpressions.format(micros: s.startMicros), durationMilliseconds: Double(s.durationMicros) / 1000,
                        status: s.status, error: s.isError, slow: isSlow,
                        environment: s.environment, release: s.release, correlationID: s.correlationID, attributes: attributes)
    }

    /// For each transaction in a tree-ordered trace (by its index), the database spans (`op`
    /// `db…`) under it and not under a transaction nested inside it.
    static func databaseSpansPerTransaction(_ placed: [(depth: Int, span: Span)]) -> [Int: Int] {
        var counts: [Int: Int] = [:]
        var open: [(depth: Int, index: Int)] = []  // the transactions enclosing the current span
        for (index, entry) in placed.enumerated() {
            while let last = open.last, last.depth >= entry.depth { open.removeLast() }
            if let owner = open.last, entry.span.op?.lowercased().hasPrefix("db") == true { counts[owner.index, default: 0] += 1 }
            if entry.span.isTransaction { open.append((entry.depth, index)) }
        }
        return counts
    }
}
