import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

/// `gatehouse traces` against the real server, with a transaction the real sentry-sdk sent: the
/// transactions table and its filters, one trace as a text waterfall with its error, the JSON,
/// the links, and what it says to a wrong id or query.
@Suite(.serialized) struct TracesCLIEndToEndTests {
    @Test func tracesListsTransactionsAndDrawsATrace() async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: tracesConfig)
        defer { Task { _ = try? await gatehouse.stop() } }
        let base = gatehouse.baseURL
        let script = TestEnvironment.repositoryRoot.appendingPathComponent("Tests/Support/trace_client.py").path
        let run = try await ProcessRunner.runAsync(try TestEnvironment.python, [script, "--dsn", "http://\(ingestKey)@127.0.0.1:\(gatehouse.port)/42"])
        let line = try #require(run.output.split(separator: "\n").last { $0.hasPrefix("{") }, "trace_client failed (\(run.status)):\n\(run.output)")
        let sent = try JSONDecoder().decode(TraceClientReport.self, from: Data(line.utf8))
        let api = TypedAPI(baseURL: base)
        try await Poll.until("the trace and its error") { () async throws -> Bool? in
            guard let reply = try? await api.get("/api/v1/traces/\(sent.traceID)", as: TraceDetail.self) else { return nil }
            return reply.spanCount == 4 && reply.errors.count == 1 ? true : nil
        }

        // The table: the transaction with its count, error rate, percentiles and no window before.
        let table = try await CLIEndToEndTests.run(["traces", "--url", base, "--since", "1h", "--no-links"])
        #expect(table.status == 0, "\(table.output)")
        let lines = table.output.split(separator: "\n").map(String.init)
        let header = try #require(lines.first { $0.hasPrefix("TRANSACTION") }, "\(table.output)")
        #expect(["COUNT", "TPM", "ERRORS", "P50", "P95", "P99", "P95 CHANGE"].allSatisfy { header.contains($0) }, "\(header)")
        let row = try #require(lines.first { $0.hasPrefix("POST /api/orders") }, "\(table.output)")
        let cells = row.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        #expect(cells.suffix(7).first == "1" && cells.contains("100%") && cells.last == "new", "\(cells)")
        #expect(lines.first?.hasPrefix("Transactions ") == true)

        // Filters reach the API: the right project and tag keep it, another environment empties the table.
        let filtered = try await CLIEndToEndTests.run(["traces", "--url", base, "--since", "1h", "--project", "web", "-q", "region:eu-1", "--no-links"])
        #expect(filtered.status == 0 && filtered.output.contains("POST /api/orders"), "\(filtered.output)")
        let none = try await CLIEndToEndTests.run(["traces", "--url", base, "--since", "1h", "--environment", "prod", "--no-links"])
        #expect(none.status == 0 && none.output.contains("(no transactions in this window") && !none.output.contains("POST /api/orders"), "\(none.output)")

        // --json is the API's answer.
        let json = try await CLIEndToEndTests.run(["traces", "--url", base, "--since", "1h", "--json"])
        let list = try APIJSON.decode(TransactionList.self, from: Data(json.output.utf8))
        #expect(list.data.map(\.name) == ["POST /api/orders"] && list.data[0].count == 1)

        // One trace: the tree indented, each bar where its span ran, the error, the links as lines.
        let trace = try await CLIEndToEndTests.run(["traces", "--url", base, sent.traceID, "--no-links"], environment: ["COLUMNS": "120"])
        #expect(trace.status == 0, "\(trace.output)")
        let traceLines = trace.output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(traceLines.first?.hasPrefix("POST /api/orders  \(sent.traceID)") == true, "\(trace.output)")
        let spanLines = ["POST /api/orders ", "  SELECT orders", "    fetch rows", "  POST https://pay.example"].map { prefix in
            traceLines.first { $0.hasPrefix(prefix) && $0.contains("█") || $0.hasPrefix(prefix) && $0.contains("▏") }
        }
        #expect(spanLines.allSatisfy { $0 != nil }, "\(trace.output)")
        let starts = spanLines.compactMap { $0 }.map { line in line.distance(from: line.startIndex, to: line.firstIndex { "█▏▎▍▌▋▊▉".contains($0) } ?? line.endIndex) }
        #expect(starts.count == 4 && starts[0] < starts[2] && starts[1] < starts[2] && starts[2] <= starts[3], "bars start where their spans did: \(starts)\n\(trace.output)")
        #expect(spanLines[0]?.contains("internal_error") == true && spanLines[1]?.contains("slow") == true, "\(trace.output)")
        #expect(!trace.output.contains("SECRET"), "the key in the URL stays masked")
        #expect(trace.output.contains("Errors (1)") && trace.output.contains("ValueError"), "\(trace.output)")
        #expect(trace.output.contains("Console: \(base)/traces/\(sent.traceID)"), "\(trace.output)")
        #expect(trace.output.contains("Logs and AI calls of this trace: \(sent.traceID)"), "\(trace.output)")

        // At a terminal (forced here) the trace id and the transaction names are console links.
        let linked = try await CLIEndToEndTests.run(["traces", "--url", base, sent.traceID], environment: ["GATEHOUSE_LINKS": "1"])
        #expect(linked.output.contains("\u{1B}]8;;\(base)/traces/\(sent.traceID)\u{1B}\\"), "\(linked.output)")
        #expect(linked.output.contains("\u{1B}]8;;\(base)/correlation/\(sent.traceID)\u{1B}\\"))
        let linkedTable = try await CLIEndToEndTests.run(["traces", "--url", base, "--since", "1h"], environment: ["GATEHOUSE_LINKS": "1"])
        #expect(linkedTable.output.contains("\u{1B}]8;;\(base)/performance?transaction=POST%20%2Fapi%2Forders\u{1B}\\"), "\(linkedTable.output)")

        // Mistakes get one line and exit 1.
        let badID = try await CLIEndToEndTests.run(["traces", "--url", base, "not-a-trace"])
        #expect(badID.status == 1 && badID.output.contains("32 hex digits"), "\(badID.output)")
        let unknown = try await CLIEndToEndTests.run(["traces", "--url", base, String(repeating: "0", count: 31) + "1"])
        #expect(unknown.status == 1 && unknown.output.contains("no trace"), "\(unknown.output)")
        let badQuery = try await CLIEndToEndTests.run(["traces", "--url", base, "-q", "(op:db"])
        #expect(badQuery.status == 1 && badQuery.output.contains("`q`"), "\(badQuery.output)")
        let mixed = try await CLIEndToEndTests.run(["traces", "--url", base, sent.traceID, "--since", "1h"])
        #expect(mixed.status != 0 && mixed.output.contains("a trace id shows one whole trace"), "\(mixed.output)")
    }
}
