import Foundation

package enum JSONDecoderBridge {
    package static func decodeString(_ raw: [UInt8]) throws -> String {
        try JSONDecoder().decode(String.self, from: Data(raw))
    }

    /// A parsed JSON value from bytes (objects as [String: Any]); nil when not JSON.
    package static func object(_ bytes: some Collection<UInt8>) -> Any? {
        try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
    }
}
