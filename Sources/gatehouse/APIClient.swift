import AsyncHTTPClient
import Foundation
import GatehouseAPI
import NIOCore
import NIOHTTP1
import NIOPosix

/// Calls a running Gatehouse's API for the CLI: base URL from `--url` or `GATEHOUSE_URL`,
/// admin token from `GATEHOUSE_ADMIN_TOKEN`. Every subcommand that talks to the server goes
/// through `APIClient.send`, so a server that is not running reads the same everywhere:
/// `error: Gatehouse is not reachable at URL (connection refused). Is 'gatehouse serve' running?`
struct APIClient {
    let base: String
    let token: String?

    init(url: String?) {
        let env = ProcessInfo.processInfo.environment
        base = Self.normalise(url ?? env["GATEHOUSE_URL"] ?? "http://127.0.0.1:8080")
        token = env["GATEHOUSE_ADMIN_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }

    static func normalise(_ url: String) -> String {
        var text = url.trimmingCharacters(in: .whitespaces)
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }

    /// The CLI's HTTP client. A connection that is refused fails at once and one that hangs
    /// fails after 5 s, instead of being retried with backoff until the request's deadline
    /// (which for `logs --tail` is a year away).
    static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout = HTTPClient.Configuration.Timeout(connect: .seconds(5))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// The request for `path` under the base URL, with the admin token when one is set.
    func request(_ method: HTTPMethod, _ path: String, query: [URLQueryItem] = []) throws -> HTTPClientRequest {
        var components = URLComponents(string: base + path)
        if !query.isEmpty { components?.queryItems = query }
        guard let target = components?.string, components?.host?.isEmpty == false,
              components?.scheme == "http" || components?.scheme == "https" else {
            throw CLIError("\(base) is not a Gatehouse URL such as http://127.0.0.1:8080 (--url or GATEHOUSE_URL)")
        }
        var request = HTTPClientRequest(url: target)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        return request
    }

    /// Sends `request`; any failure to reach the server becomes one plain `CLIError`.
    func send(_ request: HTTPClientRequest, timeout: TimeAmount = .seconds(30)) async throws -> HTTPClientResponse {
        do {
            return try await Self.http.execute(request, timeout: timeout)
        } catch {
            throw CLIError(Self.failure(error, base: base, timeout: timeout), cause: error)
        }
    }

    /// Reads the whole body; a connection that breaks off becomes one plain `CLIError`.
    func collect(_ response: HTTPClientResponse, upTo limit: Int = 16 * 1024 * 1024) async throws -> Data {
        do {
            return Data(buffer: try await response.body.collect(upTo: limit))
        } catch {
            throw CLIError(Self.failure(error, base: base, timeout: .seconds(30)), cause: error)
        }
    }

    /// Sends the call and returns the JSON body's bytes, or throws with the API's message.
    func call(_ method: HTTPMethod, _ path: String, query: [URLQueryItem] = [], body: Data? = nil) async throws -> Data {
        var request = try request(method, path, query: query)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: body))
        }
        let response = try await send(request)
        let data = try await collect(response)
        guard (200..<300).contains(response.status.code) else { throw refusal(response.status, data) }
        return data
    }

    /// The call's answer decoded as one of the API's types (GatehouseAPI).
    func get<T: Decodable>(_ path: String, query: [URLQueryItem] = [], as type: T.Type = T.self) async throws -> T {
        try decode(try await call(.GET, path, query: query))
    }

    /// A call with a JSON body (one of the API's request types), its answer decoded as `T`.
    func send<T: Decodable, Body: Encodable>(_ method: HTTPMethod, _ path: String, query: [URLQueryItem] = [], json: Body,
                                              as type: T.Type = T.self) async throws -> T {
        try decode(try await call(method, path, query: query, body: try APIJSON.encode(json)))
    }

    /// A call without a body, its answer decoded as `T`.
    func send<T: Decodable>(_ method: HTTPMethod, _ path: String, query: [URLQueryItem] = [], as type: T.Type = T.self) async throws -> T {
        try decode(try await call(method, path, query: query))
    }

    private func decode<T: Decodable>(_ data: Data) throws -> T {
        do {
            return try APIJSON.decode(T.self, from: data)
        } catch {
            throw CLIError("\(base) answered something this CLI cannot read (\(error)); is it Gatehouse, and the same version?")
        }
    }

    /// A non-2xx answer as one line: the API's own message, and what to do about a 401.
    func refusal(_ status: HTTPResponseStatus, _ data: Data) -> CLIError {
        guard let message = (try? APIJSON.decode(APIErrorBody.self, from: data))?.error.message else {
            // Not Gatehouse's JSON error: another server, or a proxy in front of it.
            let text = String(decoding: data.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return CLIError("\(base) answered \(status.code) \(status.reasonPhrase)\(text.isEmpty ? "" : ": \(text)")"
                            + " — is this Gatehouse's URL? (--url or GATEHOUSE_URL)")
        }
        var text = "Gatehouse answered \(status.code): \(message)"
        if status == .unauthorized {
            text += token == nil ? " (export GATEHOUSE_ADMIN_TOKEN with the token the server was started with)"
                                 : " (GATEHOUSE_ADMIN_TOKEN is not the token the server was started with)"
        }
        return CLIError(text)
    }

    /// What went wrong between the CLI and the server, in words.
    static func failure(_ error: any Error, base: String, timeout: TimeAmount) -> String {
        if let error = error as? CLIError { return error.description }
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout:
                return "Gatehouse at \(base) did not answer within \(timeout.nanoseconds / 1_000_000_000) s"
            case .remoteConnectionClosed:
                return "Gatehouse at \(base) closed the connection before answering in full"
            case .invalidURL, .emptyHost, .emptyScheme:
                return "\(base) is not a Gatehouse URL such as http://127.0.0.1:8080 (--url or GATEHOUSE_URL)"
            default: break
            }
        }
        let reason = reason(error)
        return "Gatehouse is not reachable at \(base) (\(reason)). Is 'gatehouse serve' running?"
    }

    /// Why a call got no answer, in a few words, for a row of `gatehouse smoke`.
    static func noAnswer(_ error: any Error, timeout: TimeAmount) -> String {
        if let cause = (error as? CLIError)?.cause { return noAnswer(cause, timeout: timeout) }
        if let error = error as? HTTPClientError {
            if error == .deadlineExceeded || error == .readTimeout { return "no answer within \(timeout.nanoseconds / 1_000_000_000) s" }
            if error == .remoteConnectionClosed { return "the connection closed before the answer was complete" }
        }
        return "no answer (\(reason(error)))"
    }

    /// The cause of a failed connection in a few words: "connection refused", "connection timed out", …
    static func reason(_ error: any Error) -> String {
        switch error {
        case let error as CLIError:
            return error.cause.map(reason) ?? error.description
        case let error as NIOConnectionError:
            if let first = error.connectionErrors.first { return reason(first.error) }
            if error.dnsAError != nil || error.dnsAAAAError != nil { return "cannot resolve host \(error.host)" }
            return "cannot connect to \(error.host):\(error.port)"
        case let error as IOError:
            return describe(errno: error.errnoCode)
        case let error as SocketAddressError.UnknownHost:
            return "cannot resolve host \(error.host)"
        case is SocketAddressError:
            return "cannot resolve the host"
        case let error as HTTPClientError:
            switch error {
            case .connectTimeout: return "connection timed out"
            case .tlsHandshakeTimeout: return "TLS handshake timed out"
            case .remoteConnectionClosed: return "connection closed"
            case .cancelled: return "cancelled"
            default: return String(describing: error)
            }
        case let error as ChannelError:
            switch error {
            case .connectTimeout: return "connection timed out"
            case .ioOnClosedChannel, .alreadyClosed, .eof, .outputClosed: return "connection closed"
            default: return String(describing: error)
            }
        default:
            return String(describing: error)
        }
    }

    static func describe(errno code: CInt) -> String {
        switch code {
        case ECONNREFUSED: return "connection refused"
        case ETIMEDOUT: return "connection timed out"
        case EHOSTUNREACH: return "no route to host"
        case ENETUNREACH: return "network is unreachable"
        case ECONNRESET: return "connection reset"
        case EADDRNOTAVAIL: return "address not available"
        default: return String(cString: strerror(code)).lowercased()
        }
    }
}

/// A failure the CLI reports as one line, `error: …`, exiting 1 (see `Gatehouse.main`).
struct CLIError: Error, CustomStringConvertible {
    var description: String
    /// The transport error behind it, for a caller that words it differently (`gatehouse smoke`).
    var cause: (any Error)?
    init(_ description: String, cause: (any Error)? = nil) {
        self.description = description
        self.cause = cause
    }
}
