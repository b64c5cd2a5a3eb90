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
import Synchronization
import UnixSignals

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

extension GatehouseServer {
    /// The reloadable context when the configuration serves HTTPS, and the SIGHUP listener.
    static func tlsServing(_ config: GatehouseConfig, logger: Logger) async throws -> (context: ReloadableTLSContext?, reloader: ReloadOnHangup) {
        let context = try TLSFiles(config).map { try ReloadableTLSContext(files: $0, logger: logger) }
        return (context, ReloadOnHangup(tls: context, hangups: await UnixSignalsSequence(trapping: .sighup), logger: logger))
    }
}
