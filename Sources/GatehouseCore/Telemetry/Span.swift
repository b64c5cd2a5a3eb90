/// One timed operation of a trace: a Sentry transaction or one of its spans, an OpenTelemetry
/// span, or Gatehouse's own span for a gateway call. Spans of one trace share `traceID`; a span's
/// `parentSpanID` names the span it ran inside.
public struct Span: Sendable, Equatable {
    public enum Source: String, Sendable, CaseIterable {
        /// A Sentry envelope's `transaction` item (the transaction and its `spans`).
        case sentry
        /// OTLP/HTTP `/v1/traces`.
        case otlp
        /// Gatehouse's own span for a call through its AI gateway.
        case gateway
    }

    /// 32 lowercase hex digits.
    public var traceID: String
    /// 16 lowercase hex digits.
    public var spanID: String
    public var parentSpanID: String?
    public var project: String
    public var source: Source
    /// The service that ran it (OTel `service.name`, Sentry's `server_name` or `gatehouse`).
    public var service: String?
    /// What it did: a transaction's or span's name (`GET /api/tasks`, `SELECT tasks`, `chat gpt-4o`).
    public var name: String
    /// Its kind of work: Sentry's `op` (`http.server`, `db.query`) or OTel's span kind (`server`, `client`).
    public var op: String?
    /// The name of the transaction it belongs to (the local root: a Sentry transaction, an OTel
    /// span with no parent in this service); equal to `name` on that root.
    public var transaction: String?
    /// True for a transaction's root span: what `/api/v1/transactions` counts, one per request.
    public var isTransaction: Bool
    public var startMicros: Int64
    public var durationMicros: Int64
    /// `ok`, `error`, or a Sentry/OTel status such as `internal_error`, `deadline_exceeded`.
    public var status: String
    /// True when the status says it failed (anything but ok/unset).
    public var isError: Bool
    public var environment: String?
    public var release: String?
    /// The id that joins this span to its AI call, logs and errors (its trace id unless the
    /// span carries an `X-Request-Id` / correlation id of its own).
    public var correlationID: String?
    /// Everything else (tags, data, OTel attributes, GenAI semantic conventions), secrets
    /// masked, as a JSON object's text.
    public var attributesJSON: String

    public init(traceID: String, spanID: String, parentSpanID: String? = nil, project: String, source: Source, service: String? = nil,
                name: String, op: String? = nil, transaction: String? = nil, isTransaction: Bool, startMicros: Int64, durationMicros: Int64,
                status: String = "ok", isError: Bool = false, environment: String? = nil, release: String? = nil, correlationID: String? = nil,
                attributesJSON: String = "{}") {
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.project = project
        self.source = source
        self.service = service
        self.name = name
        self.op = op
        self.transaction = transaction
        self.isTransaction = isTransaction
        self.startMicros = startMicros
        self.durationMicros = durationMicros
        self.status = status
        self.isError = isError
        self.environment = environment
        self.release = release
        self.correlationID = correlationID
        self.attributesJSON = attributesJSON
    }
}
