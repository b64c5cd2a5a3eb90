import Foundation
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
        api.team.get("/api/v1/correlation/{id}") { _, context in await self.answer { try await self.correlation(context.parameters.get("id") ?? "") } }
        api.team.get("/api/v1/storage") { _, _ in await self.answer { try await self.storage() } }
    }

    func answer(_ body: () async throws -> Response) async -> Response { await APIAnswer.run(body) }

    func logs(_ request: Request) async throws -> Response {
        let params = FormParameters(query: request.uri.query)
        let query = LogListQuery(
            filter: try APIParameters.filter(params.get("q")),
            fromMicros: try params.get("from").map { try APIParameters.instant($0, name: "from") },
            toMicros: try params.get("to").map { try APIParameters.instant($0, name: "to") },
            limit: try APIParameters.limit(params.get("limit"), fallback: 100, max: 1000), cursor: params.get("cursor"))
        let page = try await store.logs(query)
        return JSONResponse.make(["data": page.lines.map(TelemetryJSON.log), "next_cursor": page.nextCursor as Any? ?? NSNull(),
                                  "has_more": page.nextCursor != nil])
    }

    /// Server-sent events: `event: log` with one line as JSON, for every new line that matches
    /// `q`, from the moment of connecting (or the last `seq` the client saw, `Last-Event-ID`).
    func tail(_ request: Request, connection: any Channel) async throws -> Response {
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
                try await Self.stream(into: &writer, store: store, filter: filter, start: start, interval: interval)
            } onGracefulShutdown: {
                connection.close(promise: nil)
            }
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    /// The tail's loop: new lines as SSE events, keep-alives while quiet, until shutdown.
    private static func stream(into writer: inout any ResponseBodyWriter, store: any TelemetryStore, filter: QueryNode?, start: Int64,
                               interval: Duration) async throws {
        var last = start
        // On PostgreSQL a seq is taken at insert but seen at commit, so two instances' batches
        // can appear out of order: each poll looks back this far and skips what it sent.
        let lookback: Int64 = 5_000  // one recorder batch
        var sent = Set<Int64>()
        var idle = Duration.zero
        try await writer.write(ByteBuffer(string: ": tailing from seq \(start)\n\n"))
        // A tail never ends by itself: graceful shutdown must end it, or the server would wait on it.
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            // The window holds at most `lookback` old rows, so the limit always leaves room for 500 new ones.
            let lines = try await store.logs(after: max(start, last - lookback), filter: filter, limit: Int(lookback) + 500)
                .filter { !sent.contains($0.sequence ?? 0) }.prefix(500)
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
                let data = (try? JSONSerialization.data(withJSONObject: TelemetryJSON.log(line), options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
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
        var filter = try APIParameters.filter(params.get("q"))
        if let status = params.get("status") {
            guard IssueStatus(rawValue: status) != nil else {
                throw GatewayError.invalidRequest("`status` must be one of \(IssueStatus.allCases.map(\.rawValue).joined(separator: ", "))", param: "status")
            }
            let condition = QueryNode.field("status", .equals(.text(status)))
            filter = filter.map { .and([$0, condition]) } ?? condition
        }
        let issues = try await store.issues(IssueListQuery(filter: filter, limit: try APIParameters.limit(params.get("limit"), fallback: 100, max: 1000)))
        return JSONResponse.make(["data": issues.map(TelemetryJSON.issue)])
    }

    func issue(_ id: String) async throws -> Response {
        guard let issue = try await store.issue(id: id) else { throw GatewayError.notFound("no issue with id \(id)") }
        var object = TelemetryJSON.issue(issue)
        object["events"] = try await store.events(issueID: id, limit: 10).map { TelemetryJSON.event($0, withDocument: true) }
        return JSONResponse.make(object)
    }

    /// `{"status": "resolved" | "unresolved" | "ignored"}`.
    func updateIssue(_ request: Request, id: String) async throws -> Response {
        let body = try await request.body.collect(upTo: 64 * 1024)
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
              let text = object["status"] as? String, let status = IssueStatus(rawValue: text) else {
            throw GatewayError.invalidRequest("send {\"status\": \"resolved\" | \"unresolved\" | \"ignored\"}", param: "status")
        }
        guard try await store.setIssueStatus(id: id, status: status) else { throw GatewayError.notFound("no issue with id \(id)") }
        return try await issue(id)
    }

    /// Every log line, error event and AI call that carries one correlation id, oldest first.
    func correlation(_ id: String) async throws -> Response {
        guard !id.isEmpty, id.count <= 256 else { throw GatewayError.invalidRequest("the correlation id must be 1 to 256 characters") }
        let limit = 1000
        async let logs = store.logs(correlationID: id, limit: limit)
        async let errors = store.errorEvents(correlationID: id, limit: limit)
        async let calls = requests.requests(RequestListQuery(filter: RequestFilter(correlationID: id), limit: limit))
        var timeline: [(Int64, [String: Any])] = []
        for line in try await logs {
            var o = TelemetryJSON.log(line)
            o["kind"] = "log"
            timeline.append((line.timestampMicros, o))
        }
        for event in try await errors {
            var o = TelemetryJSON.event(event, withDocument: false)
            o["kind"] = "error"
            timeline.append((event.timestampMicros, o))
        }
        for call in try await calls.records {
            timeline.append((call.timestampMicros, [
                "kind": "ai_request", "id": call.id, "timestamp": TimeExpressions.format(micros: call.timestampMicros), "route": call.route.rawValue,
                "provider": call.provider, "model": call.model, "status": call.status, "latency_ms": Double(call.latencyMicros) / 1000,
                "input_tokens": call.usage.inputTokens, "output_tokens": call.usage.outputTokens, "cost_usd": call.cost.dollarString,
                "error_class": call.errorClass?.rawValue as Any? ?? NSNull(),
            ]))
        }
        timeline.sort { $0.0 < $1.0 }
        return JSONResponse.make(["correlation_id": id, "timeline": timeline.map(\.1)])
    }

    func storage() async throws -> Response {
        let uses = try await store.storageUse()
        return JSONResponse.make(["kinds": uses.map { use -> [String: Any] in
            [
                "kind": use.kind.rawValue, "rows": use.rows, "approximate_bytes": use.approximateBytes,
                "oldest": use.oldestMicros.map { TimeExpressions.format(micros: $0) } as Any? ?? NSNull(),
                "retention_days": retention.days[use.kind] ?? 0, "max_rows": retention.maxRows[use.kind] ?? 0,
            ]
        }])
    }
}
