import Foundation
import GatehouseCore
import GatehouseHTTP
import HTTPTypes
import Logging

/// Who is calling and what about, as the controls see one call.
struct CallSubject {
    var route: GatewayRoute
    var requestedModel: String
    var key: VirtualKey?
    /// Fingerprint of the caller's credential when no virtual key applies.
    var credentialFingerprint: String?
    var clientIP: String?
    var userID: String?
    var properties: [String: String]
}

/// A call the controls refused: the error to send and how to record it.
struct ControlRejection: Error {
    var error: GatewayError
    var errorClass: ErrorClass
    var headers: [(String, String)] = []
}

/// The gate in front of every gateway call: authentication, kill switches, key permissions,
/// rate limits, concurrency limits and budgets. One instance per server.
public struct Controls: Sendable {
    let settings: ControlSettings
    public let state: ControlState
    public let ledger: QuotaLedger
    let prices: PriceTable
    /// The file's rate limits and budgets, in one list.
    let configuredRules: [QuotaRule]

    public init(settings: ControlSettings, state: ControlState, ledger: QuotaLedger, prices: PriceTable) {
        self.settings = settings
        configuredRules = settings.rateLimits + settings.budgets
        self.state = state
        self.ledger = ledger
        self.prices = prices
    }

    // MARK: Authentication

    /// The Gatehouse key of the call, nil in open mode. `Gatehouse-Key` wins over the standard
    /// credential headers, so a caller can pass its own provider key through and still be
    /// identified.
    func authenticate(gatehouseKeyHeader: String?, credential: String?, dialect: APIDialect) throws(ControlRejection) -> VirtualKey? {
        let explicit = gatehouseKeyHeader.map { BearerToken.token($0) ?? $0.trimmingCharacters(in: .whitespaces) }
        let secret = explicit ?? credential
        guard state.keysExist || settings.requireKeys || explicit != nil else { return nil }
        guard let secret, !secret.isEmpty else {
            throw ControlRejection(error: Self.unauthorized(dialect == .anthropic
                ? "x-api-key header is required" : "You didn't provide an API key. Send your Gatehouse key as `Authorization: Bearer <key>`."),
                errorClass: .unauthorized)
        }
        let shown = secret.count > 8 ? String(secret.prefix(7)) + "****" : "****"
        guard let key = state.key(forSecret: secret) else {
            throw ControlRejection(error: Self.unauthorized("Incorrect API key provided: \(shown). Use a key issued by this Gatehouse."), errorClass: .unauthorized)
        }
        if key.revokedAtMicros != nil {
            throw ControlRejection(error: Self.unauthorized("The API key \(shown) (\(key.id)) has been revoked."), errorClass: .unauthorized)
        }
        if let expiry = key.expiresAtMicros, expiry <= TimeExpressions.nowMicros() {
            throw ControlRejection(error: Self.unauthorized("The API key \(shown) (\(key.id)) expired at \(TimeExpressions.format(micros: expiry))."),
                                   errorClass: .unauthorized)
        }
        if key.blocked || state.killSwitch(.key, key.id) != nil {
            throw ControlRejection(error: Self.forbidden("The API key \(key.id) is blocked by an administrator.", code: "key_blocked"), errorClass: .forbidden)
        }
        return key
    }

    static func unauthorized(_ message: String) -> GatewayError {
        GatewayError(status: .unauthorized, message: message, type: "invalid_request_error", code: "invalid_api_key")
    }

    static func forbidden(_ message: String, code: String) -> GatewayError {
        GatewayError(status: .forbidden, message: message, type: "permission_error", code: code)
    }

    // MARK: Switches and permissions

    /// Maintenance mode and disabled models or property values; disabled providers are skipped
    /// when routing instead.
    func checkSwitches(_ subject: CallSubject) throws(ControlRejection) {
        guard state.hasSwitches else { return }
        if let s = state.killSwitch(.maintenance, "") {
            let retry = s.retryAfterSeconds ?? 60
            throw ControlRejection(
                error: GatewayError(status: .serviceUnavailable, message: s.reason ?? "Gatehouse is in maintenance mode; try again later.",
                                    type: "api_error", code: "maintenance", retryAfterSeconds: retry),
                errorClass: .disabled)
        }
        if let s = state.killSwitch(.model, subject.requestedModel) {
            throw ControlRejection(error: Self.forbidden("The model \(subject.requestedModel) is disabled by an administrator\(s.reason.map { ": \($0)" } ?? ".")",
                                                         code: "model_disabled"), errorClass: .disabled)
        }
        for (name, value) in subject.properties {
            if let s = state.killSwitch(.property, "\(name)=\(value)") {
                throw ControlRejection(error: Self.forbidden("Calls with \(name)=\(value) are disabled by an administrator\(s.reason.map { ": \($0)" } ?? ".")",
                                                             code: "property_disabled"), errorClass: .disabled)
            }
        }
    }

    func checkPermissions(_ key: VirtualKey, route: GatewayRoute, model: String) throws(ControlRejection) {
        if !key.allows(route: route.rawValue) {
            throw ControlRejection(error: Self.forbidden("The key \(key.id) may not call \(route.rawValue).", code: "route_not_allowed"), errorClass: .forbidden)
        }
        if !key.allows(model: model) {
            throw ControlRejection(error: Self.forbidden("The key \(key.id) may not use the model \(model); it may use \(key.allowedModels.joined(separator: ", ")).",
                                                         code: "model_not_allowed"), errorClass: .forbidden)
        }
    }

    // MARK: Quotas

    /// The rules that apply to a call and the counter each one counts it under.
    func applicableRules(_ subject: CallSubject, policyHeader: String?) throws(ControlRejection) -> [(counter: String, rule: QuotaRule)] {
        var result: [(String, QuotaRule)] = []
        for rule in configuredRules {
            if !rule.routes.isEmpty && !rule.routes.contains(subject.route.rawValue) { continue }
            if !rule.models.isEmpty && !rule.models.contains(where: { VirtualKey.matches(pattern: $0, subject.requestedModel) }) { continue }
            guard let value = scopeValue(rule.scope, subject) else { continue }
            if let only = rule.propertyValue, only != value { continue }
            result.append((rule.id + "|" + value, rule))
        }
        if let key = subject.key { result += state.quotaRules(forKeyID: key.id) }
        if let policyHeader {
            let rule = try HeliconePolicy.parse(policyHeader)
            if let value = scopeValue(rule.scope, subject) { result.append((rule.id + "|" + value, rule)) }
        }
        return result
    }

    func scopeValue(_ scope: QuotaScope, _ s: CallSubject) -> String? {
        switch scope {
        case .global: ""
        case .key: s.key?.id ?? s.credentialFingerprint ?? "anonymous"
        case .model: s.requestedModel
        case .route: s.route.rawValue
        case .ip: s.clientIP ?? "unknown"
        case .user: s.userID
        case .property(let name): s.properties[name]
        }
    }

    /// What a call is expected to consume, reserved before it runs.
    struct Estimate {
        var tokens: Int64
        var cost: MicroDollars
        /// For calls that only count requests.
        static let none = Estimate(tokens: 0, cost: .zero)
    }

    /// What a call may consume, estimated before it runs.
    ///
    /// `maxOutputTokens` is the client's `max_tokens` (any number it sent, 10^12 or -1): it is
    /// read as `0...TokenUsage.maximumCount`, and the price saturates, so the estimate never traps
    /// and a call asking for too much is simply refused by its limits.
    func estimate(bodyBytes: Int, maxOutputTokens: Int?, route: GatewayRoute, model: String, priceProvider: String?) -> Estimate {
        // About four bytes of JSON per prompt token; the output is what the call may ask for.
        let input = TokenUsage.bounded(max(1, bodyBytes / 4))
        let output = route == .embeddings ? 0 : TokenUsage.bounded(maxOutputTokens ?? settings.defaultOutputTokenEstimate)
        let usage = TokenUsage(inputTokens: input, outputTokens: output)
        let price = prices.price(forModel: model, provider: priceProvider)
        return Estimate(tokens: Int64(input) + Int64(output), cost: price?.cost(of: usage) ?? .zero)
    }

    /// Reserves every applicable quota, and a parallel slot, or throws the refusal.
    func admit(_ subject: CallSubject, rules: [(counter: String, rule: QuotaRule)], estimate: Estimate) async throws(ControlRejection) -> Admission {
        var admission = Admission(ledger: ledger, state: state)
        if let key = subject.key, let limit = key.maxParallel {
            guard state.enter(keyID: key.id, limit: limit) else {
                throw ControlRejection(
                    error: GatewayError(status: .tooManyRequests, message: "The key \(key.id) already has \(limit) calls in flight, its limit; retry when one finishes.",
                                        type: "rate_limit_error", code: "rate_limit_exceeded", retryAfterSeconds: 1),
                    errorClass: .rateLimited)
            }
            admission.parallelKey = key.id
        }
        for (counter, rule) in rules {
            let amount: Int64 = switch rule.unit {
            case .requests: 1
            case .tokens: max(0, estimate.tokens)
            // At least one micro-dollar, so a spent budget refuses even calls of unknown price.
            case .cost: max(1, estimate.cost.value)
            }
            do {
                admission.reservations.append(try await ledger.acquire(counter: counter, rule: rule, amount: amount))
            } catch let exhausted as QuotaLedger.Exhausted {
                admission.cancel()
                throw Self.rejection(exhausted)
            } catch is QuotaLedger.StoreUnavailable {
                admission.cancel()
                throw ControlRejection(
                    error: GatewayError(status: .serviceUnavailable, message: "Limits cannot be checked right now (the store is unreachable); try again shortly.",
                                        type: "api_error", code: "quota_store_unavailable", retryAfterSeconds: 5),
                    errorClass: .internalError)
            } catch {
                admission.cancel()
                throw ControlRejection(error: .internalError(), errorClass: .internalError)
            }
        }
        return admission
    }

    static func rejection(_ e: QuotaLedger.Exhausted) -> ControlRejection {
        let now = TimeExpressions.nowMicros()
        let untilEnd = e.windowEnd == Int64.max ? 86_400_000_000 : e.windowEnd.subtractingSaturated(now)
        let retryAfter = max(1, Int(untilEnd / 1_000_000) + 1)
        let rule = e.rule
        if rule.unit == .cost && !rule.id.hasPrefix("policy:") {
            let whose = "\(rule.summary) for \(Self.describe(counter: e.counter, rule: rule))"
            let resets = rule.period == .total
                ? "." : "; it resets in \(TimeExpressions.formatDuration(micros: Int64(retryAfter).multipliedSaturated(by: 1_000_000)))."
            // A call dearer than what is left says so: the budget itself may be far from spent,
            // and a smaller max_tokens (or a cheaper model) would pass.
            let message = e.remaining > 0 && e.needed > e.remaining
                ? "Budget exceeded: this call's estimated cost ($\(MicroDollars(e.needed).dollarString)) exceeds what is left of the budget "
                    + "($\(MicroDollars(e.remaining).dollarString) of \(whose)); lower max_tokens or use a cheaper model" + resets
                : "Budget exceeded: \(whose) is used up" + resets
            // 429 like a provider's own quota error, with `x-should-retry: false` so SDKs fail
            // at once instead of retrying until the period ends.
            return ControlRejection(
                error: GatewayError(status: .tooManyRequests, message: message, type: "insufficient_quota", code: "budget_exceeded",
                                    retryAfterSeconds: retryAfter),
                errorClass: .budgetExceeded, headers: [("x-should-retry", "false")])
        }
        let message = rule.unit == .tokens && e.needed > rule.limit
            // Waiting would not help: the call alone is estimated above the whole limit.
            ? "Request too large for \(Self.describe(counter: e.counter, rule: rule)): this call is estimated at \(e.needed) tokens, "
                + "more than the limit of \(rule.summary). Lower max_tokens or shorten the prompt."
            : "Rate limit reached for \(Self.describe(counter: e.counter, rule: rule)): \(rule.summary). "
                + "Please try again in \(retryAfter)s."
        return ControlRejection(
            error: GatewayError(status: .tooManyRequests, message: message, type: "rate_limit_error", code: "rate_limit_exceeded",
                                retryAfterSeconds: retryAfter),
            errorClass: .rateLimited,
            headers: headerValues(unit: rule.unit, limit: rule.limit, remaining: 0, resetMicros: e.windowEnd.subtractingSaturated(now)))
    }

    static func describe(counter: String, rule: QuotaRule) -> String {
        let value = counter.split(separator: "|", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
        switch rule.scope {
        case .global: return "all calls"
        case .key: return "key \(counter.hasPrefix("key:") ? String(counter.dropFirst(4).prefix { $0 != ":" }) : value)"
        case .property(let name): return "\(name) \(value)"
        default: return "\(rule.scope) \(value)"
        }
    }

    static func headerValues(unit: QuotaUnit, limit: Int64, remaining: Int64, resetMicros: Int64) -> [(String, String)] {
        guard unit != .cost else { return [] }
        let suffix = unit == .requests ? "requests" : "tokens"
        let reset = resetMicros >= 86_400_000_000 * 366 ? "never" : "\(max(0, resetMicros / 1_000_000))s"
        return [("x-ratelimit-limit-\(suffix)", String(limit)), ("x-ratelimit-remaining-\(suffix)", String(max(0, remaining))),
                ("x-ratelimit-reset-\(suffix)", reset)]
    }
}

/// What one admitted call holds: its quota reservations and parallel slot. Settled once.
struct Admission: Sendable {
    let ledger: QuotaLedger
    let state: ControlState
    var reservations: [QuotaLedger.Reservation] = []
    var parallelKey: String?

    /// Rate-limit headers for the tightest request and token limits that applied.
    var headers: [(String, String)] {
        var result: [(String, String)] = []
        let now = TimeExpressions.nowMicros()
        for unit in [QuotaUnit.requests, .tokens] {
            if let tightest = reservations.filter({ $0.rule.unit == unit }).min(by: { $0.remaining < $1.remaining }) {
                result += Controls.headerValues(unit: unit, limit: tightest.rule.limit, remaining: tightest.remaining,
                                                resetMicros: tightest.windowEnd.subtractingSaturated(now))
            }
        }
        return result
    }

    /// Releases everything without consuming: the call was refused or never reached upstream.
    func cancel() {
        for r in reservations { ledger.settle(r, actual: 0) }
        if let parallelKey { state.leave(keyID: parallelKey) }
    }

    /// Settles as if the call consumed exactly its reservations.
    func settleAsReserved() {
        for r in reservations { ledger.settle(r, actual: r.amount) }
        if let parallelKey { state.leave(keyID: parallelKey) }
    }

    /// Settles with what the call consumed (never less than nothing).
    func settle(tokens: Int64, cost: MicroDollars, countsAsRequest: Bool = true) {
        for r in reservations {
            let actual: Int64 = switch r.rule.unit {
            case .requests: countsAsRequest ? 1 : 0
            case .tokens: max(0, tokens)
            case .cost: max(0, cost.value)
            }
            ledger.settle(r, actual: actual)
        }
        if let parallelKey { state.leave(keyID: parallelKey) }
    }
}

/// Helicone's `Helicone-RateLimit-Policy: quota;w=seconds;u=request|cents;s=user|<property>`.
enum HeliconePolicy {
    static func parse(_ text: String) throws(ControlRejection) -> QuotaRule {
        func bad(_ why: String) -> ControlRejection {
            ControlRejection(error: .invalidRequest("Helicone-RateLimit-Policy \"\(text.prefix(100))\": \(why)"), errorClass: .invalidRequest)
        }
        let parts = text.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let quotaText = parts.first, let quota = Int64(quotaText), quota > 0 else { throw bad("must start with a positive quota") }
        var window: Int64?
        var unit = QuotaUnit.requests
        var scope = QuotaScope.key
        for part in parts.dropFirst() {
            let kv = part.split(separator: "=", maxSplits: 1).map { String($0).trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2 else { throw bad("\"\(part)\" is not name=value") }
            switch kv[0].lowercased() {
            case "w":
                guard let w = Int64(kv[1]), w >= 1, w <= 365 * 86_400 else { throw bad("w must be a number of seconds") }
                window = w
            case "u":
                switch kv[1].lowercased() {
                case "request", "requests": unit = .requests
                case "cents", "cent": unit = .cost
                default: throw bad("u must be request or cents")
                }
            case "s":
                scope = kv[1].lowercased() == "user" ? .user : .property(kv[1].lowercased())
            default:
                throw bad("unknown parameter \(kv[0])")
            }
        }
        guard let window else { throw bad("w= (window in seconds) is required") }
        // Cents become micro-dollars; a quota too large for that is refused, not trapped on.
        let (limit, overflow) = unit == .cost ? quota.multipliedReportingOverflow(by: 10_000) : (quota, false)
        guard !overflow else { throw bad("the quota is too large") }
        return QuotaRule(id: "policy:\(quota);w=\(window);u=\(unit.rawValue);s=\(scope)", scope: scope, unit: unit, limit: limit,
                         period: .total, customWindowSeconds: window)
    }
}
