import Foundation
import GatehouseCore
import SwiftProtobuf

/// OTLP/HTTP logs (`POST /v1/logs`), protobuf or JSON, as OpenTelemetry SDKs send them at their
/// defaults. Each OTLP log record is mapped onto the fields `/api/v1/logs` reads and then goes
/// through the same reader, so limits, slow-operation flags and masking are the same.
enum OTLPLogs {
    struct Decoded {
        var result: LogIngest.Result
        /// JSON in, JSON out; protobuf otherwise.
        var json: Bool
    }

    enum Failure: Error, CustomStringConvertible {
        case undecodable(String)
        case tooManyLines(limit: Int)
        var description: String {
            switch self {
            case .undecodable(let why): "not an OTLP ExportLogsServiceRequest: \(why)"
            case .tooManyLines(let limit): "the request holds more than \(limit) log records; send smaller batches"
            }
        }
    }

    static func decode(_ body: [UInt8], contentType: String?, parser: LogIngest, project: String, receivedMicros: Int64) throws(Failure) -> Decoded {
        let json = contentType?.lowercased().contains("json") == true
        let request: Opentelemetry_Proto_Collector_Logs_V1_ExportLogsServiceRequest
        do {
            request = try OTLPBody.decode(body, json: json)
        } catch {
            throw .undecodable("\(error)")
        }
        var result = LogIngest.Result()
        var index = 0
        for resourceLogs in request.resourceLogs {
            let resource = attributes(resourceLogs.resource.attributes)
            for scopeLogs in resourceLogs.scopeLogs {
                for record in scopeLogs.logRecords {
                    guard index < parser.limits.maxLinesPerRequest else { throw .tooManyLines(limit: parser.limits.maxLinesPerRequest) }
                    var object = attributes(record.attributes)
                    // The event's time, else when the SDK saw it; neither: the time received.
                    if let nanos = [record.timeUnixNano, record.observedTimeUnixNano].first(where: { $0 != 0 }) {
                        object["timestamp"] = NSNumber(value: nanos)
                    }
                    object["level"] = record.severityNumber.rawValue > 0 ? LogLevel(openTelemetrySeverity: record.severityNumber.rawValue).rawValue
                        : (record.severityText.isEmpty ? "info" : record.severityText)
                    if record.hasBody { object["message"] = value(record.body) }
                    object["service"] = resource["service.name"]
                    object["environment"] = resource["deployment.environment.name"] ?? resource["deployment.environment"]
                    if object["function"] == nil { object["function"] = object["code.function.name"] ?? object["code.function"] }
                    if object["correlationId"] == nil && object["requestId"] == nil && !record.traceID.isEmpty && record.traceID.contains(where: { $0 != 0 }) {
                        // JSON carries ids as hex, which the protobuf JSON reader took for base64: re-encoding gives the hex back.
                        object["trace_id"] = json ? record.traceID.base64EncodedString() : Hex.encode(record.traceID)
                    }
                    if !scopeLogs.scope.name.isEmpty { object["otel.scope"] = scopeLogs.scope.name }
                    let others = resource.filter { !["service.name", "deployment.environment", "deployment.environment.name"].contains($0.key) }
                    if !others.isEmpty { object["resource"] = others }
                    do {
                        result.lines.append(try parser.record(object, project: project, received: receivedMicros))
                    } catch {
                        result.rejections.append(.init(index: index, reason: error.reason))
                    }
                    index += 1
                }
            }
        }
        return Decoded(result: result, json: json)
    }

    /// The response OTLP expects, with `partial_success` when some records were refused.
    static func response(rejected: Int, message: String, json: Bool) -> [UInt8] {
        var response = Opentelemetry_Proto_Collector_Logs_V1_ExportLogsServiceResponse()
        if rejected > 0 {
            response.partialSuccess.rejectedLogRecords = Int64(rejected)
            response.partialSuccess.errorMessage = message
        }
        return (json ? try? response.jsonUTF8Bytes() : try? response.serializedBytes()) ?? []
    }

    static func attributes(_ list: [Opentelemetry_Proto_Common_V1_KeyValue]) -> [String: Any] {
        var object: [String: Any] = [:]
        for kv in list where kv.hasValue { object[kv.key] = value(kv.value) }
        return object
    }

    static func value(_ v: Opentelemetry_Proto_Common_V1_AnyValue) -> Any {
        switch v.value {
        case .stringValue(let s): s
        case .boolValue(let b): b
        case .intValue(let i): NSNumber(value: i)
        case .doubleValue(let d): d.isFinite ? NSNumber(value: d) : String(d)
        case .arrayValue(let a): a.values.map(value)
        case .kvlistValue(let kv): attributes(kv.values)
        case .bytesValue(let data): data.base64EncodedString()
        case .stringValueStrindex(let i): "#\(i)"
        case nil: NSNull()
        }
    }
}
