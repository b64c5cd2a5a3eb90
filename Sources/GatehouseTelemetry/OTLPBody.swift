import SwiftProtobuf

/// An OTLP/HTTP request body as its protobuf message: binary (the SDKs' default) or OTLP's JSON
/// encoding, fields it does not know passed over (a newer SDK's). `/v1/logs` and `/v1/traces`.
enum OTLPBody {
    static func decode<M: SwiftProtobuf.Message>(_ body: [UInt8], json: Bool) throws -> M {
        if json {
            var options = JSONDecodingOptions()
            options.ignoreUnknownFields = true
            return try M(jsonUTF8Bytes: body, options: options)
        }
        return try M(serializedBytes: body)
    }
}
