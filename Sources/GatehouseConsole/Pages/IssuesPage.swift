import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseHTTP
import Hummingbird

/// `/issues` and `/issues/{id}`: Sentry's core screens.
struct IssuesPage: Sendable {
    let console: Console
    var deps: ConsoleDependencies { console.deps }
    static let pageSize = 100
    /// Columns in an issue's sparkline.
    static let sparkColumns: Int64 = 24

    func addRoutes(to r: APIRouter.AccessGroup) {
        r.get("/issues") { request, _ in await console.page(request, .issues) { try await list($0) } }
        r.get("/issues/{id}") { request, context in
            let id = PathSegment.decode(context.parameters.get("id") ?? "")
            return await console.page(request, .issues) { try await detail(id, $0) }
        }
        r.post("/issues/{id}/status") { request, context in
            let id = PathSegment.decode(context.parameters.get("id") ?? "")
            return await console.action(request, needsAdmin: true) { viewer, form in
                try await setStatus(id, form["status"], ignore: form["ignore"], viewer: viewer)
            }
        }
    }

    // MARK: The stream

    struct ListRow {
        var issue: IssuesRow
        var levelTone: String
        var spark: String
        var inRange: String
        var firstSeenAt: String
        var lastSeenAt: String
    }

    struct Tab {
        var label: String
        var href: String
        var active: Bool
    }

    /// Issues of one status seen in the time range, most recently seen first, each with its events
    /// over the range (as `GET /api/v1/issues?status=…&q=…`).
    func list(_ input: Console.PageInput) async throws -> Console.PageOutput {
        let status = input.parameters["status"].flatMap(IssueStatus.init(rawValue:)) ?? .unresolved
        let q = input.parameters["q"] ?? ""
        let range = input.range
        var issues: [ErrorIssue] = []
        var problem: PageProblem?
        do {
            var conditions: [QueryNode] = [
                .field("status", .equals(.text(status.rawValue))),
                .field("last_seen", .compare(.greaterOrEqual, .time(micros: range.fromMicros))),
                .field("first_seen", .compare(.less, .time(micros: range.toMicros))),
            ]
            if let filter = try APIParameters.filter(q) { conditions.insert(filter, at: 0) }
            issues = try await deps.telemetry.issues(IssueListQuery(filter: .and(conditions), limit: Self.pageSize))
        } catch {
            guard let found = PageProblem(error) else { throw error }
            problem = found
        }
        let bucket = max(60_000_000, (range.lengthMicros + Self.sparkColumns - 1) / Self.sparkColumns)
        let counts = try await deps.telemetry.issueEventCounts(issueIDs: issues.map(\.id), fromMicros: range.fromMicros, toMicros: range.toMicros,
                                                               bucketMicros: bucket)
        let firstBucket = range.fromMicros / bucket * bucket
        let columns = Int((range.toMicros - firstBucket + bucket - 1) / bucket)
        var series: [String: [Double]] = [:]
        for c in counts {
            let i = Int((c.startMicros - firstBucket) / bucket)
            if (0..<columns).contains(i) { series[c.issueID, default: [Double](repeating: 0, count: columns)][i] += Double(c.count) }
        }
        let rows = issues.map { issue in
            let values = series[issue.id] ?? [Double](repeating: 0, count: columns)
            return ListRow(issue: IssuesRow(issue), levelTone: Self.tone(issue.level), spark: SVGChart.sparkline(values),
                           inRange: Format.count(Int64(values.reduce(0, +))), firstSeenAt: Format.dateTime(issue.firstSeenMicros),
                           lastSeenAt: Format.dateTime(issue.lastSeenMicros))
        }
        let tabs = IssueStatus.allCases.map { s in
            Tab(label: s.rawValue.capitalized, href: Console.url("/issues", [("status", s.rawValue), ("q", q)] + range.parameters), active: s == status)
        }
        let body: [String: Any?] = [
            "tabs": tabs, "status": status.rawValue, "q": q, "searched": !q.trimmingCharacters(in: .whitespaces).isEmpty, "queryError": problem?.message,
            "rangeFields": range.parameters.map { Nav.Hidden(name: $0.0, value: $0.1) }, "rangeLabel": range.label,
            "rows": rows, "hasRows": !rows.isEmpty, "full": rows.count == Self.pageSize, "pageSize": Self.pageSize,
            "unresolvedTab": status == .unresolved,
        ]
        return Console.PageOutput(template: "issues", title: "Issues", body: body.compactMapValues { $0 }, status: problem?.status ?? .ok)
    }

    /// "1 event", "1.2k events".
    static func events(_ n: Int64) -> String { Format.count(n) + (n == 1 ? " event" : " events") }

    static func tone(_ level: LogLevel) -> String {
        switch level {
        case .fatal, .error: "bad"
        case .warn: "warn"
        case .info: "info"
        case .debug, .trace: ""
        }
    }

    // MARK: One issue

    struct StatusButton {
        var action: String
        var status: String
        var label: String
        var style: String
        /// What ends an ignore: a count of events (`100`) or a duration (`24h`); empty: none.
        var ignore = ""
    }

    struct EventLink {
        var id: String
        var shortID: String
        var href: String
        var time: String
        var ago: String
        var user: String?
        var release: String?
        var environment: String?
        var shown: Bool
    }

    /// The issue, one of its events in full (the latest unless `?event=` names another), its tags
    /// over its latest 1,000 events, its latest events, and the triage buttons.
    func detail(_ id: String, _ input: Console.PageInput) async throws -> Console.PageOutput {
        guard let issue = try await deps.telemetry.issue(id: id) else {
            if let target = try await deps.telemetry.mergedIssue(id: id) {
                throw Console.PageFailure.notFound("This issue was merged into “\(Format.foreignID(target))” (\(TelemetryView.issueHref(target))): its events are there now.")
            }
            throw Console.PageFailure.notFound("No issue has the id “\(Format.foreignID(id))”. Its events may all have been pruned by retention.")
        }
        let eventID = input.parameters["event"]
        async let position = deps.telemetry.issueEvent(issueID: id, eventID: eventID)
        async let tagValues = deps.telemetry.issueTagValues(issueID: id, valuesPerKey: 5)
        async let recent = deps.telemetry.events(issueID: id, limit: 10)
        let shown = try await position
        if shown == nil, let eventID {
            throw Console.PageFailure.notFound("This issue has no stored event “\(eventID)”. It may have been pruned by retention.")
        }
        let href = TelemetryView.issueHref(id)
        let events = try await recent.map { event in
            EventLink(id: event.eventID, shortID: String(event.eventID.prefix(8)), href: TelemetryView.issueHref(id, event: event.eventID),
                      time: Format.dateTime(event.timestampMicros), ago: Format.ago(event.timestampMicros), user: event.userKey,
                      release: event.release, environment: event.environment, shown: event.eventID == shown?.event.eventID)
        }
        let buttons: [StatusButton] = switch issue.status {
        case .unresolved: [StatusButton(action: href + "/status", status: "resolved", label: "Resolve", style: "primary"),
                           StatusButton(action: href + "/status", status: "ignored", label: "Ignore", style: ""),
                           StatusButton(action: href + "/status", status: "ignored", label: "Ignore 24 h", style: "", ignore: "24h"),
                           StatusButton(action: href + "/status", status: "ignored", label: "Ignore 100 events", style: "", ignore: "100")]
        case .resolved: [StatusButton(action: href + "/status", status: "unresolved", label: "Reopen", style: "")]
        case .ignored: [StatusButton(action: href + "/status", status: "unresolved", label: "Reopen", style: ""),
                        StatusButton(action: href + "/status", status: "resolved", label: "Resolve", style: "primary")]
        }
        let tags = Dictionary(grouping: try await tagValues, by: \.key).sorted { $0.key < $1.key }.map { key, values in
            TagView(key: key, total: Self.events(values.first?.keyTotal ?? 0), values: values.map(TagView.Value.init))
        }
        let body: [String: Any?] = [
            "issue": IssuesRow(issue), "levelTone": Self.tone(issue.level), "statusTone": issue.status == .unresolved ? "bad" : issue.status == .resolved ? "good" : "",
            "firstSeenAt": Format.dateTime(issue.firstSeenMicros), "lastSeenAt": Format.dateTime(issue.lastSeenMicros),
            "lastRelease": issue.lastRelease, "project": issue.project,
            "canChange": input.viewer.canChange, "csrfToken": input.viewer.csrfToken, "buttons": buttons,
            "event": shown.map { EventView($0, issueID: id) }, "tags": tags, "hasTags": !tags.isEmpty,
            "tagsScope": issue.count > IssueTagValue.eventLimit ? "from the latest \(Format.count(Int64(IssueTagValue.eventLimit))) events" : "over the stored events",
            "events": events, "hasEvents": !events.isEmpty, "eventsHref": href,
        ]
        return Console.PageOutput(template: "issue", title: issue.title, body: body.compactMapValues { $0 }, showsRange: false)
    }

    /// Resolve, ignore (for ever, for `ignore` more events or for an `ignore` duration) or
    /// reopen: the status change the API's PATCH makes, audited.
    func setStatus(_ id: String, _ requested: String?, ignore: String?, viewer: ConsoleViewer) async throws -> String {
        let back = TelemetryView.issueHref(id)
        guard let status = requested.flatMap(IssueStatus.init(rawValue:)) else {
            return Console.url(back, [("error", "Choose one of unresolved, resolved or ignored.")])
        }
        var change = IssueStatusChange(status: status)
        if status == .ignored, let ignore, !ignore.isEmpty {
            if let count = Int64(ignore), (1...1_000_000_000).contains(count) {
                change.ignoreUntilCount = count
            } else if let span = TimeExpressions.durationMicros(ignore), span <= 366 * TimeExpressions.microsPerDay {
                change.ignoreUntilMicros = TimeExpressions.nowMicros() + span
            } else {
                return Console.url(back, [("error", "Ignore for a number of events or a duration such as 24h.")])
            }
        }
        guard let before = try await deps.telemetry.issue(id: id), try await deps.telemetry.updateIssueStatus(id: id, to: change) else {
            throw GatewayError.notFound("No issue has the id “\(Format.foreignID(id))”.")
        }
        var audited = ["from": before.status.rawValue, "status": status.rawValue]
        if let ignore, status == .ignored, !ignore.isEmpty { audited["until"] = ignore }
        let details = String(decoding: try APIJSON.encode(audited), as: UTF8.self)
        try await console.audit(viewer, action: "issue.status", target: id, details: details)
        let done = switch status {
        case .resolved: "Resolved. If it happens again it comes back as a regression."
        case .ignored where change.ignoreUntilCount != nil || change.ignoreUntilMicros != nil:
            "Ignored for \(change.ignoreUntilCount.map { "\($0) more events" } ?? ignore ?? ""): the first event after that makes it unresolved again."
        case .ignored: "Ignored. New events still count, but it stays out of the unresolved list."
        case .unresolved: "Reopened."
        }
        return Console.url(back, [("ok", done)])
    }
}

/// A tag's most common values over an issue's stored events.
struct TagView {
    var key: String
    var total: String
    var values: [Value]

    struct Value {
        var value: String
        var count: String
        var percent: String
        var fraction: Double

        init(_ tag: IssueTagValue) {
            value = tag.value
            count = Format.count(tag.count)
            fraction = tag.keyTotal > 0 ? Double(tag.count) / Double(tag.keyTotal) : 0
            percent = Format.percent(fraction)
        }
    }
}

/// One event as the issue page shows it, read from its stored Sentry document: the exception
/// chain with its frames, breadcrumbs, request, user and contexts.
/// https://develop.sentry.dev/sdk/data-model/event-payloads/
struct EventView {
    var id: String
    var time: String
    var ago: String
    var fields: [TelemetryView.Field]
    var exceptions: [ExceptionView]
    var hasExceptions: Bool
    var message: String?
    var breadcrumbs: [Breadcrumb]
    var hasBreadcrumbs: Bool
    /// Request, user and each context: a titled list of fields.
    var sections: [Section]
    var newerHref: String?
    var olderHref: String?
    var latestHref: String?

    struct ExceptionView {
        var type: String
        var value: String
        /// "raised", or how it led to the one above it.
        var relation: String
        var mechanism: String?
        var appFrames: [Frame]
        var otherFrames: [Frame]
        var hasAppFrames: Bool
        var hasOtherFrames: Bool
    }

    struct Frame {
        var place: String
        var function: String
        var lineNumber: String?
        var inApp: Bool
        var open: Bool
        var context: [ContextLine]
        var hasContext: Bool
        var variables: [TelemetryView.Field]
        var hasVariables: Bool
    }

    struct ContextLine {
        var number: String
        var text: String
        var current: Bool
    }

    struct Breadcrumb {
        var time: String
        var category: String
        var level: String
        var levelTone: String
        var message: String
    }

    struct Section {
        var title: String
        var fields: [TelemetryView.Field]
    }

    init(_ position: IssueEventPosition, issueID: String) {
        let event = position.event
        let document = (try? APIJSON.decode(JSONValue.self, from: Data(event.documentJSON.utf8))) ?? .object([:])
        id = event.eventID
        time = Format.dateTime(event.timestampMicros)
        ago = Format.ago(event.timestampMicros)
        fields = [
            TelemetryView.Field(name: "event id", value: event.eventID),
            event.correlationID.map { TelemetryView.Field(name: "correlation id", value: $0, href: TelemetryView.correlationHref($0)) },
            event.release.map { TelemetryView.Field(name: "release", value: $0) },
            event.environment.map { TelemetryView.Field(name: "environment", value: $0) },
            event.userKey.map { TelemetryView.Field(name: "user", value: $0) },
            document["transaction"]?.text.map { TelemetryView.Field(name: "transaction", value: $0) },
            document["server_name"]?.text.map { TelemetryView.Field(name: "server", value: $0) },
            document["platform"]?.text.map { TelemetryView.Field(name: "platform", value: $0) },
            document["sdk"].flatMap { sdk in sdk["name"]?.text.map { TelemetryView.Field(name: "SDK", value: $0 + (sdk["version"]?.text.map { " " + $0 } ?? "")) } },
        ].compactMap { $0 }
        // Sentry lists a chain oldest cause first; the one raised is shown first, as a traceback's reader wants it.
        let chain = (document["exception"]?["values"] ?? document["exception"])?.items ?? []
        exceptions = chain.reversed().enumerated().map { index, exception in
            Self.exception(exception, relation: index == 0 ? "raised" : "which was caused by", opensInnermostFrame: index == 0)
        }
        hasExceptions = !exceptions.isEmpty
        message = exceptions.isEmpty ? (document["logentry"]?["formatted"] ?? document["logentry"]?["message"] ?? document["message"])?.text ?? event.value : nil
        let crumbs = (document["breadcrumbs"]?["values"] ?? document["breadcrumbs"])?.items ?? []
        breadcrumbs = crumbs.suffix(100).map { crumb in
            let level = crumb["level"]?.text ?? "info"
            let data = crumb["data"].map { $0.consoleText } ?? ""
            return Breadcrumb(time: Self.instant(crumb["timestamp"]).map(Format.dateTime) ?? "", category: crumb["category"]?.text ?? crumb["type"]?.text ?? "",
                              level: level, levelTone: IssuesPage.tone(LogLevel(loose: level) ?? .info),
                              message: [crumb["message"]?.text, data.isEmpty ? nil : data].compactMap { $0 }.joined(separator: " "))
        }
        hasBreadcrumbs = !breadcrumbs.isEmpty
        var sections: [Section] = []
        for (title, key) in [("Request", "request"), ("User", "user")] {
            if let fields = document[key]?.members.map(Self.fields), !fields.isEmpty { sections.append(Section(title: title, fields: fields)) }
        }
        for (name, context) in (document["contexts"]?.members ?? [:]).sorted(by: { $0.key < $1.key }) {
            let fields = Self.fields(context.members ?? [:])
            if !fields.isEmpty { sections.append(Section(title: "Context: " + name, fields: fields)) }
        }
        self.sections = sections
        newerHref = position.newerEventID.map { TelemetryView.issueHref(issueID, event: $0) }
        olderHref = position.olderEventID.map { TelemetryView.issueHref(issueID, event: $0) }
        latestHref = position.newerEventID == nil ? nil : TelemetryView.issueHref(issueID)
    }

    /// One exception of the chain: its frames most recent call first, the app's own frames before
    /// library frames.
    static func exception(_ exception: JSONValue, relation: String, opensInnermostFrame: Bool) -> ExceptionView {
        let mechanism = exception["mechanism"].flatMap { m -> String? in
            guard let type = m["type"]?.text else { return nil }
            if case .bool(let handled) = m["handled"] { return type + (handled ? " (handled)" : " (unhandled)") }
            return type
        }
        let frames = (exception["stacktrace"]?["frames"]?.items ?? []).reversed().map { Self.frame($0) }
        var appFrames = frames.filter(\.inApp)
        var otherFrames = frames.filter { !$0.inApp }
        // Where it broke: the innermost frame of the app's own code, else the innermost frame at all.
        if opensInnermostFrame {
            if !appFrames.isEmpty { appFrames[0].open = true } else if !otherFrames.isEmpty { otherFrames[0].open = true }
        }
        return ExceptionView(type: exception["type"]?.text ?? "Error", value: exception["value"]?.text ?? "", relation: relation, mechanism: mechanism,
                             appFrames: appFrames, otherFrames: otherFrames, hasAppFrames: !appFrames.isEmpty, hasOtherFrames: !otherFrames.isEmpty)
    }

    /// The largest line number believed: the sender chooses it, and the context lines are
    /// numbered from it, so a number near the end of Int64 would overflow.
    static let maxLineNumber: Int64 = 1_000_000_000

    static func frame(_ frame: JSONValue) -> Frame {
        // A number no source file has is left out, as if the SDK had not sent one.
        let lineNumber = frame["lineno"]?.integer.flatMap { (0...Self.maxLineNumber).contains($0) ? $0 : nil }
        let before = frame["pre_context"]?.items.compactMap(\.text) ?? []
        let after = frame["post_context"]?.items.compactMap(\.text) ?? []
        var context: [ContextLine] = []
        if let current = frame["context_line"]?.text {
            // Numbered from the current line back and forward, when the SDK sent its number.
            // At most 10^9 plus an array index: the sum cannot overflow.
            func number(_ offset: Int) -> String { lineNumber.map { String($0 + Int64(offset)) } ?? "" }
            context += before.enumerated().map { ContextLine(number: number($0.offset - before.count), text: $0.element, current: false) }
            context.append(ContextLine(number: number(0), text: current, current: true))
            context += after.enumerated().map { ContextLine(number: number($0.offset + 1), text: $0.element, current: false) }
        }
        let variables = Self.fields(frame["vars"]?.members ?? [:])
        let place = frame["filename"]?.text ?? frame["module"]?.text ?? frame["abs_path"]?.text ?? "?"
        return Frame(place: place, function: frame["function"]?.text ?? "?", lineNumber: lineNumber.map { String($0) },
                     inApp: frame["in_app"] == .bool(true), open: false, context: context, hasContext: !context.isEmpty,
                     variables: variables, hasVariables: !variables.isEmpty)
    }

    /// An object's members as fields, by name; nested values as compact JSON.
    static func fields(_ members: [String: JSONValue]) -> [TelemetryView.Field] {
        members.filter { $0.value != .null }.sorted { $0.key < $1.key }.map { TelemetryView.Field(name: $0.key, value: $0.value.consoleText) }
    }

    /// A Sentry timestamp: RFC 3339 text or seconds since 1970.
    static func instant(_ value: JSONValue?) -> Int64? {
        switch value {
        case .string(let text): TimeExpressions.rfc3339Micros(text)
        case .number(let seconds): seconds.isFinite && abs(seconds) < 1e11 ? Int64((seconds * 1_000_000).rounded()) : nil
        // A range check, not abs(): abs(Int64.min) traps.
        case .integer(let seconds): seconds > -100_000_000_000 && seconds < 100_000_000_000 ? seconds * 1_000_000 : nil
        default: nil
        }
    }
}

// Reading a Sentry document; private to this file, so other pages' helpers cannot collide.
fileprivate extension JSONValue {
    var text: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    var integer: Int64? {
        switch self {
        case .integer(let n): n
        case .number(let n): n.isFinite && abs(n) < 1e15 ? Int64(n) : nil
        default: nil
        }
    }

    /// An array's elements; empty for anything else.
    var items: [JSONValue] {
        if case .array(let items) = self { return items }
        return []
    }

    var members: [String: JSONValue]? {
        if case .object(let members) = self { return members }
        return nil
    }
}

/// One issue as the lists show it.
struct IssuesRow {
    var id: String
    var href: String
    var title: String
    var culprit: String
    var level: String
    var count: String
    var users: String
    var lastSeen: String
    var firstSeen: String
    var regressed: Bool
    var status: String
    /// An ignore that ends: "3 more events (2 to go)", a time, or both.
    var ignoreState: String
    var hasIgnoreState: Bool
    /// Unresolved again because its ignore's count or time passed.
    var escalated: Bool

    init(_ issue: ErrorIssue) {
        id = issue.id
        href = TelemetryView.issueHref(issue.id)
        title = issue.title
        culprit = issue.culprit
        level = issue.level.rawValue
        count = Format.count(issue.count)
        users = Format.count(issue.users)
        lastSeen = Format.ago(issue.lastSeenMicros)
        firstSeen = Format.ago(issue.firstSeenMicros)
        regressed = issue.regressed
        status = issue.status.rawValue
        var ends: [String] = []
        if issue.status == .ignored, let count = issue.ignoreUntilCount {
            let left = max(0, count - (issue.count - (issue.ignoredAtCount ?? 0)))
            ends.append("\(Format.count(count)) more event\(count == 1 ? "" : "s") (\(Format.count(left)) to go)")
        }
        if issue.status == .ignored, let until = issue.ignoreUntilMicros { ends.append(Format.dateTime(until)) }
        ignoreState = ends.joined(separator: " or ")
        hasIgnoreState = !ends.isEmpty
        escalated = issue.statusReason == "escalated"
    }
}
