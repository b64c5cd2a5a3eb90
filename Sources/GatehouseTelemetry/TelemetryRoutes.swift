import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseHTTP
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle

/// The read side of telemetry: log search and live tail, issues, one request's whole story by
/// correlation id, and what each kind of data takes in the store.
public struct TelemetryRoutes: Sendable {
    let store: any TelemetryStore
    let requests: any RequestStore
    let retention: Retention
    /// How often a live tail asks the store for new lines.
    let tailPollInterval: Duration

    public init(store: any TelemetryStore, requests: any RequestStore, retention: Retention, tailPollInterval: Duration = .milliseconds(250)) {
        self.store = store
        self.requests = requests
        self.retention = retention
        self.tailPollInterval = tailPollInterval
    }

    public func addRoutes(to api: APIRouter) {
        api.team.get("/api/v1/logs") { request, _ in await self.answer { try await self.logs(request) } }
        api.team.get("/api/v1/logs/tail") { request, context in await self.answer { try await self.tail(request, connection: context.connection) } }
        api.team.get("/api/v1/issues") { request, _ in await self.answer { try await self.issues(request) } }
        api.team.get("/api/v1/issues/{id}") { _, context in await self.answer { try await self.issue(context.parameters.get("id") ?? "") } }
        api.team.patch("/api/v1/issues/{id}") { request, context in
            await self.answer { try await self.updateIssue(request, id: context.parameters.get("id") ?? "") }
        }
        api.team.post("/api/v1/issues/{id}/merge") { request, context in
            await self.answer { try await self.mergeIssues(request, into: context.parameters.get("id") ?? "") }
        }
        api.team.get("/api/v1/issues/{id}/events/{event_id}") { _, context in
            await self.answer { try await self.issueEvent(context.parameters.get("id") ?? "", eventID: context.parameters.get("event_id") ?? "") }
        }
        api.team.get("/api/v1/correlation/{id}") { _, context in await self.answer { try await self.correlation(context.parameters.get("id") ?? "") } }
        api.team.get("/api/v1/storage") { _, _ in await self.answer { try await self.storage() } }
    }

    func answer(_ body: () async throws -> Response) async -> Response { await APIAnswer.run(body) }

    func logs(_ request: Request) async throws -> Response {
        let params = FormParameters(query: request.uri.query)
        if let groups = try await aggregation(.logs, params) { return groups }
        let query = LogListQuery(
            filter: try APIParameters.filter(params.get("q")),
            fromMicros: try params.get("from").map { try APIParameters.instant($0, name: "from") },
            toMicros: try params.get("to").map { try APIParameters.instant($0, name: "to") },
            limit: try APIParameters.limit(params.get("limit"), fallback: 100, max: 1000), cursor: params.get("cursor"))
        let page = try await store.logs(query)
        return JSONResponse.make(LogSearchPage(data: page.lines.map(LogLine.init), nextCursor: page.nextCursor))
    }

    /// Server-sent events: `event: log` with one line as JSON, for every new line that matches
    /// `q`, from the moment of connecting (or the last `seq` the client saw, `Last-Event-ID`).
    /// Public for the console's live tail, which streams the same events to a signed-in browser.
    /// `stillAllowed` (the console's session check) is asked before each batch of lines and every
    /// couple of seconds while quiet; the stream ends once it says no. The API checks its token per
    /// request and passes none.
    public func tail(_ request: Request, connection: any Channel, stillAllowed: (@Sendable () async -> Bool)? = nil) async throws -> Response {
        let params = FormParameters(query: request.uri.query)
        let filter = try APIParameters.filter(params.get("q"))
        // Compile once up front, so a query naming a bad field fails with 400, not mid-stream.
        _ = try await store.logs(after: Int64.max - 1, filter: filter, limit: 1)
        let latest = try await store.latestLogSequence()
        let start = request.headers[HTTPField.Name("Last-Event-ID")!].flatMap(Int64.init).map { min(latest, $0) } ?? latest
        let store = self.store, interval = tailPollInterval
        let body = ResponseBody { writer in
            // A client that stopped reading holds the write below forever: at shutdown its
            // connection is closed, which fails that write, so the server is not kept waiting.
            try await withGracefulShutdownHandler {
                try await Self.stream(into: &writer, store: store, filter: filter, start: start, interval: interval, stillAllowed: stillAllowed)
            } onGracefulShutdown: {
                connection.close(promise: nil)
            }
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    /// How long a quiet tail goes without asking `stillAllowed`.
    static let permissionCheckInterval = Duration.seconds(2)

    /// The tail's loop: new lines as SSE events, keep-alives while quiet, until shutdown or until
    /// `stillAllowed` says no.
    private static func stream(into writer: inout any ResponseBodyWriter, store: any TelemetryStore, filter: QueryNode?, start: Int64,
                               interval: Duration, stillAllowed: (@Sendable () async -> Bool)?) async throws {
        var last = start
        // On PostgreSQL a seq is taken at insert but seen at commit, so two instances' batches
        // can appear out of order: each poll looks back this far and skips what it sent.
        let lookback: Int64 = 5_000  // one recorder batch
        var sent = Set<Int64>()
        var idle = Duration.zero
        var lastPermissionCheck = ContinuousClock.now
        try await writer.write(ByteBuffer(string: ": tailing from seq \(start)\n\n"))
        // Unless `stillAllowed` says no, a tail never ends by itself: graceful shutdown must end it, or the server would wait on it.
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            // The window holds at most `lookback` old rows, so the limit always leaves room for 500 new ones.
            let lines = try await store.logs(after: max(start, last - lookback), filter: filter, limit: Int(lookback) + 500)
                .filter { !sent.contains($0.sequence ?? 0) }.prefix(500)
            // Asked before any line goes out, so a revoked session never gets one more; while
            // quiet, now and then, so its stream does not stay open.
            if let stillAllowed, !lines.isEmpty || ContinuousClock.now - lastPermissionCheck >= permissionCheckInterval {
                guard await stillAllowed() else { break }
                lastPermissionCheck = .now
            }
            if lines.isEmpty {
                do { try await Task.sleep(for: interval) } catch { break }  // cancelled: the client left
                idle += interval
                if idle >= .seconds(15) {
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))  // proxies close silent streams
                    idle = .zero
                }
                continue
            }
            idle = .zero
            var text = ""
            for line in lines {
                let data = (try? APIJSON.encode(LogLine(line))) ?? Data()
                text += "id: \(line.sequence ?? 0)\nevent: log\ndata: \(String(decoding: data, as: UTF8.self))\n\n"
                last = max(last, line.sequence ?? last)
                sent.insert(line.sequence ?? 0)
            }
            if sent.count > 4 * Int(lookback) { sent = sent.filter { $0 > last - lookback } }
            try await writer.write(ByteBuffer(string: text))
        }
        try await writer.finish(nil)
    }

    func issues(_ request: Request) async throws -> Response {
        let params = FormParameters(query: request.uri.query)
        if let groups = try await aggregation(.errorEvents, params) { return groups }
        var filter = try APIParameters.filter(params.get("q"))
        if let status = params.get("status") {
            guard IssueStatus(rawValue: status) != nil else {
                throw GatewayError.invalidRequest("`status` must be one of \(IssueStatus.allCases.map(\.rawValue).joined(separator: ", "))", param: "status")
            }
            let condition = QueryNode.field("status", .equals(.text(status)))
            filter = filter.map { .and([$0, condition]) } ?? condition
        }
        let issues = try await store.issues(IssueListQuery(filter: filter, limit: try APIParameters.limit(params.get("limit"), fallback: 100, max: 1000)))
        return JSONResponse.make(IssueList(data: issues.map(IssueView.init)))
    }

    func issue(_ id: String) async throws -> Response {
        guard let issue = try await store.issue(id: id) else {
            // A merged issue's id leads to the issue it was merged into, as Sentry's do.
            if let target = try await store.mergedIssue(id: id) {
                var moved = JSONResponse.make(IssueMoved(mergedInto: target), status: .movedPermanently)
                moved.headers[.location] = "/api/v1/issues/" + PathSegment.encode(target)
                return moved
            }
            throw GatewayError.notFound("no issue with id \(id)")
        }
        let events = try await store.events(issueID: id, limit: 10).map { ErrorEventView($0, withDocument: true) }
        return JSONResponse.make(IssueDetail(issue: IssueView(issue), events: events))
    }

    /// `{"status": "resolved" | "unresolved" | "ignored"}` (`IssueUpdate`), an ignore with
    /// `ignore_until_count` and/or `ignore_until`.
    func updateIssue(_ request: Request, id: String) async throws -> Response {
        let body = try await JSONBody.collect(request, limit: 64 * 1024)
        guard let update = try? APIJSON.decode(IssueUpdate.self, from: body) else {
            throw GatewayError.invalidRequest("send {\"status\": \"resolved\" | \"unresolved\" | \"ignored\"}, with \"ignore_until_count\": N "
                                              + "or \"ignore_until\": \"RFC 3339 time\" for an ignore that ends", param: "status")
        }
        var change = IssueStatusChange(status: IssueStatus(update.status))
        if update.ignoreUntilCount != nil || update.ignoreUntil != nil {
            guard update.status == .ignored else {
                throw GatewayError.invalidRequest("`ignore_until_count` and `ignore_until` go with \"status\": \"ignored\"", param: "status")
            }
        }
        if let count = update.ignoreUntilCount {
            guard (1...Self.maxIgnoreCount).contains(count) else {
                throw GatewayError.invalidRequest("`ignore_until_count` is 1 to \(Self.maxIgnoreCount) more events", param: "ignore_until_count")
            }
            change.ignoreUntilCount = count
        }
        if let until = update.ignoreUntil {
            // `+24h`: that long from now.
            let ahead = until.hasPrefix("+") ? TimeExpressions.durationMicros(String(until.dropFirst())).map { TimeExpressions.nowMicros().addingSaturated($0) } : nil
            guard let micros = ahead ?? TimeExpressions.rfc3339Micros(until), micros <= TimeExpressions.lastInstantMicros else {
                throw GatewayError.invalidRequest("`ignore_until` is an RFC 3339 time such as 2026-12-01T09:00:00Z, or +24h (from now)", param: "ignore_until")
            }
            change.ignoreUntilMicros = micros
        }
        guard try await store.updateIssueStatus(id: id, to: change) else { throw GatewayError.notFound("no issue with id \(id)") }
        return try await issue(id)
    }

    static let maxIgnoreCount: Int64 = 1_000_000_000

    /// `{"issues": [ids]}` (`IssueMergeRequest`): those issues merged into the one in the path
    /// (`TelemetryStore.mergeIssues`); answers the merged issue as `GET` does.
    func mergeIssues(_ request: Request, into id: String) async throws -> Response {
        let body = try await JSONBody.collect(request, limit: 64 * 1024)
        guard let merge = try? APIJSON.decode(IssueMergeRequest.self, from: body) else {
            throw GatewayError.invalidRequest("send {\"issues\": [\"id\", …]}: the issues to merge into \(id)", param: "issues")
        }
        guard merge.issues.count <= IssueMergeError.maxSources, merge.issues.allSatisfy({ !$0.isEmpty && $0.count <= 256 }) else {
            throw GatewayError.invalidRequest("`issues` holds 1 to \(IssueMergeError.maxSources) issue ids of 1 to 256 characters", param: "issues")
        }
        do {
            _ = try await store.mergeIssues(into: id, from: merge.issues)
        } catch let error as IssueMergeError {
            if case .noTarget = error { throw GatewayError.notFound(error.description) }
            throw GatewayError.invalidRequest(error.description, param: "issues")
        }
        return try await issue(id)
    }

    /// One event of an issue (`latest`: its newest) with the ids of its neighbours in time.
    func issueEvent(_ id: String, eventID: String) async throws -> Response {
        guard eventID.count <= 256 else { throw GatewayError.invalidRequest("the event id is at most 256 characters", param: "event_id") }
        guard let position = try await store.issueEvent(issueID: id, eventID: eventID == "latest" ? nil : eventID) else {
            throw GatewayError.notFound(eventID == "latest" ? "no issue with id \(id), or it has no stored events" : "issue \(id) has no event \(eventID)")
        }
        return JSONResponse.make(IssueEventPage(event: ErrorEventView(position.event, withDocument: true),
                                                newerEventID: position.newerEventID, olderEventID: position.olderEventID))
    }

    func correlation(_ id: String) async throws -> Response {
        JSONResponse.make(try await correlationTimeline(id))
    }

    /// Every log line, error event and AI call that carries one correlation id, oldest first.
    /// Public for the console's correlation page, which shows the same timeline.
    public func correlationTimeline(_ id: String) async throws -> CorrelationTimeline {
        guard !id.isEmpty, id.count <= 256 else { throw GatewayError.invalidRequest("the correlation id must be 1 to 256 characters") }
        let limit = 1000
        async let logs = store.logs(correlationID: id, limit: limit)
        async let errors = store.errorEvents(correlationID: id, limit: limit)
        async let calls = requests.requests(RequestListQuery(filter: RequestFilter(correlationID: id), limit: limit))
        async let traces = traceIDs(correlationID: id)
        var timeline: [(Int64, CorrelationEntry)] = []
        for line in try await logs { timeline.append((line.timestampMicros, .log(LogLine(line)))) }
        for event in try await errors { timeline.append((event.timestampMicros, .error(ErrorEventView(event, withDocument: false)))) }
        for call in try await calls.records { timeline.append((call.timestampMicros, .aiRequest(CorrelatedAIRequest(call)))) }
        timeline.sort { $0.0 < $1.0 }
        return CorrelationTimeline(correlationID: id, timeline: timeline.map(\.1), traceIDs: try await traces)
    }

    /// The traces of the spans that carry `id` (as trace id or correlation id), most spans first.
    func traceIDs(correlationID id: String) async throws -> [String] {
        let carries = QueryNode.or([.field("trace_id", .equals(.text(id))), .field("correlation_id", .equals(.text(id)))])
        // Spans are kept for at most the retention; a correlation id is looked up over all of it.
        let query = AggregationQuery(aggregation: Aggregation(function: .count, groupBy: [.field("trace_id")]), filter: carries,
                                     fromMicros: 0, toMicros: Int64.max / 2, limit: 20)
        return try await store.aggregate(.spans, query).groups.compactMap { group in
            if case .text(let trace) = group.key.first?.value { return trace }
            return nil
        }
    }

    func storage() async throws -> Response {
        let uses = try await store.storageUse()
        return JSONResponse.make(StorageReport(kinds: uses.map { use in
            StorageKindUse(kind: StorageKind(use.kind), rows: use.rows, approximateBytes: use.approximateBytes,
                           oldest: use.oldestMicros.map { TimeExpressions.format(micros: $0) },
                           retentionDays: retention.days[use.kind] ?? 0, maxRows: retention.maxRows[use.kind] ?? 0)
        }))
    }
}

// MARK: - Stored records as the API shows them

extension TelemetryLevel {
    init(_ level: LogLevel) {
        switch level {
        case .trace: self = .trace
        case .debug: self = .debug
        case .info: self = .info
        case .warn: self = .warn
        case .error: self = .error
        case .fatal: self = .fatal
        }
    }
}

extension StorageKind {
    init(_ kind: TelemetryKind) {
        switch kind {
        case .requests: self = .requests
        case .logs: self = .logs
        case .errors: self = .errors
        case .bodies: self = .bodies
        case .spans: self = .spans
        }
    }
}

extension IssueStatus {
    init(_ status: IssueTriageStatus) {
        switch status {
        case .unresolved: self = .unresolved
        case .resolved: self = .resolved
        case .ignored: self = .ignored
        }
    }
}

extension IssueTriageStatus {
    init(_ status: IssueStatus) {
        switch status {
        case .unresolved: self = .unresolved
        case .resolved: self = .resolved
        case .ignored: self = .ignored
        }
    }
}

extension LogLine {
    /// Public for the console, which shows lines as the API does.
    public init(_ l: LogRecord) {
        self.init(seq: l.sequence, timestamp: TimeExpressions.format(micros: l.timestampMicros), level: TelemetryLevel(l.level), message: l.message,
                  project: l.project, service: l.service, environment: l.environment, correlationID: l.correlationID, function: l.function,
                  durationMilliseconds: l.durationMicros.map { Double($0) / 1000 }, slow: l.slow, attributes: JSONValue.object(text: l.attributesJSON))
    }
}

extension IssueView {
    init(_ i: ErrorIssue) {
        self.init(id: i.id, project: i.project, title: i.title, type: i.type, culprit: i.culprit, level: TelemetryLevel(i.level),
                  status: IssueTriageStatus(i.status), regressed: i.regressed, count: i.count, users: i.users,
                  firstSeen: TimeExpressions.format(micros: i.firstSeenMicros), lastSeen: TimeExpressions.format(micros: i.lastSeenMicros),
                  lastRelease: i.lastRelease, ignoreUntilCount: i.ignoreUntilCount,
                  ignoreEventsLeft: i.ignoreUntilCount.map { max(0, $0 - (i.count - (i.ignoredAtCount ?? 0))) },
                  ignoreUntil: i.ignoreUntilMicros.map { TimeExpressions.format(micros: $0) }, statusReason: i.statusReason)
    }
}

extension ErrorEventView {
    /// `withDocument`: the whole event too, as an issue's detail shows it.
    init(_ e: ErrorEvent, withDocument: Bool) {
        self.init(eventID: e.eventID, issueID: e.issueID, project: e.project, timestamp: TimeExpressions.format(micros: e.timestampMicros),
                  level: TelemetryLevel(e.level), type: e.type, value: e.value, title: e.title, culprit: e.culprit, release: e.release,
                  environment: e.environment, correlationID: e.correlationID, user: e.userKey,
                  event: withDocument ? JSONValue.object(text: e.documentJSON) : nil)
    }
}

extension CorrelatedAIRequest {
    init(_ call: RequestRecord) {
        self.init(id: call.id, timestamp: TimeExpressions.format(micros: call.timestampMicros), route: call.route.rawValue, provider: call.provider,
                  model: call.model, status: call.status, latencyMilliseconds: Double(call.latencyMicros) / 1000,
                  inputTokens: call.usage.inputTokens, outputTokens: call.usage.outputTokens, costUSD: call.cost.dollarString,
                  errorClass: call.errorClass?.rawValue)
    }
}

extension JSONValue {
    /// A stored JSON object (attributes, an event's document) for an answer; `{}` when the text is
    /// not one, as the API has always shown it.
    static func object(text: String) -> [String: JSONValue] {
        (try? APIJSON.decode([String: JSONValue].self, from: Data(text.utf8))) ?? [:]
    }
}
