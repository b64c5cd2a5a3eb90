import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Synchronization

/// A child process whose standard error is collected line by line.
public final class ChildProcess: Sendable {
    private let process: Process
    private let lines = LineBuffer()

    /// The lines read so far, and whether the reader has reached the end of the output (the
    /// process, and whatever inherited its pipe, closed it).
    final class LineBuffer: Sendable {
        struct Contents {
            var lines: [String] = []
            var ended = false
        }
        let storage = Mutex(Contents())
        func withLock<T>(_ body: (inout Contents) -> T) -> T { storage.withLock { body(&$0) } }
    }

    public init(executable: String, arguments: [String], environment: [String: String]? = nil, workingDirectory: URL? = nil) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let workingDirectory { process.currentDirectoryURL = workingDirectory }
        let errorPipe = Pipe()
        process.standardError = errorPipe
        process.standardOutput = errorPipe
        process.standardInput = FileHandle.nullDevice
        self.process = process
        let lines = self.lines
        let handle = errorPipe.fileHandleForReading
        // A dedicated thread reads until EOF so the child never blocks on a full pipe.
        let thread = Thread {
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...newline)
                    lines.withLock { $0.lines.append(line) }
                }
            }
            let last = pending
            lines.withLock {
                if !last.isEmpty { $0.lines.append(String(decoding: last, as: UTF8.self)) }
                $0.ended = true
            }
        }
        try process.run()
        thread.start()
    }

    public var output: [String] { lines.withLock { $0.lines } }
    public var isRunning: Bool { process.isRunning }
    public var pid: Int32 { process.processIdentifier }
    private var name: String { process.executableURL?.lastPathComponent ?? "the child process" }

    /// Waits until a line satisfies `match`, or fails after `timeout` (or as soon as the process
    /// has exited and everything it wrote has been read without such a line).
    public func waitForLine(timeout: Duration = .seconds(60), _ match: (String) -> Bool) async throws -> String {
        enum Outcome { case found(String), exited }
        let outcome: Outcome
        do {
            outcome = try await Poll.until("a line from \(name)", timeout: timeout, every: .milliseconds(20)) { () -> Outcome? in
                let running = process.isRunning
                let (read, ended) = lines.withLock { ($0.lines, $0.ended) }
                if let line = read.first(where: match) { return .found(line) }
                return !running && ended ? .exited : nil
            }
        } catch let timedOut as Poll.TimedOut {
            throw ProcessRunner.Failure(message: "\(timedOut):\n" + output.suffix(30).joined(separator: "\n"))
        }
        switch outcome {
        case .found(let line): return line
        case .exited:
            throw ProcessRunner.Failure(message: "process exited (\(process.terminationStatus)) before the expected line:\n" + output.suffix(30).joined(separator: "\n"))
        }
    }

    /// Waits until the reader thread has taken everything the process wrote: after the process
    /// has exited, its last lines can still be on their way through the pipe.
    public func waitForOutputEnd(timeout: Duration = .seconds(10)) async throws {
        try await Poll.until("the end of \(name)'s output", timeout: timeout, every: .milliseconds(10)) { lines.withLock { $0.ended } }
    }

    /// Sends `signal` and waits for the process to exit and for its output to be read to the
    /// end; returns its status.
    @discardableResult
    public func stop(signal: Int32 = SIGTERM, timeout: Duration = .seconds(30)) async throws -> Int32 {
        if process.isRunning { kill(process.processIdentifier, signal) }
        do {
            try await Poll.until("\(name) (pid \(process.processIdentifier)) to exit", timeout: timeout, every: .milliseconds(20)) { !process.isRunning }
        } catch is Poll.TimedOut {
            kill(process.processIdentifier, SIGKILL)
            throw ProcessRunner.Failure(message: "process did not stop within \(timeout)")
        }
        try await waitForOutputEnd()
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// A running `gatehouse serve` on a free port, with its own data directory.
public final class GatehouseProcess: Sendable {
    public let child: ChildProcess
    public let port: Int
    public let dataDirectory: URL
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Starts the real binary with `yaml` as its configuration file.
    public static func start(yaml: String = "", databaseURL: String? = nil, extraArguments: [String] = [],
                             environment: [String: String] = [:]) async throws -> GatehouseProcess {
        let directory = try TestEnvironment.temporaryDirectory()
        let configFile = directory.appendingPathComponent("gatehouse.yaml")
        try yaml.write(to: configFile, atomically: true, encoding: .utf8)
        var arguments = ["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", directory.appendingPathComponent("data").path,
                         "--config", configFile.path, "--log-format", "json"]
        if let databaseURL { arguments += ["--database-url", databaseURL] }
        arguments += extraArguments
        var env = ProcessInfo.processInfo.environment
        for key in env.keys where key.hasPrefix("GATEHOUSE_") || key == "OPENAI_API_KEY" || key == "ANTHROPIC_API_KEY" { env[key] = nil }
        env.merge(environment) { $1 }
        let child = try ChildProcess(executable: TestEnvironment.gatehouseBinary, arguments: arguments, environment: env)
        let line = try await child.waitForLine { $0.contains("gatehouse is listening") }
        guard let data = line.data(using: .utf8), let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let address = object["address"] as? String, let port = address.split(separator: ":").last.flatMap({ Int($0) }) else {
            throw ProcessRunner.Failure(message: "no address in \(line)")
        }
        return GatehouseProcess(child: child, port: port, dataDirectory: directory)
    }

    private init(child: ChildProcess, port: Int, dataDirectory: URL) {
        self.child = child
        self.port = port
        self.dataDirectory = dataDirectory
    }

    @discardableResult
    public func stop() async throws -> Int32 { try await child.stop() }
}

/// The Python mock LLM provider (`Tests/Support/mock_upstream.py`).
public final class MockUpstream: Sendable {
    public let child: ChildProcess
    public let port: Int
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    public static func start() async throws -> MockUpstream {
        let (child, port) = try await PythonServer.start("Tests/Support/mock_upstream.py")
        return MockUpstream(child: child, port: port)
    }

    private init(child: ChildProcess, port: Int) {
        self.child = child
        self.port = port
    }

    /// Configuration for an alias `smart` over two deployments of this mock: `bad` (always
    /// answers 503) first, then `healthyName`; calls retried `maxAttempts` times, 10 ms apart.
    public func fallbackConfiguration(healthyName: String, maxAttempts: Int) -> String {
        """
        providers:
          - name: bad
            kind: openai
            base_url: \(baseURL)/v1
            api_key: sk-provider-bad-0001
            headers:
              x-mock-status: "503"
          - name: \(healthyName)
            kind: openai
            base_url: \(baseURL)/v1
            api_key: sk-provider-\(healthyName)-0002
        aliases:
          - alias: smart
            targets:
              - model: bad/gpt-4o-mini
                priority: 0
              - model: \(healthyName)/gpt-4o-mini
                priority: 1
        retries:
          max_attempts: \(maxAttempts)
          initial_backoff_ms: 10

        """
    }

    /// Every request the mock received, as it recorded them.
    public func requests() async throws -> [[String: Any]] {
        let (status, body) = try await HTTP.get(baseURL + "/__mock/requests")
        guard status == 200, let list = try JSONSerialization.jsonObject(with: body) as? [[String: Any]] else {
            throw ProcessRunner.Failure(message: "mock answered \(status)")
        }
        return list
    }

    /// The mock's own shutdown is not under test: kill it outright.
    public func stop() async throws { try await child.stop(signal: SIGKILL) }
}

/// The official SDKs, driven by `Tests/Support/sdk_client.py`.
public enum SDK {
    public static func run(_ scenario: String, baseURL: String, model: String, apiKey: String = "sk-test-client-key-000",
                           headers: [String: String] = [:], maxTokens: Int? = nil) async throws -> [String: Any] {
        let script = TestEnvironment.repositoryRoot.appendingPathComponent("Tests/Support/sdk_client.py").path
        var arguments = [script, scenario, "--base-url", baseURL, "--api-key", apiKey, "--model", model]
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { arguments += ["--header", "\(name): \(value)"] }
        if let maxTokens { arguments += ["--max-tokens", String(maxTokens)] }
        let result = try await ProcessRunner.runAsync(try TestEnvironment.python, arguments)
        guard result.status == 0, let line = result.output.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
              let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw ProcessRunner.Failure(message: "sdk_client \(scenario) failed (\(result.status)):\n\(result.output)")
        }
        return object
    }
}

/// Plain HTTP for tests.
public enum HTTP {
    public static func get(_ url: String, headers: [(String, String)] = []) async throws -> (Int, Data) {
        let reply = try await send(url, method: .GET, headers: headers, body: nil)
        return (reply.status, reply.body)
    }

    public struct Reply: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: Data
        public func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
        public var json: [String: Any]? { try? JSONSerialization.jsonObject(with: body) as? [String: Any] }
    }

    public static func send(_ url: String, method: HTTPMethod = .POST, headers: [(String, String)] = [], body: Data?) async throws -> Reply {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let collected = try await response.body.collect(upTo: 64 * 1024 * 1024)
        return Reply(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, body: Data(buffer: collected))
    }

    public static func post(_ url: String, json: String, headers: [(String, String)] = []) async throws -> Reply {
        try await send(url, headers: [("content-type", "application/json")] + headers, body: Data(json.utf8))
    }
}

/// Starts one of the Python helper servers in Tests/Support and waits for the port it chose.
enum PythonServer {
    static func start(_ script: String) async throws -> (ChildProcess, Int) {
        let directory = try TestEnvironment.temporaryDirectory()
        let portFile = directory.appendingPathComponent("port")
        let path = TestEnvironment.repositoryRoot.appendingPathComponent(script).path
        let child = try ChildProcess(executable: try TestEnvironment.python,
                                     arguments: [path, "--host", "127.0.0.1", "--port", "0", "--port-file", portFile.path])
        enum Outcome { case listening(Int), exited }
        let outcome: Outcome
        do {
            // The script writes the file atomically once it listens.
            outcome = try await Poll.until("\(script) to write its port", timeout: .seconds(30), every: .milliseconds(20)) { () -> Outcome? in
                if let text = try? String(contentsOf: portFile, encoding: .utf8), let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                    return .listening(port)
                }
                return child.isRunning ? nil : .exited
            }
        } catch is Poll.TimedOut {
            throw ProcessRunner.Failure(message: "\(script) did not start")
        }
        switch outcome {
        case .listening(let port): return (child, port)
        case .exited:
            // Only for the message: its last lines may still be in the pipe.
            try? await child.waitForOutputEnd()
            throw ProcessRunner.Failure(message: "\(script) exited:\n" + child.output.joined(separator: "\n"))
        }
    }
}

/// Stand-ins for Slack, PagerDuty, a webhook and an app's health endpoint (`Tests/Support/receiver.py`).
public final class Receiver: Sendable {
    public let child: ChildProcess
    public let port: Int
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    public static func start() async throws -> Receiver {
        let (child, port) = try await PythonServer.start("Tests/Support/receiver.py")
        return Receiver(child: child, port: port)
    }

    private init(child: ChildProcess, port: Int) {
        self.child = child
        self.port = port
    }

    /// What arrived at `path` (every path when nil), oldest first.
    public func received(_ path: String? = nil) async throws -> [[String: Any]] {
        let (status, body) = try await HTTP.get(baseURL + "/__received" + (path.map { "?path=\($0)" } ?? ""))
        guard status == 200, let list = try JSONSerialization.jsonObject(with: body) as? [[String: Any]] else {
            throw ProcessRunner.Failure(message: "receiver answered \(status)")
        }
        return list
    }

    /// `{"fail": {"/slack": 2}}` or `{"health": 503}`.
    public func control(_ json: String) async throws { _ = try await HTTP.post(baseURL + "/__control", json: json) }

    public func stop() async throws { try await child.stop(signal: SIGKILL) }
}
