import GatehouseAPI
import GatehouseCore
import GatehouseGateway
import GatehouseHTTP
import Hummingbird

/// `/switches`: the kill switches in force, each with its reason; admins set one and lift it
/// through the admin API's own `setSwitch` and `removeSwitch`, so a switch set here is checked,
/// stored, audited and applied exactly as `POST /api/v1/switches` would do it.
struct SwitchesPage: Sendable {
    let console: Console
    var deps: ConsoleDependencies { console.deps }

    func addRoutes(to r: APIRouter.AccessGroup) {
        r.get("/switches") { request, _ in await console.page(request, .switches) { try await render($0) } }
        r.post("/switches") { request, _ in await set(request) }
        r.post("/switches/lift") { request, _ in await lift(request) }
    }

    struct Row {
        var kind: String
        var value: String
        var href: String?
        var reason: String
        var hasReason: Bool
        var retryAfter: String
        var since: String
        var sinceAt: String
        var tone: String
    }

    struct KindChoice {
        var value: String
        var label: String
        var hint: String
        var selected: Bool
    }

    static let kinds: [(KillSwitch.Kind, String, String)] = [
        (.maintenance, "Maintenance", "every gateway call answers 503 with Retry-After; no value"),
        (.provider, "Provider", "a provider's name, e.g. openai"),
        (.model, "Model", "a requested model, e.g. gpt-4o"),
        (.key, "Key", "a key's id, key_…"),
        (.property, "Property", "name=value of a call property, e.g. customer=acme"),
    ]

    func render(_ input: Console.PageInput) async throws -> Console.PageOutput {
        let switches = try await deps.controls.allSwitches().sorted { $0.createdAtMicros > $1.createdAtMicros }
        let rows = switches.map { s in
            Row(kind: s.kind.rawValue, value: s.kind == .maintenance ? "all gateway calls" : s.value, href: Self.link(s, range: input.range),
                reason: s.reason ?? "", hasReason: !(s.reason ?? "").isEmpty, retryAfter: s.retryAfterSeconds.map { "\($0) s" } ?? "–",
                since: Format.ago(s.createdAtMicros), sinceAt: Format.dateTime(s.createdAtMicros), tone: s.kind == .maintenance ? "bad" : "warn")
        }
        // A link from a key or a request ("Switch off…") fills the form in.
        let kind = input.parameters["kind"].flatMap(KillSwitch.Kind.init(rawValue:)) ?? .model
        return Console.PageOutput(template: "switches", title: "Kill switches", body: [
            "rows": rows, "hasRows": !rows.isEmpty, "maintenance": switches.contains { $0.kind == .maintenance },
            "kinds": Self.kinds.map { KindChoice(value: $0.0.rawValue, label: $0.1, hint: $0.2, selected: $0.0 == kind) },
            "value": input.parameters["value"] ?? "", "canChange": input.viewer.canChange, "openMode": input.viewer.openMode,
            "csrfToken": input.viewer.csrfToken,
        ] as [String: Any], showsRange: false)
    }

    /// Where a switched-off thing is seen: its key, or its calls.
    static func link(_ s: KillSwitch, range: TimeRange) -> String? {
        switch s.kind {
        case .key: "/keys/" + PathSegment.encode(s.value)
        case .model: Console.url("/requests", [("model", s.value)] + range.parameters)
        case .provider: Console.url("/requests", [("provider", s.value)] + range.parameters)
        case .maintenance, .property: nil
        }
    }

    func set(_ request: Request) async -> Response {
        await console.action(request, needsAdmin: true) { viewer, form in
            let retryText = (form["retry_after"] ?? "").trimmingCharacters(in: .whitespaces)
            let retryAfter = Int(retryText)
            guard retryText.isEmpty || retryAfter != nil else { return Console.url("/switches", [("error", AdminRoutes.retryAfterMessage)]) }
            let reason = (form["reason"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            do {
                let s = try await deps.admin.setSwitch(kind: form["kind"], value: form["value"]?.trimmingCharacters(in: .whitespaces),
                                                       reason: reason.isEmpty ? nil : reason, retryAfter: retryAfter, actor: viewer.auditActor)
                return Console.url("/switches", [("ok", s.kind == .maintenance ? "Maintenance is on: every gateway call answers 503."
                                                                              : "Switched off \(s.kind.rawValue) \(s.value).")])
            } catch let mistake as GatewayError where mistake.status == .badRequest {
                return Console.url("/switches", [("error", mistake.message)])
            }
        }
    }

    func lift(_ request: Request) async -> Response {
        await console.action(request, needsAdmin: true) { viewer, form in
            do {
                let (kind, value) = try await deps.admin.removeSwitch(kind: form["kind"], value: form["value"], actor: viewer.auditActor)
                return Console.url("/switches", [("ok", kind == .maintenance ? "Maintenance is off." : "Lifted the \(kind.rawValue) switch on \(value).")])
            } catch let mistake as GatewayError where mistake.status == .badRequest {
                return Console.url("/switches", [("error", mistake.message)])
            } catch let missing as GatewayError where missing.status == .notFound {
                return Console.url("/switches", [("error", missing.message + " is set; someone may have lifted it already.")])
            }
        }
    }
}
