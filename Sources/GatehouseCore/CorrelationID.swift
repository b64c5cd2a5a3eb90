import Foundation
import Logging

/// The id that ties one request's logs, errors and AI call together.
public enum CorrelationID {
    /// The id of the request this task works for; set around each request by the HTTP layer.
    @TaskLocal public static var current: String?

    /// Puts `correlation_id` on every log line written while a request is handled, also by
    /// loggers that services hold (recorder, ledger, upstream), not only the request's own.
    public static let loggingMetadata = Logger.MetadataProvider {
        current.map { ["correlation_id": .string($0)] } ?? [:]
    }

    /// The names a correlation id goes by in a Sentry event's tags or extra, a span's or a log
    /// line's attributes (log lines also take a `traceId`), the first present winning.
    public static let attributeKeys = ["correlation_id", "correlationId", "request_id", "requestId", "x-request-id"]

    /// Longest accepted client-supplied id; longer ones are replaced, not truncated.
    public static let maxLength = 128

    /// The id from `X-Request-Id`, else the trace id of a W3C `traceparent`, else a new one.
    public static func resolve(requestID: String?, traceparent: String?) -> String {
        if let requestID, isAcceptable(requestID) { return requestID }
        if let traceparent, let trace = traceID(fromTraceparent: traceparent) { return trace }
        return generate()
    }

    /// Printable ASCII without spaces or quotes, so it is safe in headers, logs and queries.
    public static func isAcceptable(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= maxLength
            && id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
    }

    /// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`; an all-zero trace id is invalid.
    public static func traceID(fromTraceparent header: String) -> String? {
        let parts = header.trimmingCharacters(in: .whitespaces).split(separator: "-")
        guard parts.count >= 4, parts[0].count == 2, parts[0] != "ff", parts[1].count == 32, parts[2].count == 16,
              parts[1].allSatisfy({ $0.isHexDigit && !$0.isUppercase }),
              parts[1].contains(where: { $0 != "0" }) else { return nil }
        return String(parts[1])
    }

    /// 32 lowercase hex characters, the same shape as a W3C trace id.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let a = generator.next() as UInt64
        let b = generator.next() as UInt64
        return Hex.encode(a, minimumDigits: 16) + Hex.encode(b, minimumDigits: 16)
    }
}
