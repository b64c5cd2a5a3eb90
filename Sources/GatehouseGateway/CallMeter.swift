import Foundation
import GatehouseCore

/// Collects what is known about one call as it proceeds and turns it into its `RequestRecord`.
struct CallMeter: Sendable {
    let id: String
    let route: GatewayRoute
    let startedAt: ContinuousClock.Instant
    let timestampMicros: Int64
    let correlationID: String
    var requestedModel = ""
    var provider = ""
    var priceProvider: String?
    var model = ""
    var stream = false
    var keyID: String?
    var userID: String?
    var properties: [String: String] = [:]
    var firstByteAt: ContinuousClock.Instant?
    var attempts: [CallAttempt] = []
    /// Its place in a distributed trace (`GatewaySpans`).
    let trace: CallTrace
    /// What the caller asked for, as its span reports it (`gen_ai.request.*`), when it said.
    var requestMaxTokens: Int?
    var requestTemperature: Double?
    /// True once a provider was called (a rejected or cached call never is).
    var calledUpstream = false

    init(route: GatewayRoute, correlationID: String, traceparent: String? = nil) {
        id = CallMeter.newID()
        self.route = route
        startedAt = .now
        timestampMicros = TimeExpressions.nowMicros()
        self.correlationID = correlationID
        trace = CallTrace(traceparent: traceparent)
    }

    /// Sortable by time (millisecond prefix) and unique (random suffix): `req_<12 hex ms><16 hex>`.
    static func newID() -> String {
        let ms = UInt64(saturating: Date().timeIntervalSince1970 * 1000)
        var rng = SystemRandomNumberGenerator()
        let random = rng.next() as UInt64
        return "req_" + Hex.encode(ms, minimumDigits: 12) + Hex.encode(random, minimumDigits: 16)
    }

    func record(status: Int, usage: TokenUsage?, reportedModel: String?, errorClass: ErrorClass?, errorMessage: String?,
                complete: Bool, prices: PriceTable, cacheHit: Bool = false, costSaved: MicroDollars = .zero) -> RequestRecord {
        let now = ContinuousClock.now
        let usage = usage ?? .zero
        let finalModel = reportedModel.flatMap { $0.isEmpty ? nil : $0 } ?? model
        var cost = MicroDollars.zero
        if usage != .zero && !cacheHit {
            // A mock model prices as the real model of the same name when there is one, so demos
            // show realistic spend; otherwise as the table's `mock` entry.
            let price = prices.price(forModel: finalModel, provider: priceProvider)
                ?? (priceProvider == "mock" ? prices.price(forModel: "mock", provider: "mock") : nil)
            cost = price?.cost(of: usage) ?? .zero
        }
        return RequestRecord(
            id: id, timestampMicros: timestampMicros, route: route, provider: provider, requestedModel: requestedModel,
            model: finalModel, status: status, stream: stream, latencyMicros: TimeExpressions.micros(now - startedAt),
            timeToFirstTokenMicros: firstByteAt.map { TimeExpressions.micros($0 - startedAt) }, usage: usage, cost: cost,
            keyID: keyID, userID: userID, properties: properties, correlationID: correlationID, errorClass: errorClass,
            errorMessage: errorMessage.map { String(Redactor.scrubText($0).prefix(1000)) }, complete: complete,
            attempts: attempts, cacheHit: cacheHit, costSaved: costSaved)
    }
}

/// Metadata headers: who the call is for and what it is about.
enum CallMetadata {
    static let maxProperties = 32
    static let maxNameLength = 64
    static let maxValueLength = 512

    struct Invalid: Error { var message: String }

    /// `Gatehouse-Property-<Name>` / `Helicone-Property-<Name>` (names lowercased), and the user
    /// id from `Gatehouse-User-Id` / `Helicone-User-Id`.
    static func read(_ headers: [(name: String, value: String)]) throws -> (user: String?, properties: [String: String]) {
        var user: String?
        var properties: [String: String] = [:]
        for (name, value) in headers {
            let lower = name.lowercased()
            if lower == "gatehouse-user-id" || lower == "helicone-user-id" {
                guard value.count <= maxValueLength else { throw Invalid(message: "\(name) is longer than \(maxValueLength) characters") }
                if lower == "gatehouse-user-id" || user == nil { user = value }
                continue
            }
            let prefix = lower.hasPrefix("gatehouse-property-") ? "gatehouse-property-" : lower.hasPrefix("helicone-property-") ? "helicone-property-" : nil
            guard let prefix else { continue }
            let key = String(lower.dropFirst(prefix.count))
            guard !key.isEmpty, key.count <= maxNameLength else {
                throw Invalid(message: "\(name): property names must be 1 to \(maxNameLength) characters")
            }
            guard value.count <= maxValueLength else { throw Invalid(message: "\(name) is longer than \(maxValueLength) characters") }
            // A property named like a credential (`Gatehouse-Property-Token`) is kept, masked:
            // records are read by everyone with the API, and log attributes get the same rule.
            let stored = Redactor.isSecretKey(key) ? Redactor.mask : value
            if prefix == "gatehouse-property-" || properties[key] == nil { properties[key] = stored }
        }
        guard properties.count <= maxProperties else { throw Invalid(message: "at most \(maxProperties) properties per call") }
        return (user, properties)
    }
}
