import Foundation
import GatehouseAPI
import GatehouseCore
import HTTPTypes
import Hummingbird
import NIOCore

/// Gatehouse's own error responses, in the format the caller's SDK understands: OpenAI's
/// `{"error": {...}}` on OpenAI routes, Anthropic's `{"type": "error", ...}` on `/v1/messages`,
/// and OpenAI's shape on Gatehouse's own API.
public struct GatewayError: Error, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    /// OpenAI's `type` (`invalid_request_error`, `rate_limit_error`, …); mapped for Anthropic.
    public var type: String
    public var code: String?
    public var param: String?
    public var retryAfterSeconds: Int?

    public init(status: HTTPResponse.Status, message: String, type: String, code: String? = nil, param: String? = nil,
                retryAfterSeconds: Int? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.retryAfterSeconds = retryAfterSeconds
    }

    public static func invalidRequest(_ message: String, param: String? = nil, code: String? = nil) -> GatewayError {
        GatewayError(status: .badRequest, message: message, type: "invalid_request_error", code: code, param: param)
    }

    public static func notFound(_ message: String, code: String = "not_found") -> GatewayError {
        GatewayError(status: .notFound, message: message, type: "not_found_error", code: code)
    }

    public static func tooLarge(limit: Int) -> GatewayError {
        GatewayError(status: .contentTooLarge, message: "request body is larger than the limit of \(limit) bytes", type: "invalid_request_error",
                     code: "request_too_large")
    }

    public static func upstreamUnavailable(_ message: String, status: HTTPResponse.Status = .badGateway) -> GatewayError {
        GatewayError(status: status, message: message, type: "api_error", code: "upstream_unavailable")
    }

    public static func internalError(_ message: String = "internal error") -> GatewayError {
        GatewayError(status: .internalServerError, message: message, type: "api_error", code: "internal_error")
    }

    /// Anthropic's error types for the same conditions.
    var anthropicType: String {
        switch status.code {
        case 400, 413: return status.code == 413 ? "request_too_large" : "invalid_request_error"
        case 401: return "authentication_error"
        case 403: return "permission_error"
        case 404: return "not_found_error"
        case 429: return "rate_limit_error"
        case 529: return "overloaded_error"
        default: return "api_error"
        }
    }

    /// The error as Gatehouse's own API writes it (OpenAI's shape).
    public var body: APIErrorBody { APIErrorBody(.init(message: message, type: type, param: param, code: code)) }

    public func response(dialect: APIDialect) -> Response {
        let data: Data
        switch dialect {
        case .openAI:
            data = (try? APIJSON.encode(body)) ?? Data("{}".utf8)
        case .anthropic:
            let object = ["type": "error", "error": ["type": anthropicType, "message": message]] as [String: Any]
            data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        }
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfterSeconds { headers[.retryAfter] = String(retryAfterSeconds) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// JSON responses for Gatehouse's own API.
public enum JSONResponse {
    /// Encodes one of the API's `Codable` answer types (GatehouseAPI) with the API's encoder.
    public static func make<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        do {
            let data = try APIJSON.encode(value)
            return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        } catch {
            return GatewayError.internalError("the answer could not be encoded").response(dialect: .openAI)
        }
    }
}
