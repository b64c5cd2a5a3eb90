import Crypto
import Foundation

/// Provider keys encrypted at rest in the configuration file: `enc:v1:<base64 of nonce,
/// ciphertext and tag>`, AES-256-GCM under `GATEHOUSE_ENCRYPTION_KEY`.
public enum SecretBox {
    public static let prefix = "enc:v1:"

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public static func isEncrypted(_ text: String) -> Bool { text.hasPrefix(prefix) }

    public static func encrypt(_ secret: String, key: [UInt8]) throws -> String {
        let sealed = try AES.GCM.seal(Data(secret.utf8), using: SymmetricKey(data: key))
        guard let combined = sealed.combined else { throw Failure(description: "encryption produced no output") }
        return prefix + combined.base64EncodedString()
    }

    public static func decrypt(_ text: String, key: [UInt8]) throws -> String {
        guard text.hasPrefix(prefix), let data = Data(base64Encoded: String(text.dropFirst(prefix.count))) else {
            throw Failure(description: "is not an enc:v1: value")
        }
        do {
            let box = try AES.GCM.SealedBox(combined: data)
            let plain = try AES.GCM.open(box, using: SymmetricKey(data: key))
            return String(decoding: plain, as: UTF8.self)
        } catch {
            throw Failure(description: "cannot be decrypted with GATEHOUSE_ENCRYPTION_KEY (wrong key or damaged value)")
        }
    }
}
