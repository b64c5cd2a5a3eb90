import AsyncHTTPClient
import Foundation
import GatehouseCore
import Logging
import NIOCore
import NIOHTTP1

/// Sends batches of spans to an OpenTelemetry collector or vendor (`telemetry.otlp_export`) as
/// OTLP/HTTP protobuf. The server queues spans in a bounded recorder that calls `export` with
/// one batch at a time; `export` never throws: a batch is retried with backoff while the
/// endpoint answers 429, 502, 503, 504 or cannot be reached, then given up and counted, so a
/// collector that is down never holds up the store or the gateway.
public struct OTLPTraceExporter: Sendable {
    let settings: OTLPExportSettings
    let client: HTTPClient
    let logger: Logger
    let maxAttempts: Int
    let initialBackoff: Duration

    public init(settings: OTLPExportSettings, client: HTTPClient, logger: Logger, maxAttempts: Int = 4,
                initialBackoff: Duration = .milliseconds(250)) {
        self.settings = settings
        self.client = client
        self.logger = logger
        self.maxAttempts = max(1, maxAttempts)
        self.initialBackoff = initialBackoff
    }

    /// The longest one `export` can take: every attempt to its timeout and every backoff at
    /// its 5 s ceiling, and a second to spare. Its queue's write deadline must be at least this,
    /// or the queue would give up on a batch still being tried and send it again.
    public var longestExport: Duration {
        .nanoseconds(Int64(settings.timeoutSeconds * 1_000_000_000)) * maxAttempts + .seconds(5) * (maxAttempts - 1) + .seconds(1)
    }

    public func export(_ spans: [Span]) async {
        guard !spans.isEmpty else { return }
        let body: [UInt8]
        do {
            body = try OTLPTraceEncoding.request(spans).serializedBytes()
        } catch {
            return giveUp(spans.count, "the spans could not be encoded: \(error)")
        }
        var backoff = Backoff(initial: initialBackoff, maximum: .seconds(5))
        for attempt in 1...maxAttempts {
            let outcome = await send(body)
            switch outcome {
            case .sent:
                TelemetryMetrics.exportRequest("ok")
                TelemetryMetrics.exportedSpans("sent", spans.count)
                return
            case .refused(let why):
                TelemetryMetrics.exportRequest("failed")
                return giveUp(spans.count, why)
            case .retry(let why):
                guard attempt < maxAttempts, !Task.isCancelled else {
                    TelemetryMetrics.exportRequest("failed")
                    return giveUp(spans.count, why)
                }
                TelemetryMetrics.exportRequest("retry")
                try? await Task.sleep(for: backoff.next())
            }
        }
    }

    enum Outcome: Equatable {
        case sent
        case retry(String)
        case refused(String)
    }

    func send(_ body: [UInt8]) async -> Outcome {
        var request = HTTPClientRequest(url: settings.tracesURL)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/x-protobuf")
        for (name, value) in settings.headers { request.headers.replaceOrAdd(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(request, timeout: .nanoseconds(Int64(settings.timeoutSeconds * 1_000_000_000)))
            // Read (a little of) the answer so the connection can be reused; its content is not needed.
            _ = try? await response.body.collect(upTo: 64 * 1024)
            let status = Int(response.status.code)
            switch status {
            case 200..<300: return .sent
            // OTLP/HTTP's retryable answers.
            case 429, 502, 503, 504: return .retry("the endpoint answered \(status)")
            default: return .refused("the endpoint answered \(status)")
            }
        } catch {
            // Not the URL or headers: either may carry a credential.
            return .retry("the endpoint could not be reached: \(Redactor.scrubText(String(describing: error)))")
        }
    }

    private func giveUp(_ count: Int, _ why: String) {
        TelemetryMetrics.exportedSpans("dropped", count)
        logger.warning("OTLP export failed; spans dropped", metadata: ["spans": "\(count)", "reason": "\(why)"])
    }
}

/// Spans as an OTLP `ExportTraceServiceRequest`: one resource per service (and environment and
/// release), attributes back from their JSON text.
enum OTLPTraceEncoding {
    static func request(_ spans: [Span]) -> Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest {
        struct ResourceKey: Hashable {
            var service: String?
            var environment: String?
            var release: String?
        }
        var order: [ResourceKey] = []
        var grouped: [ResourceKey: [Opentelemetry_Proto_Trace_V1_Span]] = [:]
        for span in spans {
            let key = ResourceKey(service: span.service, environment: span.environment, release: span.release)
            if grouped[key] == nil { order.append(key) }
            grouped[key, default: []].append(message(span))
        }
        var request = Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceRequest()
        request.resourceSpans = order.map { key in
            var resource = Opentelemetry_Proto_Trace_V1_ResourceSpans()
            var attributes: [Opentelemetry_Proto_Common_V1_KeyValue] = []
            if let service = key.service { attributes.append(keyValue("service.name", service)) }
            if let environment = key.environment { attributes.append(keyValue("deployment.environment.name", environment)) }
            if let release = key.release { attributes.append(keyValue("service.version", release)) }
            resource.resource.attributes = attributes
            var scope = Opentelemetry_Proto_Trace_V1_ScopeSpans()
            scope.scope.name = "gatehouse"
            scope.spans = grouped[key] ?? []
            resource.scopeSpans = [scope]
            return resource
        }
        return request
    }

    static func message(_ span: Span) -> Opentelemetry_Proto_Trace_V1_Span {
        var m = Opentelemetry_Proto_Trace_V1_Span()
        m.traceID = Data(bytes(hex: span.traceID))
        m.spanID = Data(bytes(hex: span.spanID))
        if let parent = span.parentSpanID { m.parentSpanID = Data(bytes(hex: parent)) }
        m.name = span.name
        m.kind = switch span.op {
        case "server": .server
        case "client": .client
        case "producer": .producer
        case "consumer": .consumer
        case "internal": .internal
        // A gateway call is a call out to a model: a CLIENT span, as GenAI's conventions have it.
        default: span.source == .gateway ? .client : .internal
        }
        let start = UInt64(max(0, span.startMicros)).multipliedReportingOverflow(by: 1000)
        m.startTimeUnixNano = start.overflow ? 0 : start.partialValue
        let end = m.startTimeUnixNano.addingReportingOverflow(UInt64(max(0, span.durationMicros)).multipliedReportingOverflow(by: 1000).partialValue)
        m.endTimeUnixNano = end.overflow ? m.startTimeUnixNano : end.partialValue
        if span.isError {
            m.status.code = .error
            m.status.message = span.status
        }
        var attributes: [Opentelemetry_Proto_Common_V1_KeyValue] = []
        if let object = JSONDecoderBridge.object(Array(span.attributesJSON.utf8)) as? [String: Any] {
            for key in object.keys.sorted() {
                guard let value = object[key] else { continue }
                var kv = Opentelemetry_Proto_Common_V1_KeyValue()
                kv.key = key
                kv.value = anyValue(value, depth: 0)
                attributes.append(kv)
            }
        }
        attributes.append(keyValue("gatehouse.project", span.project))
        attributes.append(keyValue("gatehouse.source", span.source.rawValue))
        if let correlation = span.correlationID { attributes.append(keyValue("gatehouse.correlation_id", correlation)) }
        m.attributes = attributes
        return m
    }

    static func keyValue(_ key: String, _ value: String) -> Opentelemetry_Proto_Common_V1_KeyValue {
        var kv = Opentelemetry_Proto_Common_V1_KeyValue()
        kv.key = key
        kv.value.stringValue = value
        return kv
    }

    /// A JSON value (from JSONSerialization) as an OTLP `AnyValue`; nesting past 32 levels is written as text.
    static func anyValue(_ value: Any, depth: Int) -> Opentelemetry_Proto_Common_V1_AnyValue {
        var v = Opentelemetry_Proto_Common_V1_AnyValue()
        if depth >= 32 { v.stringValue = "\(value)"; return v }
        switch value {
        case let s as String: v.stringValue = s
        case let n as NSNumber where isBoolean(n): v.boolValue = n.boolValue
        case let n as NSNumber:
            // JSONSerialization reads a number with a fraction or exponent as a double ("d").
            let type = String(cString: n.objCType)
            if type == "d" || type == "f" { v.doubleValue = n.doubleValue } else { v.intValue = n.int64Value }
        case let a as [Any]:
            var array = Opentelemetry_Proto_Common_V1_ArrayValue()
            array.values = a.map { anyValue($0, depth: depth + 1) }
            v.arrayValue = array
        case let o as [String: Any]:
            var list = Opentelemetry_Proto_Common_V1_KeyValueList()
            list.values = o.keys.sorted().map { key in
                var kv = Opentelemetry_Proto_Common_V1_KeyValue()
                kv.key = key
                kv.value = anyValue(o[key] as Any, depth: depth + 1)
                return kv
            }
            v.kvlistValue = list
        default: break
        }
        return v
    }

    /// Lowercase or uppercase hex to bytes (ids are validated hex before they are spans).
    static func bytes(hex: String) -> [UInt8] {
        func nibble(_ c: UInt8) -> UInt8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: 0
            }
        }
        let utf8 = Array(hex.utf8)
        return stride(from: 0, to: utf8.count - 1, by: 2).map { nibble(utf8[$0]) << 4 | nibble(utf8[$0 + 1]) }
    }
}
