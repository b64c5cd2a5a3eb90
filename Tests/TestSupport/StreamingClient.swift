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

extension StreamingClient {
    /// Opens a GET stream (server-sent events) and reads until `done` says the text so far is
    /// enough, or `timeout` passes; returns the status and the text read. `whileReading` runs
    /// once the response head has come.
    public static func get(url: String, headers: [(String, String)] = [], timeout: Duration = .seconds(20),
                           whileReading: @Sendable @escaping () async throws -> Void = {},
                           done: @Sendable @escaping (String) -> Bool) async throws -> (Int, String) {
        var request = HTTPClientRequest(url: url)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        return try await withThrowingTaskGroup(of: (Int, String)?.self) { group in
            group.addTask {
                var text = ""
                for try await chunk in response.body {
                    text += String(buffer: chunk)
                    if done(text) { return (Int(response.status.code), text) }
                }
                return (Int(response.status.code), text)
            }
            group.addTask {
                try await whileReading()
                try await Task.sleep(for: timeout)
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first ?? (Int(response.status.code), "(timed out)")
        }
    }
}
