import Foundation
import GatehouseCore
import GatehouseGateway
import GatehouseHTTP
import Hummingbird

/// `/audit`: every administrative change, newest first: who (`console:<email>` for console
/// changes, `admin-token:…` for the API), what, on what, and the details. Filters by actor,
/// action and target live in the URL and run in the store, as `GET /api/v1/audit`'s do;
/// paging goes by entry id (`before`).
struct AuditPage: Sendable {
    let console: Console
    var deps: ConsoleDependencies { console.deps }

    func addRoutes(to r: APIRouter.AccessGroup) {
        r.get("/audit") { request, _ in await console.page(request, .audit) { try await render($0) } }
    }

    static let pageSize = 50
    static let knownActions = ["key.create", "key.update", "key.revoke", "key.rotate", "switch.set", "switch.remove", "account.create", "account.delete",
                               "issue.status", "silence.create", "silence.expire"]

    /// What the URL asks for: part of the actor (`console:`, an email), the start of the action
    /// (`key.` for every key change), part of the target (a key's id). The store matches them.
    static func filter(_ parameters: [String: String]) -> AuditFilter {
        func value(_ name: String) -> String {
            String((parameters[name] ?? "").trimmingCharacters(in: .whitespaces).prefix(AdminRoutes.maxAuditFilterCharacters))
        }
        return AuditFilter(actor: value("actor"), action: value("action"), target: value("target"))
    }

    /// The filter in a URL, so paging keeps it.
    static func parameters(_ filter: AuditFilter) -> [(String, String)] {
        [("actor", filter.actor), ("action", filter.action), ("target", filter.target)]
    }

    struct Row {
        var id: Int64
        var time: String
        var ago: String
        var actor: String
        var actorHref: String
        var actorTone: String
        var action: String
        var actionHref: String
        var target: String
        var targetHref: String?
        var summary: String
        var details: String
        var hasDetails: Bool
    }

    func render(_ input: Console.PageInput) async throws -> Console.PageOutput {
        let filter = Self.filter(input.parameters)
        let start = input.parameters["before"].flatMap(Int64.init)
        // One more than a page tells whether older entries remain.
        let entries = try await deps.controls.audit(limit: Self.pageSize + 1, before: start, matching: filter)
        let rows = entries.prefix(Self.pageSize).map { Self.row($0) }
        var body: [String: Any] = [
            "rows": rows, "hasRows": !rows.isEmpty, "filtered": !filter.isEmpty, "actor": filter.actor, "action": filter.action,
            "target": filter.target, "actions": Self.knownActions, "paged": start != nil,
            "newestHref": Console.url("/audit", Self.parameters(filter)), "clearHref": "/audit",
        ]
        if entries.count > Self.pageSize, let last = rows.last {
            body["olderHref"] = Console.url("/audit", Self.parameters(filter) + [("before", String(last.id))])
        }
        return Console.PageOutput(template: "audit", title: "Audit log", body: body, showsRange: false)
    }

    static func row(_ entry: AuditEntry) -> Row {
        let pretty = prettyJSON(entry.details)
        let compact = entry.details.count > 140 ? String(entry.details.prefix(140)) + "…" : entry.details
        return Row(id: entry.id, time: Format.dateTime(entry.timestampMicros), ago: Format.ago(entry.timestampMicros),
                   actor: entry.actor, actorHref: Console.url("/audit", [("actor", entry.actor)]),
                   actorTone: entry.actor.hasPrefix("console:") ? "info" : "",
                   action: entry.action, actionHref: Console.url("/audit", [("action", entry.action)]),
                   target: entry.target, targetHref: targetLink(action: entry.action, target: entry.target),
                   summary: compact, details: pretty, hasDetails: entry.details != "{}" && !entry.details.isEmpty)
    }

    /// The page of what a change touched.
    static func targetLink(action: String, target: String) -> String? {
        switch action.split(separator: ".").first {
        case "key": "/keys/" + PathSegment.encode(target)
        case "switch": "/switches"
        case "account": "/accounts"
        case "issue": TelemetryView.issueHref(target)
        case "silence", "alert": "/alerts"
        default: nil
        }
    }

    static func prettyJSON(_ text: String) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]),
              let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
        else { return text }
        return String(decoding: data, as: UTF8.self)
    }
}
