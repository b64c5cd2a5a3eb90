import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Calls a running Gatehouse's API for the CLI: base URL from `--url` or `GATEHOUSE_URL`,
/// admin token from `GATEHOUSE_ADMIN_TOKEN`; errors become one readable line.
struct APIClient {
    let base: String
    let token: String?

    init(url: String?) {
        let env = ProcessInfo.processInfo.environment
        base = (url ?? env["GATEHOUSE_URL"] ?? "http://127.0.0.1:8080").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        token = env["GATEHOUSE_ADMIN_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Sends the call and returns the JSON body's bytes, or throws with the API's message.
    func call(_ method: HTTPMethod, _ path: String, query: [URLQueryItem] = [], json: [String: Any]? = nil) async throws -> Data {
        var components = URLComponents(string: base + path)
        if !query.isEmpty { components?.queryItems = query }
        guard let target = components?.string else { throw CLIError("--url \(base) is not a URL") }
        var request = HTTPClientRequest(url: target)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: json)))
        }
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            body = try await response.body.collect(upTo: 16 * 1024 * 1024)
        } catch {
            throw CLIError("cannot reach Gatehouse at \(base): \(error)")
        }
        let data = Data(buffer: body)
        guard (200..<300).contains(response.status.code) else {
            let message = ((try? JSONSerialization.jsonObject(with: data)) as? [String: Any])
                .flatMap { ($0["error"] as? [String: Any])?["message"] as? String } ?? String(decoding: data, as: UTF8.self)
            throw CLIError("Gatehouse answered \(response.status.code): \(message)")
        }
        return data
    }

    func object(_ method: HTTPMethod, _ path: String, query: [URLQueryItem] = [], json: [String: Any]? = nil) async throws -> [String: Any] {
        let data = try await call(method, path, query: query, json: json)
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw CLIError("Gatehouse answered something that is not a JSON object")
        }
        return object
    }
}

struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
