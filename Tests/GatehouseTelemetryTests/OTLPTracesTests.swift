import Foundation
import GatehouseAPI
import GatehouseCore
import SwiftProtobuf
import Testing
@testable import GatehouseTelemetry

/// `OTLPTraces.decode`: OTLP/HTTP trace exports, protobuf and JSON, into spans and rejections.
@Suite struct OTLPTracesTests {
    typealias PSpan = Opentelemetry_Proto_Trace_V1_Span
    static let received: Int64 = 1_796_040_000_000_000
    static let trace = "4bf92f3577b34da6a3ce929d0e0e4736"

    static func bytes(_ hex: String) -> Data { Data(OTLPTraceEncoding.bytes(hex: hex)) }

    static func kv(_ key: String, _ value: String) -> Opentelemetry_Proto_Common_V1_KeyValue {
        OTLPTraceEncoding.keyValue(key, value)
    }

    static func span(_ id: String, parent: String? = nil, name: String, kind: PSpan.SpanKind = .internal, startMillis: UInt64 = 0,
                     millis: UInt64 = 10, trace: String = trace) -> PSpan {
        var s = PSpan()
        s.traceID = bytes(trace)
        s.spanID = bytes(id)
        if let parent { s.parentSpanID = bytes(parent) }
        s.name = name
        s.kind = kind
        s.startTimeUnixNano = UInt64(received / 1000 - 60_000 + Int64(startMillis)) * 1_000_000
        s.endTimeUnixNano = s.startTimeUnixNano + millis * 1_000_000
        return s
    }

    static func request(_ spans: [PSpan], service: String = "shop", resource extra: [Opentelemetry_Proto_Common_V1_KeyValue] = [])
        -> Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest {
        var scope = Opentelemetry_Proto_Trace_V1_ScopeSpans()
        scope.scope.name = "shop.http"
        scope.scope.version = "1.2"
        scope.spans = spans
        var resourceSpans = Opentelemetry_Proto_Trace_V1_ResourceSpans()
        resourceSpans.resource.attributes = [kv("service.name", service), kv("deployment.environment.name", "prod"), kv("service.version", "9.1")] + extra
        resourceSpans.scopeSpans = [scope]
        var request = Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest()
        request.resourceSpans = [resourceSpans]
        return request
    }

    static func decode(_ request: Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest, limits: IngestLimits = IngestLimits()) throws -> OTLPTraces.Decoded {
        try OTLPTraces.decode(try request.serializedBytes() as [UInt8], contentType: "application/x-protobuf", project: "web", limits: limits,
                              receivedMicros: received)
    }

    static func json(_ text: String, limits: IngestLimits = IngestLimits()) throws -> OTLPTraces.Decoded {
        try OTLPTraces.decode(Array(text.utf8), contentType: "application/json", project: "web", limits: limits, receivedMicros: received)
    }

    static func attributes(_ span: Span) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(span.attributesJSON.utf8)) as? [String: Any])
    }

    @Test func aProtobufTreeBecomesSpansWithTransactions() throws {
        var root = Self.span("00f067aa0ba902b7", name: "GET /checkout", kind: .server, millis: 120)
        root.attributes = [Self.kv("http.route", "/checkout"), Self.kv("password", "hunter2-secret")]
        var db = Self.span("00f067aa0ba902b8", parent: "00f067aa0ba902b7", name: "SELECT carts", kind: .client, startMillis: 5, millis: 30)
        db.status.code = .error
        db.status.message = "deadlock detected"
        var event = PSpan.Event()
        event.name = "exception"
        event.timeUnixNano = db.startTimeUnixNano + 1_000_000
        event.attributes = [Self.kv("exception.type", "DeadlockError"), Self.kv("api_key", "sk-live-123456789")]
        db.events = [event]
        let inner = Self.span("00f067aa0ba902b9", parent: "00f067aa0ba902b8", name: "pool.acquire", startMillis: 6, millis: 1)
        let decoded = try Self.decode(Self.request([root, db, inner], resource: [Self.kv("host.name", "web-1")]))
        #expect(decoded.rejections.isEmpty && !decoded.json)
        #expect(decoded.spans.map(\.spanID) == ["00f067aa0ba902b7", "00f067aa0ba902b8", "00f067aa0ba902b9"])
        let (r, d, i) = (decoded.spans[0], decoded.spans[1], decoded.spans[2])
        #expect(r.traceID == Self.trace && r.parentSpanID == nil && r.isTransaction && r.transaction == "GET /checkout" && r.op == "server")
        #expect(d.parentSpanID == r.spanID && !d.isTransaction && d.transaction == "GET /checkout" && d.op == "client")
        #expect(i.parentSpanID == d.spanID && !i.isTransaction && i.transaction == "GET /checkout" && i.op == "internal")
        #expect(r.durationMicros == 120_000 && d.durationMicros == 30_000 && d.startMicros - r.startMicros == 5_000)
        #expect(d.isError && d.status == "error" && !r.isError && r.status == "ok")
        #expect(r.service == "shop" && r.environment == "prod" && r.release == "9.1" && r.project == "web" && r.source == .otlp)
        #expect(r.correlationID == Self.trace)
        let ra = try Self.attributes(r), da = try Self.attributes(d)
        #expect(ra["http.route"] as? String == "/checkout" && ra["password"] as? String == Redactor.mask)
        #expect((ra["resource"] as? [String: Any])?["host.name"] as? String == "web-1" && ra["otel.scope.name"] as? String == "shop.http")
        #expect(da["otel.status_description"] as? String == "deadlock detected")
        let events = try #require(da["events"] as? [[String: Any]])
        #expect(events.first?["name"] as? String == "exception")
        let eventAttributes = try #require(events.first?["attributes"] as? [String: Any])
        #expect(eventAttributes["exception.type"] as? String == "DeadlockError" && eventAttributes["api_key"] as? String == Redactor.mask)
        #expect(!d.attributesJSON.contains("sk-live") && !r.attributesJSON.contains("hunter2"))
    }

    /// OTLP/JSON: hex ids, int64 as strings, enums as numbers, lowerCamelCase keys.
    @Test func otlpJSONWithHexIDs() throws {
        let text = """
            {"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"billing"}}]},
             "scopeSpans":[{"scope":{"name":"s"},"spans":[
              {"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","name":"POST /pay","kind":2,
               "startTimeUnixNano":"1796039940000000000","endTimeUnixNano":"1796039940250000000",
               "attributes":[{"key":"http.status_code","value":{"intValue":"402"}},{"key":"ratio","value":{"doubleValue":0.5}}],
               "status":{"code":2,"message":"card declined"}},
              {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b175","parentSpanId":"eee19b7ec3c1b174","name":"charge",
               "kind":"SPAN_KIND_CLIENT","startTimeUnixNano":"1796039940010000000","endTimeUnixNano":"1796039940020000000"}]}]}]}
            """
        let decoded = try Self.json(text)
        #expect(decoded.json && decoded.rejections.isEmpty)
        let spans = decoded.spans
        #expect(spans.map(\.traceID) == ["5b8efff798038103d269b633813fc60c", "5b8efff798038103d269b633813fc60c"])
        #expect(spans.map(\.spanID) == ["eee19b7ec3c1b174", "eee19b7ec3c1b175"])
        #expect(spans[1].parentSpanID == "eee19b7ec3c1b174" && spans[1].transaction == "POST /pay" && !spans[1].isTransaction)
        #expect(spans[0].isError && spans[0].startMicros == 1_796_039_940_000_000 && spans[0].durationMicros == 250_000)
        let attributes = try Self.attributes(spans[0])
        #expect((attributes["http.status_code"] as? NSNumber)?.int64Value == 402 && attributes["ratio"] as? Double == 0.5)
        // protobuf's own JSON mapping writes ids in base64: read as the bytes they are.
        let base64 = #"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"S/kvNXezTaajzpKdDg5HNg==","spanId":"APBnqgupArc=","name":"x"}]}]}]}"#
        let fromBase64 = try Self.json(base64)
        #expect(fromBase64.spans.first?.traceID == Self.trace && fromBase64.spans.first?.spanID == "00f067aa0ba902b7")
        #expect(fromBase64.spans.first?.service == nil && fromBase64.spans.first?.startMicros == Self.received)
    }

    @Test func badIDsAreRefusedOneByOne() throws {
        var short = Self.span("00f067aa0ba902b7", name: "short trace")
        short.traceID = Data(repeating: 1, count: 15)
        let zeroSpan = Self.span("0000000000000000", name: "zero span")
        var badParent = Self.span("00f067aa0ba902b9", name: "bad parent")
        badParent.parentSpanID = Data([1, 2, 3])
        let good = Self.span("00f067aa0ba902ba", name: "good")
        let decoded = try Self.decode(Self.request([short, zeroSpan, badParent, good]))
        #expect(decoded.spans.map(\.name) == ["good"])
        #expect(decoded.rejections.map(\.index) == [0, 1, 2])
        #expect(decoded.rejections[0].reason.contains("traceId") && decoded.rejections[1].reason.contains("spanId")
                && decoded.rejections[2].reason.contains("parentSpanId"))
        // In JSON, ids that are not hex digits.
        let json = #"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"a"},{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b1","name":"b"}]}]}]}"#
        let fromJSON = try Self.json(json)
        #expect(fromJSON.spans.isEmpty && fromJSON.rejections.map(\.index) == [0, 1])
    }

    @Test func limitsHold() throws {
        var limits = IngestLimits()
        limits.maxLinesPerRequest = 2
        let three = Self.request((0..<3).map { Self.span(String(format: "00f067aa0ba902c%d", $0), name: "s\($0)") })
        #expect(throws: OTLPTraces.Failure.tooManySpans(limit: 2)) { try Self.decode(three, limits: limits) }
        limits = IngestLimits()
        limits.maxAttributes = 2
        var crowded = Self.span("00f067aa0ba902b7", name: "crowded")
        crowded.attributes = (0..<3).map { Self.kv("k\($0)", "v") }
        var huge = Self.span("00f067aa0ba902b8", name: "huge")
        huge.attributes = [Self.kv("blob", String(repeating: "x", count: limits.maxLineBytes + 1))]
        var long = Self.span("00f067aa0ba902b9", name: String(repeating: "n", count: 5000))
        long.events = (0..<300).map { i in var e = PSpan.Event(); e.name = "e\(i)"; return e }
        let decoded = try Self.decode(Self.request([crowded, huge, long]), limits: limits)
        #expect(decoded.rejections.map(\.index) == [0, 1])
        #expect(decoded.rejections[0].reason.contains("3 attributes") && decoded.rejections[1].reason.contains("bytes"))
        let kept = try #require(decoded.spans.first)
        #expect(kept.name.utf8.count == OTLPTraces.maxNameBytes)
        var heavy = Self.span("00f067aa0ba902ba", name: "a" + String(repeating: "\u{301}", count: 2000))
        heavy.attributes = [Self.kv("http.request.header.authorization", "Basic dXNlcjpwYXNzd29yZA=="), Self.kv("url.full", "https://h/x?sig=S3CRET")]
        let marks = try #require(try Self.decode(Self.request([heavy]), limits: limits).spans.first)
        #expect(marks.name.utf8.count <= OTLPTraces.maxNameBytes, "one character of 2000 combining marks is cut by its bytes")
        #expect(!marks.attributesJSON.contains("dXNlcjpwYXNzd29yZA==") && !marks.attributesJSON.contains("S3CRET"), "\(marks.attributesJSON)")
        // Review: OpenTelemetry records captured headers as lists of strings, and URLs sit in span
        // events' attributes too.
        var listed = Self.span("00f067aa0ba902bb", name: "GET /")
        var header = Opentelemetry_Proto_Common_V1_KeyValue()
        header.key = "http.request.header.authorization"
        var bearer = Opentelemetry_Proto_Common_V1_AnyValue()
        bearer.stringValue = "Bearer sk-live-0123456789abcdef"
        header.value.arrayValue.values = [bearer]
        listed.attributes = [header]
        var event = PSpan.Event()
        event.name = "redirect"
        event.attributes = [Self.kv("url.full", "https://h/x?token=S3CRET2&page=1")]
        listed.events = [event]
        let masked = try #require(try Self.decode(Self.request([listed]), limits: limits).spans.first)
        #expect(!masked.attributesJSON.contains("sk-live") && !masked.attributesJSON.contains("S3CRET2") && masked.attributesJSON.contains("page=1"),
                "\(masked.attributesJSON)")
        let attributes = try Self.attributes(kept)
        #expect((attributes["events"] as? [Any])?.count == OTLPTraces.maxEvents && attributes["otel.dropped_events"] as? Int == 300 - OTLPTraces.maxEvents)
        #expect(throws: OTLPTraces.Failure.self) { try Self.json("{not otlp") }
        #expect(throws: OTLPTraces.Failure.self) {
            try OTLPTraces.decode([0xff, 0xff, 0xff], contentType: nil, project: "web", limits: IngestLimits(), receivedMicros: Self.received)
        }
    }

    /// A local root: no parent, a SERVER/CONSUMER span, or a remote parent (by the span's flags
    /// when the sender set them, else by the parent not being in the batch under the same service).
    @Test func localRootsFollowFlagsKindAndTheBatch() throws {
        let remoteParent = "1111111111111111"
        var flaggedRemote = Self.span("00f067aa0ba902b7", parent: remoteParent, name: "job")
        flaggedRemote.flags = 0x301
        var flaggedLocal = Self.span("00f067aa0ba902b8", parent: remoteParent, name: "late child")
        flaggedLocal.flags = 0x101
        let unflagged = Self.span("00f067aa0ba902b9", parent: remoteParent, name: "unflagged")
        let consumer = Self.span("00f067aa0ba902ba", parent: "00f067aa0ba902b7", name: "consume", kind: .consumer)
        let decoded = try Self.decode(Self.request([flaggedRemote, flaggedLocal, unflagged, consumer]))
        let byName = Dictionary(uniqueKeysWithValues: decoded.spans.map { ($0.name, $0) })
        #expect(byName["job"]?.isTransaction == true && byName["job"]?.transaction == "job")
        #expect(byName["late child"]?.isTransaction == false && byName["late child"]?.transaction == nil)
        #expect(byName["unflagged"]?.isTransaction == true)
        #expect(byName["consume"]?.isTransaction == true && byName["consume"]?.transaction == "consume")
        // A parent in the batch but of another service: the child starts its service's transaction.
        var upstream = Self.request([Self.span("00f067aa0ba902c1", name: "frontend", kind: .client)], service: "frontend")
        upstream.resourceSpans += Self.request([Self.span("00f067aa0ba902c2", parent: "00f067aa0ba902c1", name: "backend work")], service: "backend").resourceSpans
        let split = try Self.decode(upstream)
        #expect(split.spans.map(\.isTransaction) == [true, true] && split.spans.map(\.transaction) == ["frontend", "backend work"])
        // A cycle of parents in one batch ends; its spans get no transaction.
        let a = Self.span("00f067aa0ba902d1", parent: "00f067aa0ba902d2", name: "a"), b = Self.span("00f067aa0ba902d2", parent: "00f067aa0ba902d1", name: "b")
        let cycle = try Self.decode(Self.request([a, b]))
        #expect(cycle.spans.map(\.isTransaction) == [false, false] && cycle.spans.map(\.transaction) == [nil, nil])
    }

    /// The typed JSON answer is the message SwiftProtobuf writes; the protobuf answer decodes.
    @Test func theAnswerIsExportTraceServiceResponse() throws {
        func protobufJSON(_ rejected: Int, _ message: String) throws -> NSDictionary {
            try #require(try JSONSerialization.jsonObject(with: Data(OTLPTraces.response(rejected: rejected, message: message, json: true))) as? NSDictionary)
        }
        func typed(_ value: OTLPTracesExportResponse) throws -> NSDictionary {
            try #require(try JSONSerialization.jsonObject(with: try APIJSON.encode(value)) as? NSDictionary)
        }
        #expect(try typed(OTLPTracesExportResponse()) == protobufJSON(0, ""))
        let partial = OTLPTracesExportResponse(partialSuccess: .init(rejected: 2, errorMessage: "span 0: x"))
        #expect(try typed(partial) == protobufJSON(2, "span 0: x"))
        let binary = try Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse(serializedBytes: OTLPTraces.response(rejected: 3, message: "m", json: false))
        #expect(binary.partialSuccess.rejectedSpans == 3 && binary.partialSuccess.errorMessage == "m")
        let number = try APIJSON.decode(OTLPTracesExportResponse.self, from: Data(#"{"partialSuccess":{"rejectedSpans":2}}"#.utf8))
        #expect(number.partialSuccess == .init(rejected: 2, errorMessage: ""))
    }

    /// What the exporter sends reads back as the same spans.
    @Test func exportEncodingRoundTrips() throws {
        let spans = [
            Span(traceID: Self.trace, spanID: "00f067aa0ba902b7", project: "gatehouse", source: .gateway, service: "gatehouse", name: "chat gpt-4o",
                 op: "chat", transaction: "chat gpt-4o", isTransaction: true, startMicros: 1_796_039_940_000_000, durationMicros: 1500,
                 status: "deadline_exceeded", isError: true, correlationID: "req-1",
                 attributesJSON: #"{"gen_ai.usage.input_tokens":12,"gen_ai.request.temperature":0.5,"gatehouse.cache_hit":false,"tags":["a","b"],"nested":{"k":"v"}}"#),
            Span(traceID: Self.trace, spanID: "00f067aa0ba902b8", parentSpanID: "00f067aa0ba902b7", project: "web", source: .otlp, service: "shop",
                 name: "SELECT", op: "client", isTransaction: false, startMicros: 1_796_039_940_000_100, durationMicros: 20, environment: "prod",
                 release: "1.0"),
        ]
        let bytes = try OTLPTraceEncoding.request(spans).serializedBytes() as [UInt8]
        let back = try OTLPTraces.decode(bytes, contentType: "application/x-protobuf", project: "p", limits: IngestLimits(), receivedMicros: Self.received)
        #expect(back.rejections.isEmpty)
        #expect(back.spans.map(\.traceID) == spans.map(\.traceID) && back.spans.map(\.spanID) == spans.map(\.spanID))
        #expect(back.spans.map(\.parentSpanID) == spans.map(\.parentSpanID) && back.spans.map(\.name) == spans.map(\.name))
        #expect(back.spans.map(\.startMicros) == spans.map(\.startMicros) && back.spans.map(\.durationMicros) == spans.map(\.durationMicros))
        #expect(back.spans.map(\.isError) == [true, false] && back.spans.map(\.op) == ["client", "client"])
        #expect(back.spans.map(\.service) == ["gatehouse", "shop"] && back.spans[1].environment == "prod" && back.spans[1].release == "1.0")
        let a = try Self.attributes(back.spans[0])
        #expect((a["gen_ai.usage.input_tokens"] as? NSNumber)?.int64Value == 12 && a["gen_ai.request.temperature"] as? Double == 0.5)
        #expect(a["gatehouse.cache_hit"] as? Bool == false && a["tags"] as? [String] == ["a", "b"] && (a["nested"] as? [String: Any])?["k"] as? String == "v")
        #expect(a["gatehouse.project"] as? String == "gatehouse" && a["gatehouse.source"] as? String == "gateway")
        #expect(a["otel.status_description"] as? String == "deadline_exceeded")
    }

    /// Random bytes and damaged exports never crash the decoder; whatever it returns is well formed.
    @Test func randomAndDamagedInputNeverCrash() throws {
        var rng = SplitMix64(seed: 0x6174_6568_6f75_7365)
        var good = Self.span("00f067aa0ba902b7", name: "GET /", kind: .server)
        good.attributes = [Self.kv("k", "v")]
        var event = PSpan.Event()
        event.name = "e"
        good.events = [event]
        let valid: [UInt8] = try Self.request([good, Self.span("00f067aa0ba902b8", parent: "00f067aa0ba902b7", name: "child")]).serializedBytes()
        let validJSON: [UInt8] = try Self.request([good]).jsonUTF8Bytes()
        func check(_ input: [UInt8], _ contentType: String) {
            guard let decoded = try? OTLPTraces.decode(input, contentType: contentType, project: "p", limits: IngestLimits(), receivedMicros: Self.received)
            else { return }
            for span in decoded.spans {
                #expect(TraceParent.isID(span.traceID, digits: 32) && TraceParent.isID(span.spanID, digits: 16))
                #expect(span.parentSpanID.map { TraceParent.isID($0, digits: 16) } ?? true)
                #expect(span.durationMicros >= 0)
                #expect((try? JSONSerialization.jsonObject(with: Data(span.attributesJSON.utf8))) is [String: Any])
            }
        }
        for round in 0..<3000 {
            let length = Int(rng.next() % 300)
            check((0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, round % 2 == 0 ? "application/x-protobuf" : "application/json")
            var damaged = round % 2 == 0 ? valid : validJSON
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let at = Int(rng.next() % UInt64(damaged.count))
                switch rng.next() % 3 {
                case 0: damaged[at] = UInt8(truncatingIfNeeded: rng.next())
                case 1: damaged.remove(at: at)
                default: damaged.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                }
            }
            check(damaged, round % 2 == 0 ? "application/x-protobuf" : "application/json")
        }
        // Deeply nested attribute values (kvlist in kvlist…) stay within the reader's depth limit.
        var value = Opentelemetry_Proto_Common_V1_AnyValue()
        value.stringValue = "leaf"
        for _ in 0..<200 {
            var list = Opentelemetry_Proto_Common_V1_KeyValueList()
            var kv = Opentelemetry_Proto_Common_V1_KeyValue()
            kv.key = "k"
            kv.value = value
            list.values = [kv]
            value = Opentelemetry_Proto_Common_V1_AnyValue()
            value.kvlistValue = list
        }
        var deep = Self.span("00f067aa0ba902b7", name: "deep")
        var deepKV = Opentelemetry_Proto_Common_V1_KeyValue()
        deepKV.key = "deep"
        deepKV.value = value
        deep.attributes = [deepKV]
        check(try Self.request([deep]).serializedBytes() as [UInt8], "application/x-protobuf")
    }
}

/// A small seeded generator, so a failing round can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E4B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
