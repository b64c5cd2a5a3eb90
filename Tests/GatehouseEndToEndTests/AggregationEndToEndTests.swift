import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseTestSupport
import Testing

/// Query-language stages through the real binary: the read APIs answer `AggregationResult`s,
/// refuse what is out of bounds with a 400 that says why, and the CLI prints the groups.
@Suite(.serialized) struct AggregationEndToEndTests {
    static func groups(_ api: TypedAPI, _ path: String, _ items: [String: String]) async throws -> AggregationResult {
        try await api.get(apiPath(path, items), as: AggregationResult.self)
    }

    /// `function → value` of each group, in the answer's order.
    static func values(_ result: AggregationResult, _ term: String) -> [String] {
        result.groups.map { group in
            let key: String = switch group.key[term] {
            case .string(let s): s
            case .integer(let n): String(n)
            case .null, nil: "∅"
            default: "?"
            }
            let value = group.value == group.value.rounded() ? String(Int64(group.value)) : String(group.value)
            return "\(key)=\(value)"
        }
    }

    @Test(arguments: Backend.allCases)
    func stagesAnswerGroupsOnTheAPIAndInTheCLI(_ backend: Backend) async throws {
        let mock = try await MockUpstream.start()
        let gatehouse = try await GatehouseProcess.start(yaml: upstreamConfig(mock), databaseURL: try backend.databaseURL())
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let now = TimeExpressions.nowMicros() / 1_000_000 * 1_000_000
        func at(_ minutesAgo: Int64) -> String { TimeExpressions.format(micros: now - minutesAgo * 60_000_000) }
        let lines = [
            #"{"timestamp":"\#(at(5))","level":"error","function":"tasks.list","message":"OCC","duration":"10ms","dbCalls":60}"#,
            #"{"timestamp":"\#(at(4))","level":"error","function":"tasks.list","message":"OCC","duration":"30ms","dbCalls":80}"#,
            #"{"timestamp":"\#(at(3))","level":"error","function":"users.get","message":"denied","duration":"5ms","dbCalls":2}"#,
            #"{"timestamp":"\#(at(2))","level":"info","function":"tasks.list","message":"ok","duration":"1ms","dbCalls":70}"#,
            #"{"timestamp":"\#(at(180))","level":"error","function":"tasks.list","message":"old","duration":"2ms"}"#,
        ]
        let sent = try await api.raw(.POST, "/api/v1/logs", body: Data(lines.joined(separator: "\n").utf8),
                                     headers: [("Content-Type", "application/x-ndjson")])
        #expect(try decodeAnswer(sent, as: LogIngestResult.self).accepted == 5)
        try await pollLogs(api, "", "the lines") { $0.count == 5 }

        let byFunction = try await Self.groups(api, "/api/v1/logs", ["q": "level:error timestamp:>-1h | count by function"])
        #expect(byFunction.over == "logs" && byFunction.function == "count" && byFunction.unit == "count" && !byFunction.truncated)
        #expect(Self.values(byFunction, "function") == ["tasks.list=2", "users.get=1"])
        let binned = try await Self.groups(api, "/api/v1/logs", ["q": #"function:"tasks.list" level:error | count by bin(1h)"#])
        #expect(binned.groups.reduce(0) { $0 + $1.count } == 3 && binned.groupBy == ["bin(1h)"])
        #expect(binned.groups.compactMap { if case .string(let t) = $0.key["bin(1h)"] { t } else { nil } }
            == binned.groups.compactMap { if case .string(let t) = $0.key["bin(1h)"] { t } else { nil } }.sorted(), "bins in time order")
        let p95 = try await Self.groups(api, "/api/v1/logs", ["q": "dbCalls:>50 | p95(duration) by function"])
        #expect(p95.unit == "ms" && p95.field == "duration")
        // tasks.list: 1, 10 and 30 ms; rank 0.95·2 = 1.9 → 10 + 0.9·20.
        #expect(Self.values(p95, "function") == ["tasks.list=28"])
        let limited = try await Self.groups(api, "/api/v1/logs", ["q": "| count by function", "limit": "1"])
        #expect(limited.truncated && limited.groups.count == 1)

        let tooNarrow = try await api.failure(.GET, apiPath("/api/v1/logs", ["q": "| count by bin(1m)", "from": "-7d"]))
        #expect(tooNarrow.status == 400 && tooNarrow.error.error.code == "invalid_query")
        #expect(tooNarrow.error.error.message.contains("at most 1000"), "\(tooNarrow.error.error.message)")
        let text = try await api.failure(.GET, apiPath("/api/v1/logs", ["q": "| sum(message)"]))
        #expect(text.status == 400 && text.error.error.message.contains("`message` is text"), "\(text.error.error.message)")
        let tail = try await api.failure(.GET, apiPath("/api/v1/logs/tail", ["q": "| count"]))
        #expect(tail.status == 400 && tail.error.error.message.contains("not supported here"))

        // AI calls, each with a customer property.
        for (n, customer) in ["acme", "acme", "globex"].enumerated() {
            let reply = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: chatBody("up/gpt-4o", text: "call \(n)"),
                                            headers: [("Gatehouse-Property-Customer", customer)])
            #expect(reply.status == 200)
        }
        let records = try await waitForRequests(api, count: 3)
        let spend = try await Self.groups(api, "/api/v1/requests", ["q": "| sum(cost) by property.customer"])
        #expect(spend.over == "requests" && spend.unit == "usd")
        for customer in ["acme", "globex"] {
            let micros = records.filter { $0.properties["customer"] == customer }.reduce(Int64(0)) { $0 + $1.costMicros }
            let group = spend.groups.first { $0.key["property.customer"] == .string(customer) }
            #expect(group?.value == Double(micros) / 1_000_000, "\(customer): \(spend.groups)")
        }
        let byModel = try await Self.groups(api, "/api/v1/requests", ["q": "| count by model", "model": "nothing-like-this"])
        #expect(byModel.groups.isEmpty, "the list's parameters narrow the records")

        let events = try await Self.groups(api, "/api/v1/issues", ["q": "| count"])
        #expect(events.over == "error_events" && events.groups.map(\.value) == [0])
        // The gateway records a span of its own for each AI call: the stage counts what the span search lists.
        try await Poll.until("the stage to count the listed spans") {
            let listed = try await api.get(apiPath("/api/v1/spans", ["limit": "1000"]), as: SpanSearchResult.self).data
            let spans = try await Self.groups(api, "/api/v1/spans", ["q": "| count by op"])
            let counted = Dictionary(spans.groups.map { group in
                (group.key["op"].flatMap { if case .string(let op) = $0 { op } else { nil } } ?? "∅", group.count)
            }, uniquingKeysWith: +)
            let expected = Dictionary(grouping: listed, by: { $0.op ?? "∅" }).mapValues { Int64($0.count) }
            return spans.over == "spans" && !listed.isEmpty && counted == expected
        }

        let cli = try await CLIEndToEndTests.run(["logs", "--url", gatehouse.baseURL, "level:error | count by function"])
        #expect(cli.status == 0, "\(cli.output)")
        let rows = cli.output.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        #expect(rows.prefix(3) == ["FUNCTION COUNT RECORDS", "tasks.list 2 2", "users.get 1 1"], "\(cli.output)")
        let json = try await CLIEndToEndTests.run(["requests", "--url", gatehouse.baseURL, "| sum(cost) by property.customer", "--json"])
        #expect(json.status == 0, "\(json.output)")
        #expect(try APIJSON.decode(AggregationResult.self, from: Data(json.output.utf8)).groups.count == 2)
        let table = try await CLIEndToEndTests.run(["requests", "--url", gatehouse.baseURL, "--query", "| sum(cost) by property.customer"])
        #expect(table.output.contains("SUM(COST) (usd)") && table.output.contains("acme") && table.output.contains("$"), "\(table.output)")

        // The console (open mode, from localhost) shows the groups as a table instead of the list.
        let browser = ConsoleClient(port: gatehouse.port)
        func console(_ path: String, _ q: String) async throws -> ConsoleClient.Page {
            try await browser.get(path + "?range=24h&q=" + q.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)
        }
        let logsPage = try await console("/logs", "level:error | count by function")
        #expect(logsPage.status == 200 && logsPage.html.contains(#"<table class="aggregation">"#), "\(logsPage.html.prefix(3000))")
        #expect(logsPage.html.contains("<td>tasks.list</td>") && logsPage.html.contains(#"<td class="num">3</td>"#))
        let spendPage = try await console("/requests", "| sum(cost) by property.customer")
        #expect(spendPage.status == 200 && spendPage.html.contains("<td>acme</td>") && spendPage.html.contains("sum(cost) (usd)"))
        let refused = try await console("/logs", "| count by bin(1s)")
        #expect(refused.status == 400 && refused.html.contains("at most 1000"))

        try await api.verifyContract()
        try await gatehouse.stop()
        try await mock.stop()
    }

    /// Error events from the real sentry-sdk, aggregated through `GET /api/v1/issues`.
    @Test(arguments: Backend.allCases)
    func errorEventsFromTheSentrySDKAggregate(_ backend: Backend) async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: telemetryConfig, databaseURL: try backend.databaseURL())
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let dsn = "http://\(ingestKey)@127.0.0.1:\(gatehouse.port)/42"
        // ValueError twice, KeyError, RuntimeError and a warning message, release app@1.2.3.
        _ = try await telemetryClient(["sentry", "--dsn", dsn], as: SentryClientReport.self)
        let byType = try await Poll.until("5 error events") {
            let result = try await Self.groups(api, "/api/v1/issues", ["q": "| count by type"])
            return result.groups.reduce(0) { $0 + $1.count } == 5 ? result : nil
        }
        #expect(byType.over == "error_events" && byType.groupBy == ["type"])
        #expect(Array(Self.values(byType, "type").prefix(1)) == ["ValueError=2"], "\(byType.groups)")
        let errors = try await Self.groups(api, "/api/v1/issues", ["q": #"release:"app@1.2.3" level:error | count by issue"#])
        #expect(errors.groups.map(\.count) == [2, 1, 1], "three issues of errors; the warning is left out")
        let refused = try await api.failure(.GET, apiPath("/api/v1/issues", ["q": "| count by type", "status": "resolved"]))
        #expect(refused.status == 400 && refused.error.error.param == "status")
        try await api.verifyContract()
        try await gatehouse.stop()
    }
}
