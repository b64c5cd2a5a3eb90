import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

/// Graceful shutdown is not held hostage by a client.
@Suite("Shutdown")
struct ShutdownEndToEndTests {
    @Test("a live tail whose client stopped reading does not keep the server from stopping")
    func tailThatStopsReading() async throws {
        let gatehouse = try await GatehouseProcess.start()
        // About 12 MB of lines for the tail to send: far more than the socket buffers hold.
        let line = #"{"level":"info","service":"api","message":"\#(String(repeating: "x", count: 1000))"}"#
        let body = Data(Array(repeating: line, count: 2000).joined(separator: "\n").utf8)
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        for _ in 0..<6 {
            let reply = try await api.raw(.POST, "/api/v1/logs", body: body, headers: [("Content-Type", "application/x-ndjson")])
            #expect(reply.status == 200, "\(String(decoding: reply.body, as: UTF8.self).prefix(300))")
            #expect(try decodeAnswer(reply, as: LogIngestResult.self) == LogIngestResult(accepted: 2000, rejected: [], rejectedCount: 0))
        }
        try await api.verifyContract()
        // The tail asks for every line from the first (`Last-Event-ID: 0`), so it has them all to
        // send however long they took to post, and the client's hold starts only now.
        let request = "GET /api/v1/logs/tail HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: 0\r\n\r\n"
        async let held = RawHTTP.sendAndStopReading(port: gatehouse.port, bytes: Array(request.utf8), hold: .seconds(25))
        // Stop only once the tail is stuck: its client holds lines it does not read, and more wait
        // in the server's socket.
        try await Poll.until("the tail's client to fall behind") { try Self.stalledConnections(toPort: gatehouse.port) > 0 }
        let started = ContinuousClock.now
        let status = try await gatehouse.child.stop(timeout: .seconds(20))
        #expect(ContinuousClock.now - started < .seconds(15), "shutdown took \(ContinuousClock.now - started)")
        #expect(status == 0)
        _ = try await held
    }

    /// Connections to local `port` whose client has bytes it has not read while the server has
    /// more queued that the client has not acknowledged (`rx_queue` and `tx_queue` of Linux's
    /// `/proc/net/tcp`).
    static func stalledConnections(toPort port: Int) throws -> Int {
        struct Row { var local: Int, remote: Int, unacknowledged: Int, unread: Int }
        var rows: [Row] = []
        // Read to the end by hand: the file says it is empty, and a one-read load gets only its first page.
        let fd = open("/proc/net/tcp", O_RDONLY)
        guard fd >= 0 else { throw ProcessRunner.Failure(message: "cannot open /proc/net/tcp") }
        defer { close(fd) }
        var table: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { break }
            table += chunk[..<n]
        }
        for line in String(decoding: table, as: UTF8.self).split(separator: "\n").dropFirst() {
            // sl, local address:port, remote address:port, state, tx_queue:rx_queue, ... (hex)
            let fields = line.split(separator: " ")
            guard fields.count > 4, fields[3] == "01" else { continue }  // ESTABLISHED
            let ports = [fields[1], fields[2]].compactMap { $0.split(separator: ":").last.flatMap { Int($0, radix: 16) } }
            let queues = fields[4].split(separator: ":").compactMap { Int($0, radix: 16) }
            guard ports.count == 2, queues.count == 2 else { continue }
            rows.append(Row(local: ports[0], remote: ports[1], unacknowledged: queues[0], unread: queues[1]))
        }
        let clientsHoldingBytes = Set(rows.filter { $0.remote == port && $0.unread > 0 }.map(\.local))
        return rows.filter { $0.local == port && $0.unacknowledged > 0 && clientsHoldingBytes.contains($0.remote) }.count
    }
}
