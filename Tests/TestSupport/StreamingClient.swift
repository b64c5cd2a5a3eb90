import AsyncHTTPClient
import Foundation
import NIOCore

/// Reads a streamed response chunk by chunk, as a browser or SDK would.
public enum StreamingClient {
    public static func post(url: String, body: String, headers: [(String, String)], onChunk: (Int) -> Void) async throws -> Int {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        var count = 0
        for try await chunk in response.body {
            count += 1
            onChunk(chunk.readableBytes)
        }
        return count
    }
}
