import AsyncHTTPClient
import Foundation
import GatehouseCore
import HTTPTypes
import NIOCore
import NIOHTTP1

/// A provider's answer as it arrives: status, headers, and a body that streams.
struct UpstreamResponse: Sendable {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: UpstreamBody

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name }?.value
    }
}

enum UpstreamBody: Sendable {
    case http(HTTPClientResponse.Body)
    case generated(AsyncThrowingStream<ByteBuffer, any Error>)
}

/// What the gateway sends to a provider.
struct UpstreamRequest: Sendable {
    var route: GatewayRoute
    var provider: ProviderConfig
    var upstreamModel: String
    var body: [UInt8]
    var stream: Bool
    /// Client headers that may travel upstream (already filtered).
    var forwardedHeaders: [(name: String, value: String)]
    /// The client's own credential, passed through when the provider has no key configured.
    var clientCredential: String?
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
struct HTTPUpstream: Sendable {
    let client: HTTPClient
    let timeout: TimeAmount

    func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
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
        let response = try await client.execute(outgoing, deadline: .now() + timeout)
        return UpstreamResponse(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
                                body: .http(response.body))
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
