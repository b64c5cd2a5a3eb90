import Foundation
import GatehouseCore
import SwiftProtobuf

/// OTLP/HTTP traces (`POST /v1/traces`), protobuf or JSON, as OpenTelemetry SDKs send them:
/// bytes in, `Span`s and per-span rejections out. Pure; the route (`IngestRoutes+Traces`)
/// authenticates, queues and answers.
enum OTLPTraces {
    struct Rejection: Equatable {
        /// The span's position in the request, counting every span of every resource and scope.
        var index: Int
        var reason: String
    }

    struct Decoded {
        var spans: [Span] = []
        var rejections: [Rejection] = []
        /// JSON in, JSON out; protobuf otherwise.
        var json = false
    }

    enum Failure: Error, CustomStringConvertible, Equatable {
        case undecodable(String)
        case tooManySpans(limit: Int)
        var description: String {
            switch self {
            case .undecodable(let why): "not an OTLP ExportTraceServiceRequest: \(why)"
            case .tooManySpans(let limit): "the request holds more than \(limit) spans; send smaller batches"
            }
        }
    }

    /// Longest span name, service, environment and release kept, in UTF-8 bytes (longer ones
    /// are cut): one character may be any number of combining marks, and these are indexed.
    static let maxNameBytes = 512
    /// Events and links kept per span; the rest are counted (`otel.dropped_events`, `otel.dropped_links`).
    static let maxEvents = 128
    static let maxLinks = 32
    /// How far up a parent chain a span's transaction is looked for.
    static let maxAncestry = 256

    /// A span read from the request, before its transaction is known.
    private struct Read {
        var span: Span
        /// OTel's kind marks a local root by itself: a SERVER or CONSUMER span starts a transaction.
        var entry: Bool
        /// From the span's flags (OTLP 1.1+): nil when the sender did not say whether the parent is remote.
        var parentIsRemote: Bool?
    }

    static func decode(_ body: [UInt8], contentType: String?, project: String, limits: IngestLimits,
                       receivedMicros: Int64) throws(Failure) -> Decoded {
        let json = contentType?.lowercased().contains("json") == true
        let request: Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest
        do {
            request = try OTLPBody.decode(body, json: json)
        } catch {
            throw .undecodable("\(error)")
        }
        var decoded = Decoded(json: json)
        var read: [(index: Int, read: Read)] = []
        var index = 0
        for resourceSpans in request.resourceSpans {
            let resource = OTLPLogs.attributes(resourceSpans.resource.attributes)
            for scopeSpans in resourceSpans.scopeSpans {
                for span in scopeSpans.spans {
                    guard index < limits.maxLinesPerRequest else { throw .tooManySpans(limit: limits.maxLinesPerRequest) }
                    do throws(Invalid) {
                        read.append((index, try self.read(span, scope: scopeSpans.scope, resource: resource, json: json, project: project,
                                                          limits: limits, receivedMicros: receivedMicros)))
                    } catch {
                        decoded.rejections.append(Rejection(index: index, reason: error.reason))
                    }
                    index += 1
                }
            }
        }
        decoded.spans = withTransactions(read.map(\.read))
        return decoded
    }

    struct Invalid: Error {
        var reason: String
    }

    private static func read(_ span: Opentelemetry_Proto_Trace_V1_Span, scope: Opentelemetry_Proto_Common_V1_InstrumentationScope,
                             resource: [String: Any], json: Bool, project: String, limits: IngestLimits, receivedMicros: Int64) throws(Invalid) -> Read {
        guard let traceID = id(span.traceID, bytes: 16, json: json) else {
            throw Invalid(reason: "traceId must be 16 bytes, not all zero (32 hex digits in JSON)")
        }
        guard let spanID = id(span.spanID, bytes: 8, json: json) else {
            throw Invalid(reason: "spanId must be 8 bytes, not all zero (16 hex digits in JSON)")
        }
        var parentSpanID: String?
        if !span.parentSpanID.isEmpty {
            guard let parent = id(span.parentSpanID, bytes: 8, json: json) else {
                throw Invalid(reason: "parentSpanId must be empty or 8 bytes, not all zero (16 hex digits in JSON)")
            }
            parentSpanID = parent
        }
        guard span.attributes.count <= limits.maxAttributes else {
            throw Invalid(reason: "the span has \(span.attributes.count) attributes; at most \(limits.maxAttributes) are accepted")
        }
        var object = OTLPLogs.attributes(span.attributes)
        let service = (resource["service.name"] as? String).map(cut)
        let environment = ((resource["deployment.environment.name"] ?? resource["deployment.environment"]) as? String).map(cut)
        let release = (resource["service.version"] as? String).map(cut)
        let others = resource.filter { !["service.name", "deployment.environment", "deployment.environment.name", "service.version"].contains($0.key) }
        if !others.isEmpty { object["resource"] = others }
        if !scope.name.isEmpty { object["otel.scope.name"] = scope.name }
        if !scope.version.isEmpty { object["otel.scope.version"] = scope.version }
        if !span.traceState.isEmpty { object["otel.trace_state"] = span.traceState }
        if span.hasStatus, !span.status.message.isEmpty { object["otel.status_description"] = span.status.message }
        if !span.events.isEmpty {
            object["events"] = span.events.prefix(maxEvents).map { event -> [String: Any] in
                var e: [String: Any] = ["name": event.name, "time_unix_micros": NSNumber(value: event.timeUnixNano / 1000)]
                if !event.attributes.isEmpty { e["attributes"] = OTLPLogs.attributes(event.attributes) }
                return e
            }
        }
        let droppedEvents = max(0, span.events.count - maxEvents) + Int(span.droppedEventsCount)
        if droppedEvents > 0 { object["otel.dropped_events"] = droppedEvents }
        if !span.links.isEmpty {
            object["links"] = span.links.prefix(maxLinks).map { link -> [String: Any] in
                var l: [String: Any] = ["trace_id": id(link.traceID, bytes: 16, json: json) ?? "", "span_id": id(link.spanID, bytes: 8, json: json) ?? ""]
                if !link.attributes.isEmpty { l["attributes"] = OTLPLogs.attributes(link.attributes) }
                return l
            }
        }
        let droppedLinks = max(0, span.links.count - maxLinks) + Int(span.droppedLinksCount)
        if droppedLinks > 0 { object["otel.dropped_links"] = droppedLinks }
        if span.droppedAttributesCount > 0 { object["otel.dropped_attributes"] = Int(span.droppedAttributesCount) }

        let attributesJSON = LogIngest.json(Redactor.redactAttributes(LogIngest.withoutNUL(object) as? [String: Any] ?? [:]))
        guard attributesJSON.utf8.count <= limits.maxLineBytes else {
            throw Invalid(reason: "the span's attributes, events and links take more than \(limits.maxLineBytes) bytes")
        }
        // The span's own start, unless missing or far in the future; then when it arrived.
        let start = span.startTimeUnixNano == 0 ? receivedMicros
            : LogIngest.acceptedTimestamp(Int64(span.startTimeUnixNano / 1000), received: receivedMicros)
        let duration = span.endTimeUnixNano > span.startTimeUnixNano && span.startTimeUnixNano != 0
            ? Int64((span.endTimeUnixNano - span.startTimeUnixNano) / 1000) : 0
        let failed = span.hasStatus && span.status.code == .error
        let correlation = CorrelationID.attributeKeys.lazy
            .compactMap { object[$0] as? String }.first { CorrelationID.isAcceptable($0) }
        let name = span.name.isEmpty ? "(unnamed)" : cut(span.name)
        let result = Span(traceID: traceID, spanID: spanID, parentSpanID: parentSpanID, project: project, source: .otlp, service: service,
                          name: Redactor.scrubText(name), op: kind(span.kind), transaction: nil, isTransaction: false, startMicros: start,
                          durationMicros: duration, status: failed ? "error" : "ok", isError: failed, environment: environment, release: release,
                          correlationID: correlation ?? traceID, attributesJSON: attributesJSON)
        // SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK (0x100) says whether bit 0x200 (IS_REMOTE) is meaningful.
        let parentIsRemote: Bool? = span.flags & 0x100 != 0 ? span.flags & 0x200 != 0 : nil
        return Read(span: result, entry: span.kind == .server || span.kind == .consumer, parentIsRemote: parentIsRemote)
    }

    /// Marks each span's local root and names its transaction. A span is a transaction when it
    /// has no parent, its parent is remote (by its flags, else by not being in this batch under
    /// the same service), or it is a SERVER or CONSUMER span; every other span belongs to the
    /// transaction of the nearest such ancestor in the batch.
    private static func withTransactions(_ read: [Read]) -> [Span] {
        struct Key: Hashable {
            var trace: String
            var span: String
        }
        var byID: [Key: Int] = [:]
        for (i, r) in read.enumerated() { byID[Key(trace: r.span.traceID, span: r.span.spanID)] = byID[Key(trace: r.span.traceID, span: r.span.spanID)] ?? i }
        func localParent(_ i: Int) -> Int? {
            guard let parentID = read[i].span.parentSpanID, let parent = byID[Key(trace: read[i].span.traceID, span: parentID)],
                  read[parent].span.service == read[i].span.service else { return nil }
            return parent
        }
        let isRoot = read.indices.map { i -> Bool in
            let r = read[i]
            if r.entry || r.span.parentSpanID == nil { return true }
            if let remote = r.parentIsRemote { return remote }
            return localParent(i) == nil
        }
        return read.indices.map { i in
            var span = read[i].span
            span.isTransaction = isRoot[i]
            var current = i, steps = 0
            while !isRoot[current], steps < maxAncestry, let parent = localParent(current) {
                current = parent
                steps += 1
            }
            span.transaction = isRoot[current] ? read[current].span.name : nil
            return span
        }
    }

    /// An id as lowercase hex. OTLP/JSON writes ids as hex, which protobuf's JSON reader took
    /// for base64 (32 hex digits → 24 bytes): encoding those bytes again gives the hex back. A
    /// JSON sender that wrote base64 (protobuf's own mapping) gives the raw bytes.
    static func id(_ data: Data, bytes: Int, json: Bool) -> String? {
        if json, data.count == bytes * 3 / 2 {
            let text = data.base64EncodedString().lowercased()
            return TraceParent.isID(text, digits: bytes * 2) ? text : nil
        }
        guard data.count == bytes, data.contains(where: { $0 != 0 }) else { return nil }
        return Hex.encode(data)
    }

    /// OTel's span kind as the span's `op`.
    static func kind(_ kind: Opentelemetry_Proto_Trace_V1_Span.SpanKind) -> String? {
        switch kind {
        case .internal: "internal"
        case .server: "server"
        case .client: "client"
        case .producer: "producer"
        case .consumer: "consumer"
        default: nil
        }
    }

    private static func cut(_ text: String) -> String {
        guard text.utf8.count > maxNameBytes else { return text }
        // Whole characters that fit: a cut character would be a replacement mark.
        var bytes = 0
        return String(text.prefix { bytes += $0.utf8.count; return bytes <= maxNameBytes })
    }

    /// The response OTLP expects, with `partial_success` when some spans were refused.
    static func response(rejected: Int, message: String, json: Bool) -> [UInt8] {
        var response = Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse()
        if rejected > 0 {
            response.partialSuccess.rejectedSpans = Int64(rejected)
            response.partialSuccess.errorMessage = message
        }
        return (json ? try? response.jsonUTF8Bytes() : try? response.serializedBytes()) ?? []
    }
}
