import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseGateway
import GatehouseHTTP
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `/requests`, `/requests/{id}` and the exports: the AI request table.
struct RequestsPage: Sendable {
    let console: Console
    var deps: ConsoleDependencies { console.deps }

    static let pageSize = 50
    /// Most rows one export writes; a last line says so when the filter matched more.
    static let exportLimit = 100_000
    /// Rows per store read while exporting (the store's largest page).
    static let exportPageSize = 1000
    /// The URL parameters `UsageRoutes.filter` reads, besides `property.<name>`.
    static let filterNames = ["q", "model", "provider", "key", "user", "status", "failed", "route", "correlation_id"]

    func addRoutes(to r: APIRouter.AccessGroup) {
        r.get("/requests") { request, _ in await console.page(request, .requests) { try await list($0) } }
        r.get("/requests/export.csv") { request, _ in await export(request, as: .csv) }
        r.get("/requests/export.ndjson") { request, _ in await export(request, as: .ndjson) }
        r.get("/requests/{id}") { request, context in
            let id = PathSegment.decode(context.parameters.get("id") ?? "")
            return await console.page(request, .requests) { try await detail($0, id: id) }
        }
    }

    // MARK: Shared with the spend page

    /// The filter in a page's URL, read by the API's own reader; a form's empty fields mean "any".
    static func filter(_ parameters: [String: String]) throws -> RequestFilter {
        try UsageRoutes.filter(FormParameters(query: filterQuery(parameters)))
    }

    /// The filter parameters that are set, as a query string.
    static func filterQuery(_ parameters: [String: String]) -> String {
        activeFilters(parameters).map { Console.percentEncode($0.name) + "=" + Console.percentEncode($0.value) }.joined(separator: "&")
    }

    static func activeFilters(_ parameters: [String: String]) -> [(name: String, value: String)] {
        parameters.filter { (filterNames.contains($0.key) || $0.key.hasPrefix("property.")) && !$0.value.trimmingCharacters(in: .whitespaces).isEmpty }
            .sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// `path` with this page's parameters and `changes` applied (nil removes one); paging starts over.
    static func href(_ path: String, _ input: Console.PageInput, _ changes: [String: String?] = [:]) -> String {
        var kept = input.parameters.filter { !["cursor", "ok", "error", "custom"].contains($0.key) && !$0.value.isEmpty }
        for (name, value) in changes { kept[name] = value }
        return Console.url(path, kept.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }

    /// Each key's display name by id: its alias, else the start of its secret. Read once per page.
    static func keyNames(_ deps: ConsoleDependencies) async throws -> [String: String] {
        var names: [String: String] = [:]
        for key in try await deps.controls.allKeys() { names[key.id] = key.alias ?? (key.prefix + "…") }
        return names
    }

    /// Active filters as removable chips.
    struct Chip {
        var label: String
        var removeHref: String
    }

    static func chips(_ path: String, _ input: Console.PageInput) -> [Chip] {
        activeFilters(input.parameters).map { Chip(label: "\($0.name): \($0.value)", removeHref: href(path, input, [$0.name: nil])) }
    }

    // MARK: The list

    struct Row {
        var href: String
        var time: String
        var ago: String
        var route: String
        var requestedModel: String
        /// The served model when it differs from what was asked for.
        var servedModel: String?
        var modelHref: String
        /// Empty when the call was refused before a provider was chosen.
        var provider: String?
        var providerHref: String
        var status: String
        var tone: String
        var errorClass: String?
        var latency: String
        var inputTokens: String
        var outputTokens: String
        var cost: String
        var estimated: Bool
        var key: String?
        var keyHref: String?
        var user: String?
        var userHref: String?
        var cacheHit: Bool
    }

    struct SortHeader {
        var label: String
        var href: String
        var sorted: Bool
        var arrow: String
        var ariaSort: String
        var title: String
    }

    struct Option {
        var value: String
        var label: String
        var selected: Bool
    }

    func list(_ input: Console.PageInput) async throws -> Console.PageOutput {
        let range = input.range, parameters = input.parameters
        let sort = parameters["sort"].flatMap(RequestSort.init) ?? .newestFirst
        let cursor = parameters["cursor"].flatMap { $0.isEmpty ? nil : $0 }
        async let keyNames = Self.keyNames(deps)
        var body: [String: Any] = [
            // Under their own name: a row's missing user or key must not find the form's value.
            "form": ["q": parameters["q"] ?? "", "model": parameters["model"] ?? "", "provider": parameters["provider"] ?? "",
                     "user": parameters["user"] ?? "", "status": parameters["status"] ?? ""],
            "rangeLabel": range.label,
            "chips": Self.chips("/requests", input), "hasChips": !Self.activeFilters(parameters).isEmpty, "clearHref": Console.url("/requests", range.parameters),
            "failedOptions": [("", "Any outcome"), ("true", "Failed"), ("false", "Succeeded")].map {
                Option(value: $0.0, label: $0.1, selected: (parameters["failed"] ?? "") == $0.0)
            },
            // The form replaces the simple filters; the rest of the view rides along.
            "kept": parameters.filter { ["range", "from", "to", "sort", "route", "correlation_id"].contains($0.key) || $0.key.hasPrefix("property.") }
                .filter { !$0.value.isEmpty }.sorted { $0.key < $1.key }.map { Nav.Hidden(name: $0.key, value: $0.value) },
            "sortHeaders": Self.sortHeaders(input, current: sort),
            "csvHref": Self.href("/requests/export.csv", input), "ndjsonHref": Self.href("/requests/export.ndjson", input),
            "exportLimit": Format.count(Int64(Self.exportLimit)),
        ]
        let names = try await keyNames
        let selectedKey = parameters["key"] ?? ""
        var keyOptions = [Option(value: "", label: "Any key", selected: selectedKey.isEmpty)]
            + names.sorted { ($0.value.lowercased(), $0.key) < ($1.value.lowercased(), $1.key) }.map { Option(value: $0.key, label: $0.value, selected: $0.key == selectedKey) }
        // A key that is not a virtual key (a provider key's fingerprint) stays selectable once filtered on.
        if !selectedKey.isEmpty && names[selectedKey] == nil { keyOptions.append(Option(value: selectedKey, label: selectedKey, selected: true)) }
        body["keyOptions"] = keyOptions

        var status: HTTPResponse.Status = .ok
        do {
            if let groups = try await aggregation(parameters, range: range) {
                body["aggregation"] = groups
                return Console.PageOutput(template: "requests", title: "AI requests", body: body, status: status)
            }
            let filter = try Self.filter(parameters)
            async let page = deps.requests.requests(RequestListQuery(filter: filter, fromMicros: range.fromMicros, toMicros: range.toMicros,
                                                                     limit: Self.pageSize, cursor: cursor, sort: sort))
            // The summary is a nicety: a range too large for SQLite's percentiles shows it without them, and a failure leaves it out.
            async let summary = try? OverviewPage.usage(deps.requests, UsageQuery(fromMicros: range.fromMicros, toMicros: range.toMicros, filter: filter))
            let rows = try await page.records.map { Self.row($0, input: input, keyNames: names) }
            body["rows"] = rows
            body["hasRows"] = !rows.isEmpty
            body["filtered"] = !Self.activeFilters(parameters).isEmpty
            let (next, previous) = try await (page.nextCursor, page.previousCursor)
            body["nextHref"] = next.map { Self.href("/requests", input, ["cursor": $0]) }
            body["previousHref"] = previous.map { Self.href("/requests", input, ["cursor": $0]) }
            body["previousLabel"] = sort == .newestFirst ? "← Newer" : "← Previous"
            body["firstHref"] = cursor.map { _ in Self.href("/requests", input) }
            body["hasPager"] = next != nil || previous != nil || cursor != nil
            if let totals = await summary?.totals, totals.requests > 0 {
                body["summary"] = [
                    "requests": Format.count(totals.requests) + (totals.requests == 1 ? " call" : " calls"),
                    "errors": Format.count(totals.errors) + (totals.errors == 1 ? " error" : " errors"), "cost": Format.dollars(totals.cost),
                    "tokens": Format.count(totals.usage.totalTokens),
                    "p50": totals.latency.map { Format.latency(micros: $0.p50) } ?? "–", "p95": totals.latency.map { Format.latency(micros: $0.p95) } ?? "–",
                ]
            }
        } catch {
            guard let problem = PageProblem(error) else { throw error }
            status = problem.status
            body["error"] = problem.message
        }
        return Console.PageOutput(template: "requests", title: "AI requests", body: body, status: status)
    }

    static func sortHeaders(_ input: Console.PageInput, current: RequestSort) -> [String: SortHeader] {
        var headers: [String: SortHeader] = [:]
        for field in RequestSort.Field.allCases {
            let sorted = current.field == field
            // A new column sorts highest first; the sorted one flips.
            let next = RequestSort(field, descending: sorted ? !current.descending : true)
            let label = field == .time ? "Time" : field.rawValue.capitalized
            headers[field.rawValue] = SortHeader(
                label: label, href: href("/requests", input, ["sort": next == .newestFirst ? nil : next.name]), sorted: sorted,
                arrow: sorted ? (current.descending ? "▼" : "▲") : "", ariaSort: sorted ? (current.descending ? "descending" : "ascending") : "none",
                title: "Sort by \(field.rawValue), " + (next.descending ? "highest first" : "lowest first"))
        }
        return headers
    }

    static func row(_ r: RequestRecord, input: Console.PageInput, keyNames: [String: String]) -> Row {
        let served = r.model == r.requestedModel || r.requestedModel.split(separator: "/").last.map(String.init) == r.model ? nil : r.model
        return Row(
            href: "/requests/" + PathSegment.encode(r.id), time: Format.rowTime(r.timestampMicros),
            ago: Format.dateTime(r.timestampMicros) + " · " + Format.ago(r.timestampMicros), route: r.route.rawValue, requestedModel: r.requestedModel, servedModel: served,
            modelHref: href("/requests", input, ["model": r.model]), provider: r.provider.isEmpty ? nil : r.provider, providerHref: href("/requests", input, ["provider": r.provider]),
            status: String(r.status), tone: tone(status: r.status, errorClass: r.errorClass), errorClass: r.errorClass?.rawValue,
            latency: Format.latency(micros: Double(r.latencyMicros)), inputTokens: Format.count(Int64(r.usage.inputTokens)),
            outputTokens: Format.count(Int64(r.usage.outputTokens)), cost: Format.dollars(r.cost), estimated: r.usageEstimated,
            key: r.keyID.map { keyNames[$0] ?? $0 }, keyHref: r.keyID.map { href("/requests", input, ["key": $0]) },
            user: r.userID, userHref: r.userID.map { href("/requests", input, ["user": $0]) }, cacheHit: r.cacheHit)
    }

    /// good for a success, warn for a refusal or a cut stream, bad for a failure upstream or here.
    static func tone(status: Int?, errorClass: ErrorClass?) -> String {
        guard let status else { return "bad" }
        if status >= 500 { return "bad" }
        if status >= 400 || errorClass != nil { return "warn" }
        return "good"
    }

    // MARK: One request

    struct Field {
        var label: String
        var value: String
        var href: String?
        var tone: String?
        var mono = false
        var hint: String?
    }

    struct AttemptRow {
        var number: Int
        var kind: String
        var kindTone: String
        var provider: String
        var model: String
        var status: String
        var tone: String
        var errorClass: String?
        var errorMessage: String?
        var latency: String
        var delay: String
    }

    func detail(_ input: Console.PageInput, id: String) async throws -> Console.PageOutput {
        async let keyNames = Self.keyNames(deps)
        guard id.utf8.count <= 200 else {
            throw Console.PageFailure.notFound("No AI request has the id “\(Format.foreignID(id))”. It may be older than the retention period, or the link is wrong.")
        }
        async let bodies = deps.requests.bodies(requestID: id)
        guard let r = try await deps.requests.request(id: id) else {
            throw Console.PageFailure.notFound("No AI request has the id “\(Format.foreignID(id))”. It may be older than the retention period, or the link is wrong.")
        }
        let names = try await keyNames
        let list = Console.url("/requests", input.range.parameters)
        func filtered(_ name: String, _ value: String) -> String { Console.url("/requests", input.range.parameters + [(name, value)]) }
        let call = [
            Field(label: "Request id", value: r.id, mono: true),
            Field(label: "Correlation id", value: r.correlationID, href: "/correlation/" + PathSegment.encode(r.correlationID), mono: true,
                  hint: "ties this call to the app's logs and errors"),
            Field(label: "Time", value: Format.dateTime(r.timestampMicros), hint: Format.ago(r.timestampMicros)),
            Field(label: "Route", value: r.route.rawValue, href: filtered("route", r.route.rawValue), mono: true),
            Field(label: "Requested model", value: r.requestedModel),
            Field(label: "Served model", value: r.model, href: filtered("model", r.model)),
            Field(label: "Provider", value: r.provider, href: filtered("provider", r.provider)),
            Field(label: "Status", value: String(r.status), tone: Self.tone(status: r.status, errorClass: r.errorClass)),
            Field(label: "Stream", value: r.stream ? "yes" : "no"),
            Field(label: "Complete", value: r.complete ? "yes" : "no", hint: r.complete ? nil : "the response ended early"),
        ]
        let timing = [
            Field(label: "Latency", value: Format.latency(micros: Double(r.latencyMicros))),
            Field(label: "Time to first token", value: r.timeToFirstTokenMicros.map { Format.latency(micros: Double($0)) } ?? "–"),
        ]
        func tokens(_ n: Int) -> String { Int64(n).formatted(.number.grouping(.automatic).locale(Locale(identifier: "en_US"))) }
        let usage = [
            Field(label: "Input tokens", value: tokens(r.usage.inputTokens)),
            Field(label: "Output tokens", value: tokens(r.usage.outputTokens)),
            Field(label: "Cached input tokens", value: tokens(r.usage.cachedInputTokens)),
            Field(label: "Cache-creation input tokens", value: tokens(r.usage.cacheCreationInputTokens)),
            Field(label: "Reasoning tokens", value: tokens(r.usage.reasoningTokens)),
            Field(label: "Total tokens", value: tokens(r.usage.totalTokens)),
            Field(label: "Cost", value: Format.dollars(r.cost), hint: "exactly $" + r.cost.dollarString),
            Field(label: "Cost saved", value: Format.dollars(r.costSaved)),
            Field(label: "Usage", value: r.usageEstimated ? "estimated" : "reported by the provider", tone: r.usageEstimated ? "warn" : nil,
                  hint: r.usageEstimated ? "the provider never reported usage; tokens and cost are Gatehouse's estimate" : nil),
        ]
        var caller = [
            Field(label: "Key", value: r.keyID.map { names[$0] ?? $0 } ?? "–", href: r.keyID.map { filtered("key", $0) },
                  hint: r.keyID.flatMap { names[$0] == nil ? nil : $0 }),
            Field(label: "User", value: r.userID ?? "–", href: r.userID.map { filtered("user", $0) }),
        ]
        caller += r.properties.sorted { $0.key < $1.key }.map { name, value in
            Field(label: "property.\(name)", value: value, href: filtered("property.\(name)", value))
        }
        let attempts = r.attempts.enumerated().map { index, a in
            let previous = index > 0 ? r.attempts[index - 1] : nil
            let kind = previous.map { $0.provider == a.provider && $0.model == a.model ? "retry" : "fallback" } ?? "first try"
            return AttemptRow(number: index + 1, kind: kind, kindTone: kind == "retry" ? "warn" : kind == "fallback" ? "info" : "", provider: a.provider, model: a.model, status: a.status.map(String.init) ?? "no response",
                              tone: Self.tone(status: a.status, errorClass: a.errorClass), errorClass: a.errorClass?.rawValue, errorMessage: a.errorMessage,
                              latency: Format.latency(micros: Double(a.latencyMicros)), delay: a.delayMilliseconds > 0 ? "\(a.delayMilliseconds) ms" : "–")
        }
        let logsQuery = "correlation_id:" + Self.queryValue(r.correlationID)
        // Logs usually sit within minutes of the call; an hour either side finds them at any age.
        let logsHref = Console.url("/logs", [("q", logsQuery), ("from", TimeExpressions.format(micros: r.timestampMicros - 3_600_000_000)),
                                             ("to", TimeExpressions.format(micros: r.timestampMicros + 3_600_000_000))])
        var body: [String: Any] = [
            "id": r.id, "call": call, "timing": timing, "usage": usage, "caller": caller,
            "attempts": attempts, "hasAttempts": !attempts.isEmpty, "listHref": list,
            "logsHref": logsHref, "logsQuery": logsQuery, "correlationHref": "/correlation/" + PathSegment.encode(r.correlationID),
            "correlationID": r.correlationID, "cache": Self.cacheNote(r),
            "breakerOpen": r.errorMessage?.contains("circuit breaker is open") ?? false,
            "oneAttempt": Self.oneAttemptNote(r),
            "summary": "\(r.requestedModel) · \(r.provider) · \(Format.dateTime(r.timestampMicros))",
        ]
        if let captured = try await bodies {
            body["bodies"] = RequestBodiesView.model(captured)
        }
        if let errorClass = r.errorClass {
            body["error"] = ["errorClass": errorClass.rawValue, "message": r.errorMessage ?? "(no message)",
                             "href": filtered("q", "error:\(errorClass.rawValue)")]
        }
        return Console.PageOutput(template: "request", title: "AI request", body: body, showsRange: false)
    }

    /// Gatehouse answered the call itself: no provider (and no cache) was asked.
    static func refusedHere(_ r: RequestRecord) -> Bool {
        guard let errorClass = r.errorClass else { return false }
        return [.invalidRequest, .unauthorized, .forbidden, .rateLimited, .budgetExceeded, .disabled].contains(errorClass)
    }

    /// What an empty attempts list means for this call.
    static func oneAttemptNote(_ r: RequestRecord) -> String {
        if r.cacheHit { return "No upstream call: the answer came from the response cache." }
        if refusedHere(r), let errorClass = r.errorClass {
            return "No upstream call: Gatehouse refused the call (\(errorClass.rawValue)) before any provider was asked."
        }
        return "One attempt: the first provider called gave this answer, with no retry or fallback."
    }

    /// The cache outcome: its pill and what it means.
    static func cacheNote(_ r: RequestRecord) -> [String: String] {
        if r.cacheHit {
            return ["label": "hit", "tone": "good",
                    "text": "Answered from the response cache: nothing was sent upstream and the call cost nothing. It saved \(Format.dollars(r.costSaved))."]
        }
        if refusedHere(r) { return ["label": "not looked up", "tone": "", "text": "Gatehouse refused the call before the cache was consulted."] }
        return ["label": "not from cache", "tone": "", "text": "The call went upstream (the cache was off for it, or held no answer yet)."]
    }

    /// A query-language value: bare when it is one plain word, else a quoted phrase.
    static func queryValue(_ text: String) -> String {
        let special: Set<Character> = [" ", "\t", "\n", "\r", "(", ")", "\"", ":", "[", "]", "|", ",", "*", "\\"]
        if !text.isEmpty, !text.hasPrefix("-"), !text.contains(where: special.contains) { return text }
        return "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    // MARK: Export

    enum ExportFormat {
        case csv, ndjson

        var contentType: String { self == .csv ? "text/csv; charset=utf-8" : "application/x-ndjson" }
        var fileExtension: String { self == .csv ? "csv" : "ndjson" }
    }

    static let csvHeader = [
        "id", "timestamp", "route", "provider", "requested_model", "model", "status", "stream", "latency_ms", "ttft_ms",
        "input_tokens", "output_tokens", "cached_input_tokens", "cache_creation_input_tokens", "reasoning_tokens", "total_tokens",
        "cost_usd", "cost_saved_usd", "cache_hit", "usage_estimated", "complete", "key_id", "key_name", "user_id", "correlation_id",
        "error_class", "error_message", "properties", "attempts",
    ]

    /// The current filter, time range and sort as a file, written page by page through the list's
    /// own query: CSV for spreadsheets, NDJSON in the API's record format for scripts.
    func export(_ request: Request, as format: ExportFormat) async -> Response {
        let parameters = Console.parameters(request.uri.query)
        let query: RequestListQuery
        let first: RequestPage
        let names: [String: String]
        do {
            guard try await console.auth.viewer(request) != nil else { return console.signInRedirect(request) }
            let range = TimeRange(parameters: parameters)
            query = RequestListQuery(filter: try Self.filter(parameters), fromMicros: range.fromMicros, toMicros: range.toMicros,
                                     limit: Self.exportPageSize, sort: parameters["sort"].flatMap(RequestSort.init) ?? .newestFirst)
            // The first page is read before answering, so a bad filter gets a proper error page.
            first = try await deps.requests.requests(query)
            names = format == .csv ? try await Self.keyNames(deps) : [:]
        } catch {
            if let problem = PageProblem(error) { return console.renderer.page("unavailable", ["message": problem.message], status: problem.status) }
            Console.logger.error("console export failed", metadata: ["error": "\(Redactor.scrubText(String(describing: error)))"])
            return console.renderer.page("unavailable", ["message": "The store did not answer. Try again in a moment."], status: .serviceUnavailable)
        }
        var headers = PageRenderer.securityHeaders
        headers[.contentType] = format.contentType
        headers[.contentDisposition] = "attachment; filename=\"gatehouse-requests-\(Format.fileStamp(TimeExpressions.nowMicros())).\(format.fileExtension)\""
        headers[.exportRowLimit] = String(Self.exportLimit)
        let store = deps.requests
        let body = ResponseBody { writer in
            var page = first, written = 0
            if format == .csv { try await writer.write(ByteBuffer(string: Self.csvLine(Self.csvHeader))) }
            while true {
                let rows = page.records.prefix(Self.exportLimit - written)
                try await writer.write(ByteBuffer(string: Self.lines(Array(rows), format: format, keyNames: names)))
                written += rows.count
                guard let next = page.nextCursor else { break }
                if written >= Self.exportLimit {
                    try await writer.write(ByteBuffer(string: Self.lastLine(
                        "truncated: the export stops at \(Self.exportLimit) rows and more matched; narrow the time range or the filter", format: format)))
                    break
                }
                var nextQuery = query
                nextQuery.cursor = next
                do {
                    page = try await store.requests(nextQuery)
                } catch {
                    Console.logger.error("console export stopped", metadata: ["error": "\(Redactor.scrubText(String(describing: error)))"])
                    try await writer.write(ByteBuffer(string: Self.lastLine("incomplete: the store stopped answering after \(written) rows", format: format)))
                    break
                }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    static func lines(_ records: [RequestRecord], format: ExportFormat, keyNames: [String: String]) -> String {
        var text = ""
        for record in records {
            let view = UsageRoutes.view(record)
            switch format {
            case .ndjson:
                text += String(decoding: (try? APIJSON.encode(view)) ?? Data("{}".utf8), as: UTF8.self) + "\n"
            case .csv:
                let properties = (try? APIJSON.encode(view.properties)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
                text += csvLine([
                    view.id, view.timestamp, view.route, view.provider, view.requestedModel, view.model, String(view.status), String(view.stream),
                    decimal(view.latencyMs), view.timeToFirstTokenMs.map(decimal) ?? "", String(view.usage.inputTokens), String(view.usage.outputTokens),
                    String(view.usage.cachedInputTokens), String(view.usage.cacheCreationInputTokens), String(view.usage.reasoningTokens),
                    String(view.usage.totalTokens), view.costUSD, view.costSavedUSD, String(view.cacheHit), String(view.usageEstimated),
                    String(view.complete), view.keyID ?? "", view.keyID.flatMap { keyNames[$0] } ?? "", view.userID ?? "", view.correlationID,
                    view.errorClass ?? "", view.errorMessage ?? "", properties, String(view.attempts.count),
                ])
            }
        }
        return text
    }

    /// A note after the rows: a CSV row whose one cell starts with `#`, or an NDJSON object that
    /// is not a record (it has no `id`).
    static func lastLine(_ message: String, format: ExportFormat) -> String {
        switch format {
        case .csv: return csvLine(["# " + message])
        case .ndjson:
            let data = (try? APIJSON.encode(["export_notice": message])) ?? Data()
            return String(decoding: data, as: UTF8.self) + "\n"
        }
    }

    /// 850.0 → "850", 1.5 → "1.5": the API's milliseconds without a trailing `.0`.
    static func decimal(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    /// One CSV record (RFC 4180: quoted when needed, quotes doubled, CRLF). A cell a spreadsheet
    /// would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) gets a leading `'`.
    static func csvLine(_ cells: [String]) -> String {
        cells.map { cell in
            var value = cell
            if let first = value.first, ["=", "+", "-", "@", "\t", "\r"].contains(first) { value = "'" + value }
            guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
            return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }.joined(separator: ",") + "\r\n"
    }
}

extension HTTPField.Name {
    fileprivate static let exportRowLimit = Self("X-Gatehouse-Export-Row-Limit")!
}
