import Foundation
import GatehouseCore
import Logging
import NIOSSL

/// The certificate chain and private key Gatehouse serves HTTPS with (`tls_cert_file`,
/// `tls_key_file`). Problems are reported as `ConfigError`s naming the key and the path, never
/// the file's contents: a key file's bytes must not reach a log or a terminal.
public struct TLSFiles: Sendable, Equatable {
    public var certificateFile: String
    public var keyFile: String

    /// nil when the configuration serves plain HTTP (neither key set; one without the other is
    /// rejected when the configuration is loaded).
    public init?(_ config: GatehouseConfig) {
        guard let certificateFile = config.tlsCertFile, let keyFile = config.tlsKeyFile else { return nil }
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }

    /// A pair that parsed and belongs together, ready for new connections.
    struct Loaded: Sendable {
        let context: NIOSSLContext
        /// Common name, serial number and expiry of the leaf certificate, for logs.
        let summary: Logger.Metadata
        let notValidAfter: Date
    }

    /// What `check-config` and `serve` report before anything listens, from one reading of the
    /// files: every problem with the pair, and "expired on …" for a pair that loads but no client
    /// would accept (an expired certificate is a warning, not one of the problems).
    public func check(now: Date = Date()) -> (problems: [ConfigError], expiryWarning: String?) {
        let loaded: Loaded
        do throws(ConfigError) { loaded = try load() } catch { return ([error], nil) }
        guard loaded.notValidAfter < now else { return ([], nil) }
        return ([], "the certificate in \(certificateFile) expired on \(Self.date(loaded.notValidAfter))")
    }

    /// Reads both files and builds the TLS context new connections get: TLS 1.2 and 1.3 only
    /// (swift-nio-ssl's default cipher suites), HTTP/2 or HTTP/1.1 by ALPN.
    func load() throws(ConfigError) -> Loaded {
        let certificateBytes = try Self.read(certificateFile, key: "tls_cert_file")
        let keyBytes = try Self.read(keyFile, key: "tls_key_file")
        guard let chain = try? NIOSSLCertificate.fromPEMBytes(certificateBytes), let leaf = chain.first else {
            throw ConfigError(key: "tls_cert_file", problem: "\(certificateFile) holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
        }
        // Checked on the text rather than left to the parser: its error would not say why.
        let keyText = String(decoding: keyBytes, as: UTF8.self)
        if keyText.contains("ENCRYPTED") {
            throw ConfigError(key: "tls_key_file", problem: "\(keyFile) is encrypted with a passphrase; Gatehouse needs it unencrypted (make the file readable by its user only)")
        }
        if !keyText.contains("PRIVATE KEY-----") {
            let hint = keyText.contains("-----BEGIN CERTIFICATE-----") ? " (it holds a certificate: are the two files swapped?)" : ""
            throw ConfigError(key: "tls_key_file", problem: "\(keyFile) holds no PEM private key\(hint)")
        }
        let privateKey: NIOSSLPrivateKey
        do { privateKey = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem) } catch {
            throw ConfigError(key: "tls_key_file", problem: "\(keyFile) holds no PEM private key Gatehouse can read (RSA, EC or Ed25519)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                     privateKey: .privateKey(privateKey))
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["h2", "http/1.1"]
        let context: NIOSSLContext
        do { context = try NIOSSLContext(configuration: configuration) } catch NIOSSLError.failedToLoadPrivateKey {
            // The key parsed above, so BoringSSL refused it for the certificate: their public
            // halves differ (KEY_VALUES_MISMATCH).
            throw ConfigError(key: "tls_key_file", problem: "\(keyFile) is not the private key of the certificate in \(certificateFile) (the first certificate in that file must be the server's own)")
        } catch {
            throw ConfigError(key: "tls_cert_file", problem: "\(certificateFile) and \(keyFile) cannot be used together: \(error)")
        }
        let notValidAfter = Date(timeIntervalSince1970: TimeInterval(leaf.notValidAfter))
        let commonName = leaf.subjectName.first { $0.type == .commonName }?.value ?? "-"
        let serial = leaf.serialNumber.map { String(format: "%02x", $0) }.joined()
        return Loaded(context: context, summary: ["certificate_cn": "\(commonName)", "certificate_serial": "\(serial)",
                                                  "certificate_expires": "\(Self.date(notValidAfter))"],
                      notValidAfter: notValidAfter)
    }

    /// A certificate chain or key is a few KiB; a bigger file (a wrong path, a symlink to a log or
    /// a device) is refused rather than read whole, at start and on every SIGHUP.
    static let maximumFileBytes = 1 << 20

    private static func read(_ path: String, key: String) throws(ConfigError) -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else { throw ConfigError(key: key, problem: "\(path) does not exist") }
        let tooLarge = ConfigError(key: key, problem: "\(path) is larger than 1 MiB (\(maximumFileBytes) bytes), the most a certificate or key file may hold")
        // stat follows symlinks: the size and kind are the target's. Only a regular file: a FIFO
        // would block the open, a directory or device has no PEM to give.
        var status = stat()
        guard stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            throw ConfigError(key: key, problem: "\(path) cannot be read: it is not a regular file")
        }
        guard status.st_size <= maximumFileBytes else { throw tooLarge }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ConfigError(key: key, problem: "\(path) cannot be read by this user (check its permissions)")
        }
        defer { try? handle.close() }
        // One byte over the limit at most, should the file have grown since the stat.
        let data: Data
        do { data = try handle.read(upToCount: maximumFileBytes + 1) ?? Data() } catch {
            throw ConfigError(key: key, problem: "\(path) cannot be read by this user (check its permissions)")
        }
        guard data.count <= maximumFileBytes else { throw tooLarge }
        return [UInt8](data)
    }

    private static func date(_ date: Date) -> String { date.formatted(.iso8601) }
}
