import Foundation
import GatehouseCore
import HTTPTypes
import HummingbirdCore
import HummingbirdHTTP2
import Logging
import Metrics
import NIOCore
import NIOHTTP2
import NIOHTTPTypes
import NIOSSL
import NIOTLS
import ServiceLifecycle
import Synchronization
import UnixSignals

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

    /// What `check-config` and `serve` report before anything listens: every problem with the
    /// pair. An expired certificate is not one of them (see `expiryWarning`).
    public func problems() -> [ConfigError] {
        do throws(ConfigError) { _ = try load() } catch { return [error] }
        return []
    }

    /// "expired on …" for a pair that loads but no client would accept; nil otherwise.
    public func expiryWarning(now: Date = Date()) -> String? {
        guard let loaded = try? load(), loaded.notValidAfter < now else { return nil }
        return "the certificate in \(certificateFile) expired on \(Self.date(loaded.notValidAfter))"
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

/// The TLS context each new connection starts with. A reload swaps it; connections already open
/// keep the one they were accepted with, so a renewal never cuts a stream.
final class ReloadableTLSContext: Sendable {
    let files: TLSFiles
    private let current: Mutex<NIOSSLContext>
    private let logger: Logger
    private static let reloads = "gatehouse_tls_reloads_total"

    init(files: TLSFiles, logger: Logger) throws(ConfigError) {
        let loaded = try files.load()
        self.files = files
        self.current = Mutex(loaded.context)
        self.logger = logger
        Self.loaded(loaded, logger: logger, message: "serving HTTPS")
    }

    var context: NIOSSLContext { current.withLock { $0 } }

    /// Rereads both files. On any problem the pair in use stays, and the error says which file
    /// and why (never its contents). Returns whether the new pair is in use.
    @discardableResult
    func reload() -> Bool {
        do throws(ConfigError) {
            let loaded = try files.load()
            current.withLock { $0 = loaded.context }
            Counter(label: Self.reloads, dimensions: [("result", "ok")]).increment()
            Self.loaded(loaded, logger: logger, message: "TLS certificate reloaded")
            return true
        } catch {
            Counter(label: Self.reloads, dimensions: [("result", "failed")]).increment()
            logger.error("TLS certificate reload failed; still serving the previous certificate",
                         metadata: ["key": "\(error.key)", "error": "\(error.problem)"])
            return false
        }
    }

    private static func loaded(_ loaded: TLSFiles.Loaded, logger: Logger, message: Logger.Message) {
        Gauge(label: "gatehouse_tls_certificate_expiry_timestamp_seconds").record(loaded.notValidAfter.timeIntervalSince1970)
        if loaded.notValidAfter < Date() {
            logger.warning("the TLS certificate has expired: clients will refuse it until it is renewed", metadata: loaded.summary)
        }
        logger.notice(message, metadata: loaded.summary)
    }
}

/// Hummingbird's `HTTP2UpgradeChannel`, except that the TLS context is read for each new
/// connection (Hummingbird fixes it when the server is built, so a new certificate would need a
/// restart). ALPN picks HTTP/2 or HTTP/1.1; both run the same responder.
struct ReloadableTLSChannel: ServerChildChannel {
    enum Negotiated: Sendable {
        case http1(HTTP1Channel.Value)
        case http2(HTTP2Channel.Value)
    }

    struct Value: ServerChildChannelValue {
        let negotiated: EventLoopFuture<Negotiated>
        let channel: any Channel
    }

    struct UnexpectedALPN: Error {}

    let tls: ReloadableTLSContext
    let http1: HTTP1Channel
    let http2: HTTP2Channel
    /// A connection must finish its handshake within this; the HTTP idle timeout only starts
    /// once the protocol is known, and a client that never says hello must not hold a socket.
    let handshakeTimeout: TimeAmount
    /// How long an HTTP/2 client has to answer the PING that comes with a GOAWAY.
    let pingAnswerTimeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let http1 = self.http1, http2 = self.http2, pingAnswerTimeout = self.pingAnswerTimeout
        return channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(NIOSSLServerHandler(context: tls.context))
            let alpn = NIOTypedApplicationProtocolNegotiationHandler<Negotiated> { result, channel in
                switch result {
                case .negotiated("h2"):
                    return http2.setup(channel: channel, logger: logger).flatMapThrowing { connection in
                        // Beside Hummingbird's connection manager, which sends the PING: it sees
                        // the PING go out and its answer come in.
                        let pipeline = channel.pipeline.syncOperations
                        try pipeline.addHandler(PingAnswerDeadline(timeout: pingAnswerTimeout),
                                                position: .after(try pipeline.handler(type: NIOHTTP2Handler.self)))
                        return .http2(connection)
                    }
                case .negotiated("http/1.1"), .fallback:
                    return http1.setup(channel: channel, logger: logger).map { .http1($0) }
                case .negotiated:
                    return channel.close().flatMap { channel.eventLoop.makeFailedFuture(UnexpectedALPN()) }
                }
            }
            try pipeline.addHandler(alpn)
            let negotiated = alpn.protocolNegotiationResult
            let deadline = channel.eventLoop.scheduleTask(in: handshakeTimeout) { channel.close(promise: nil) }
            negotiated.whenComplete { _ in deadline.cancel() }
            return Value(negotiated: negotiated, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.negotiated.get() {
            case .http1(let connection): await http1.handle(value: connection, logger: logger)
            case .http2(let connection):
                await http2.handle(value: connection, logger: logger)
                // Hummingbird leaves the connection open when its handling is cancelled (a
                // shutdown's drain limit); nothing more will be served on it.
                try? await connection.channel.close()
            }
        } catch {
            // A failed handshake (plain HTTP sent to the HTTPS port, an untrusted certificate):
            // the connection is closed; nothing to answer.
            logger.debug("TLS connection closed before a protocol was agreed", metadata: ["error": "\(error)"])
        }
    }
}

extension GatehouseServer {
    /// HTTPS with HTTP/2 and HTTP/1.1 when `tls` is set, plain HTTP/1.1 otherwise.
    static func httpServer(_ config: GatehouseConfig, tls: ReloadableTLSContext?) -> HTTPServerBuilder {
        guard let tls else { return httpServer(config) }
        let idle = config.gateway.clientIdleTimeoutSeconds
        let streams = {
            var streams = http1Configuration(config)
            let handlers = streams.additionalChannelHandlers
            streams.additionalChannelHandlers = { handlers() + [HTTPSScheme()] }
            return streams
        }()
        // An idle HTTP/2 connection is sent GOAWAY and a PING; one that answers gets the drain
        // limit to finish streams it opened meanwhile, one that does not is closed (`PingAnswerDeadline`).
        let http2 = HTTP2ChannelConfiguration(idleTimeout: .seconds(idle), gracefulCloseTimeout: httpDrainLimit, streamConfiguration: streams)
        return HTTPServerBuilder { responder in
            ReloadableTLSChannel(
                tls: tls,
                http1: HTTP1Channel(responder: responder, configuration: streams),
                http2: HTTP2Channel(responder: responder, configuration: http2),
                handshakeTimeout: .seconds(Int64(idle)),
                pingAnswerTimeout: .seconds(Int64(idle)))
        }
    }
}

/// Closes an HTTP/2 connection whose client does not answer the server's PING in time.
/// Hummingbird's connection manager sends GOAWAY and a PING when a connection has been idle for
/// `gateway.client_idle_timeout_seconds` or the server shuts down, and closes the connection only
/// once the answer comes: a client that never answers would hold the socket for ever, and hold
/// up the shutdown. The server sends PINGs only then, so any PING going out starts the clock.
final class PingAnswerDeadline: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .ping(_, ack: false) = unwrapOutboundIn(data).payload, deadline == nil {
            let channel = context.channel
            deadline = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        }
        context.write(data, promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .ping(_, ack: true) = unwrapInboundIn(data).payload {
            deadline?.cancel()
            deadline = nil
        }
        context.fireChannelRead(data)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }
}

/// Marks every request that came over TLS as `https`. Hummingbird's HTTP/1.1 decoder always says
/// "http", and an HTTP/2 client names its own `:scheme`; what reads `request.head.scheme` (the
/// console's `Secure` cookies) must see what the connection really is.
final class HTTPSScheme: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data) else { return context.fireChannelRead(data) }
        head.scheme = "https"
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }
}

/// Rereads the certificate and key on SIGHUP (what a renewal hook or `systemctl reload` sends).
/// Without TLS there is nothing to reread, but SIGHUP is still taken: a reload must never stop
/// the server (SIGHUP's default action, and a "clean" exit systemd would not restart).
struct ReloadOnHangup: Service {
    let tls: ReloadableTLSContext?
    /// Made when the server is built, so a SIGHUP that comes before this service runs waits in
    /// the sequence instead of ending the process.
    let hangups: UnixSignalsSequence
    let logger: Logger

    func run() async throws {
        for await _ in hangups.cancelOnGracefulShutdown() {
            if let tls { tls.reload() } else { logger.notice("SIGHUP: nothing to reload (no tls_cert_file)") }
        }
    }
}

extension GatehouseServer {
    /// The reloadable context when the configuration serves HTTPS, and the SIGHUP listener.
    static func tlsServing(_ config: GatehouseConfig, logger: Logger) async throws -> (context: ReloadableTLSContext?, reloader: ReloadOnHangup) {
        let context = try TLSFiles(config).map { try ReloadableTLSContext(files: $0, logger: logger) }
        return (context, ReloadOnHangup(tls: context, hangups: await UnixSignalsSequence(trapping: .sighup), logger: logger))
    }
}
