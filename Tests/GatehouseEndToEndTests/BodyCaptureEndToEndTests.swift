import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

/// Prompt and response bodies: off by default, on per key or per call, streams reassembled,
/// secrets masked, capped, shown on the request's console page and nowhere else.
@Suite("Body capture", .serialized)
struct BodyCaptureEndToEndTests {
    static let token = "body-capture-admin-token-0123456789"
    static let providerKey = "sk-provider-SECRET-upstream-0001"

    struct World {
        var gatehouse: GatehouseProcess
        var mock: MockUpstream
        var api: TypedAPI
        var console: ConsoleClient
        var capturingKey: String
        var plainKey: String
        var capturingKeyID: String

        /// Makes a call; returns its record id and status.
        func call(_ path: String = "/v1/chat/completions", body: String, key: String, headers: [(String, String)] = []) async throws -> (id: String, status: Int, body: String) {
            let reply = try await HTTP.post(gatehouse.baseURL + path, json: body, headers: [("Authorization", "Bearer \(key)")] + headers)
            let id = reply.headers.first { $0.0.lowercased() == "gatehouse-record-id" }?.1 ?? ""
            return (id, reply.status, String(decoding: reply.body, as: UTF8.self))
        }

        /// The request's console page once its record is stored (and its bodies, when `kept`).
        func page(_ id: String, kept: Bool) async throws -> String {
            try await Poll.until("the page of \(id)\(kept ? " with its bodies" : "")") {
                let page = try await console.get("/requests/" + id)
                guard page.status == 200 else { return nil }
                return !kept || page.html.contains("Kept because body capture was on") ? page.html : nil
            }
        }
    }

    /// Runs `body` against a fresh world and stops its processes, also when `body` throws.
    static func withWorld(_ backend: Backend, _ body: (World) async throws -> Void) async throws {
        let w = try await world(backend)
        do {
            try await body(w)
        } catch {
            _ = try? await w.gatehouse.stop()
            try? await w.mock.stop()
            throw error
        }
        _ = try await w.gatehouse.stop()
        try await w.mock.stop()
    }

    static func world(_ backend: Backend) async throws -> World {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(
            yaml: upstreamConfig(mock, extra: "gateway:\n  capture_max_bytes: 2048\n"), databaseURL: try backend.databaseURL(),
            environment: ["GATEHOUSE_ADMIN_TOKEN": token])
        let api = TypedAPI(baseURL: gatehouse.baseURL, adminToken: token)
        let capturing = try await api.send(.POST, "/api/v1/keys", json: KeyChanges(alias: .set("capturing"), captureBodies: .set(true)), as: IssuedKey.self)
        #expect(capturing.view.captureBodies == true)
        let plain = try await api.send(.POST, "/api/v1/keys", json: KeyChanges(alias: .set("plain")), as: IssuedKey.self)
        #expect(plain.view.captureBodies == nil)
        let console = ConsoleClient(port: gatehouse.port)
        #expect(try await console.signIn(password: token).status == 303)
        return World(gatehouse: gatehouse, mock: mock, api: api, console: console, capturingKey: capturing.key, plainKey: plain.key,
                     capturingKeyID: capturing.view.id)
    }

    static func chat(_ text: String, stream: Bool = false, extra: String = "") -> String {
        #"{"model":"up/gpt-4o-mini","max_tokens":6,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"\#(text)"}]\#(stream ? #","stream":true"# : "")\#(extra)}"#
    }

    @Test("a key's setting, the call's header and the masks decide what is kept", arguments: Backend.allCases)
    func keptPerKeyAndPerCallWithSecretsMasked(_ backend: Backend) async throws {
        try await Self.withWorld(backend) { w in

        // The key captures: the conversation is on the page, credential-like fields are not.
        let kept = try await w.call(body: Self.chat("Summarise ticket 4411 please; my key is sk-live-abcdefgh12345678 and my gatehouse key \(w.capturingKey)",
                                                    extra: #","metadata":{"api_key":"hunter2-in-a-field","customer":"acme"}"#),
                                    key: w.capturingKey)
        #expect(kept.status == 200)
        let html = try await w.page(kept.id, kept: true)
        #expect(html.contains("Summarise ticket 4411 please"))
        #expect(html.contains("You are terse."))
        #expect(html.contains("Hello"), "the answer's text is shown")
        #expect(html.contains("acme"))
        for secret in ["sk-live-abcdefgh12345678", "hunter2-in-a-field", Self.providerKey, w.capturingKey] {
            #expect(!html.contains(secret), "\(secret) is masked")
        }
        #expect(html.contains("[REDACTED]"))

        // Not captured: the key follows the global default (off).
        let plain = try await w.call(body: Self.chat("Plain call nobody keeps"), key: w.plainKey)
        let plainPage = try await w.page(plain.id, kept: false)
        #expect(plainPage.contains("Bodies were not kept for this call"))
        #expect(!plainPage.contains("Plain call nobody keeps"))

        // The header decides for a key that says nothing; a key's own choice is final.
        let opted = try await w.call(body: Self.chat("Opted in by header"), key: w.plainKey, headers: [("Gatehouse-Capture", "true")])
        #expect(try await w.page(opted.id, kept: true).contains("Opted in by header"))
        let optedOut = try await w.call(body: Self.chat("Header cannot opt out"), key: w.capturingKey, headers: [("Gatehouse-Capture", "false")])
        #expect(try await w.page(optedOut.id, kept: true).contains("Header cannot opt out"))

        // A header that is neither is refused in the route's format, and nothing is forwarded.
        let before = try await w.mock.requests().count
        let bad = try await w.call(body: Self.chat("maybe"), key: w.capturingKey, headers: [("Gatehouse-Capture", "maybe")])
        #expect(bad.status == 400)
        #expect(bad.body.contains("Gatehouse-Capture must be true or false"))
        #expect(try await w.mock.requests().count == before)

        // Bodies are never in the lists: the table and its export show no prompt text.
        let list = try await w.console.get("/requests")
        #expect(list.status == 200)
        #expect(!list.html.contains("Summarise ticket 4411"))
        let export = try await w.console.get("/requests/export?format=ndjson")
        #expect(!export.html.contains("Summarise ticket 4411"))
        // Nor in Gatehouse's own log.
        #expect(!w.gatehouse.child.output.joined(separator: "\n").contains("Summarise ticket 4411"))
        // The CLI sets a key's choice, and clears it back to the default.
        func keysCLI(_ arguments: [String]) async throws -> KeyView {
            var environment = ProcessInfo.processInfo.environment
            environment["GATEHOUSE_ADMIN_TOKEN"] = Self.token
            let result = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["keys"] + arguments + ["--url", w.gatehouse.baseURL, "--json"],
                                                          environment: environment)
            let start = try #require(result.output.firstIndex(of: "{"), "\(result.output)")
            return try APIJSON.decode(KeyView.self, from: Data(result.output[start...].utf8))
        }
        #expect(try await keysCLI(["update", w.capturingKeyID, "--capture-bodies", "off"]).captureBodies == false)
        let offAgain = try await w.call(body: Self.chat("Key switched off"), key: w.capturingKey, headers: [("Gatehouse-Capture", "true")])
        #expect(!(try await w.page(offAgain.id, kept: false)).contains("Key switched off"), "a key set off is not opted back in by a header")
        #expect(try await keysCLI(["update", w.capturingKeyID, "--capture-bodies", "default"]).captureBodies == nil)

        // The settings page counts them as their own kind of data.
        let settings = try await w.console.get("/settings")
        #expect(settings.html.contains("bodies"))
        }
    }

    @Test("streams are kept as the one answer they add up to, cut ones too, and bodies are capped", arguments: Backend.allCases)
    func streamsReassembledAndCapped(_ backend: Backend) async throws {
        try await Self.withWorld(backend) { w in

        let streamed = try await w.call(body: Self.chat("Stream me", stream: true), key: w.capturingKey)
        #expect(streamed.status == 200)
        let html = try await w.page(streamed.id, kept: true)
        #expect(html.contains("The response was streamed"))
        // The mock streams "Hello", " from", " the", … one per event: the page shows them joined.
        #expect(html.contains("Hello from the"))
        #expect(html.contains("chat.completion"), "reassembled into a chat.completion object")
        #expect(!html.contains("chat.completion.chunk"))

        // A stream cut after two deltas keeps what came.
        // (The client sees the cut as an error; the record is the newest one.)
        _ = try? await w.call(body: Self.chat("Cut me", stream: true), key: w.capturingKey, headers: [("x-mock-cut-after", "2")])
        let cutID = try await Poll.until("the cut call's record") {
            let newest = try await w.api.get("/api/v1/requests?limit=1", as: RequestRecordPage.self).data.first
            return newest.flatMap { $0.id != streamed.id ? $0.id : nil }
        }
        let cutPage = try await w.page(cutID, kept: true)
        #expect(cutPage.contains("Hello from"))
        #expect(!cutPage.contains("Hello from the"))

        // Anthropic's event stream becomes a message with its content blocks.
        let anthropic = try await w.call("/v1/messages",
                                         body: #"{"model":"upa/claude-3-5-haiku-latest","max_tokens":5,"stream":true,"system":"Be kind.","messages":[{"role":"user","content":"Hi Claude"}]}"#,
                                         key: w.capturingKey)
        #expect(anthropic.status == 200)
        let anthropicPage = try await w.page(anthropic.id, kept: true)
        #expect(anthropicPage.contains("Hi Claude"))
        #expect(anthropicPage.contains("Be kind."))
        #expect(anthropicPage.contains("Hello from the"))
        #expect(anthropicPage.contains("stop_reason"))

        // Larger than capture_max_bytes (2048): kept up to the cap and marked.
        let long = String(repeating: "lorem ipsum ", count: 400)
        let big = try await w.call(body: Self.chat(long), key: w.capturingKey)
        let bigPage = try await w.page(big.id, kept: true)
        #expect(bigPage.contains("cut at the size limit"))
        #expect(bigPage.contains("lorem ipsum"))
        }
    }
}
