import Foundation

/// A call's request and response bodies as kept for its console page (`gateway.capture_bodies`):
/// credential-like fields masked, each body cut at `gateway.capture_max_bytes`. Stored apart from
/// the record, under a retention of their own, and never shown in lists or logs.
public struct CapturedBodies: Sendable, Hashable {
    public var requestID: String
    /// The call's start, as on its record (retention prunes by it).
    public var timestampMicros: Int64
    public var request: String
    public var requestTruncated: Bool
    public var response: String
    public var responseTruncated: Bool
    /// The response was an event stream, kept as the one answer its events add up to.
    public var responseReassembled: Bool

    public init(requestID: String, timestampMicros: Int64, request: String, requestTruncated: Bool, response: String,
                responseTruncated: Bool, responseReassembled: Bool) {
        self.requestID = requestID
        self.timestampMicros = timestampMicros
        self.request = request
        self.requestTruncated = requestTruncated
        self.response = response
        self.responseTruncated = responseTruncated
        self.responseReassembled = responseReassembled
    }
}
