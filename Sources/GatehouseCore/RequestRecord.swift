import Foundation

/// The API surface a call came in on; decides the request and error formats.
public enum GatewayRoute: String, Sendable, Codable, CaseIterable {
    case chatCompletions = "/v1/chat/completions"
    case completions = "/v1/completions"
    case embeddings = "/v1/embeddings"
    case responses = "/v1/responses"
    case models = "/v1/models"
    case messages = "/v1/messages"

    /// Anthropic's Messages API speaks Anthropic's formats; every other route speaks OpenAI's.
    public var dialect: APIDialect { self == .messages ? .anthropic : .openAI }
}

public enum APIDialect: String, Sendable, Codable {
    case openAI = "openai"
    case anthropic
}

/// Why a call did not complete normally. `nil` on a record means success.
public enum ErrorClass: String, Sendable, Codable, CaseIterable {
    /// The client sent something Gatehouse could not accept (bad JSON, unknown model, too large).
    case invalidRequest = "invalid_request"
    /// Upstream answered 4xx other than 429.
    case upstreamClientError = "upstream_4xx"
    case upstreamRateLimited = "upstream_429"
    case upstreamServerError = "upstream_5xx"
    /// Connecting to or talking with upstream failed before a response arrived.
    case upstreamUnreachable = "upstream_unreachable"
    case upstreamTimeout = "upstream_timeout"
    /// The response stream ended before its natural end (upstream cut it, or the client left).
    case streamIncomplete = "stream_incomplete"
    case clientDisconnected = "client_disconnected"
    /// No valid Gatehouse key (401), or the key may not do this (403).
    case unauthorized
    case forbidden
    /// A Gatehouse rate limit or concurrency limit refused the call.
    case rateLimited = "rate_limited"
    /// A Gatehouse budget refused the call.
    case budgetExceeded = "budget_exceeded"
    /// Refused by a kill switch or maintenance mode.
    case disabled
    case internalError = "internal_error"
}

/// One AI call as Gatehouse saw it: the unit of metering.
public struct RequestRecord: Sendable, Codable, Hashable, Identifiable {
    public var id: String
    /// Start of the call, in microseconds since 1970.
    public var timestampMicros: Int64
    public var route: GatewayRoute
    public var provider: String
    /// The model the client asked for (`provider/model` or an alias).
    public var requestedModel: String
    /// The model upstream was asked for after routing, or the one it reported.
    public var model: String
    public var status: Int
    public var stream: Bool
    public var latencyMicros: Int64
    /// Time to the first byte of the response body, for streams the first event.
    public var timeToFirstTokenMicros: Int64?
    public var usage: TokenUsage
    public var cost: MicroDollars
    /// A non-secret identifier of the caller's key (hash prefix), never the key itself.
    public var keyID: String?
    public var userID: String?
    public var properties: [String: String]
    public var correlationID: String
    public var errorClass: ErrorClass?
    public var errorMessage: String?
    /// False when the response ended early; usage then holds what was known so far.
    public var complete: Bool
    /// Every upstream attempt when there was more than one (retries, fallbacks), in order.
    public var attempts: [CallAttempt]
    /// Answered from the response cache: nothing was sent upstream and `cost` is zero.
    public var cacheHit: Bool
    /// What a cache hit would have cost.
    public var costSaved: MicroDollars
    /// The provider never reported usage (the stream was cut before it came): `usage` and `cost`
    /// are Gatehouse's estimate from the prompt and the text relayed, and quotas settled on it.
    public var usageEstimated: Bool

    public init(id: String, timestampMicros: Int64, route: GatewayRoute, provider: String, requestedModel: String,
                model: String, status: Int, stream: Bool, latencyMicros: Int64, timeToFirstTokenMicros: Int64?,
                usage: TokenUsage, cost: MicroDollars, keyID: String?, userID: String?, properties: [String: String],
                correlationID: String, errorClass: ErrorClass?, errorMessage: String?, complete: Bool,
                attempts: [CallAttempt] = [], cacheHit: Bool = false, costSaved: MicroDollars = .zero, usageEstimated: Bool = false) {
        self.id = id
        self.timestampMicros = timestampMicros
        self.route = route
        self.provider = provider
        self.requestedModel = requestedModel
        self.model = model
        self.status = status
        self.stream = stream
        self.latencyMicros = latencyMicros
        self.timeToFirstTokenMicros = timeToFirstTokenMicros
        self.usage = usage
        self.cost = cost
        self.keyID = keyID
        self.userID = userID
        self.properties = properties
        self.correlationID = correlationID
        self.errorClass = errorClass
        self.errorMessage = errorMessage
        self.complete = complete
        self.attempts = attempts
        self.cacheHit = cacheHit
        self.costSaved = costSaved
        self.usageEstimated = usageEstimated
    }
}

/// One try at an upstream deployment within a call.
public struct CallAttempt: Sendable, Codable, Hashable {
    public var provider: String
    public var model: String
    /// HTTP status, or nil when no response arrived.
    public var status: Int?
    public var errorClass: ErrorClass?
    public var errorMessage: String?
    public var latencyMicros: Int64
    /// Milliseconds waited before this attempt (backoff or `Retry-After`).
    public var delayMilliseconds: Int

    public init(provider: String, model: String, status: Int?, errorClass: ErrorClass?, errorMessage: String?, latencyMicros: Int64,
                delayMilliseconds: Int) {
        self.provider = provider
        self.model = model
        self.status = status
        self.errorClass = errorClass
        self.errorMessage = errorMessage
        self.latencyMicros = latencyMicros
        self.delayMilliseconds = delayMilliseconds
    }
}
