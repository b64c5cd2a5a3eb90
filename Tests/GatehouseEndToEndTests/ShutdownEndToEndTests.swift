import Foundation
import GatehouseTestSupport
import Testing

/// Graceful shutdown is not held hostage by a client.
@Suite("Shutdown")
struct ShutdownEndToEndTests {
    @Test("a live tail whose client stopped reading does not keep the server from stopping")
    func tailThatStopsReading() async throws {
        let gatehouse = try await GatehouseProcess.start()
        let request = "GET /api/v1/logs/tail HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        async let held = RawHTTP.sendAndStopReading(port: gatehouse.port, bytes: Array(request.utf8), hold: .seconds(25))
        try await Task.sleep(for: .seconds(1))
        // About 12 MB of lines for the tail to send: far more than the socket buffers hold.
        let line = #"{"level":"info","service":"api","message":"\#(String(repeating: "x", count: 1000))"}"#
        let body = Data(Array(repeating: line, count: 2000).joined(separator: "\n").utf8)
        for _ in 0..<6 {
            let reply = try await HTTP.send(gatehouse.baseURL + "/api/v1/logs", headers: [("Content-Type", "application/x-ndjson")], body: body)
            #expect(reply.status == 200, "\(String(decoding: reply.body, as: UTF8.self).prefix(300))")
        }
        try await Task.sleep(for: .seconds(3))
        let started = ContinuousClock.now
        let status = try await gatehouse.child.stop(timeout: .seconds(20))
        #expect(ContinuousClock.now - started < .seconds(15), "shutdown took \(ContinuousClock.now - started)")
        #expect(status == 0)
        _ = try await held
    }
}
