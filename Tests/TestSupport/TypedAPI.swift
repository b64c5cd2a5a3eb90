import Foundation
import GatehouseAPI
import NIOHTTP1
import Synchronization

/// Gatehouse's own API as tests call it: answers decode into GatehouseAPI's `Codable` types (a
/// renamed field fails the decode), and every exchange is kept, so `verifyContract()` can check
/// each one against the `/openapi.json` the same server serves.
public final class TypedAPI: Sendable {
    public let baseURL: String
    let adminToken: String?
    let exchanges = Mutex<[Exchange]>([])

    /// One call as `Tests/Support/contract_check.py` reads it.
    public struct Exchange: Codable, Sendable {
        public var method: String
        public var path: String
        public var status: Int
        public var content_type: String?
        public var body: String
    }

    /// A call that answered outside 2xx; `error` is the decoded error body when it had one.
    public struct Failure: Error, CustomStringConvertible {
        public var method: String
        public var path: String
        public var status: Int
        public var error: APIErrorBody?
        public var body: String
        public var description: String { "\(method) \(path) answered \(status): \(body.prefix(500))" }
    }

    public init(baseURL: String, adminToken: String? = nil) {
        self.baseURL = baseURL
        self.adminToken = adminToken
    }

    /// Sends one call and keeps it for the contract check. The admin token is sent when set,
    /// unless `headers` carry their own `Authorization`.
    @discardableResult
    public func raw(_ method: HTTPMethod, _ path: String, body: Data? = nil, headers: [(String, String)] = []) async throws -> HTTP.Reply {
        var all = headers
        if let adminToken, !headers.contains(where: { $0.0.lowercased() == "authorization" }) {
            all.append(("Authorization", "Bearer \(adminToken)"))
        }
        if body != nil, !headers.contains(where: { $0.0.lowercased() == "content-type" }) { all.append(("Content-Type", "application/json")) }
        let reply = try await HTTP.send(baseURL + path, method: method, headers: all, body: body)
        exchanges.withLock {
            $0.append(Exchange(method: method.rawValue, path: path, status: reply.status, content_type: reply.header("content-type"),
                               body: String(decoding: reply.body, as: UTF8.self)))
        }
        return reply
    }

    /// `GET path`, decoded as `T`; throws `Failure` outside 2xx.
    public func get<T: Decodable>(_ path: String, as type: T.Type = T.self, headers: [(String, String)] = []) async throws -> T {
        try decode(try await raw(.GET, path, headers: headers), method: .GET, path: path)
    }

    /// A call with a JSON body, decoded as `T`; throws `Failure` outside 2xx.
    public func send<T: Decodable, Body: Encodable>(_ method: HTTPMethod, _ path: String, json: Body, as type: T.Type = T.self,
                                                     headers: [(String, String)] = []) async throws -> T {
        try decode(try await raw(method, path, body: try APIJSON.encode(json), headers: headers), method: method, path: path)
    }

    /// A call without a body, decoded as `T`; throws `Failure` outside 2xx.
    public func send<T: Decodable>(_ method: HTTPMethod, _ path: String, as type: T.Type = T.self, headers: [(String, String)] = []) async throws -> T {
        try decode(try await raw(method, path, headers: headers), method: method, path: path)
    }

    /// A call that must fail: returns its status and decoded error body.
    public func failure(_ method: HTTPMethod, _ path: String, body: Data? = nil, headers: [(String, String)] = []) async throws -> (status: Int, error: APIErrorBody) {
        let reply = try await raw(method, path, body: body, headers: headers)
        guard !(200..<300).contains(reply.status) else {
            throw Failure(method: method.rawValue, path: path, status: reply.status, error: nil, body: "expected a failure, got success: "
                          + String(decoding: reply.body, as: UTF8.self))
        }
        return (reply.status, try APIJSON.decode(APIErrorBody.self, from: reply.body))
    }

    private func decode<T: Decodable>(_ reply: HTTP.Reply, method: HTTPMethod, path: String) throws -> T {
        guard (200..<300).contains(reply.status) else {
            throw Failure(method: method.rawValue, path: path, status: reply.status, error: try? APIJSON.decode(APIErrorBody.self, from: reply.body),
                          body: String(decoding: reply.body, as: UTF8.self))
        }
        return try APIJSON.decode(T.self, from: reply.body)
    }

    /// Every exchange so far checked against the server's `/openapi.json` by
    /// `Tests/Support/contract_check.py`: a documented path, method and status, and a body the
    /// documented schema accepts. Throws with the checker's report when anything differs.
    public func verifyContract() async throws {
        let calls = exchanges.withLock { $0 }
        var lines = Data()
        for call in calls { lines.append(try JSONEncoder().encode(call)); lines.append(0x0A) }
        try await runContractCheck(lines)
    }

    /// Checks that the served `/openapi.json` is itself a valid OpenAPI 3.1 document.
    public func verifyDocument() async throws {
        try await runContractCheck(nil)
    }

    /// Runs `contract_check.py` over these exchanges, or over the document alone when `exchanges` is nil.
    private func runContractCheck(_ exchanges: Data?) async throws {
        let (status, spec) = try await HTTP.get(baseURL + "/openapi.json")
        guard status == 200 else { throw ProcessRunner.Failure(message: "/openapi.json answered \(status)") }
        let directory = try TestEnvironment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let specFile = directory.appendingPathComponent("openapi.json")
        try spec.write(to: specFile)
        var arguments = [TestEnvironment.repositoryRoot.appendingPathComponent("Tests/Support/contract_check.py").path, specFile.path]
        if let exchanges {
            let callsFile = directory.appendingPathComponent("exchanges.jsonl")
            try exchanges.write(to: callsFile)
            arguments.append(callsFile.path)
        } else {
            arguments.append("--document")
        }
        let result = try await ProcessRunner.runAsync(try TestEnvironment.python, arguments)
        guard result.status == 0 else { throw ProcessRunner.Failure(message: "the API answered outside its contract:\n" + result.output) }
    }
}
