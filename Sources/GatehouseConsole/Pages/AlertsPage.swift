import Foundation
import GatehouseAPI
import GatehouseAlerts
import GatehouseCore
import GatehouseHTTP
import Hummingbird

/// `/alerts`: every rule with its state and its value against its threshold, the history, the
/// silences (a new one is previewed against the active alerts before it is saved) and the
/// deliveries. Each rule's row has `id="<rule>"`: notifications link to `/alerts#<rule>`.
struct AlertsPage: Sendable {
    let console: Console
    var deps: ConsoleDependencies { console.deps }

    static let historyLimit = 100
    static let deliveryLimit = 50

    func addRoutes(to r: APIRouter.AccessGroup) {
        r.get("/alerts") { request, _ in await console.page(request, .alerts) { try await render($0) } }
        r.post("/alerts/silences") { request, _ in
            await console.action(request, needsAdmin: true) { viewer, form in try await addSilence(viewer, form) }
        }
        r.post("/alerts/silences/{id}/expire") { request, context in
            let id = PathSegment.decode(context.parameters.get("id") ?? "")
            return await console.action(request, needsAdmin: true) { viewer, _ in try await expireSilence(viewer, id: id) }
        }
    }

    struct Pair {
        var name: String
        var value: String
    }

    /// One alert (a rule and one set of label values) pending or firing now.
    struct AlertLine {
        var state: String
        var tone: String
        var summary: String
        /// The labels that tell this alert from the rule's others (`model=gpt-4o`).
        var labels: [Pair]
        var since: String
        var silencedBy: String?
    }

    struct RuleRow {
        var name: String
        var state: String
        var tone: String
        var expression: String
        var threshold: String
        var window: String?
        var forDuration: String
        var severity: String
        var severityTone: String
        var labels: [Pair]
        var summary: String?
        var annotations: [Pair]
        var runbook: String?
        var alerts: [AlertLine]
        var lastError: String?
        var historyHref: String
    }

    /// An alert or one of its changes, as the history and the silence preview list them.
    struct AlertRow {
        var rule: String
        var ruleHref: String
        var state: String
        var tone: String
        var summary: String
        /// Labels but `alertname` and `severity`, which the row shows already.
        var labels: [Pair]
        var time: String?
        var ago: String?

        init(rule: String, state: AlertState, summary: String, labels: [String: String], atMicros: Int64? = nil, now: Int64) {
            self.rule = rule
            ruleHref = "#" + rule
            self.state = state.rawValue
            tone = AlertsPage.tone(state.rawValue)
            self.summary = summary
            self.labels = AlertsPage.pairs(labels.filter { $0.key != "alertname" && $0.key != "severity" })
            time = atMicros.map(Format.dateTime)
            ago = atMicros.map { Format.ago($0, now: now) }
        }
    }

    struct SilenceRow {
        var id: String
        var shortID: String
        var matchers: [String]
        var starts: String
        var ends: String
        var endsRelative: String
        var createdBy: String
        var comment: String
        var state: String
        var tone: String
        var muting: Int
        var expireAction: String
    }

    struct DeliveryRow {
        var time: String
        var ago: String
        var receiver: String
        var status: String
        var statusTone: String
        var attempt: Int
        var outcome: String
        var tone: String
        var groupKey: String
        var detail: String
    }

    struct Option {
        var value: String
        var label: String
        var selected: Bool
    }

    /// The new-silence form as typed, and what the preview found.
    struct Draft {
        var matchers: String
        var duration: String
        var comment: String
        var previewed: Bool
        var error: String?
        var endsAt: String?
        var matched: [AlertRow]
        var activeCount: Int
        // Stored, not computed: templates read values by reflection.
        var matchedCount = 0
        var hasMatches = false
    }

    func render(_ input: Console.PageInput) async throws -> Console.PageOutput {
        let p = input.parameters
        let ruleFilter = p["rule"].flatMap { $0.isEmpty ? nil : $0 }
        async let silencesRead = deps.alertStore.silences()
        async let historyRead = deps.alertStore.alertHistory(limit: Self.historyLimit, rule: ruleFilter)
        async let deliveriesRead = deps.alertStore.deliveries(limit: Self.deliveryLimit)
        let evaluator = deps.alerting.evaluator
        let active = await evaluator.active()
        let failures = await evaluator.ruleFailures()
        let silences = try await silencesRead
        let now = TimeExpressions.nowMicros()
        let rules = await evaluator.rules

        func mutedBy(_ alert: ActiveAlert) -> String? { silences.first { $0.mutes(alert.labels, at: now) }?.id }
        let ruleRows = rules.map { rule in
            let alerts = active.filter { $0.rule == rule.name }
            let state = alerts.contains { $0.state == .firing } ? "firing" : (alerts.isEmpty ? "inactive" : "pending")
            return RuleRow(
                name: rule.name, state: state, tone: Self.tone(state), expression: rule.expressionText, threshold: rule.expression.thresholdText,
                window: rule.expression.windowMicros.map { TimeExpressions.formatDuration(micros: $0) },
                forDuration: rule.forMicros > 0 ? "after holding " + TimeExpressions.formatDuration(micros: rule.forMicros) : "at once",
                severity: rule.severity.rawValue, severityTone: Self.tone(rule.severity), labels: Self.pairs(rule.labels),
                summary: rule.annotations["summary"], annotations: Self.pairs(rule.annotations.filter { !["summary", "runbook_url"].contains($0.key) }),
                runbook: rule.annotations["runbook_url"].flatMap(Self.webLink),
                alerts: alerts.map { alert in
                    AlertLine(state: alert.state.rawValue, tone: Self.tone(alert.state.rawValue), summary: alert.summary,
                              labels: Self.pairs(Self.distinguishing(alert.labels, of: rule)),
                              since: Format.ago(alert.state == .firing ? alert.firedAtMicros ?? alert.activeSinceMicros : alert.activeSinceMicros, now: now),
                              silencedBy: mutedBy(alert))
                },
                lastError: failures[rule.name].map { String($0.prefix(500)) }, historyHref: Console.url("/alerts", [("rule", rule.name)]) + "#history")
        }

        let history = try await historyRead.map { t in
            AlertRow(rule: t.rule, state: t.state, summary: t.summary, labels: t.labels, atMicros: t.timestampMicros, now: now)
        }
        let silenceRows = silences.map { s in
            let state = s.isActive(at: now) ? "active" : (now < s.startsAtMicros ? "pending" : "expired")
            return SilenceRow(
                id: s.id, shortID: String(s.id.prefix(8)), matchers: s.matchers.map(\.description), starts: Format.dateTime(s.startsAtMicros),
                ends: Format.dateTime(s.endsAtMicros), endsRelative: s.endsAtMicros > now ? "in " + Format.duration(micros: s.endsAtMicros - now) : Format.ago(s.endsAtMicros, now: now),
                createdBy: s.createdBy, comment: s.comment, state: state, tone: state == "active" ? "info" : (state == "pending" ? "warn" : ""),
                muting: state == "active" ? active.filter { s.mutes($0.labels, at: now) }.count : 0,
                expireAction: "/alerts/silences/" + PathSegment.encode(s.id) + "/expire")
        }
        let deliveries = try await deliveriesRead.map { d in
            DeliveryRow(time: Format.dateTime(d.timestampMicros), ago: Format.ago(d.timestampMicros, now: now), receiver: d.receiver, status: d.status,
                        statusTone: d.status == "resolved" ? "good" : "bad", attempt: d.attempt, outcome: d.outcome.rawValue,
                        tone: d.outcome == .delivered ? "good" : (d.outcome == .retrying ? "warn" : "bad"), groupKey: d.groupKey, detail: d.detail)
        }
        let draft = preview(p, active: active, now: now, createdBy: input.viewer.name)
        let ruleNames = Set(rules.map(\.name) + (ruleFilter.map { [$0] } ?? []))
        let ruleOptions = [Option(value: "", label: "All rules", selected: ruleFilter == nil)]
            + ruleNames.sorted().map { Option(value: $0, label: $0, selected: $0 == ruleFilter) }
        let canChange = input.viewer.canChange
        let current = silenceRows.filter { $0.state != "expired" }, expired = silenceRows.filter { $0.state == "expired" }
        return Console.PageOutput(template: "alerts", title: "Alerts", body: [
            "firing": active.filter { $0.state == .firing }.count, "pending": active.filter { $0.state == .pending }.count,
            "ruleCount": rules.count, "failingCount": failures.count, "silenceCount": current.filter { $0.state == "active" }.count,
            "rules": ruleRows, "hasRules": !ruleRows.isEmpty,
            "history": history, "hasHistory": !history.isEmpty, "ruleOptions": ruleOptions, "ruleFilter": ruleFilter ?? "", "filtered": ruleFilter != nil,
            "silences": current, "hasSilences": !current.isEmpty, "expired": expired, "hasExpired": !expired.isEmpty, "expiredCount": expired.count,
            "deliveries": deliveries, "hasDeliveries": !deliveries.isEmpty, "deliveryLimit": Self.deliveryLimit,
            "draft": draft, "canChange": canChange, "csrfToken": input.viewer.csrfToken,
            "durations": ["30m", "1h", "2h", "4h", "8h", "1d", "7d"],
        ] as [String: Any], showsRange: false)
    }

    /// The form's values, and when Preview was pressed, the active alerts the silence would mute.
    func preview(_ p: [String: String], active: [ActiveAlert], now: Int64, createdBy: String) -> Draft {
        var draft = Draft(matchers: p["matchers"] ?? "", duration: p["duration"] ?? "2h", comment: p["comment"] ?? "", previewed: p["preview"] != nil,
                          matched: [], activeCount: active.count)
        guard draft.previewed else { return draft }
        do {
            let silence = try Self.silence(from: p, createdBy: createdBy, now: now)
            draft.endsAt = Format.dateTime(silence.endsAtMicros)
            draft.matched = active.filter { silence.mutes($0.labels, at: now) }.map { alert in
                AlertRow(rule: alert.rule, state: alert.state, summary: alert.summary, labels: alert.labels, now: now)
            }
            draft.matchedCount = draft.matched.count
            draft.hasMatches = !draft.matched.isEmpty
        } catch {
            draft.error = error.message
        }
        return draft
    }

    func addSilence(_ viewer: ConsoleViewer, _ form: [String: String]) async throws -> String {
        let now = TimeExpressions.nowMicros()
        let silence: Silence
        do {
            silence = try Self.silence(from: form, createdBy: viewer.name, now: now)
        } catch {
            // Back to the form, as it was typed, with what is wrong.
            return Console.url("/alerts", [("error", error.message), ("matchers", form["matchers"] ?? ""), ("duration", form["duration"] ?? ""),
                                           ("comment", form["comment"] ?? ""), ("preview", "1")]) + "#new-silence"
        }
        try await deps.alertStore.addSilence(silence)
        let details = (try? APIJSON.encode(SilenceView(silence, now: now))).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        try await console.audit(viewer, action: "silence.create", target: silence.id, details: details)
        let text = silence.matchers.map(\.description).joined(separator: ", ")
        return Console.url("/alerts", [("ok", "Silenced \(text) until \(Format.dateTime(silence.endsAtMicros)).")]) + "#silences"
    }

    func expireSilence(_ viewer: ConsoleViewer, id: String) async throws -> String {
        guard id.utf8.count <= 100, try await deps.alertStore.expireSilence(id: id, atMicros: TimeExpressions.nowMicros()) else {
            return Console.url("/alerts", [("error", "No silence has the id \(Format.foreignID(id)).")]) + "#silences"
        }
        try await console.audit(viewer, action: "silence.expire", target: id)
        return Console.url("/alerts", [("ok", "Silence \(id.prefix(8)) expired: the alerts it matched notify again.")]) + "#silences"
    }

    struct FormProblem: Error {
        var message: String
    }

    /// A silence from the form (`matchers` one per line, `duration`, `comment`), starting now,
    /// within the limits of `POST /api/v1/silences` (`SilenceLimits`), in the form's words.
    static func silence(from form: [String: String], createdBy: String, now: Int64) throws(FormProblem) -> Silence {
        let texts = (form["matchers"] ?? "").split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        // The API reads `a=~b` as "a equals ~b"; saying so beats a silence that never matches.
        if let regex = texts.first(where: { $0.contains("=~") || $0.contains("!~") }) {
            throw FormProblem(message: "\(regex): silences match exact values only (label=value or label!=value), not regular expressions.")
        }
        let durationText = (form["duration"] ?? "").trimmingCharacters(in: .whitespaces)
        do {
            let matchers = try SilenceLimits.matchers(texts)
            return try SilenceLimits.silence(matchers: matchers, startsAtMicros: now, end: .after(durationText), comment: form["comment"],
                                             createdBy: createdBy, nowMicros: now)
        } catch {
            switch error {
            case .matchers:
                throw FormProblem(message: "Give 1 to \(SilenceLimits.maxMatchers) matchers, one per line, each label=value or label!=value (such as alertname=HighErrorRate).")
            case .noEnd, .endsTooSoon:
                // The form's silence starts now, so an end too soon is a duration of nothing.
                throw FormProblem(message: "\"\(durationText.prefix(40))\" is not a duration such as 30m, 2h or 1d.")
            case .tooLong:
                throw FormProblem(message: "A silence may last at most a year.")
            }
        }
    }

    // MARK: Small parts

    static func pairs(_ labels: [String: String]) -> [Pair] { labels.sorted { $0.key < $1.key }.map { Pair(name: $0.key, value: $0.value) } }

    /// An alert's labels without those every alert of its rule has.
    static func distinguishing(_ labels: [String: String], of rule: AlertRule) -> [String: String] {
        labels.filter { key, value in key != "alertname" && key != "severity" && rule.labels[key] != value }
    }

    /// Only web links become `href`s: a `javascript:` runbook must not run on a click.
    static func webLink(_ text: String) -> String? {
        let lower = text.lowercased()
        return lower.hasPrefix("https://") || lower.hasPrefix("http://") ? text : nil
    }

    static func tone(_ state: String) -> String {
        switch state {
        case "firing": "bad"
        case "pending": "warn"
        case "resolved": "good"
        default: ""
        }
    }

    static func tone(_ severity: AlertSeverity) -> String {
        switch severity {
        case .critical: "bad"
        case .high: "warn"
        case .medium: "info"
        case .low: ""
        }
    }
}
