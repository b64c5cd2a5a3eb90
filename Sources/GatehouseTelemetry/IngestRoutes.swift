import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseHTTP
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Where telemetry comes in: `POST /api/v1/logs` (JSON, arrays, NDJSON) and Sentry's
/// `/api/<project>/envelope/` and `/api/<project>/store/`.
public struct IngestRoutes: Sendable {
    let settings: TelemetrySettings
    /// Queue lines and events for the store without waiting on it; each returns how many it took.
    let acceptLogs: @Sendable ([LogRecord]) -> Int
    let acceptEvents: @Sendable ([ErrorEvent]) -> Int
    /// Queues the spans of Sentry transactions (a transaction and its spans at once).
    let acceptSpans: @Sendable ([Span]) -> Int
    /// Waits (up to the timeout) until this many more log lines fit in the queue.
    let waitForLogRoom: @Sendable (Int, Duration) async -> Bool
    let quota = IngestQuota()
    let parser: LogIngest

    public init(settings: TelemetrySettings, acceptLogs: @escaping @Sendable ([LogRecord]) -> Int,
                acceptEvents: @escaping @Sendable ([ErrorEvent]) -> Int,
                waitForLogRoom: @escaping @Sendable (Int, Duration) async -> Bool = { _, _ in true },
                acceptSpans: @escaping @Sendable ([Span]) -> Int = { _ in 0 }) {
        self.settings = settings
        self.acceptSpans = acceptSpans
        self.waitForLogRoom = waitForLogRoom
        self.acceptLogs = acceptLogs
        self.acceptEvents = acceptEvents
        self.parser = LogIngest(limits: settings.limits, slow: settings.slow)
    }

    /// True when no project is configured: anything may send, filed under the project named in the request.
    public var isOpen: Bool { settings.projects.isEmpty }

    public func addRoutes(to api: APIRouter) {
        api.open.post("/api/v1/logs") { request, _ in await self.ingestLogs(request) }
        api.open.post("/v1/logs") { request, _ in await self.ingestOTLP(request) }
        api.open.post("/v1/traces") { request, _ in await self.ingestOTLPTraces(request) }
        api.open.post("/api/{project}/envelope") { request, context in
            await self.sentry(request, projectID: context.parameters.get("project") ?? "", envelope: true)
        }
        api.open.post("/api/{project}/store") { request, context in
            await self.sentry(request, projectID: context.parameters.get("project") ?? "", envelope: false)
        }
    }

    // MARK: - Logs

    /// The project a log request belongs to, from its ingest key (open mode: `X-Gatehouse-Project`, else `default`).
    func logProject(_ request: Request) throws(ResponseFailure) -> String {
        if isOpen { return request.headers[HTTPField.Name("X-Gatehouse-Project")!] ?? "default" }
        let key = request.headers[.authorization].flatMap(BearerToken.token)
            ?? request.headers[HTTPField.Name("X-Gatehouse-Ingest-Key")!] ?? request.uri.queryParameters.get("key").map { String($0) }
        guard let key, let project = settings.project(forKey: key) else {
            throw ResponseFailure(Self.error(.unauthorized, "Send the project's ingest key as `Authorization: Bearer <key>`.", code: "invalid_ingest_key"))
        }
        return project.name
    }

    /// What every log request needs first: its project, its decoded body, and room in the queue.
    func logRequest(_ request: Request) async throws(ResponseFailure) -> (project: String, body: [UInt8]) {
        let project = try logProject(request)
        let body = try await Self.body(request, limit: settings.limits.maxBodyBytes)
        try await backpressure()
        return (project, body)
    }

    func ingestLogs(_ request: Request) async -> Response {
        let project: String, body: [UInt8]
        do { (project, body) = try await logRequest(request) } catch { return error.response }
        let parsed: LogIngest.Result
        do {
            let parser = self.parser, received = TimeExpressions.nowMicros()
            parsed = try await IngestWork.run { () throws(LogIngest.BodyError) -> LogIngest.Result in
                try parser.parse(body, project: project, receivedMicros: received)
            }
        } catch {
            return Self.error(error == .tooManyLines(limit: settings.limits.maxLinesPerRequest) ? .contentTooLarge : .badRequest,
                              error.description, code: "invalid_body")
        }
        let (taken, rejections) = accept(parsed, project: project)
        let result = LogIngestResult(accepted: taken, rejected: rejections.prefix(LogIngestResult.maxListed).map { LogRejection(index: $0.index, reason: $0.reason) },
                                     rejectedCount: rejections.count)
        let status: HTTPResponse.Status = taken > 0 || rejections.isEmpty ? .ok : (taken < parsed.lines.count ? .serviceUnavailable : .badRequest)
        var response = JSONResponse.make(result, status: status)
        if status == .serviceUnavailable { response.headers[HTTPField.Name("Retry-After")!] = "1" }
        return response
    }

    /// OTLP/HTTP logs, protobuf or JSON.
    func ingestOTLP(_ request: Request) async -> Response {
        let project: String, body: [UInt8]
        do { (project, body) = try await logRequest(request) } catch { return error.response }
        let decoded: OTLPLogs.Decoded
        do {
            let parser = self.parser, contentType = request.headers[.contentType], received = TimeExpressions.nowMicros()
            decoded = try await IngestWork.run { () throws(OTLPLogs.Failure) -> OTLPLogs.Decoded in
                try OTLPLogs.decode(body, contentType: contentType, parser: parser, project: project, receivedMicros: received)
            }
        } catch {
            return Self.error(.badRequest, error.description, code: "invalid_body")
        }
        let (taken, rejections) = accept(decoded.result, project: project)
        if taken == 0 && !decoded.result.lines.isEmpty {
            var response = Self.error(.serviceUnavailable, "the ingest queue is full; send the batch again", code: "ingest_queue_full")
            response.headers[HTTPField.Name("Retry-After")!] = "1"
            return response
        }
        let message = rejections.prefix(5).map { "record \($0.index): \($0.reason)" }.joined(separator: "; ")
        if decoded.json {
            return JSONResponse.make(OTLPLogsExportResponse(
                partialSuccess: rejections.isEmpty ? nil : .init(rejected: Int64(rejections.count), errorMessage: message)))
        }
        let bytes = OTLPLogs.response(rejected: rejections.count, message: message, json: false)
        return Response(status: .ok, headers: [.contentType: "application/x-protobuf"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// Holds a request (up to 10 s) until the queue has room for a whole body's lines; then 503.
    func backpressure() async throws(ResponseFailure) {
        guard await waitForLogRoom(settings.limits.maxLinesPerRequest, .seconds(10)) else {
            var response = Self.error(.serviceUnavailable, "the ingest queue is full; send the batch again", code: "ingest_queue_full")
            response.headers[HTTPField.Name("Retry-After")!] = "1"
            throw ResponseFailure(response)
        }
    }

    /// Queues the parsed lines; returns how many were taken and every rejection, in index order.
    func accept(_ parsed: LogIngest.Result, project: String) -> (Int, [LogIngest.Rejection]) {
        var rejections = parsed.rejections
        let taken = acceptLogs(parsed.lines)
        if taken < parsed.lines.count {
            // The queue is full: say exactly which lines to send again.
            let rejectedIndexes = Set(rejections.map(\.index))
            var index = 0, position = 0
            while position < parsed.lines.count {
                if !rejectedIndexes.contains(index) {
                    if position >= taken { rejections.append(.init(index: index, reason: "the ingest queue is full; send this line again")) }
                    position += 1
                }
                index += 1
            }
        }
        TelemetryMetrics.logsIngested(project, taken)
        TelemetryMetrics.logsRejected(project, rejections.count)
        return (taken, rejections.sorted { $0.index < $1.index })
    }

    // MARK: - Sentry

    func sentry(_ request: Request, projectID: String, envelope: Bool) async -> Response {
        let body: [UInt8]
        do { body = try await Self.body(request, limit: settings.limits.maxEventBytes * 4, sentry: true) } catch { return error.response }
        var items: [(type: String, payload: ArraySlice<UInt8>)] = []
        var envelopeDSN: String?
        var envelopeEventID: String?
        if envelope {
            do {
                // Parsing, like reading the events below, runs off the event loops (`IngestWork`).
                (items, envelopeDSN, envelopeEventID) = try await IngestWork.run {
                    () throws(SentryEnvelope.ParseError) -> ([(type: String, payload: ArraySlice<UInt8>)], String?, String?) in
                    let parsed = try SentryEnvelope.parse(body)
                    // Sessions, attachments, client reports…: neither errors nor traces, skipped.
                    return (parsed.items.filter { $0.type == "event" || $0.type == "transaction" }.map { ($0.type, $0.payload) },
                            parsed.header["dsn"] as? String, parsed.header["event_id"] as? String)
                }
            } catch {
                return Self.sentryError(.badRequest, "invalid envelope: \(error)")
            }
        } else {
            items = [("event", body[...])]
        }
        let key = request.headers[HTTPField.Name("X-Sentry-Auth")!].flatMap(SentryAuth.key(fromHeader:))
            ?? request.headers[.authorization].flatMap(SentryAuth.key(fromHeader:))
            ?? request.uri.queryParameters.get("sentry_key").map { String($0) }
            ?? envelopeDSN.flatMap { SentryAuth.parse(dsn: $0)?.key }
        let projectName: String
        var configured: TelemetryProject?
        if isOpen {
            guard !projectID.isEmpty, projectID.count <= 64, projectID.allSatisfy({ $0.isNumber || $0.isLetter || $0 == "-" || $0 == "_" }) else {
                return Self.sentryError(.badRequest, "the project id in the URL must be letters, digits, '-' or '_'")
            }
            projectName = projectID
        } else {
            guard let project = settings.project(id: projectID) else { return Self.sentryError(.notFound, "unknown project \(projectID)") }
            guard let key else {
                return Self.sentryError(.unauthorized, "missing authentication: send X-Sentry-Auth with sentry_key (the DSN's public key)")
            }
            guard ConstantTime.equal(key, project.key) else { return Self.sentryError(.unauthorized, "invalid sentry_key for project \(projectID)") }
            projectName = project.name
            configured = project
        }
        if let configured, !items.isEmpty, let retryAfter = quota.take(items.count, project: configured) {
            TelemetryMetrics.rateLimited(projectName)
            var response = Self.sentryError(.tooManyRequests, "project \(projectName) is over its quota of \(configured.eventsPerMinute) events per minute")
            response.headers[HTTPField.Name("Retry-After")!] = String(retryAfter)
            response.headers[HTTPField.Name("X-Sentry-Rate-Limits")!] = "\(retryAfter)::project"
            return response
        }
        let now = TimeExpressions.nowMicros()
        let events: [ErrorEvent], spans: [Span]
        do {
            // Reading, grouping and masking a big event takes a while: off the event loops.
            let payloads = items, maxEventBytes = settings.limits.maxEventBytes
            (events, spans) = try await IngestWork.run { () throws(ResponseFailure) -> ([ErrorEvent], [Span]) in
                var events: [ErrorEvent] = [], spans: [Span] = []
                var invalidTransaction: String?
                for (type, payload) in payloads {
                    guard payload.count <= maxEventBytes else {
                        throw ResponseFailure(Self.sentryError(.contentTooLarge, "an \(type == "event" ? "event" : "transaction") is larger than \(maxEventBytes) bytes"))
                    }
                    if type == "transaction" {
                        // A malformed transaction is dropped, as Relay drops it, so the error events
                        // beside it are kept; an envelope with nothing else is refused (below).
                        do throws(SentryTransactionReader.Invalid) {
                            spans += try SentryTransactionReader.read(payload, project: projectName, receivedMicros: now)
                        } catch {
                            invalidTransaction = invalidTransaction ?? error.description
                        }
                        continue
                    }
                    do throws(SentryEventReader.Invalid) {
                        events.append(try SentryEventReader.read(payload, project: projectName, receivedMicros: now))
                    } catch {
                        throw ResponseFailure(Self.sentryError(.badRequest, error.description))
                    }
                }
                if let invalidTransaction, events.isEmpty, spans.isEmpty {
                    throw ResponseFailure(Self.sentryError(.badRequest, "invalid transaction: \(invalidTransaction)"))
                }
                return (events, spans)
            }
        } catch {
            return error.response
        }
        if !events.isEmpty {
            guard acceptEvents(events) == events.count else {
                var response = Self.sentryError(.serviceUnavailable, "the ingest queue is full; send the event again")
                response.headers[HTTPField.Name("Retry-After")!] = "1"
                return response
            }
            TelemetryMetrics.errorEvents(projectName, events.count)
        }
        // Events first: sent again after a 503, each event and span is stored once (their ids).
        if !spans.isEmpty, acceptSpans(spans) != spans.count {
            var response = Self.sentryError(.serviceUnavailable, "the ingest queue is full; send the transaction again")
            response.headers[HTTPField.Name("Retry-After")!] = "1"
            return response
        }
        TelemetryMetrics.sentryTransactions(projectName, spans.filter(\.isTransaction).count)
        let id = events.first?.eventID ?? envelopeEventID ?? ""
        return JSONResponse.make(SentryIngestAnswer(id: id))
    }

    // MARK: - Helpers

    /// Collects the body (compressed size capped too) and decodes its `Content-Encoding`.
    static func body(_ request: Request, limit: Int, sentry: Bool = false) async throws(ResponseFailure) -> [UInt8] {
        let raw: ByteBuffer
        do {
            raw = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            let message = "the body is larger than \(limit) bytes"
            throw ResponseFailure(sentry ? sentryError(.contentTooLarge, message) : Self.error(.contentTooLarge, message, code: "request_too_large"))
        } catch {
            // The HTTP parser gave up mid-body: an unknown Transfer-Encoding, a bad chunk size.
            let message = "the request body could not be read: its framing is malformed (Transfer-Encoding, chunk sizes or Content-Length)"
            throw ResponseFailure(sentry ? sentryError(.badRequest, message) : Self.error(.badRequest, message, code: "invalid_body"))
        }
        let bytes = Array(raw.readableBytesView), encoding = request.headers[.contentEncoding]
        do {
            return try await IngestWork.run { () throws(Decompression.Failure) -> [UInt8] in
                try Decompression.decode(bytes, encoding: encoding, limit: limit)
            }
        } catch {
            let status: HTTPResponse.Status = switch error {
            case .tooLarge: .contentTooLarge
            case .unsupported: .unsupportedMediaType
            case .corrupt: .badRequest
            }
            throw ResponseFailure(sentry ? sentryError(status, error.description) : Self.error(status, error.description, code: "invalid_encoding"))
        }
    }

    struct ResponseFailure: Error {
        var response: Response
        init(_ response: Response) { self.response = response }
    }

    static func error(_ status: HTTPResponse.Status, _ message: String, code: String) -> Response {
        GatewayError(status: status, message: message, type: status.code == 401 ? "authentication_error" : "invalid_request_error", code: code)
            .response(dialect: .openAI)
    }

    /// Sentry's relay answers errors as `{"detail": "…"}`.
    static func sentryError(_ status: HTTPResponse.Status, _ message: String) -> Response {
        JSONResponse.make(SentryErrorBody(detail: message), status: status)
    }
}
