/// What an OTLP/HTTP export is answered with in its JSON form (`POST /v1/logs`, `POST /v1/traces`
/// with a JSON body): `{}` when everything was taken. Field names and the int64-as-string rule are
/// protobuf's JSON mapping, not Gatehouse's snake_case; only the rejected count's name differs per
/// signal (`Signal.rejectedKey`).
public struct OTLPExportResponse<Signal: OTLPSignal>: Codable, Sendable, Equatable {
    public struct PartialSuccess: Codable, Sendable, Equatable {
        /// How many records or spans were refused.
        public var rejected: Int64
        /// Why: the first few refused by position (`record 2: …; record 5: …`).
        public var errorMessage: String

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
            static var rejected: Key { Key(stringValue: Signal.rejectedKey) }
            static var errorMessage: Key { Key(stringValue: "errorMessage") }
        }

        public init(rejected: Int64, errorMessage: String) {
            self.rejected = rejected
            self.errorMessage = errorMessage
        }

        // protobuf's JSON mapping leaves out zero values and writes an int64 as a string; it
        // reads a number too.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: Key.self)
            if let text = try? container.decodeIfPresent(String.self, forKey: .rejected) {
                guard let count = Int64(text) else {
                    throw DecodingError.dataCorruptedError(forKey: .rejected, in: container, debugDescription: "not an int64: \(text)")
                }
                rejected = count
            } else {
                rejected = try container.decodeIfPresent(Int64.self, forKey: .rejected) ?? 0
            }
            errorMessage = try container.decodeIfPresent(String.self, forKey: .errorMessage) ?? ""
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            if rejected != 0 { try container.encode(String(rejected), forKey: .rejected) }
            if !errorMessage.isEmpty { try container.encode(errorMessage, forKey: .errorMessage) }
        }
    }

    /// Present only when something was refused.
    public var partialSuccess: PartialSuccess?

    enum CodingKeys: String, CodingKey {
        case partialSuccess
    }

    public init(partialSuccess: PartialSuccess? = nil) {
        self.partialSuccess = partialSuccess
    }
}

/// One OTLP signal: the name its export response gives the refused count.
public protocol OTLPSignal: Sendable {
    static var rejectedKey: String { get }
}

public enum OTLPLogRecords: OTLPSignal {
    public static let rejectedKey = "rejectedLogRecords"
}

public enum OTLPSpans: OTLPSignal {
    public static let rejectedKey = "rejectedSpans"
}

/// `ExportLogsServiceResponse`, as `POST /v1/logs` answers a JSON request.
public typealias OTLPLogsExportResponse = OTLPExportResponse<OTLPLogRecords>
/// `ExportTraceServiceResponse`, as `POST /v1/traces` answers a JSON request.
public typealias OTLPTracesExportResponse = OTLPExportResponse<OTLPSpans>
