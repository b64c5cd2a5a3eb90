import Foundation
import GatehouseAPI
import GatehouseCore
import Testing
@testable import GatehouseTelemetry

/// Stored logs, events and issues as the API writes them: the exact JSON (field names, nulls,
/// numbers) the dictionary-built answers gave, and types that read back what they wrote.
@Suite struct APIAnswerTests {
    static let at: Int64 = 1_764_496_800_250_000

    static func json(_ value: some Encodable) throws -> String { String(decoding: try APIJSON.encode(value), as: UTF8.self) }

    @Test func aLogLineWithEveryFieldAndNestedAttributes() throws {
        let record = LogRecord(sequence: 7, timestampMicros: Self.at, project: "web", level: .warn, message: "Slow query detected",
                               service: "api", environment: "prod", correlationID: "c-1", function: "tasks.list", durationMicros: 237_420,
                               attributesJSON: #"{"dbCalls":15,"ratio":2.5,"url":"https://x.io/a","nested":{"a":[1,2.0,null,true,"s"]}}"#, slow: true)
        let line = LogLine(record)
        let time = TimeExpressions.format(micros: Self.at)
        #expect(try Self.json(line) == #"{"attributes":{"dbCalls":15,"nested":{"a":[1,2,null,true,"s"]},"ratio":2.5,"url":"https://x.io/a"},"#
                + #""correlation_id":"c-1","duration_ms":237.42,"environment":"prod","function":"tasks.list","level":"warn","#
                + #""message":"Slow query detected","project":"web","seq":7,"service":"api","slow":true,"timestamp":"\#(time)"}"#)
        #expect(try APIJSON.decode(LogLine.self, from: try APIJSON.encode(line)) == LogLine(record), "what is written reads back the same")
    }

    @Test func aBareLogLineWritesItsNulls() throws {
        let record = LogRecord(timestampMicros: Self.at, project: "p", level: .info, message: "m", attributesJSON: "not json")
        let time = TimeExpressions.format(micros: Self.at)
        #expect(try Self.json(LogLine(record)) == #"{"attributes":{},"correlation_id":null,"duration_ms":null,"environment":null,"function":null,"#
                + #""level":"info","message":"m","project":"p","seq":null,"service":null,"slow":false,"timestamp":"\#(time)"}"#)
        let page = LogSearchPage(data: [], nextCursor: nil)
        #expect(try Self.json(page) == #"{"data":[],"has_more":false,"next_cursor":null}"#)
        #expect(try Self.json(LogSearchPage(data: [], nextCursor: "abc")) == #"{"data":[],"has_more":true,"next_cursor":"abc"}"#)
    }

    @Test func anIssueWithItsEventsSideBySide() throws {
        let issue = ErrorIssue(id: "i1", project: "web", title: "ValueError: bad", type: "ValueError", culprit: "app in f", level: .error,
                               status: .resolved, regressed: false, firstSeenMicros: Self.at, lastSeenMicros: Self.at + 1000, count: 3, users: 1,
                               lastRelease: nil)
        let event = ErrorEvent(eventID: "e1", project: "web", issueID: "i1", timestampMicros: Self.at, level: .fatal, type: "ValueError",
                               value: "bad", title: "ValueError: bad", culprit: "app in f", release: "app@1", environment: nil,
                               correlationID: "c-1", userKey: nil, documentJSON: #"{"tags":{"k":"v"},"exception":{"values":[{"type":"ValueError"}]}}"#)
        let t0 = TimeExpressions.format(micros: Self.at), t1 = TimeExpressions.format(micros: Self.at + 1000)
        let detail = IssueDetail(issue: IssueView(issue), events: [ErrorEventView(event, withDocument: true)])
        #expect(try Self.json(detail) == #"{"count":3,"culprit":"app in f","events":[{"correlation_id":"c-1","culprit":"app in f","environment":null,"#
                + #""event":{"exception":{"values":[{"type":"ValueError"}]},"tags":{"k":"v"}},"event_id":"e1","issue_id":"i1","level":"fatal","#
                + #""project":"web","release":"app@1","timestamp":"\#(t0)","title":"ValueError: bad","type":"ValueError","user":null,"value":"bad"}],"#
                + #""first_seen":"\#(t0)","id":"i1","ignore_events_left":null,"ignore_until":null,"ignore_until_count":null,"#
                + #""last_release":null,"last_seen":"\#(t1)","level":"error","project":"web","regressed":false,"#
                + #""status":"resolved","status_reason":null,"title":"ValueError: bad","type":"ValueError","users":1}"#)
        #expect(try APIJSON.decode(IssueDetail.self, from: try APIJSON.encode(detail)) == detail)
        #expect(!(try Self.json(ErrorEventView(event, withDocument: false))).contains(#""event":"#), "without its document the key is left out")
        #expect(try Self.json(IssueList(data: [IssueView(issue)])).hasPrefix(#"{"data":[{"count":3,"#))
        // Ignored until 10 more events when it had 1: 2 have come since, 8 are to come.
        var snoozed = issue
        snoozed.status = .ignored
        snoozed.ignoreUntilCount = 10
        snoozed.ignoredAtCount = 1
        snoozed.ignoreUntilMicros = Self.at
        let view = IssueView(snoozed)
        #expect(view.ignoreUntilCount == 10 && view.ignoreEventsLeft == 8 && view.ignoreUntil == t0 && view.statusReason == nil)
    }

    @Test func correlationEntriesCarryTheirKind() throws {
        let line = LogLine(LogRecord(sequence: 1, timestampMicros: Self.at, project: "p", level: .error, message: "m"))
        let event = ErrorEventView(ErrorEvent(eventID: "e", project: "p", issueID: "i", timestampMicros: Self.at, level: .error, type: "E", value: "v",
                                              title: "E: v", culprit: "", documentJSON: "{}"), withDocument: false)
        let call = CorrelatedAIRequest(id: "r", timestamp: line.timestamp, route: "/v1/chat/completions", provider: "openai", model: "gpt-4o-mini",
                                       status: 502, latencyMilliseconds: 12.5, inputTokens: 3, outputTokens: 0, costUSD: "0.000000",
                                       errorClass: "upstream_5xx")
        let timeline = CorrelationTimeline(correlationID: "c", timeline: [.log(line), .error(event), .aiRequest(call)])
        let data = try APIJSON.encode(timeline)
        let raw = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let entries = try #require(raw["timeline"] as? [[String: Any]])
        #expect(entries.map { $0["kind"] as? String } == ["log", "error", "ai_request"])
        #expect(Set(entries[0].keys) == Set(["kind", "seq", "timestamp", "level", "message", "project", "service", "environment", "correlation_id",
                                             "function", "duration_ms", "slow", "attributes"]))
        #expect(entries[2]["cost_usd"] as? String == "0.000000" && entries[2]["latency_ms"] as? Double == 12.5 && entries[2]["error_class"] as? String == "upstream_5xx")
        #expect(try APIJSON.decode(CorrelationTimeline.self, from: data) == timeline)
        #expect(throws: DecodingError.self) { try APIJSON.decode(CorrelationEntry.self, from: Data(#"{"kind":"span"}"#.utf8)) }
    }

    /// The typed OTLP answer is the message SwiftProtobuf writes in protobuf's JSON mapping.
    @Test func theOTLPAnswerIsProtobufsJSON() throws {
        func protobuf(_ rejected: Int, _ message: String) throws -> NSDictionary {
            try #require(try JSONSerialization.jsonObject(with: Data(OTLPLogs.response(rejected: rejected, message: message, json: true))) as? NSDictionary)
        }
        func typed(_ value: OTLPLogsExportResponse) throws -> NSDictionary {
            try #require(try JSONSerialization.jsonObject(with: try APIJSON.encode(value)) as? NSDictionary)
        }
        #expect(try typed(OTLPLogsExportResponse()) == protobuf(0, ""))
        let partial = OTLPLogsExportResponse(partialSuccess: .init(rejected: 2, errorMessage: "record 0: x; record 3: y"))
        #expect(try typed(partial) == protobuf(2, "record 0: x; record 3: y"))
        #expect(try Self.json(partial) == #"{"partialSuccess":{"errorMessage":"record 0: x; record 3: y","rejectedLogRecords":"2"}}"#)
        // protobuf's JSON readers take an int64 as a number too.
        let number = try APIJSON.decode(OTLPLogsExportResponse.self, from: Data(#"{"partialSuccess":{"rejectedLogRecords":2}}"#.utf8))
        #expect(number.partialSuccess == .init(rejected: 2, errorMessage: ""))
        #expect(throws: DecodingError.self) {
            try APIJSON.decode(OTLPLogsExportResponse.self, from: Data(#"{"partialSuccess":{"rejectedLogRecords":"two"}}"#.utf8))
        }
    }

    @Test func ingestAndStorageAnswers() throws {
        let result = LogIngestResult(accepted: 1, rejected: [LogRejection(index: 1, reason: "not valid JSON")], rejectedCount: 1)
        #expect(try Self.json(result) == #"{"accepted":1,"rejected":[{"index":1,"reason":"not valid JSON"}],"rejected_count":1}"#)
        #expect(try Self.json(SentryIngestAnswer(id: "abc")) == #"{"id":"abc"}"#)
        #expect(try Self.json(SentryErrorBody(detail: "unknown project 9")) == #"{"detail":"unknown project 9"}"#)
        let storage = StorageReport(kinds: [StorageKindUse(kind: StorageKind(TelemetryKind.logs), rows: 2, approximateBytes: 300, oldest: nil,
                                                           retentionDays: 30, maxRows: 10_000_000)])
        #expect(try Self.json(storage) == #"{"kinds":[{"approximate_bytes":300,"kind":"logs","max_rows":10000000,"oldest":null,"retention_days":30,"rows":2}]}"#)
        #expect(try Self.json(IssueUpdate(status: .ignored)) == #"{"status":"ignored"}"#)
        #expect(throws: DecodingError.self) { try APIJSON.decode(IssueUpdate.self, from: Data(#"{"status":"fixed"}"#.utf8)) }
        for level in LogLevel.allCases { #expect(TelemetryLevel(level).rawValue == level.rawValue) }
        for status in IssueStatus.allCases { #expect(IssueStatus(IssueTriageStatus(status)) == status && IssueTriageStatus(status).rawValue == status.rawValue) }
        for kind in TelemetryKind.allCases { #expect(StorageKind(kind).rawValue == kind.rawValue) }
    }
}
