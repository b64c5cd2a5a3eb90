import AsyncHTTPClient
import Foundation
import GatehouseCore
import HTTPTypes
import NIOCore
import NIOHTTP1

/// Sends one request to a provider and hands back its answer as it arrives. The gateway knows
/// providers only through this, so tests can put a scripted upstream in process.
public protocol UpstreamTransport: Sendable {
    /// Returns once the response head has arrived; the body streams after. Throws when no answer
    /// came: `UpstreamTimedOut` when `request.deadline` passed first, anything else when the
    /// provider could not be reached.
    func send(_ request: UpstreamRequest) async throws -> UpstreamResponse
}

/// The provider did not answer by the request's deadline (a 504 and `upstream_timeout`, where any
/// other error from a transport is a 502 and `upstream_unreachable`).
public struct UpstreamTimedOut: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A provider's answer as it arrives: status, headers, and a body that streams.
public struct UpstreamResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: UpstreamBody

    public init(status: Int, headers: [(name: String, value: String)], body: UpstreamBody) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name }?.value
    }
}

/// A response body read chunk by chunk as the transport delivers it, whatever its source
/// (erased so the gateway has one body type; reading stays pull-driven, so back-pressure holds).
public struct UpstreamBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    private let makeBaseIterator: @Sendable () -> any AsyncIteratorProtocol<ByteBuffer, any Error>

    public init<Chunks: AsyncSequence & Sendable>(_ chunks: Chunks) where Chunks.Element == ByteBuffer, Chunks.Failure == any Error {
        makeBaseIterator = { chunks.makeAsyncIterator() }
    }

    public func makeAsyncIterator() -> Iterator { Iterator(base: makeBaseIterator()) }

    public struct Iterator: AsyncIteratorProtocol {
        var base: any AsyncIteratorProtocol<ByteBuffer, any Error>

        public mutating func next() async throws -> ByteBuffer? { try await base.next() }
    }
}

/// What the gateway sends to a provider.
public struct UpstreamRequest: Sendable {
    public var route: GatewayRoute
    public var provider: ProviderConfig
    public var upstreamModel: String
    public var body: [UInt8]
    public var stream: Bool
    /// Client headers that may travel upstream (already filtered).
    public var forwardedHeaders: [(name: String, value: String)]
    /// The client's own credential, passed through when the provider has no key configured.
    public var clientCredential: String?
    /// The response head must arrive by then (`upstream_timeout_seconds` from this attempt's start).
    public var deadline: ContinuousClock.Instant
    /// The body as the client sent it, before rewriting: the built-in mock answers from it.
    var clientBody: [UInt8]
}

/// Hop-by-hop and Gatehouse-only headers never forwarded in either direction.
enum HeaderPolicy {
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "trailers", "transfer-encoding", "upgrade", "host", "content-length",
    ]

    /// Client headers that are not sent upstream: hop-by-hop, credentials (replaced per provider),
    /// Gatehouse/Helicone metadata, compression negotiation (Gatehouse must read the body).
    static func forwardsRequestHeader(_ lowercased: String) -> Bool {
        if hopByHop.contains(lowercased) || Redactor.isSecretHeader(lowercased) { return false }
        if lowercased.hasPrefix("gatehouse-") || lowercased.hasPrefix("helicone-") { return false }
        return lowercased != "accept-encoding" && lowercased != "content-encoding" && lowercased != "expect"
    }

    static func forwardsResponseHeader(_ lowercased: String) -> Bool {
        !hopByHop.contains(lowercased) && lowercased != "set-cookie" && lowercased != "alt-svc"
    }
}

/// Calls real providers over HTTP with AsyncHTTPClient.
public struct HTTPUpstream: UpstreamTransport {
    let client: HTTPClient

    public init(client: HTTPClient) { self.client = client }

    /// The client's errors that mean "no answer in time", as opposed to "no answer at all".
    private static let timeouts: [HTTPClientError] = [.deadlineExceeded, .connectTimeout, .readTimeout]

    public func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        var outgoing = HTTPClientRequest(url: try url(for: request))
        outgoing.method = .POST
        var headers = HTTPHeaders()
        for (name, value) in request.forwardedHeaders { headers.add(name: name, value: value) }
        headers.replaceOrAdd(name: "content-type", value: "application/json")
        headers.replaceOrAdd(name: "accept-encoding", value: "identity")
        for (name, value) in request.provider.headers { headers.replaceOrAdd(name: name, value: value) }
        applyCredential(request, to: &headers)
        outgoing.headers = headers
        outgoing.body = .bytes(ByteBuffer(bytes: request.body))
        let remaining = TimeExpressions.nanos(ContinuousClock.now.duration(to: request.deadline))
        let response: HTTPClientResponse
        do {
            response = try await client.execute(outgoing, deadline: .now() + .nanoseconds(remaining))
        } catch let error as HTTPClientError where Self.timeouts.contains(error) {
            throw UpstreamTimedOut(String(describing: error))
        }
        return UpstreamResponse(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
                                body: UpstreamBody(response.body))
    }

    private func url(for request: UpstreamRequest) throws -> String {
        let base = request.provider.baseURL
        let suffix = String(request.route.rawValue.dropFirst("/v1".count))
        switch request.provider.kind {
        case .azure:
            let deployment = request.upstreamModel.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? request.upstreamModel
            let version = request.provider.apiVersion ?? "2024-10-21"
            return "\(base)/openai/deployments/\(deployment)\(suffix)?api-version=\(version)"
        default:
            return base + suffix
        }
    }

    private func applyCredential(_ request: UpstreamRequest, to headers: inout HTTPHeaders) {
        let key = request.provider.apiKey ?? request.clientCredential
        switch request.provider.kind {
        case .anthropic:
            if let key { headers.replaceOrAdd(name: "x-api-key", value: key) }
            if !headers.contains(name: "anthropic-version") { headers.add(name: "anthropic-version", value: "2023-06-01") }
        case .azure:
            if let key { headers.replaceOrAdd(name: "api-key", value: key) }
        default:
            if let key { headers.replaceOrAdd(name: "authorization", value: "Bearer \(key)") }
        }
    }
}
