import AsyncHTTPClient
import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

/// The console's AI request table, one request's page, the exports and the spend page, against
/// the real binary with calls made through its own gateway.
@Suite("Console AI requests and spend")
struct ConsoleRequestsTests {
    static let token = "console-requests-token-0123456789"
    /// A provider nobody listens on, behind an alias whose fallback is the built-in mock; a tiny
    /// budget for one team, so its events appear.
    static let yaml = """
        providers:
          - name: dead
            kind: openai
            base_url: http://127.0.0.1:9/v1
            api_key: sk-dead-provider-000000
        aliases:
          - alias: smart
            targets:
              - {model: dead/gpt-4o-mini, priority: 0}
              - {model: mock/gpt-4o-mini, priority: 1}
        budgets:
          - name: team-cap
            scope: property.team
            amount_usd: "0.0001"
            period: month
        recorder:
          flush_interval_ms: 20
        """
    static let formulaUser = "=SUM(1,2)"

    /// What the tests made: the key, and every record as the JSON API shows it (newest first).
    struct World {
        var gatehouse: GatehouseProcess
        var api: TypedAPI
        var browser: ConsoleClient
        var keyID: String
        var records: [RequestRecordView]
        func record(_ id: String) -> RequestRecordView? { records.first { $0.id == id } }
    }

    /// Starts Gatehouse, creates the key `web-app`, and makes 62 calls: 41 through the mock for
    /// customers acme and globex, one through the alias that falls back, six for the budgeted
    /// team, one cache miss and its hit, and 12 without a key (refused, 401).
    static func world(_ backend: Backend) async throws -> World {
        let gatehouse = try await GatehouseProcess.start(yaml: yaml, databaseURL: try backend.databaseURL(), environment: ["GATEHOUSE_ADMIN_TOKEN": token])
        let api = TypedAPI(baseURL: gatehouse.baseURL, adminToken: token)
        let created = try await api.raw(.POST, "/api/v1/keys", body: Data(#"{"alias":"web-app","budget":{"amount_usd":"10","period":"month"}}"#.utf8))
        #expect(created.status == 201, "\(String(decoding: created.body, as: UTF8.self))")
        let issued = try APIJSON.decode(IssuedKey.self, from: created.body)
        func call(_ model: String, text: String, headers: [(String, String)], key: Bool = true, maxTokens: Int? = nil) async throws -> Int {
            let auth = key ? [("Authorization", "Bearer \(issued.key)")] : []
            return try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: chatBody(model, maxTokens: maxTokens, text: text),
                                       headers: auth + headers).status
        }
        for i in 0..<40 {
            // Prompts of different lengths: every call has its own token count and cost.
            let status = try await call("mock/gpt-4o-mini", text: String(repeating: "word ", count: 2 + 3 * i),
                                        headers: [("Gatehouse-Property-Customer", i % 2 == 0 ? "acme" : "globex"),
                                                  ("Gatehouse-User-Id", i % 4 == 0 ? "alice" : "bob")])
            #expect(status == 200)
        }
        #expect(try await call("mock/gpt-4o-mini", text: "formula", headers: [("Gatehouse-Property-Customer", "acme"), ("Gatehouse-User-Id", formulaUser)]) == 200)
        #expect(try await call("smart", text: "fall back please", headers: [("Gatehouse-Property-Customer", "acme")]) == 200)
        // About 11 µ$ each: the fifth crosses half the budget; later ones may be refused by it.
        for _ in 0..<6 { _ = try await call("mock/gpt-4o-mini", text: "team call", headers: [("Gatehouse-Property-Team", "growth")], maxTokens: 16) }
        // The same cacheable call twice: the second is answered from the cache.
        for _ in 0..<2 { #expect(try await call("mock/gpt-4o-mini", text: "cache me", headers: [("Gatehouse-Cache", "true")]) == 200) }
        for _ in 0..<12 { #expect(try await call("mock/gpt-4o-mini", text: "no key", headers: [], key: false) == 401) }
        let records = try await waitForRequests(api, count: 62)
        let browser = ConsoleClient(port: gatehouse.port)
        #expect(try await browser.signIn(password: token).status == 303)
        return World(gatehouse: gatehouse, api: api, browser: browser, keyID: issued.view.id, records: records)
    }

    // MARK: Reading pages

    /// The request ids a list page links to, in order.
    static func ids(_ html: String) -> [String] {
        html.matches(of: /href="\/requests\/(req_[0-9a-f]+)"/).map { String($0.output.1) }
    }

    /// The target of the link with `rel`, unescaped.
    static func link(_ html: String, rel: String) -> String? {
        html.firstMatch(of: try! Regex(#"href="([^"]*)" rel="\#(rel)""#)).map { unescape(String($0.output[1].substring ?? "")) }
    }

    static func unescape(_ text: String) -> String {
        text.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'").replacingOccurrences(of: "&lt;", with: "<")
            .replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
    }

    static func encoded(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "" }

    /// The API's records matching `q`, newest first.
    static func apiRecords(_ world: World, q: String) async throws -> [RequestRecordView] {
        try await world.api.get("/api/v1/requests?limit=1000&q=" + encoded(q), as: RequestRecordPage.self).data
    }

    /// A console file download through the session (de-chunked by the HTTP client).
    static func download(_ world: World, _ path: String) async throws -> HTTP.Reply {
        let session = try #require(world.browser.cookie("gatehouse-session"))
        return try await HTTP.send(world.gatehouse.baseURL + path, method: .GET, headers: [("Cookie", "gatehouse-session=\(session)")], body: nil)
    }

    // MARK: Tests

    @Test("the request table pages, filters, sorts and refuses a bad query with its message", arguments: Backend.allCases)
    func requestTable(_ backend: Backend) async throws {
        let world = try await Self.world(backend)
        defer { Task { _ = try? await world.gatehouse.stop() } }
        let browser = world.browser

        let anonymous = try await ConsoleClient(port: world.gatehouse.port).get("/requests?q=status:200")
        #expect(anonymous.status == 303 && anonymous.location?.hasPrefix("/login?next=") == true)

        // Newest first, 50 a page; Next and Newer walk the same rows as the API lists.
        let first = try await browser.get("/requests?range=1h")
        #expect(first.status == 200)
        let firstIDs = Self.ids(first.html)
        #expect(firstIDs.count == 50 && Self.link(first.html, rel: "prev") == nil)
        let next = try #require(Self.link(first.html, rel: "next"))
        #expect(next.contains("range=1h") && next.contains("cursor="))
        let second = try await browser.get(next)
        #expect(second.status == 200)
        #expect(firstIDs + Self.ids(second.html) == world.records.map(\.id), "every record once, in the API's order")
        #expect(Self.link(second.html, rel: "next") == nil)
        let newer = try #require(Self.link(second.html, rel: "prev"))
        #expect(second.html.contains("← Newer"))
        #expect(Self.ids(try await browser.get(newer).html) == firstIDs, "Newer goes back to the first page")

        // What a row says: the key by its alias, refusals as 401 pills, a fallback's served model.
        #expect(first.html.contains(">web-app</a>") && !first.html.contains(">\(world.keyID)<"))
        let failed = try await browser.get("/requests?failed=true")
        let refused = world.records.filter { $0.status == 401 }.map(\.id)
        #expect(Self.ids(failed.html) == refused && refused.count == 12)
        #expect(failed.html.contains(#"<span class="pill warn" title="unauthorized">401</span>"#))
        #expect(failed.html.contains(#"<option value="true" selected>Failed</option>"#), "the form shows the filter in use")
        let fallback = try #require(world.records.first { $0.requestedModel == "smart" })
        #expect(first.html.contains(">smart</a> <span class=\"hint\">→ \(fallback.model)</span>"), "requested → served")

        // The query language, with the simple filters beside it and in every link.
        let acme = try await Self.apiRecords(world, q: "property.customer:acme")
        let byQuery = try await browser.get("/requests?q=" + Self.encoded("property.customer:acme"))
        #expect(byQuery.status == 200 && Self.ids(byQuery.html) == acme.map(\.id) && acme.count == 22)
        #expect(byQuery.html.contains(#"value="property.customer:acme""#))
        #expect(byQuery.html.contains("q=property.customer%3Aacme&amp;sort=-cost"), "sort links keep the query")
        #expect(byQuery.html.contains("/requests/export.csv?q=property.customer%3Aacme"), "exports take the same filter")
        let alice = try await browser.get("/requests?user=alice&q=" + Self.encoded("-status:401"))
        #expect(Self.ids(alice.html) == world.records.filter { $0.userID == "alice" }.map(\.id))
        #expect(alice.html.contains("user: alice"), "the active filter shows as a chip")
        let property = try await browser.get("/requests?property.customer=globex")
        #expect(Set(Self.ids(property.html)) == Set(world.records.filter { $0.properties["customer"] == "globex" }.map(\.id)))
        #expect(property.html.contains(#"<input type="hidden" name="property.customer" value="globex">"#), "the form keeps it")

        // Sorted in the store: each page in order of the column, every row once.
        let succeeded = world.records.filter { $0.status == 200 }
        for (sort, value, descending) in [("-cost", { (r: RequestRecordView) in Double(r.costMicros) }, true),
                                          ("latency", { (r: RequestRecordView) in r.latencyMs }, false),
                                          ("-tokens", { (r: RequestRecordView) in Double(r.usage.totalTokens) }, true)] {
            let page = try await browser.get("/requests?q=status:200&sort=\(sort)")
            let values = Self.ids(page.html).compactMap { world.record($0) }.map(value)
            #expect(Set(Self.ids(page.html)) == Set(succeeded.map(\.id)) && values.count == succeeded.count, "sort=\(sort)")
            #expect(values == values.sorted(by: descending ? (>) : (<)), "sort=\(sort) orders by its column")
            #expect(page.html.contains(#"aria-sort="\#(descending ? "descending" : "ascending")""#))
        }
        let byCost = try await browser.get("/requests?sort=-cost&range=1h")
        #expect(byCost.html.contains("range=1h&amp;sort=cost\""), "the sorted column's header flips the order")
        let costNext = try #require(Self.link(byCost.html, rel: "next"))
        let costRest = try await browser.get(costNext)
        let costIDs = Self.ids(byCost.html) + Self.ids(costRest.html)
        #expect(Set(costIDs) == Set(world.records.map(\.id)) && costIDs.count == world.records.count, "paging by cost skips and repeats nothing")
        #expect(costIDs.compactMap { world.record($0)?.costMicros } == costIDs.compactMap { world.record($0)?.costMicros }.sorted(by: >))
        #expect(Self.ids(try await browser.get(try #require(Self.link(costRest.html, rel: "prev"))).html) == Self.ids(byCost.html))

        // A filter that cannot run says why, keeps the form, and is not a crash.
        for (query, message) in [("q=" + Self.encoded("status:>"), "expected a value for status"),
                                 ("q=" + Self.encoded("nosuch:1"), "unknown field `nosuch`"),
                                 ("status=abc", "`status` must be an HTTP status code"),
                                 ("cursor=not-a-cursor", "Start again from the first page")] {
            let bad = try await browser.get("/requests?" + query)
            #expect(bad.status == 400 && bad.html.contains("This filter cannot run") && bad.html.contains(message), "\(query): \(bad.status)")
            #expect(bad.html.contains(#"<form class="filters" method="get" action="/requests""#))
        }
        let empty = try await browser.get("/requests?model=no-such-model")
        #expect(empty.status == 200 && Self.ids(empty.html).isEmpty && empty.html.contains("match these filters"))
    }

    @Test("one request's page shows every field, its attempts and its links; an unknown id is a 404", arguments: Backend.allCases)
    func requestDetail(_ backend: Backend) async throws {
        let world = try await Self.world(backend)
        defer { Task { _ = try? await world.gatehouse.stop() } }
        let fallback = try #require(world.records.first { $0.requestedModel == "smart" })
        #expect(fallback.attempts.count == 2)
        let page = try await world.browser.get("/requests/" + fallback.id)
        #expect(page.status == 200)
        let html = page.html
        for text in [fallback.id, fallback.correlationID, "smart", fallback.model, "mock", "acme", "web-app", "/v1/chat/completions",
                     "Time to first token", "Cached input tokens", "Reasoning tokens", "Cost saved", "reported by the provider",
                     "not from cache", "fallback", "first try", "upstream_unreachable", "dead"] {
            #expect(html.contains(text), "the page shows \(text)")
        }
        #expect(html.contains(#"href="/correlation/\#(fallback.correlationID)""#))
        #expect(html.contains("/logs?q=correlation_id%3A\(fallback.correlationID)&amp;from="))
        #expect(html.contains("property.customer=acme"), "a property links to the calls that share it")
        #expect(html.contains("key=\(world.keyID)"), "the key links to its calls")

        let refused = try #require(world.records.first { $0.status == 401 })
        let refusedPage = try await world.browser.get("/requests/" + refused.id)
        #expect(refusedPage.html.contains("refused the call (unauthorized) before any provider was asked") && refusedPage.html.contains("not looked up"))

        let hit = try #require(world.records.first { $0.cacheHit })
        #expect(hit.costMicros == 0 && hit.costSavedMicros > 0)
        let hitPage = try await world.browser.get("/requests/" + hit.id)
        #expect(hitPage.html.contains(#"<span class="pill good">hit</span> Answered from the response cache"#))
        #expect(hitPage.html.contains("No upstream call: the answer came from the response cache"))
        let hits = try await world.browser.get("/requests?q=cache_hit:true")
        #expect(Self.ids(hits.html) == [hit.id] && hits.html.contains(#"<td><span class="pill good">hit</span></td>"#))

        let missing = try await world.browser.get("/requests/req_000000000000ffffffffffffffff")
        #expect(missing.status == 404 && missing.html.contains("No AI request has the id"))
    }

    @Test("exports stream the current filter as CSV and as the API's NDJSON", arguments: Backend.allCases)
    func exports(_ backend: Backend) async throws {
        let world = try await Self.world(backend)
        defer { Task { _ = try? await world.gatehouse.stop() } }

        let csv = try await Self.download(world, "/requests/export.csv?q=" + Self.encoded("property.customer:acme"))
        #expect(csv.status == 200 && csv.header("content-type") == "text/csv; charset=utf-8")
        #expect(csv.header("content-disposition")?.hasPrefix("attachment; filename=\"gatehouse-requests-") == true)
        #expect(csv.header("x-gatehouse-export-row-limit") == "100000")
        let text = String(decoding: csv.body, as: UTF8.self)
        let lines = text.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        let acme = try await Self.apiRecords(world, q: "property.customer:acme")
        #expect(lines.first?.hasPrefix("id,timestamp,route,provider,requested_model,model,status,") == true)
        #expect(lines.dropFirst().map { String($0.prefix { $0 != "," }) } == acme.map(\.id), "one row per record, in the list's order")
        #expect(text.contains(#","'=SUM(1,2)","#), "a formula is defused and the comma-holding cell quoted")
        #expect(text.contains(#""{""customer"":""acme""}""#), "quotes inside a cell are doubled")
        #expect(lines.dropFirst().allSatisfy { $0.contains(",web-app,") }, "the key's name beside its id")

        let ndjson = try await Self.download(world, "/requests/export.ndjson?sort=-cost")
        #expect(ndjson.status == 200 && ndjson.header("content-type") == "application/x-ndjson")
        let rows = try String(decoding: ndjson.body, as: UTF8.self).split(separator: "\n").map {
            try APIJSON.decode(RequestRecordView.self, from: Data($0.utf8))
        }
        #expect(Set(rows.map(\.id)) == Set(world.records.map(\.id)) && rows.count == world.records.count)
        for row in rows { #expect(row == world.record(row.id), "NDJSON rows are the API's records, field for field") }
        #expect(rows.map(\.costMicros) == rows.map(\.costMicros).sorted(by: >), "the export keeps the sort")

        let bad = try await Self.download(world, "/requests/export.csv?q=" + Self.encoded("cost:>"))
        #expect(bad.status == 400)
        let anonymous = try await ConsoleClient(port: world.gatehouse.port).get("/requests/export.ndjson")
        #expect(anonymous.status == 303 && anonymous.location == "/login?next=/requests/export.ndjson")
    }

    @Test("spend groups cost by model, key and property, charts it, and shows budgets with their events", arguments: Backend.allCases)
    func spend(_ backend: Backend) async throws {
        let world = try await Self.world(backend)
        defer { Task { _ = try? await world.gatehouse.stop() } }
        let browser = world.browser
        /// The store's own sums, through the JSON API, for the same hour.
        func groups(_ groupBy: String) async throws -> [String: UsageStatsView] {
            let report = try await world.api.get("/api/v1/ai/usage?from=-1h&group_by=" + groupBy, as: UsageReportView.self)
            return Dictionary(uniqueKeysWithValues: (report.groups ?? []).compactMap { g in g.key.map { ($0, g.stats) } })
        }

        let byModel = try await browser.get("/spend?range=1h")
        #expect(byModel.status == 200 && byModel.html.contains(#"<svg class="chart""#))
        let model = try #require(try await groups("model")["gpt-4o-mini"])
        let modelRow = #"title="These calls">gpt-4o-mini</a></td>\s*<td class="num">(\d+)</td>\s*<td class="num">(\d+)</td>"#
        let match = try #require(byModel.html.firstMatch(of: try Regex(modelRow)))
        #expect(match.output[1].substring.map(String.init) == String(model.requests) && match.output[2].substring.map(String.init) == String(model.errors),
                "requests and errors of the model, as the store sums them")
        #expect(byModel.html.contains("/requests?model=gpt-4o-mini&amp;range=1h"), "a group links to its calls")
        #expect(byModel.html.contains("/spend?group=key&amp;range=1h"), "the tabs keep the range")

        let byKey = try await browser.get("/spend?group=key")
        #expect(byKey.html.contains(">web-app</a>") && !byKey.html.contains(">\(world.keyID)<"), "keys by their alias")
        #expect(byKey.html.contains("(no key)"), "refused calls had no key")
        let noKey = try await browser.get("/requests?q=-key%3A%2A")
        #expect(byKey.html.contains(#"href="/requests?q=-key%3A%2A""#) && noKey.status == 200, "the keyless group links to its calls")
        #expect(Self.ids(noKey.html) == world.records.filter { $0.keyID == nil }.map(\.id))

        let byCustomer = try await browser.get("/spend?group=property&property=customer")
        let customers = try await groups("property.customer")
        for customer in ["acme", "globex"] {
            let count = try #require(customers[customer]).requests
            #expect(count == Int64(world.records.filter { $0.properties["customer"] == customer }.count))
            #expect(byCustomer.html.contains(try Regex(#">\#(customer)</a></td>\s*<td class="num">\#(count)</td>"#)), "\(customer): \(count) calls")
        }
        #expect(try await browser.get("/spend?group=property").html.contains("Name a property to group by"))
        let filtered = try await browser.get("/spend?group=user&q=" + Self.encoded("property.customer:acme"))
        #expect(filtered.html.contains(">alice</a>") && filtered.html.contains(#"<span class="pill info">q: property.customer:acme"#))
        let bad = try await browser.get("/spend?q=" + Self.encoded("(model:x"))
        #expect(bad.status == 400 && bad.html.contains("This filter cannot run") && bad.html.contains(#"id="budgets""#))

        // The team's tiny budget crossed its thresholds: the events are on the page.
        try await Poll.until("budget events") {
            let report = try await world.api.raw(.GET, "/api/v1/budgets")
            let events = (try JSONSerialization.jsonObject(with: report.body) as? [String: Any])?["events"] as? [Any]
            return !(events ?? []).isEmpty
        }
        let budgets = try await browser.get("/spend")
        let section = String(budgets.html.split(separator: #"id="budgets""#).last ?? "")
        #expect(section.contains("key web-app") && section.contains("$10.00"), "the key's budget, by the key's alias")
        #expect(section.contains("team-cap") && section.contains("growth"), "the property budget and the value it counts")
        #expect(section.contains(#"<span class="pill warn" title="crossed">50%</span>"#))
        #expect(section.contains("<meter") && section.contains("Recent budget events") && !section.contains("No budget crossed"))
    }
}
