import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseHTTP
import HTTPTypes
import Hummingbird
import NIOCore

/// The alerting API: rules and their state, alert history, deliveries and silences.
public struct AlertRoutes: Sendable {
    let settings: AlertSettings
    let service: AlertService
    let store: any AlertStore

    public init(settings: AlertSettings, service: AlertService, store: any AlertStore) {
        self.settings = settings
        self.service = service
        self.store = store
    }

    public func addRoutes(to api: APIRouter) {
        api.team.get("/api/v1/alerts") { request, _ in await self.answer { try await self.alerts(request) } }
        api.team.get("/api/v1/alerts/rules") { _, _ in await self.answer { try await self.rules() } }
        api.team.get("/api/v1/alerts/deliveries") { request, _ in await self.answer { try await self.deliveries(request) } }
        api.team.get("/api/v1/silences") { _, _ in await self.answer { try await self.silences() } }
        api.team.post("/api/v1/silences") { request, _ in await self.answer { try await self.addSilence(request) } }
        api.team.delete("/api/v1/silences/{id}") { _, context in await self.answer { try await self.expire(context.parameters.get("id") ?? "") } }
    }

    func answer(_ body: () async throws -> Response) async -> Response { await APIAnswer.run(body) }

    /// The largest `POST /api/v1/silences` body read.
    static let silenceBodyLimit = 64 * 1024

    /// Alerts pending or firing now, with whether a silence mutes them, and the latest history.
    func alerts(_ request: Request) async throws -> Response {
        let params = FormParameters(query: request.uri.query)
        let limit = try APIParameters.limit(params.get("limit"), fallback: 100, max: 1000)
        let now = TimeExpressions.nowMicros()
        let silences = try await store.silences()
        let active = await service.evaluator.active().map { a in
            ActiveAlertView(alert: AlertView(a), silencedBy: silences.first { $0.mutes(a.labels, at: now) }?.id)
        }
        let history = try await store.alertHistory(limit: limit, rule: params.get("rule")).map(AlertHistoryEntry.init)
        return JSONResponse.make(AlertsAnswer(active: active, history: history))
    }

    func rules() async throws -> Response {
        let active = await service.evaluator.active()
        let failures = await service.evaluator.ruleFailures()
        return JSONResponse.make(AlertRulesAnswer(data: settings.rules.map { r in
            AlertRuleView(r, alerts: active.filter { $0.rule == r.name }, lastError: failures[r.name])
        }, evaluationIntervalSeconds: settings.evaluationIntervalSeconds))
    }

    func deliveries(_ request: Request) async throws -> Response {
        let limit = try APIParameters.limit(FormParameters(query: request.uri.query).get("limit"), fallback: 100, max: 1000)
        return JSONResponse.make(AlertDeliveriesAnswer(data: try await store.deliveries(limit: limit).map(AlertDelivery.init)))
    }

    func silences() async throws -> Response {
        let now = TimeExpressions.nowMicros()
        return JSONResponse.make(SilenceList(data: try await store.silences().map { SilenceView($0, now: now) }))
    }

    /// `{"matchers": ["alertname=HighErrorRate", "severity!=low"], "ends_at": "…" | "duration": "2h", "comment": "…", "created_by": "…"}`.
    func addSilence(_ request: Request) async throws -> Response {
        let input = try Self.silenceRequest(try await JSONBody.collect(request, limit: Self.silenceBodyLimit))
        let now = TimeExpressions.nowMicros()
        let silence = try Self.silence(input, nowMicros: now)
        try await store.addSilence(silence)
        return JSONResponse.make(SilenceView(silence, now: now), status: .created)
    }

    /// The silence a request asks for, or a 400 naming the first thing wrong: its matchers, then
    /// its times.
    static func silence(_ input: SilenceRequest, nowMicros now: Int64) throws(GatewayError) -> Silence {
        let matchers: [Silence.Matcher]
        do { matchers = try SilenceLimits.matchers(input.matchers ?? []) } catch { throw refusal(error) }
        let starts = try input.startsAt.map { text throws(GatewayError) in try APIParameters.instant(text, name: "starts_at") } ?? now
        let end: SilenceLimits.End = try input.endsAt.map { text throws(GatewayError) in .at(try APIParameters.instant(text, name: "ends_at")) }
            ?? .after(input.duration)
        do {
            return try SilenceLimits.silence(matchers: matchers, startsAtMicros: starts, end: end, comment: input.comment,
                                             createdBy: input.createdBy ?? "api", nowMicros: now)
        } catch {
            throw refusal(error)
        }
    }

    /// The API's words for each limit a silence breaks.
    static func refusal(_ problem: SilenceLimits.Problem) -> GatewayError {
        switch problem {
        case .matchers: badMatchers
        case .noEnd: .invalidRequest("give `ends_at` (RFC 3339) or `duration` (such as 2h)", param: "ends_at")
        case .endsTooSoon: .invalidRequest("the silence must end in the future, after it starts", param: "ends_at")
        case .tooLong: .invalidRequest("a silence may last at most a year", param: "ends_at")
        }
    }

    static let badMatchers = GatewayError.invalidRequest("`matchers` must be 1 to \(SilenceLimits.maxMatchers) of label=value or label!=value", param: "matchers")

    /// The body of `POST /api/v1/silences`, or a 400 that says what is wrong with it: not a JSON
    /// object, or which field has the wrong type.
    static func silenceRequest(_ data: Data) throws(GatewayError) -> SilenceRequest {
        do {
            return try JSONBody.decode(SilenceRequest.self, from: data)
        } catch {
            switch error.param {
            // Matchers keep the one message that says what a matcher looks like.
            case .some(let field) where field == "matchers" || field.hasPrefix("matchers["): throw badMatchers
            case .some: throw error
            case nil: throw .invalidRequest("send a JSON object: {\"matchers\": [\"alertname=X\"], \"duration\": \"2h\", \"comment\": \"…\"}")
            }
        }
    }

    func expire(_ id: String) async throws -> Response {
        guard try await store.expireSilence(id: id, atMicros: TimeExpressions.nowMicros()) else { throw GatewayError.notFound("no silence with id \(id)") }
        return JSONResponse.make(SilenceExpiry(id: id))
    }
}

/// What a new silence must be, whether it comes from `POST /api/v1/silences` or the console's
/// form: one set of limits, which each caller words its own way.
public enum SilenceLimits {
    public static let maxMatchers = 20
    /// 366 days: a year, leap or not.
    public static let maxLengthMicros: Int64 = 366 * 86_400_000_000
    /// Longer comments and creators are cut, not refused: they are notes, not the silence.
    public static let maxCommentCharacters = 1000
    public static let maxCreatedByCharacters = 200

    public enum End: Sendable, Equatable {
        case at(Int64)
        /// A duration such as `2h` after the start; nil when none was given.
        case after(String?)
    }

    public enum Problem: Error, Equatable {
        /// None, more than `maxMatchers`, or one that is not `label=value` or `label!=value`.
        case matchers
        /// No end, or a duration that is not one.
        case noEnd
        /// It ends before it starts, or has ended already.
        case endsTooSoon
        /// It lasts longer than `maxLengthMicros`.
        case tooLong
    }

    /// Every matcher parsed, or `.matchers`.
    public static func matchers(_ texts: [String]) throws(Problem) -> [Silence.Matcher] {
        let matchers = texts.compactMap(Silence.Matcher.init)
        guard !texts.isEmpty, matchers.count == texts.count, matchers.count <= maxMatchers else { throw .matchers }
        return matchers
    }

    /// A new silence with a fresh id, or the first limit it breaks.
    public static func silence(matchers: [Silence.Matcher], startsAtMicros starts: Int64, end: End, comment: String?, createdBy: String,
                               nowMicros now: Int64) throws(Problem) -> Silence {
        guard !matchers.isEmpty, matchers.count <= maxMatchers else { throw .matchers }
        let ends: Int64
        switch end {
        case .at(let micros): ends = micros
        case .after(let text):
            guard let text, let length = TimeExpressions.durationMicros(text) else { throw .noEnd }
            ends = starts.addingSaturated(length)
        }
        guard ends > starts, ends > now else { throw .endsTooSoon }
        guard ends.subtractingSaturated(starts) <= maxLengthMicros else { throw .tooLong }
        return Silence(id: UUID().uuidString.lowercased(), matchers: matchers, startsAtMicros: starts, endsAtMicros: ends,
                       createdBy: String(createdBy.prefix(maxCreatedByCharacters)), comment: String((comment ?? "").prefix(maxCommentCharacters)))
    }
}

// MARK: - The API's views of the alerting model

extension AlertSeverityName {
    init(_ severity: AlertSeverity) {
        switch severity {
        case .critical: self = .critical
        case .high: self = .high
        case .medium: self = .medium
        case .low: self = .low
        }
    }
}

extension AlertStateName {
    init(_ state: AlertState) {
        switch state {
        case .pending: self = .pending
        case .firing: self = .firing
        case .resolved: self = .resolved
        case .inactive: self = .inactive
        }
    }
}

extension AlertView {
    init(_ a: ActiveAlert) {
        // JSON has no NaN or infinity; a signal that produced one reads as 0.
        self.init(rule: a.rule, fingerprint: a.fingerprint, labels: a.labels, annotations: a.annotations, severity: AlertSeverityName(a.severity),
                  state: AlertStateName(a.state), value: a.value.isFinite ? a.value : 0, summary: a.summary, expr: a.expression,
                  activeSince: TimeExpressions.format(micros: a.activeSinceMicros), firedAt: a.firedAtMicros.map { TimeExpressions.format(micros: $0) })
    }
}

extension AlertHistoryEntry {
    init(_ t: AlertTransition) {
        // The stores keep finite values only; the guard keeps a non-finite one from breaking the whole answer.
        self.init(timestamp: TimeExpressions.format(micros: t.timestampMicros), rule: t.rule, fingerprint: t.fingerprint, labels: t.labels,
                  state: AlertStateName(t.state), value: t.value.isFinite ? t.value : 0, severity: AlertSeverityName(t.severity), summary: t.summary)
    }
}

extension AlertRuleView {
    /// `alerts`: the rule's alerts pending or firing now.
    init(_ r: AlertRule, alerts: [ActiveAlert], lastError: String?) {
        let state: State = alerts.contains { $0.state == .firing } ? .firing : (alerts.isEmpty ? .inactive : .pending)
        self.init(name: r.name, expr: r.expressionText, signal: r.expression.signal.rawValue, threshold: r.expression.thresholdText,
                  window: r.expression.windowMicros.map { TimeExpressions.formatDuration(micros: $0) }, forDuration: TimeExpressions.formatDuration(micros: r.forMicros),
                  severity: AlertSeverityName(r.severity), labels: r.labels, annotations: r.annotations, state: state, alerts: alerts.map(AlertView.init),
                  lastError: lastError)
    }
}

extension AlertDelivery {
    init(_ d: DeliveryRecord) {
        let outcome: Outcome = switch d.outcome {
        case .delivered: .delivered
        case .retrying: .retrying
        case .failed: .failed
        }
        self.init(timestamp: TimeExpressions.format(micros: d.timestampMicros), receiver: d.receiver, groupKey: d.groupKey, status: d.status,
                  attempt: d.attempt, outcome: outcome, detail: d.detail)
    }
}

extension SilenceView {
    public init(_ s: Silence, now: Int64) {
        self.init(id: s.id, matchers: s.matchers.map(\.description), startsAt: TimeExpressions.format(micros: s.startsAtMicros),
                  endsAt: TimeExpressions.format(micros: s.endsAtMicros), createdBy: s.createdBy, comment: s.comment,
                  state: s.isActive(at: now) ? .active : (now < s.startsAtMicros ? .pending : .expired))
    }
}
