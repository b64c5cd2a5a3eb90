import Crypto
import CryptoExtras
import Foundation
import GatehouseCore
import NIOPosix
import Synchronization

/// Console passwords, hashed with scrypt (memory-hard; swift-crypto's CryptoExtras, on
/// BoringSSL). N = 2^15, r = 8, p = 1: 32 MiB and about a tenth of a second per hash here, so a
/// stolen database costs an attacker the same per guess.
public enum PasswordHasher {
    static let logRounds = 15
    static let blockSize = 8
    static let parallelism = 1
    static let saltBytes = 16
    static let hashBytes = 32
    /// Longer passwords are refused before hashing: scrypt's cost grows with nothing, but the
    /// request body does.
    public static let maxPasswordBytes = 1024
    public static let minPasswordCharacters = 12

    /// `scrypt$15$8$1$<salt>$<hash>` in base64.
    public static func hash(_ password: String) throws -> String {
        var salt = [UInt8](repeating: 0, count: saltBytes)
        var generator = SystemRandomNumberGenerator()
        for i in salt.indices { salt[i] = UInt8.random(in: .min ... .max, using: &generator) }
        let key = try derive(password, salt: salt, logRounds: logRounds, blockSize: blockSize, parallelism: parallelism)
        return ["scrypt", String(logRounds), String(blockSize), String(parallelism), Data(salt).base64EncodedString(), Data(key).base64EncodedString()]
            .joined(separator: "$")
    }

    /// Whether `password` matches `stored`; false for anything malformed. Constant time in the comparison.
    public static func verify(_ password: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0] == "scrypt", let logN = Int(parts[1]), let r = Int(parts[2]), let p = Int(parts[3]),
              (10...20).contains(logN), (1...16).contains(r), (1...4).contains(p),
              let salt = Data(base64Encoded: String(parts[4])), let expected = Data(base64Encoded: String(parts[5])), expected.count == hashBytes,
              password.utf8.count <= maxPasswordBytes,
              let key = try? derive(password, salt: Array(salt), logRounds: logN, blockSize: r, parallelism: p) else { return false }
        return ConstantTime.equal(Data(key).base64EncodedString(), expected.base64EncodedString())
    }

    /// Every slot of the limiter is taken: the caller should answer 429 rather than wait.
    public struct Busy: Error, Equatable {}

    /// `hash(_:)` on NIO's blocking thread pool: scrypt takes a tenth of a second of CPU, and on
    /// Swift's cooperative pool (one thread per core) it would hold up every other request.
    public static func hashOffPool(_ password: String) async throws -> String {
        try await NIOThreadPool.singleton.runIfActive { try hash(password) }
    }

    /// `verify(_:against:)` on NIO's blocking thread pool, within `limiter`'s slots; throws
    /// `Busy` at once when they are all taken, so a flood of sign-ins queues no scrypt work.
    public static func verifyOffPool(_ password: String, against stored: String, limiter: ScryptLimiter) async throws -> Bool {
        guard limiter.tryAcquire() else { throw Busy() }
        defer { limiter.release() }
        return try await NIOThreadPool.singleton.runIfActive { verify(password, against: stored) }
    }

    /// A hash that matches nothing, checked when the account does not exist, so a sign-in takes
    /// as long for an unknown email as for a wrong password.
    static let decoy: String = (try? hash(UUID().uuidString)) ?? ""

    private static func derive(_ password: String, salt: [UInt8], logRounds: Int, blockSize: Int, parallelism: Int) throws -> [UInt8] {
        let key = try KDF.Scrypt.deriveKey(from: Array(password.utf8), salt: salt, outputByteCount: hashBytes, rounds: 1 << logRounds,
                                           blockSize: blockSize, parallelism: parallelism)
        return key.withUnsafeBytes { Array($0) }
    }
}

/// How many scrypt runs (32 MiB and a tenth of a second each) may go at once.
public final class ScryptLimiter: Sendable {
    let maxConcurrent: Int
    private let running = Mutex(0)

    public init(maxConcurrent: Int) {
        self.maxConcurrent = maxConcurrent
    }

    func tryAcquire() -> Bool {
        running.withLock { running in
            guard running < maxConcurrent else { return false }
            running += 1
            return true
        }
    }

    func release() {
        running.withLock { $0 -= 1 }
    }
}
