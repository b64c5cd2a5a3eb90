import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseServer
import GatehouseTestSupport
import Testing

/// The OpenAPI document against the code: its sources are what the binary embeds, it describes
/// every route the server registers (and nothing else), it is valid OpenAPI 3.1, and `/docs`
/// shows every operation. Each capability's own tests check its answers against it
/// (`TypedAPI.verifyContract()`).
@Suite("API contract", .serialized)
struct APIContractTests {
    static let sourceFolder = TestEnvironment.repositoryRoot.appendingPathComponent("Sources/GatehouseAPI/OpenAPI")

    /// Pass-through routes follow the providers' specifications, not Gatehouse's document.
    static let providerRoutes = Set(GatewayRoute.allCases.map(\.rawValue))

    static func normalised(_ path: String) -> String {
        var p = path
        while p.count > 1, p.hasSuffix("/") { p.removeLast() }
        return p
    }

    @Test("the embedded document is the committed YAML (run scripts/generate-openapi.sh after editing it)")
    func embeddedSourcesMatchTheFiles() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.sourceFolder.path).filter { $0.hasSuffix(".yaml") }.sorted()
        let embedded = OpenAPIDocument.sources.map(\.name).sorted()
        #expect(files == embedded)
        for source in OpenAPIDocument.sources {
            let text = try String(contentsOf: Self.sourceFolder.appendingPathComponent(source.name), encoding: .utf8)
            // The generator appends the file verbatim followed by a newline before the closing delimiter.
            #expect(text == source.yaml + "\n" || text == source.yaml, "\(source.name) differs from OpenAPISources.swift")
        }
        let document = try OpenAPIDocument.merged()
        #expect(document["openapi"] as? String == "3.1.0")
        #expect((try? OpenAPIDocument.json.get()) != nil)
    }

    @Test("merging refuses a path or component described twice")
    func mergeRefusesDuplicates() throws {
        let root = OpenAPIDocument.sources.first { $0.name == "gatehouse.yaml" }!
        let part = "paths:\n  /x:\n    get:\n      responses:\n        '200':\n          description: ok\n"
        #expect(throws: OpenAPIDocument.MergeError.self) {
            try OpenAPIDocument.merged([root, ("a.yaml", part), ("b.yaml", part)])
        }
        let schema = "components:\n  schemas:\n    Error:\n      type: object\n"
        #expect(throws: OpenAPIDocument.MergeError.self) { try OpenAPIDocument.merged([root, ("a.yaml", schema)]) }
        #expect(throws: OpenAPIDocument.MergeError.self) { try OpenAPIDocument.merged([root, ("a.yaml", "info:\n  title: x\n")]) }
    }

    @Test("every route the server registers is documented, and every documented route exists; /docs shows them all")
    func documentCoversTheRouteTable() async throws {
        let running = try await AdminAuthEndToEndTests.start(adminToken: "contract-test-token")
        defer { Task { await running.stop() } }
        let registered = Set(running.server.routes
            .filter { !Self.providerRoutes.contains($0.path) && $0.path != "/v1/models" && $0.access != .console }
            .map { "\($0.method) \(Self.normalised($0.path))" })

        let (status, body) = try await HTTP.get("http://127.0.0.1:\(running.port)/openapi.json")
        #expect(status == 200)
        let document = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
        var documented = Set<String>()
        var headings: [String] = []
        for (path, item) in document["paths"] as? [String: Any] ?? [:] {
            for method in (item as? [String: Any] ?? [:]).keys where ["get", "post", "put", "patch", "delete"].contains(method) {
                documented.insert("\(method.uppercased()) \(Self.normalised(path))")
                // Each operation's own heading on /docs: method and the exact path together.
                headings.append("<span class=\"m \(method)\">\(method.uppercased())</span> <code>\(path)</code></h3>")
            }
        }
        #expect(registered.subtracting(documented).sorted() == [], "registered but not documented")
        #expect(documented.subtracting(registered).sorted() == [], "documented but not registered")

        let docs = try await HTTP.send("http://127.0.0.1:\(running.port)/docs", method: .GET, body: nil)
        #expect(docs.status == 200)
        #expect(docs.header("content-type")?.hasPrefix("text/html") == true)
        let html = String(decoding: docs.body, as: UTF8.self)
        for heading in headings {
            #expect(html.contains(heading), "/docs has no section \(heading)")
        }
        #expect(!html.contains("<script"), "/docs is plain HTML")
    }

    @Test("the document is valid OpenAPI 3.1 (openapi-spec-validator)")
    func documentIsValidOpenAPI() async throws {
        let running = try await AdminAuthEndToEndTests.start(adminToken: nil)
        defer { Task { await running.stop() } }
        let api = TypedAPI(baseURL: "http://127.0.0.1:\(running.port)")
        try await api.verifyDocument()
        // A contract check over no calls proves nothing, so it fails rather than passing.
        await #expect(throws: (any Error).self) { try await api.verifyContract() }
    }

    @Test("every metric name in the sources has HELP text in /metrics")
    func everyMetricHasHelp() throws {
        let sources = TestEnvironment.repositoryRoot.appendingPathComponent("Sources")
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? []
        let pattern = try Regex(#""(gatehouse_[a-z_]+)""#)
        var names = Set<String>()
        for file in files where file.pathExtension == "swift" {
            let text = try String(contentsOf: file, encoding: .utf8)
            for match in text.matches(of: pattern) { names.insert(String(text[match.range].dropFirst().dropLast())) }
        }
        #expect(names.count >= 20, "found \(names.sorted())")
        // Quoted names that are tables, not metrics.
        names.subtract(["gatehouse_migrations"])
        #expect(names.subtracting(MetricsRegistry.help.keys).sorted() == [], "metrics without HELP text")
    }
}
