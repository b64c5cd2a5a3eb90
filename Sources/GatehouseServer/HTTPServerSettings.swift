import Foundation
import GatehouseCore
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import NIOCore
import NIOHTTPTypes

extension GatehouseServer {
    /// The HTTP/1.1 server Gatehouse listens with: a connection that sends nothing for
    /// `gateway.client_idle_timeout_seconds` — between requests, or in the middle of a request's
    /// head or body — is closed (a slow client cannot hold a connection open for ever), and the
    /// 400s the HTTP parser answers carry a JSON error body like every other error.
    public static func httpServer(_ config: GatehouseConfig) -> HTTPServerBuilder {
        .http1(configuration: http1Configuration(config))
    }

    /// Also each HTTP/2 stream's configuration when Gatehouse serves TLS (below).
    static func http1Configuration(_ config: GatehouseConfig) -> HTTP1Channel.Configuration {
        .init(additionalChannelHandlers: [ParserErrorBodyHandler()],
              idleTimeout: .seconds(Int64(config.gateway.clientIdleTimeoutSeconds)))
    }

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

/// Hummingbird answers a request the HTTP parser rejects (a broken header line, bad framing)
/// with `400` and an empty body, below the router. This handler gives that answer the same
/// JSON error body the API's routes give.
final class ParserErrorBodyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    static let body = #"{"error":{"message":"The request is not valid HTTP/1.1 (a malformed request line, header or body framing).","type":"invalid_request_error","param":null,"code":"malformed_request"}}"#

    private var parserFailed = false
    private var pendingBody: ByteBuffer?

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        parserFailed = true
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where parserFailed && head.status == .badRequest && head.headerFields[.contentLength] == "0":
            let body = context.channel.allocator.buffer(string: Self.body)
            head.headerFields[.contentLength] = String(body.readableBytes)
            head.headerFields[.contentType] = "application/json"
            pendingBody = body
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end where pendingBody != nil:
            if let body = pendingBody { context.write(wrapOutboundOut(.body(body)), promise: nil) }
            pendingBody = nil
            context.write(data, promise: promise)
        default:
            context.write(data, promise: promise)
        }
    }
}

/// The server could not listen: the port is taken, or the address is not this machine's.
public struct ListenError: Error, CustomStringConvertible, Sendable {
    public var description: String

    /// The error `run()` met, described for an operator; nil when it is not about listening.
    init?(_ error: any Error, host: String, port: Int) {
        let at = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        if let io = error as? IOError {
            switch io.errnoCode {
            case EADDRINUSE:
                description = "port \(port) is already in use (another process listens on \(at)); stop it or choose another port with --port"
            case EADDRNOTAVAIL:
                description = "cannot listen on \(at): \(host) is not an address of this machine (use 0.0.0.0 for every address, 127.0.0.1 for this machine only)"
            case EACCES:
                description = "cannot listen on \(at): permission denied (ports below 1024 need privileges)"
            default:
                return nil
            }
        } else if let unknown = error as? SocketAddressError.UnknownHost {
            description = "cannot listen on \(at): the host name \(host) could not be resolved (\(unknown.errorDescription))"
        } else if let address = error as? SocketAddressError {
            description = "cannot listen on \(at): \(address)"
        } else {
            return nil
        }
    }
}
