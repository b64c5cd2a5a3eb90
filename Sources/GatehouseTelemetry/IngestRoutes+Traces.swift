import GatehouseAPI
import GatehouseCore
import GatehouseHTTP
import HTTPTypes
import Hummingbird
import NIOCore

/// OTLP/HTTP traces in (`POST /v1/traces`): the project's ingest key, body limits and
/// decompression as `/v1/logs`; spans go to `acceptSpans` without waiting on the store.
extension IngestRoutes {
    func ingestOTLPTraces(_ request: Request) async -> Response {
        let project: String, body: [UInt8]
        do {
            project = try logProject(request)
            body = try await Self.body(request, limit: settings.limits.maxBodyBytes)
        } catch {
            return error.response
        }
        let decoded: OTLPTraces.Decoded
        do {
            let limits = settings.limits, contentType = request.headers[.contentType], received = TimeExpressions.nowMicros()
            decoded = try await IngestWork.run { () throws(OTLPTraces.Failure) -> OTLPTraces.Decoded in
                try OTLPTraces.decode(body, contentType: contentType, project: project, limits: limits, receivedMicros: received)
            }
        } catch {
            if case .tooManySpans = error { return Self.error(.contentTooLarge, error.description, code: "request_too_large") }
            return Self.error(.badRequest, error.description, code: "invalid_body")
        }
        let taken = decoded.spans.isEmpty ? 0 : acceptSpans(decoded.spans)
        if taken == 0 && !decoded.spans.isEmpty {
            var response = Self.error(.serviceUnavailable, "the ingest queue is full; send the batch again", code: "ingest_queue_full")
            response.headers[HTTPField.Name("Retry-After")!] = "1"
            return response
        }
        // The queue took the first `taken` spans: the rest are refused with the invalid ones.
        let notTaken = decoded.spans.count - taken
        let rejected = decoded.rejections.count + notTaken
        TelemetryMetrics.otlpSpansAccepted(project, taken)
        TelemetryMetrics.otlpSpansRejected(project, rejected)
        var reasons = decoded.rejections.prefix(5).map { "span \($0.index): \($0.reason)" }
        if notTaken > 0 { reasons.insert("the ingest queue is full: \(notTaken) valid spans were not taken", at: 0) }
        let message = reasons.joined(separator: "; ")
        if decoded.json {
            return JSONResponse.make(OTLPTracesExportResponse(
                partialSuccess: rejected == 0 ? nil : .init(rejected: Int64(rejected), errorMessage: message)))
        }
        let bytes = OTLPTraces.response(rejected: rejected, message: message, json: false)
        return Response(status: .ok, headers: [.contentType: "application/x-protobuf"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
