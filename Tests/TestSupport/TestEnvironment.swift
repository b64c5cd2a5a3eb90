import Foundation

/// What the test command (`scripts/test.sh`) provides: a PostgreSQL server, the Python venv
/// with the real SDKs, promtool, and the built binary.
public enum TestEnvironment {
    public static var repositoryRoot: URL {
        // Tests/TestSupport/TestEnvironment.swift → repository root.
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    public static func require(_ variable: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else {
            throw MissingEnvironment(variable: variable)
        }
        return value
    }

    public struct MissingEnvironment: Error, CustomStringConvertible {
        public var variable: String
        public var description: String { "\(variable) is not set: run the suite with `bash scripts/test.sh`, which provides it" }
    }

    public static var postgresURL: String { get throws { try require("GATEHOUSE_TEST_POSTGRES_URL") } }
    public static var python: String { get throws { try require("GATEHOUSE_TEST_PYTHON") } }
    public static var promtool: String { get throws { try require("GATEHOUSE_TEST_PROMTOOL") } }
    public static var gatehouseBinary: String {
        ProcessInfo.processInfo.environment["GATEHOUSE_BIN"]
            ?? repositoryRoot.appendingPathComponent(".build/debug/gatehouse").path
    }

    /// A fresh, empty PostgreSQL database for one test; returns its URL.
    public static func freshPostgresDatabase() throws -> String {
        let base = try postgresURL
        let name = "gh_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        let result = try ProcessRunner.run("/usr/bin/env", ["psql", base, "-v", "ON_ERROR_STOP=1", "-qc", "CREATE DATABASE \(name)"])
        guard result.status == 0 else { throw ProcessRunner.Failure(message: "CREATE DATABASE failed: \(result.output)") }
        guard var components = URLComponents(string: base) else { throw ProcessRunner.Failure(message: "bad URL \(base)") }
        components.path = "/" + name
        return components.string!
    }

    /// A new empty temporary directory.
    public static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("gatehouse-test-" + UUID().uuidString)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Runs a command to completion and returns its exit status and combined output.
public enum ProcessRunner {
    public struct Failure: Error, CustomStringConvertible {
        public var message: String
        public init(message: String) { self.message = message }
        public var description: String { message }
    }

    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                           input: Data? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let stdin = Pipe()
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(input) }
        try? stdin.fileHandleForWriting.close()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

extension ProcessRunner {
    /// `run` on a dispatch thread, so a waiting test does not hold one of the few cooperative
    /// threads (2 on these machines) while a child process works.
    public static func runAsync(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                                input: Data? = nil) async throws -> (status: Int32, output: String) {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try run(executable, arguments, environment: environment, input: input) })
            }
        }
    }
}
