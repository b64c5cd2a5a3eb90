import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// HTTP/1.1 over a plain socket, for requests an HTTP client library would tidy up first: a
/// request target sent byte for byte (`//api/v1/keys`, `/./`, `%2F`), bad chunk sizes, odd
/// framing. Answers the status code and the raw response.
public enum RawHTTP {
    public struct Answer: Sendable {
        public var status: Int
        public var text: String
        /// The body after the blank line (not de-chunked).
        public var body: String {
            guard let range = text.range(of: "\r\n\r\n") else { return "" }
            return String(text[range.upperBound...])
        }
    }

    /// Sends `method target` with the headers and body as given, waits for the answer (up to
    /// `timeout`) and returns it. `Connection: close` is added, so the answer ends with the socket.
    public static func send(port: Int, method: String, target: String, headers: [(String, String)] = [],
                            body: String? = nil, timeout: Duration = .seconds(10),
                            hangUpWhen: @Sendable @escaping (String) -> Bool = { _ in false }) async throws -> Answer {
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body { head += "Content-Length: \(body.utf8.count)\r\n" }
        head += "\r\n" + (body ?? "")
        return try await exchange(port: port, bytes: Array(head.utf8), timeout: timeout, hangUpWhen: hangUpWhen)
    }

    /// Writes `bytes` as they are and reads the answer until the server closes, `timeout` passes,
    /// or `hangUpWhen` says the text so far is enough: then the socket is closed at once, as a
    /// client that gives up mid-stream would.
    public static func exchange(port: Int, bytes: [UInt8], timeout: Duration = .seconds(10),
                                hangUpWhen: @Sendable @escaping (String) -> Bool = { _ in false }) async throws -> Answer {
        // On a Dispatch thread: blocking reads must not hold one of the test process's few
        // cooperative threads, which in-process servers need to answer.
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try exchangeBlocking(port: port, bytes: bytes, timeout: timeout, hangUpWhen: hangUpWhen) })
            }
        }
    }

    /// Sends `bytes` from a socket with a tiny receive buffer and then reads nothing for `hold`,
    /// as a client that stopped reading would; closes it after. Returns whether the server closed
    /// the connection in that time.
    public static func sendAndStopReading(port: Int, bytes: [UInt8], hold: Duration) async throws -> Bool {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result {
                    let fd = try connectedSocket(port: port, receiveBuffer: 4096)
                    defer { close(fd) }
                    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                    // Wait without reading; then look (without blocking) whether the server hung up:
                    // drain what is buffered until read says end of stream or would block.
                    Thread.sleep(forTimeInterval: Double(hold.components.seconds) + Double(hold.components.attoseconds) / 1e18)
                    var buffer = [UInt8](repeating: 0, count: 65_536)
                    var quiet = timeval(tv_sec: 2, tv_usec: 0)
                    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &quiet, socklen_t(MemoryLayout<timeval>.size))
                    while true {
                        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                        if n == 0 { return true }
                        // A reset is a close too (the server closed with unread data pending).
                        if n < 0 { return errno == ECONNRESET }
                    }
                })
            }
        }
    }

    /// A TCP socket connected to 127.0.0.1:`port` (with a receive buffer of that size, if given).
    static func connectedSocket(port: Int, receiveBuffer: Int32? = nil) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ProcessRunner.Failure(message: "socket() failed") }
        if var size = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw ProcessRunner.Failure(message: "connect to port \(port) failed")
        }
        return fd
    }

    /// A GET with the headers given.
    public static func get(port: Int, _ target: String, headers: [(String, String)] = []) async throws -> Answer {
        try await send(port: port, method: "GET", target: target, headers: headers)
    }

    static func exchangeBlocking(port: Int, bytes request: [UInt8], timeout: Duration,
                                 hangUpWhen: (String) -> Bool) throws -> Answer {
        do {
            let fd = try connectedSocket(port: port)
            defer { close(fd) }
            var seconds = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &seconds, socklen_t(MemoryLayout<timeval>.size))
            var sent = 0
            while sent < request.count {
                let n = request[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                guard n > 0 else { break }
                sent += n
            }
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                received.append(contentsOf: buffer[0..<n])
                if hangUpWhen(String(decoding: received, as: UTF8.self)) { break }
            }
            let text = String(decoding: received, as: UTF8.self)
            let status = text.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? 0
            return Answer(status: status, text: text)
        }
    }
}
