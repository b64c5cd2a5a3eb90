import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

let ingestKey = "ingest-key-web-0123456789"
let telemetryConfig = """
    telemetry:
      projects:
        - name: web
          id: "42"
          key: \(ingestKey)
        - name: tiny
          id: "7"
          key: ingest-key-tiny-0123456789
          events_per_minute: 2
    recorder:
      flush_interval_ms: 20
    """

/// What `telemetry_client.py sentry` reports: the compression the SDK chose.
struct SentryClientReport: Decodable {
    var compression: String?
}

/// What `telemetry_client.py otel` reports: whether the exporter flushed.
struct OTelClientReport: Decodable {
    var flushed: Bool
}

/// Runs Tests/Support/telemetry_client.py and decodes its JSON line (for `logging`, the answer
/// of `POST /api/v1/logs`, a `LogIngestResult`).
func telemetryClient<T: Decodable>(_ arguments: [String], as type: T.Type) async throws -> T {
    let script = TestEnvironment.repositoryRoot.appendingPathComponent("Tests/Support/telemetry_client.py").path
    let result = try await ProcessRunner.runAsync(try TestEnvironment.python, [script] + arguments)
    guard result.status == 0, let line = result.output.split(separator: "\n").last(where: { $0.hasPrefix("{") }) else {
        throw ProcessRunner.Failure(message: "telemetry_client \(arguments.first ?? "") failed (\(result.status)):\n\(result.output)")
    }
    return try APIJSON.decode(T.self, from: Data(line.utf8))
}

/// `path` with `items` as its query string, percent-encoded.
func apiPath(_ path: String, _ items: [String: String]) -> String {
    var components = URLComponents()
    components.path = path
    components.queryItems = items.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
    return components.string ?? path
}

/// The log search for `query`, as a request path.
func logsPath(_ query: String, limit: Int? = nil) -> String {
    apiPath("/api/v1/logs", ["q": query].merging(limit.map { ["limit": String($0)] } ?? [:]) { a, _ in a })
}

/// Polls the log search until `accept` holds for its lines; the lines then.
@discardableResult
func pollLogs(_ api: TypedAPI, _ query: String, _ what: String, _ accept: @escaping ([LogLine]) -> Bool) async throws -> [LogLine] {
    try await Poll.until(what) {
        let page = try await api.get(logsPath(query, limit: 1000), as: LogSearchPage.self)
        return accept(page.data) ? page.data : nil
    }
}

/// A Gatehouse answer that is not a `TypedAPI.get` success (an ingest refusal, a Sentry answer), decoded.
func decodeAnswer<T: Decodable>(_ reply: HTTP.Reply, as type: T.Type) throws -> T {
    do {
        return try APIJSON.decode(T.self, from: reply.body)
    } catch {
        throw ProcessRunner.Failure(message: "\(reply.status) \(String(decoding: reply.body.prefix(500), as: UTF8.self)) is no \(T.self): \(error)")
    }
}

/// The elements of a JSON array, empty for anything else.
private func elements(_ value: JSONValue?) -> [JSONValue] {
    if case .array(let items) = value { return items }
    return []
}

private func text(_ value: JSONValue?) -> String? {
    if case .string(let text) = value { return text }
    return nil
}

@Suite(.serialized) struct TelemetryEndToEndTests {
    /// The real sentry-sdk, with and without brotli, reports to Gatehouse as its DSN; errors
    /// group into issues with their stack traces, and a resolved issue that recurs regresses.
    @Test(arguments: Backend.allCases)
    func sentrySDKErrorsBecomeIssues(_ backend: Backend) async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: telemetryConfig, databaseURL: try backend.databaseURL())
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let dsn = "http://\(ingestKey)@127.0.0.1:\(gatehouse.port)/42"
        let withBrotli = try await telemetryClient(["sentry", "--dsn", dsn, "--tag", "correlation_id=corr-sentry-1"], as: SentryClientReport.self)
        let withoutBrotli = try await telemetryClient(["sentry", "--dsn", dsn, "--no-brotli"], as: SentryClientReport.self)
        #expect(withBrotli.compression == "br" && withoutBrotli.compression == "gzip")
        let issues = try await Poll.until("10 events in issues") {
            let list = try await api.get("/api/v1/issues", as: IssueList.self).data
            return list.reduce(0) { $0 + $1.count } == 10 ? list : nil
        }
        let byType = Dictionary(issues.map { ($0.type, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(issues.count == 4, "ValueError, KeyError, RuntimeError and the message: \(issues.map(\.title))")
        #expect(byType["ValueError"]?.count == 4, "User 4821 and User 17 are one issue")
        #expect(byType["KeyError"]?.count == 2 && byType["RuntimeError"]?.count == 2)
        #expect(byType["ValueError"]?.users == 1 && byType["ValueError"]?.lastRelease == "app@1.2.3")
        #expect(byType[""]?.level == .warn && byType[""]?.title.hasPrefix("Nightly export") == true)
        #expect(issues.allSatisfy { $0.status == .unresolved && !$0.regressed && $0.project == "web" })

        let id = try #require(byType["RuntimeError"]?.id)
        let detail = try await api.get("/api/v1/issues/\(id)", as: IssueDetail.self)
        #expect(detail.issue == byType["RuntimeError"] && detail.events.count == 2)
        #expect(detail.events.allSatisfy { $0.issueID == id && $0.release == "app@1.2.3" && $0.environment == "test" && $0.user == "user-1" })
        #expect(detail.events.contains { $0.correlationID == "corr-sentry-1" }, "one client tagged its events")
        let event = try #require(detail.events.first?.event)
        let chain = elements(event["exception"]?["values"])
        #expect(chain.compactMap { text($0["type"]) } == ["ZeroDivisionError", "RuntimeError"], "the chain is kept")
        let frames = elements(chain.last?["stacktrace"]?["frames"])
        #expect(frames.contains { text($0["function"]) == "sentry" }, "stack frames are kept")
        #expect(event["breadcrumbs"] != nil && text(event["user"]?["id"]) == "user-1")

        // Resolve it; the next occurrence is a regression.
        let resolved = try await api.send(.PATCH, "/api/v1/issues/\(id)", json: IssueUpdate(status: .resolved), as: IssueDetail.self)
        #expect(resolved.issue.status == .resolved && resolved.events == detail.events)
        _ = try await telemetryClient(["sentry", "--dsn", dsn], as: SentryClientReport.self)
        let regressed = try await Poll.until("a regressed issue") {
            let list = try await api.get("/api/v1/issues?q=regressed:true", as: IssueList.self).data
            return list.isEmpty ? nil : list
        }
        #expect(regressed.map(\.id) == [id] && regressed.first?.status == .unresolved && regressed.first?.regressed == true)
        let ignored = try await api.send(.PATCH, "/api/v1/issues/\(id)", json: IssueUpdate(status: .ignored), as: IssueDetail.self)
        #expect(ignored.issue.status == .ignored)
        #expect(try await api.get("/api/v1/issues?status=ignored", as: IssueList.self).data.map(\.id) == [id])

        // What the issue routes refuse.
        let unknown = try await api.failure(.GET, "/api/v1/issues/0123456789abcdef0123456789abcdef")
        #expect(unknown.status == 404 && unknown.error.error.type == "not_found_error")
        let patchUnknown = try await api.failure(.PATCH, "/api/v1/issues/0123456789abcdef0123456789abcdef", body: try APIJSON.encode(IssueUpdate(status: .resolved)))
        #expect(patchUnknown.status == 404)
        let badStatus = try await api.failure(.PATCH, "/api/v1/issues/\(id)", body: Data(#"{"status":"fixed"}"#.utf8))
        #expect(badStatus.status == 400 && badStatus.error.error.param == "status")
        let padded = #"{"status":"resolved","note":"\#(String(repeating: "x", count: 70_000))"}"#
        let tooLarge = try await api.failure(.PATCH, "/api/v1/issues/\(id)", body: Data(padded.utf8))
        #expect(tooLarge.status == 413 && tooLarge.error.error.code == "request_too_large", "a body over 64 KiB is too large, not a store failure")
        let badFilter = try await api.failure(.GET, "/api/v1/issues?status=fixed")
        #expect(badFilter.status == 400 && badFilter.error.error.param == "status")
        #expect(try await api.failure(.GET, "/api/v1/issues?limit=0").status == 400)
        #expect(try await api.failure(.GET, apiPath("/api/v1/issues", ["q": "level:error AND (type:x"])).error.error.code == "invalid_query")

        // The correlation tag ties the error to its request.
        let timeline = try await api.get("/api/v1/correlation/corr-sentry-1", as: CorrelationTimeline.self)
        #expect(timeline.correlationID == "corr-sentry-1" && timeline.timeline.count == 5 && timeline.timeline.allSatisfy { $0.kind == .error })
        if case .error(let first) = timeline.timeline.first { #expect(first.event == nil, "a timeline leaves the documents out") }
        #expect(try await api.get("/api/v1/correlation/nothing-has-this", as: CorrelationTimeline.self).timeline.isEmpty)
        let tooLong = try await api.failure(.GET, "/api/v1/correlation/" + String(repeating: "c", count: 257))
        #expect(tooLong.status == 400)

        // Storage: error events are stored; no AI call yet, so `requests` has no oldest row.
        let storage = try await api.get("/api/v1/storage", as: StorageReport.self)
        let kinds = Dictionary(storage.kinds.map { ($0.kind, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(Set(kinds.keys) == Set(StorageKind.allCases))
        #expect((kinds[.errors]?.rows ?? 0) >= 10 && kinds[.errors]?.oldest != nil && kinds[.errors]?.retentionDays == 90)
        #expect(kinds[.requests]?.rows == 0 && kinds[.requests]?.oldest == nil && kinds[.logs]?.maxRows == 10_000_000)
        try await api.verifyContract()
        try await gatehouse.stop()
    }

    /// Keys, unknown projects, quotas and malformed envelopes get Sentry-style answers.
    @Test func sentryIngestRefusesWhatItShould() async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: telemetryConfig)
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let event = #"{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","exception":{"values":[{"type":"E","value":"x"}]}}"#
        let envelope = Data((#"{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}"# + "\n" + #"{"type":"event"}"# + "\n" + event + "\n").utf8)
        func send(_ project: String, key: String?, body: Data = envelope, query: String = "", headers: [(String, String)] = []) async throws -> HTTP.Reply {
            var all: [(String, String)] = [("content-type", "application/x-sentry-envelope")] + headers
            if let key { all.append(("X-Sentry-Auth", "Sentry sentry_version=7, sentry_client=test/1, sentry_key=\(key)")) }
            return try await api.raw(.POST, "/api/\(project)/envelope/" + query, body: body, headers: all)
        }
        let accepted = try await send("42", key: ingestKey)
        #expect(try accepted.status == 200 && decodeAnswer(accepted, as: SentryIngestAnswer.self) == SentryIngestAnswer(id: "9ec79c33ec9942ab8353589fcb2e04dc"))
        #expect(try await send("42", key: nil, query: "?sentry_key=\(ingestKey)").status == 200, "the key may come as a query parameter")
        let wrongKey = try await send("42", key: "wrong-key-000000000000")
        #expect(try wrongKey.status == 401 && decodeAnswer(wrongKey, as: SentryErrorBody.self).detail.contains("invalid sentry_key"))
        #expect(try await send("42", key: nil).status == 401)
        let unknownProject = try await send("99", key: ingestKey)
        #expect(try unknownProject.status == 404 && decodeAnswer(unknownProject, as: SentryErrorBody.self).detail == "unknown project 99")
        let bad = try await send("42", key: ingestKey, body: Data("{\"event_id\":1}\n{\"type\":\"event\",\"length\":500}\n{}".utf8))
        #expect(try bad.status == 400 && decodeAnswer(bad, as: SentryErrorBody.self).detail.contains("envelope"))
        let unsupported = try await send("42", key: ingestKey, headers: [("Content-Encoding", "zstd")])
        #expect(try unsupported.status == 415 && decodeAnswer(unsupported, as: SentryErrorBody.self).detail.contains("zstd"))
        // One event over `max_event_bytes` (1 MiB by default) in a body under the request limit.
        let big = #"{"event_id":"2ec79c33ec9942ab8353589fcb2e04dc","message":"\#(String(repeating: "x", count: 1_100_000))"}"#
        let tooLarge = try await api.raw(.POST, "/api/42/store/", body: Data(big.utf8), headers: [("X-Sentry-Auth", "Sentry sentry_key=\(ingestKey)")])
        #expect(try tooLarge.status == 413 && decodeAnswer(tooLarge, as: SentryErrorBody.self).detail.contains("larger than"))
        let bigEnvelope = try await send("42", key: ingestKey, body: Data((#"{}"# + "\n" + #"{"type":"event"}"# + "\n" + big + "\n").utf8))
        #expect(try bigEnvelope.status == 413 && decodeAnswer(bigEnvelope, as: SentryErrorBody.self).detail.contains("larger than"))
        let store = try await api.raw(.POST, "/api/42/store/", body: Data(event.replacingOccurrences(of: "9ec7", with: "1ec7").utf8),
                                      headers: [("X-Sentry-Auth", "Sentry sentry_key=\(ingestKey)")])
        #expect(store.status == 200, "the legacy store endpoint takes a bare event")
        #expect(try decodeAnswer(store, as: SentryIngestAnswer.self).id == "1ec79c33ec9942ab8353589fcb2e04dc")
        // Project "tiny" may send 2 events a minute.
        for _ in 0..<2 { #expect(try await send("7", key: "ingest-key-tiny-0123456789").status == 200) }
        let limited = try await send("7", key: "ingest-key-tiny-0123456789")
        #expect(limited.status == 429 && Int(limited.header("Retry-After") ?? "") != nil)
        #expect(limited.header("X-Sentry-Rate-Limits")?.hasSuffix("::project") == true)
        #expect(try decodeAnswer(limited, as: SentryErrorBody.self).detail.contains("quota"))
        try await api.verifyContract()
        try await gatehouse.stop()
    }

    /// Python's logging with a JSON handler and the OpenTelemetry SDK's OTLP exporter both send
    /// logs that the seed's queries then find; one correlation id gathers logs, errors and AI calls.
    @Test(arguments: Backend.allCases)
    func logsFromPythonLoggingAndOpenTelemetryAreFound(_ backend: Backend) async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: telemetryConfig, databaseURL: try backend.databaseURL())
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let sent = try await telemetryClient(["logging", "--url", gatehouse.baseURL + "/api/v1/logs", "--key", ingestKey], as: LogIngestResult.self)
        #expect(sent == LogIngestResult(accepted: 3, rejected: [], rejectedCount: 0))
        let otel = try await telemetryClient(["otel", "--endpoint", gatehouse.baseURL + "/v1/logs", "--key", ingestKey], as: OTelClientReport.self)
        #expect(otel.flushed)
        try await pollLogs(api, "", "5 lines") { $0.count >= 5 }
        func messages(_ q: String) async throws -> [String] {
            try await api.get(logsPath(q), as: LogSearchPage.self).data.map(\.message).sorted()
        }
        #expect(try await messages("level:error timestamp:>-1h") == ["Payment declined for order A-1001", "Task update failed"])
        #expect(try await messages(#"message:"Slow query detected""#) == ["Slow query detected"])
        #expect(try await messages(#"function:"tasks.list" level:warn"#) == ["Slow query detected"])
        #expect(try await messages("dbCalls:>50") == ["Task listed"])
        #expect(try await messages("service:checkout") == ["Checkout finished", "Payment declined for order A-1001"], "OTel resource → service")
        #expect(try await messages("slow:true") == ["Slow query detected", "Task listed"])

        // The slow query line with its columns and attributes, as the API shows it.
        let slow = try #require(try await api.get(logsPath(#"message:"Slow query detected""#), as: LogSearchPage.self).data.first)
        #expect(slow.level == .warn && slow.service == "worker" && slow.function == "tasks.list" && slow.correlationID == "corr-logging-1")
        #expect(slow.durationMilliseconds == 237.42 && slow.slow && slow.project == "web" && slow.environment == nil && slow.seq != nil)
        #expect(slow.attributes["dbCalls"] == .integer(15) && slow.attributes["docsScanned"] == .integer(342) && slow.attributes["logger"] == .string("tasks"))

        // Paging: one line a page, then the next by cursor, then a foreign cursor.
        let first = try await api.get(logsPath("project:web", limit: 1), as: LogSearchPage.self)
        #expect(first.data.count == 1 && first.hasMore && first.nextCursor != nil)
        let cursor = try #require(first.nextCursor)
        let second = try await api.get(apiPath("/api/v1/logs", ["q": "project:web", "limit": "1", "cursor": cursor]), as: LogSearchPage.self)
        #expect(second.data.count == 1 && second.data.first?.seq != first.data.first?.seq)
        let last = try await api.get(logsPath("project:web", limit: 1000), as: LogSearchPage.self)
        #expect(!last.hasMore && last.nextCursor == nil)

        // What the search refuses, and why.
        let badQuery = try await api.failure(.GET, logsPath("level:error AND (service:api"))
        #expect(badQuery.status == 400 && badQuery.error.error.message.contains("character") && badQuery.error.error.param == "q", "a bad query says where")
        #expect(try await api.failure(.GET, logsPath("level:loud")).error.error.code == "invalid_query", "a field error is a 400 too")
        #expect(try await api.failure(.GET, logsPath("", limit: 0)).error.error.param == "limit")
        #expect(try await api.failure(.GET, logsPath("", limit: 1001)).status == 400)
        #expect(try await api.failure(.GET, apiPath("/api/v1/logs", ["from": "the day before"])).error.error.param == "from")
        #expect(try await api.failure(.GET, apiPath("/api/v1/logs", ["to": "soon"])).error.error.param == "to")
        #expect(try await api.failure(.GET, apiPath("/api/v1/logs", ["cursor": "not-a-cursor"])).error.error.param == "cursor")

        // An AI call, a refused AI call and an error with the same correlation id join the two log lines.
        _ = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: #"{"model":"mock/gpt-4o-mini","messages":[]}"#,
                                headers: [("X-Request-Id", "corr-logging-1")])
        let refused = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: #"{"messages":[]}"#, headers: [("X-Request-Id", "corr-logging-1")])
        #expect(refused.status == 400)
        _ = try await telemetryClient(["sentry", "--dsn", "http://\(ingestKey)@127.0.0.1:\(gatehouse.port)/42", "--tag", "correlation_id=corr-logging-1"],
                                      as: SentryClientReport.self)
        let timeline = try await Poll.until("9 entries for corr-logging-1") {
            let entries = try await api.get("/api/v1/correlation/corr-logging-1", as: CorrelationTimeline.self).timeline
            return entries.count == 9 ? entries : nil
        }
        let kinds = timeline.map(\.kind)
        #expect(kinds.filter { $0 == .log }.count == 2 && kinds.filter { $0 == .error }.count == 5 && kinds.filter { $0 == .aiRequest }.count == 2)
        #expect(timeline.map(\.timestamp) == timeline.map(\.timestamp).sorted(), "oldest first")
        let calls = timeline.compactMap { entry -> CorrelatedAIRequest? in
            if case .aiRequest(let call) = entry { return call }
            return nil
        }
        let answered = try #require(calls.first { $0.status == 200 })
        #expect(answered.route == "/v1/chat/completions" && !answered.provider.isEmpty && answered.model.hasSuffix("gpt-4o-mini") && answered.errorClass == nil && answered.outputTokens > 0)
        #expect(Double(answered.costUSD) != nil && answered.latencyMilliseconds >= 0)
        #expect(calls.first { $0.status == 400 }?.errorClass == "invalid_request")
        let loggedLines = timeline.compactMap { entry -> LogLine? in
            if case .log(let line) = entry { return line }
            return nil
        }
        #expect(loggedLines.map(\.message).sorted() == ["Slow query detected", "Task update failed"])

        // OTLP/JSON too: hex trace ids become the correlation id.
        let otlpJSON = #"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"billing"}}]},"scopeLogs":[{"scope":{"name":"s"},"logRecords":[{"timeUnixNano":"1764496800000000000","severityNumber":17,"body":{"stringValue":"card declined"},"traceId":"5b8efff798038103d269b633813fc60c","attributes":[{"key":"http.status","value":{"intValue":"402"}}]}]}]}]}"#
        let otlp = try await api.raw(.POST, "/v1/logs", body: Data(otlpJSON.utf8), headers: [("Content-Type", "application/json"), ("Authorization", "Bearer \(ingestKey)")])
        #expect(otlp.status == 200 && otlp.header("content-type") == "application/json")
        #expect(try decodeAnswer(otlp, as: OTLPLogsExportResponse.self) == OTLPLogsExportResponse(partialSuccess: nil))
        let billing = try await pollLogs(api, "service:billing http.status:402", "the OTLP line") { $0.count == 1 }
        #expect(billing.first?.correlationID == "5b8efff798038103d269b633813fc60c" && billing.first?.level == .error)
        #expect(billing.first?.attributes["http.status"] == .integer(402) && billing.first?.attributes["otel.scope"] == .string("s"))
        // A record whose level is no level is refused: a partial success that says which.
        let partialJSON = #"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityText":"LOUD","body":{"stringValue":"too loud"}},{"severityText":"INFO","body":{"stringValue":"fine"}}]}]}]}"#
        let partial = try await api.raw(.POST, "/v1/logs", body: Data(partialJSON.utf8), headers: [("Content-Type", "application/json"), ("Authorization", "Bearer \(ingestKey)")])
        let partialAnswer = try decodeAnswer(partial, as: OTLPLogsExportResponse.self)
        #expect(partial.status == 200 && partialAnswer.partialSuccess?.rejected == 1 && partialAnswer.partialSuccess?.errorMessage.hasPrefix("record 0:") == true)
        let badOTLP = try await api.raw(.POST, "/v1/logs", body: Data("{not otlp".utf8), headers: [("Content-Type", "application/json"), ("Authorization", "Bearer \(ingestKey)")])
        #expect(try badOTLP.status == 400 && decodeAnswer(badOTLP, as: APIErrorBody.self).error.code == "invalid_body")
        let metrics = String(decoding: try await HTTP.get(gatehouse.baseURL + "/metrics").1, as: UTF8.self)
        #expect(metrics.contains(#"gatehouse_slow_operations_total{reason="duration"}"#) && metrics.contains(#"gatehouse_logs_ingested_total{project="web"}"#))

        // NUL characters (which PostgreSQL refuses) are cleaned at the door, not left to block a batch.
        let nul = try await api.raw(.POST, "/api/v1/logs", body: Data(#"{"message":"nul\u0000byte","service":"nul","data":{"k":"a\u0000b"}}"#.utf8),
                                    headers: [("Authorization", "Bearer \(ingestKey)")])
        #expect(try nul.status == 200 && decodeAnswer(nul, as: LogIngestResult.self).accepted == 1)
        let cleaned = try await pollLogs(api, "service:nul", "the cleaned line") { $0.count == 1 }
        #expect(cleaned.first?.message == "nulbyte" && cleaned.first?.attributes["data"] == .object(["k": .string("ab")]))

        // Without the key, or with a wrong one, nothing is taken.
        let keyless = try await api.failure(.POST, "/api/v1/logs", body: Data(#"{"message":"x"}"#.utf8))
        #expect(keyless.status == 401 && keyless.error.error.code == "invalid_ingest_key" && keyless.error.error.type == "authentication_error")
        let wrongKey = try await api.failure(.POST, "/api/v1/logs", body: Data(#"{"message":"x"}"#.utf8), headers: [("X-Gatehouse-Ingest-Key", "wrong-key-0123456789")])
        #expect(wrongKey.status == 401)
        let otlpKeyless = try await api.failure(.POST, "/v1/logs", body: Data(otlpJSON.utf8))
        #expect(otlpKeyless.status == 401 && otlpKeyless.error.error.code == "invalid_ingest_key")

        // Storage now counts all three kinds of telemetry; captured bodies are listed, and empty (capture is off).
        let storage = try await api.get("/api/v1/storage", as: StorageReport.self)
        // Spans (the gateway's own, of the AI calls above) are the traces tests' to check.
        #expect(storage.kinds.filter { $0.kind != .bodies && $0.kind != .spans }.allSatisfy { $0.rows > 0 && $0.oldest != nil && $0.approximateBytes > 0 }, "\(storage)")
        #expect(storage.kinds.first { $0.kind == .bodies }?.rows == 0)
        try await api.verifyContract()
        try await gatehouse.stop()
    }

    /// Bad bodies get per-line reasons and clear statuses; nothing valid is lost beside them.
    @Test func badLogBodiesAreReportedLineByLine() async throws {
        let gatehouse = try await GatehouseProcess.start()  // open mode: no projects configured
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let mixed = try await api.raw(.POST, "/api/v1/logs", body: Data("{\"message\":\"kept\"}\n{oops\n\"text\"\n{\"message\":\"also kept\",\"level\":\"ERROR\"}\n".utf8),
                                      headers: [("X-Gatehouse-Project", "demo"), ("Content-Type", "application/x-ndjson")])
        let mixedResult = try decodeAnswer(mixed, as: LogIngestResult.self)
        #expect(mixed.status == 200 && mixedResult.accepted == 2 && mixedResult.rejectedCount == 2)
        #expect(mixedResult.rejected.map(\.index) == [1, 2] && mixedResult.rejected.first?.reason == "not valid JSON")
        let none = try await api.raw(.POST, "/api/v1/logs", body: Data("[1, 2]".utf8))
        #expect(try none.status == 400 && decodeAnswer(none, as: LogIngestResult.self) == LogIngestResult(
            accepted: 0, rejected: [LogRejection(index: 0, reason: "a log line must be a JSON object"), LogRejection(index: 1, reason: "a log line must be a JSON object")], rejectedCount: 2))
        let blank = try await api.failure(.POST, "/api/v1/logs", body: Data("   ".utf8))
        #expect(blank.status == 400 && blank.error.error.code == "invalid_body")
        let zstd = try await api.failure(.POST, "/api/v1/logs", body: Data("x".utf8), headers: [("Content-Encoding", "zstd")])
        #expect(zstd.status == 415 && zstd.error.error.code == "invalid_encoding")
        let huge = try await api.failure(.POST, "/api/v1/logs", body: Data(count: 11 * 1024 * 1024))
        #expect(huge.status == 413 && huge.error.error.code == "request_too_large")
        let tooMany = try await api.failure(.POST, "/api/v1/logs", body: Data(String(repeating: "{}\n", count: 10_001).utf8))
        #expect(tooMany.status == 413 && tooMany.error.error.code == "invalid_body")
        let otlpHuge = try await api.failure(.POST, "/v1/logs", body: Data(count: 11 * 1024 * 1024), headers: [("Content-Type", "application/x-protobuf")])
        #expect(otlpHuge.status == 413 && otlpHuge.error.error.code == "request_too_large")
        let otlpZstd = try await api.failure(.POST, "/v1/logs", body: Data("x".utf8), headers: [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "zstd")])
        #expect(otlpZstd.status == 415 && otlpZstd.error.error.code == "invalid_encoding")
        // In open mode Sentry's project id names the project, so it must be a plain name.
        let badProject = try await api.raw(.POST, "/api/a%20b/store/", body: Data(#"{"message":"x"}"#.utf8))
        #expect(try badProject.status == 400 && decodeAnswer(badProject, as: SentryErrorBody.self).detail.contains("project id"))
        let lines = try await pollLogs(api, "project:demo", "the 2 kept lines") { $0.count == 2 }
        #expect(lines.map(\.level).sorted { $0.rawValue < $1.rawValue } == [.error, .info])
        #expect(lines.allSatisfy { $0.project == "demo" && $0.attributes.isEmpty && $0.durationMilliseconds == nil && !$0.slow })
        try await api.verifyContract()
        try await gatehouse.stop()
    }

    /// A sender chooses the time of its log lines and Sentry events (a DSN is public in a
    /// browser's JavaScript): one far in the future is stored at the time it was received, its
    /// own time kept beside it, so retention removes it like any other; a clock a few minutes fast
    /// keeps its time.
    @Test(arguments: Backend.allCases)
    func timestampsFarInTheFutureTakeTheReceiveTime(_ backend: Backend) async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: telemetryConfig, databaseURL: try backend.databaseURL())
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        func seconds(_ text: String) -> Double? {
            (formatter.date(from: text) ?? ISO8601DateFormatter().date(from: text))?.timeIntervalSince1970
        }
        let before = Date().timeIntervalSince1970
        let soon = Int(before) + 300
        let lines = #"{"timestamp":"3000-01-01T00:00:00Z","message":"far future"}"# + "\n" + #"{"timestamp":\#(soon),"message":"five minutes fast"}"#
        let logs = try await api.raw(.POST, "/api/v1/logs", body: Data(lines.utf8), headers: [("Authorization", "Bearer \(ingestKey)")])
        #expect(try logs.status == 200 && decodeAnswer(logs, as: LogIngestResult.self).accepted == 2)
        let auth = [("X-Sentry-Auth", "Sentry sentry_key=\(ingestKey)")]
        let far = #"{"event_id":"a0000000000000000000000000000001","timestamp":"3000-01-01T00:00:00Z","exception":{"values":[{"type":"FarFuture","value":"x"}]}}"#
        let near = #"{"event_id":"a0000000000000000000000000000002","timestamp":\#(soon),"exception":{"values":[{"type":"FiveMinutesFast","value":"x"}]}}"#
        for event in [far, near] { #expect(try await api.raw(.POST, "/api/42/store/", body: Data(event.utf8), headers: auth).status == 200) }
        let after = Date().timeIntervalSince1970

        let stored = try await pollLogs(api, "project:web", "2 lines") { $0.count == 2 }
        let byMessage = Dictionary(stored.map { ($0.message, $0) }, uniquingKeysWith: { a, _ in a })
        let farLine = try #require(byMessage["far future"])
        #expect(seconds(farLine.timestamp).map { $0 >= before - 1 && $0 <= after + 1 } == true, "\(farLine.timestamp)")
        #expect(farLine.attributes["original_timestamp"] == .string("3000-01-01T00:00:00.000Z"))
        #expect(byMessage["five minutes fast"].flatMap { seconds($0.timestamp) } == Double(soon))
        #expect(byMessage["five minutes fast"]?.attributes["original_timestamp"] == nil)

        let issues = try await Poll.until("2 issues") {
            let list = try await api.get("/api/v1/issues", as: IssueList.self).data
            return list.count == 2 ? list : nil
        }
        for issue in issues {
            let event = try #require(try await api.get("/api/v1/issues/\(issue.id)", as: IssueDetail.self).events.first)
            let at = try #require(seconds(event.timestamp))
            if issue.type == "FarFuture" {
                #expect(at >= before - 1 && at <= after + 1, "\(event.timestamp)")
                let errors = elements(event.event?["errors"])
                #expect(errors.contains { text($0["type"]) == "future_timestamp" && text($0["sdk_time"]) == "3000-01-01T00:00:00.000Z" })
            } else {
                #expect(at == Double(soon), "\(event.timestamp)")
            }
        }
        try await gatehouse.stop()
    }

    /// With an admin token set, the read routes need it (401 without it or with another one);
    /// the ingest routes still take project keys, and the admin token is not one.
    @Test func readRoutesNeedTheAdminTokenWhenOneIsSet() async throws {
        let token = "telemetry-admin-token-0123456789"
        let gatehouse = try await GatehouseProcess.start(yaml: telemetryConfig, environment: ["GATEHOUSE_ADMIN_TOKEN": token])
        let admin = TypedAPI(baseURL: gatehouse.baseURL, adminToken: token)
        let anonymous = TypedAPI(baseURL: gatehouse.baseURL)
        let line = Data(#"{"level":"error","message":"behind the token","correlationId":"corr-token-1"}"#.utf8)
        let sent = try await anonymous.raw(.POST, "/api/v1/logs", body: line, headers: [("Authorization", "Bearer \(ingestKey)")])
        #expect(try sent.status == 200 && decodeAnswer(sent, as: LogIngestResult.self).accepted == 1)
        let adminAsIngestKey = try await admin.failure(.POST, "/api/v1/logs", body: line)
        #expect(adminAsIngestKey.status == 401 && adminAsIngestKey.error.error.code == "invalid_ingest_key")
        let lines = try await pollLogs(admin, "correlation_id:corr-token-1", "the line") { $0.count == 1 }
        #expect(lines.first?.message == "behind the token")

        let readPaths = ["/api/v1/logs", "/api/v1/logs/tail", "/api/v1/issues", "/api/v1/issues/0123456789abcdef", "/api/v1/correlation/corr-token-1",
                         "/api/v1/storage"]
        let wrongToken = [("Authorization", "Bearer not-the-admin-token-0123")]
        for path in readPaths {
            let missing = try await anonymous.failure(.GET, path)
            #expect(missing.status == 401 && missing.error.error.code == "invalid_admin_token", "GET \(path) without the token")
            #expect(try await anonymous.failure(.GET, path, headers: wrongToken).status == 401, "GET \(path) with another token")
        }
        let update = try APIJSON.encode(IssueUpdate(status: .resolved))
        #expect(try await anonymous.failure(.PATCH, "/api/v1/issues/0123456789abcdef", body: update).status == 401)
        #expect(try await anonymous.failure(.PATCH, "/api/v1/issues/0123456789abcdef", body: update, headers: wrongToken).status == 401)
        #expect(try await admin.get("/api/v1/correlation/corr-token-1", as: CorrelationTimeline.self).timeline.map(\.kind) == [.log])
        #expect(try await admin.get("/api/v1/storage", as: StorageReport.self).kinds.count == StorageKind.allCases.count)
        try await admin.verifyContract()
        try await anonymous.verifyContract()
        try await gatehouse.stop()
    }

    /// A full error-event queue is answered 503 with `Retry-After`, in Sentry's error format. (The
    /// log queue holds at least 200,000 lines, more than one request may carry, so it cannot be
    /// filled this way.)
    @Test func aFullEventQueueIsAnswered503() async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: "recorder:\n  capacity: 1\n")
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let event = #"{"exception":{"values":[{"type":"E","value":"x"}]}}"#
        let envelope = Data(("{}\n" + #"{"type":"event"}"# + "\n" + event + "\n" + #"{"type":"event"}"# + "\n" + event + "\n").utf8)
        let sentry = try await api.raw(.POST, "/api/7/envelope/", body: envelope, headers: [("Content-Type", "application/x-sentry-envelope")])
        #expect(try sentry.status == 503 && sentry.header("Retry-After") == "1" && decodeAnswer(sentry, as: SentryErrorBody.self).detail.contains("queue is full"))
        try await api.verifyContract()
        try await gatehouse.stop()
    }

    /// Random and mutated bodies and queries never crash or hang the server: every answer is a
    /// 2xx or a 4xx the API document describes, and the server still answers afterwards.
    @Test func randomInputNeverBreaksTheServer() async throws {
        let gatehouse = try await GatehouseProcess.start()
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        var rng = SystemRandomNumberGenerator()
        let seeds = [
            #"{"level":"warn","message":"Slow query detected","duration":"237.42ms","dbCalls":15,"http":{"status":503}}"# + "\n",
            #"{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}"# + "\n" + #"{"type":"event","length":40}"# + "\n" + #"{"exception":{"values":[{"type":"E"}]}}"# + "\n",
            #"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]}]}"#,
            #"level:error timestamp:>-1h function:"tasks.list" dbCalls:>50 (a OR b) -c"#,
        ]
        func mutate(_ text: String) -> Data {
            var bytes = Array(text.utf8)
            for _ in 0..<Int.random(in: 1...6, using: &rng) where !bytes.isEmpty {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                if Bool.random(using: &rng) { bytes[i] = UInt8.random(in: 0...255, using: &rng) } else { bytes.remove(at: i) }
            }
            return Data(bytes)
        }
        for round in 0..<150 {
            let which = round % 4
            let body = mutate(seeds[which])
            let reply: HTTP.Reply
            switch which {
            case 0: reply = try await api.raw(.POST, "/api/v1/logs", body: body)
            case 1: reply = try await api.raw(.POST, "/api/1/envelope/", body: body, headers: [("Content-Type", "application/x-sentry-envelope")])
            case 2: reply = try await api.raw(.POST, "/v1/logs", body: body, headers: [("Content-Type", round % 8 == 2 ? "application/json" : "application/x-protobuf")])
            default: reply = try await api.raw(.GET, apiPath("/api/v1/logs", ["q": String(decoding: body, as: UTF8.self)]))
            }
            #expect((200..<500).contains(reply.status), "round \(round): \(reply.status) \(String(decoding: reply.body.prefix(200), as: UTF8.self))")
        }
        #expect(try await HTTP.get(gatehouse.baseURL + "/health").0 == 200)
        try await api.verifyContract()
        #expect(try await gatehouse.stop() == 0)
    }

    /// The live tail sends new matching lines as server-sent events, each a `LogLine`; `gatehouse
    /// logs` reads both ways.
    @Test func liveTailAndTheLogsCommand() async throws {
        let gatehouse = try await GatehouseProcess.start()
        let base = gatehouse.baseURL
        let api = TypedAPI(baseURL: base)
        let (status, text) = try await StreamingClient.get(url: base + apiPath("/api/v1/logs/tail", ["q": "level:error"]), whileReading: {
            // This runs once the tail has answered, by which time it has fixed where it starts: these lines come after.
            _ = try await api.raw(.POST, "/api/v1/logs", body: Data("{\"level\":\"info\",\"message\":\"quiet\"}\n{\"level\":\"error\",\"message\":\"tail me\",\"attempt\":2}\n".utf8))
        }, done: { $0.contains("tail me") })
        #expect(status == 200 && text.contains("event: log") && text.contains("tail me") && !text.contains("quiet"))
        let events = text.components(separatedBy: "\n\n").filter { $0.contains("event: log") }
        #expect(events.count == 1)
        for event in events {
            var fields: [String: String] = [:]
            for field in event.components(separatedBy: "\n") {
                guard let separator = field.range(of: ": ") else { continue }
                fields[String(field[..<separator.lowerBound])] = String(field[separator.upperBound...])
            }
            let data = try #require(fields["data"])
            let line = try APIJSON.decode(LogLine.self, from: Data(data.utf8))
            #expect(line.message == "tail me" && line.level == .error && line.attributes == ["attempt": JSONValue.integer(2)])
            #expect(fields["id"] == line.seq.map(String.init), "the event id is the line's seq")
            #expect(String(decoding: try APIJSON.encode(line), as: UTF8.self) == data, "each event's data is exactly a LogLine")
        }
        let badTail = try await api.failure(.GET, "/api/v1/logs/tail?q=nope:(")
        #expect(badTail.status == 400 && badTail.error.error.code == "invalid_query")
        #expect(try await api.failure(.GET, apiPath("/api/v1/logs/tail", ["q": "level:loud"])).status == 400, "field errors come before the stream")

        let cli = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary,
                                                   ["logs", "--url", base, "--since", "1h", "--query", "level:error", "--json"])
        #expect(cli.status == 0)
        let printed = cli.output.split(separator: "\n").compactMap { try? APIJSON.decode(LogLine.self, from: Data($0.utf8)) }
        #expect(printed.map(\.message) == ["tail me"])
        let table = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["logs", "--url", base, "--query", "message:quiet"])
        #expect(table.status == 0 && table.output.contains("INFO") && table.output.contains("quiet"))
        let wrong = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["logs", "--url", base, "--query", "level:"])
        #expect(wrong.status != 0 && wrong.output.contains("400"))

        // `--tail` prints lines as they come.
        let tailsBefore = accessLogCount(gatehouse, path: "/api/v1/logs/tail")
        let tail = try ChildProcess(executable: TestEnvironment.gatehouseBinary, arguments: ["logs", "--url", base, "--tail", "--json", "--query", "service:cron"])
        // With --json the command says nothing until a line comes: the server's access log tells when its tail has answered.
        try await Poll.until("the command's tail to answer") { accessLogCount(gatehouse, path: "/api/v1/logs/tail") > tailsBefore }
        let cron = try await api.raw(.POST, "/api/v1/logs", body: Data(#"{"service":"cron","message":"nightly run"}"#.utf8))
        #expect(try decodeAnswer(cron, as: LogIngestResult.self).accepted == 1)
        let line = try await tail.waitForLine(timeout: .seconds(15)) { $0.contains("nightly run") }
        let tailed = try APIJSON.decode(LogLine.self, from: Data(line.utf8))
        #expect(tailed.service == "cron" && tailed.message == "nightly run")
        _ = try await tail.stop(signal: SIGINT)
        try await api.verifyContract()
        try await gatehouse.stop()
    }
}
