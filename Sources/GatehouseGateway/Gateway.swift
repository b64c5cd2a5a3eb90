import Foundation
import GatehouseCore
import GatehouseHTTP
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The AI gateway: OpenAI- and Anthropic-compatible routes that forward each call to its
/// provider, stream the answer back as it arrives, and meter it into a `RequestRecord`.
public struct Gateway: Sendable {
    let config: GatehouseConfig
    let router: ModelRouter
    let prices: PriceTable
    let caller: UpstreamCaller
    let sink: any RequestRecordSink
    public let health: ProviderHealth
    public let controls: Controls
    public let cache: ResponseCache
    public let breakers: CircuitBreakers
    let tokenCaps: TokenCaps
    /// Configured provider keys, masked wherever a provider echoes them back (error bodies).
    let providerSecrets: [String]
    let bodyCapture: BodyCapture
    /// Where each call's own span goes (`GatewaySpans`); nil: no spans are built.
    let spans: (@Sendable (Span) -> Void)?
    /// `gen_ai.system` of each configured provider, by name.
    let providerSystems: [String: String]

    /// `upstream` reaches every provider but the built-in mock (`HTTPUpstream` in production).
    public init(config: GatehouseConfig, prices: PriceTable, upstream: any UpstreamTransport, sink: any RequestRecordSink,
                controls: Controls, cache: ResponseCache, health: ProviderHealth = ProviderHealth(),
                keepBodies: @escaping @Sendable (CapturedBodies) -> Void = { _ in }, spans: (@Sendable (Span) -> Void)? = nil) {
        self.config = config
        self.router = ModelRouter(config: config)
        self.prices = prices
        let breakers = CircuitBreakers(settings: config.controls.breaker)
        self.breakers = breakers
        self.caller = UpstreamCaller(network: upstream, mock: MockProvider(), breakers: breakers,
                                     policy: RetryPolicy(settings: config.controls.retry))
        self.sink = sink
        self.health = health
        self.controls = controls
        self.cache = cache
        self.tokenCaps = TokenCaps(caps: config.controls.tokenCaps)
        self.providerSecrets = Self.secrets(of: config)
        self.bodyCapture = BodyCapture(limit: config.gateway.captureMaxBytes, secrets: providerSecrets, keep: keepBodies)
        self.spans = spans
        self.providerSystems = Dictionary(config.providers.compactMap { p in GatewaySpans.system(p.kind).map { (p.name, $0) } },
                                          uniquingKeysWith: { first, _ in first })
    }

    public func addRoutes(to api: APIRouter) {
        for route in GatewayRoute.allCases where route != .models {
            api.open.post(RouterPath(route.rawValue)) { request, context in
                await self.handle(route, request: request, context: context)
            }
        }
        api.open.get("/v1/models") { request, _ in
            // Listing models needs a key too once keys exist, as with the providers' own APIs.
            do throws(ControlRejection) {
                _ = try self.controls.authenticate(gatehouseKeyHeader: request.headers[.gatehouseKey],
                                                   credential: Self.clientCredential(request.headers), dialect: .openAI)
            } catch {
                return error.error.response(dialect: .openAI)
            }
            return self.modelList()
        }
    }

    /// `GET /v1/models` in OpenAI's shape (a provider format, so not part of Gatehouse's own API types).
    struct ModelList: Encodable {
        struct Model: Encodable {
            var id: String
            var object = "model"
            var created: Int
            var ownedBy: String
            enum CodingKeys: String, CodingKey { case id, object, created, ownedBy = "owned_by" }
        }
        var object = "list"
        var data: [Model]
    }

    func modelList() -> Response {
        let created = Int(Date().timeIntervalSince1970)
        return JSONResponse.make(ModelList(data: router.listedModels(prices: prices).map { ModelList.Model(id: $0.id, created: created, ownedBy: $0.ownedBy) }))
    }

    // MARK: - One call

    func handle(_ route: GatewayRoute, request: Request, context: GatehouseRequestContext) async -> Response {
        var meter = CallMeter(route: route, correlationID: context.correlationID, traceparent: request.headers[Self.traceparentHeader])
        // Canonical (lowercase) names: HTTP names are case-insensitive, and every check below
        // compares lowercase names without lowercasing each header again.
        let headers = request.headers.map { (name: $0.name.canonicalName, value: $0.value) }
        do {
            let metadata = try CallMetadata.read(headers)
            meter.userID = metadata.user
            meter.properties = metadata.properties
        } catch let invalid as CallMetadata.Invalid {
            return await reject(.invalidRequest(invalid.message), meter: meter, errorClass: .invalidRequest)
        } catch {
            return await reject(.internalError(), meter: meter, errorClass: .internalError)
        }
        let credential = Self.clientCredential(request.headers)
        let key: VirtualKey?
        do {
            key = try controls.authenticate(gatehouseKeyHeader: request.headers[.gatehouseKey], credential: credential, dialect: route.dialect)
        } catch {
            meter.keyID = credential.map { Redactor.fingerprint(ofSecret: $0) }
            return await reject(error, meter: meter)
        }
        meter.keyID = key?.id ?? credential.map { Redactor.fingerprint(ofSecret: $0) }
        let capture: BodyCapture?
        do {
            capture = try BodyCapture.enabled(header: request.headers[.gatehouseCapture], key: key, global: config.gateway.captureBodies) ? bodyCapture.forCall(credential: credential) : nil
        } catch {
            return await reject(.invalidRequest(error.message), meter: meter, errorClass: .invalidRequest)
        }
        // A Gatehouse key authenticates to Gatehouse only; it is never sent to a provider.
        let passThroughCredential = key != nil && request.headers[.gatehouseKey] == nil ? nil : credential

        let bodyBuffer: ByteBuffer
        do {
            bodyBuffer = try await request.body.collect(upTo: config.gateway.maxRequestBodyBytes)
        } catch is NIOTooManyBytesError {
            return await reject(.tooLarge(limit: config.gateway.maxRequestBodyBytes), meter: meter, errorClass: .invalidRequest)
        } catch {
            return await reject(.invalidRequest("the request body could not be read: its framing is malformed"), meter: meter, errorClass: .invalidRequest)
        }
        let inbound: InboundRequest
        do {
            inbound = try InboundRequest(route: route, body: Array(bodyBuffer.readableBytesView))
        } catch let error as JSONObjectScanner.SyntaxError {
            return await reject(.invalidRequest("We could not parse the JSON body of your request: \(error)"), meter: meter, errorClass: .invalidRequest)
        } catch {
            return await reject(.invalidRequest("We could not parse the JSON body of your request."), meter: meter, errorClass: .invalidRequest)
        }
        guard let model = inbound.model, !model.isEmpty else {
            return await reject(.invalidRequest("you must provide a model parameter", param: "model"), meter: meter, errorClass: .invalidRequest)
        }
        meter.requestedModel = String(model.prefix(256))
        meter.model = meter.requestedModel
        meter.stream = inbound.stream
        if spans != nil {
            meter.requestMaxTokens = inbound.intValue("max_tokens") ?? inbound.intValue("max_completion_tokens") ?? inbound.intValue("max_output_tokens")
            meter.requestTemperature = inbound.doubleValue("temperature")
        }
        let subject = CallSubject(route: route, requestedModel: meter.requestedModel, key: key,
                                  credentialFingerprint: key == nil ? meter.keyID : nil,
                                  clientIP: context.clientIP,
                                  userID: meter.userID, properties: meter.properties)
        let candidates: [RoutedModel]
        do {
            try controls.checkSwitches(subject)
            if let key { try controls.checkPermissions(key, route: route, model: meter.requestedModel) }
            do {
                candidates = try router.candidates(model)
            } catch {
                return await reject(GatewayError(status: .notFound, message: "\(error)", type: "invalid_request_error", code: "model_not_found", param: "model"),
                                    meter: meter, errorClass: .invalidRequest)
            }
        } catch {
            return await reject(error, meter: meter)
        }
        let first = candidates[0]
        meter.provider = first.provider.name
        meter.priceProvider = first.provider.effectivePriceProvider
        meter.model = first.upstreamModel
        if let problem = Self.dialectMismatch(route: route, provider: first.provider) {
            return await reject(.invalidRequest(problem, param: "model"), meter: meter, errorClass: .invalidRequest)
        }
        let usable = candidates.filter {
            controls.state.killSwitch(.provider, $0.provider.name) == nil && Self.dialectMismatch(route: route, provider: $0.provider) == nil
        }
        guard !usable.isEmpty else {
            return await reject(GatewayError(status: .serviceUnavailable, message: "The provider \(first.provider.name) is disabled by an administrator.",
                                             type: "api_error", code: "provider_disabled", retryAfterSeconds: 60),
                                meter: meter, errorClass: .disabled)
        }

        let capped: TokenCaps.Outcome
        let admission: Admission
        do {
            capped = try tokenCaps.apply(route: route, properties: meter.properties, request: inbound)
            let rules = try controls.applicableRules(subject, policyHeader: request.headers[.heliconeRateLimitPolicy])
            // Only token and cost quotas reserve an estimate; skip the price lookup otherwise.
            let estimate = rules.contains { $0.rule.unit != .requests }
                ? controls.estimate(bodyBytes: inbound.body.count, maxOutputTokens: capped.maxOutputTokens, route: route,
                                    model: first.upstreamModel, priceProvider: first.provider.effectivePriceProvider)
                : .none
            admission = try await controls.admit(subject, rules: rules, estimate: estimate)
        } catch {
            return await reject(error, meter: meter)
        }

        let cacheTTL = cache.decision(route: route, headers: headers)
        let cacheKey = cacheTTL.flatMap { _ in ResponseCache.key(route: route, body: inbound.body, seed: request.headers[.gatehouseCacheSeed]) }
        if let cacheKey, let hit = await cache.lookup(cacheKey) {
            admission.settle(tokens: 0, cost: .zero)
            return replay(hit, meter: meter, inbound: inbound, extraHeaders: admission.headers, capture: capture)
        }

        let injectUsage = inbound.streamNeedsUsageOption && !inbound.clientRequestedUsage
        // The caller's `traceparent` is replaced by ours: our span is the provider's parent.
        let forwarded = headers.filter { HeaderPolicy.forwardsRequestHeader($0.name) && $0.name != "traceparent" }
            + [(name: "traceparent", value: meter.trace.upstreamHeader)]
        let ordered = usable.count == 1 ? usable : { var rng = SystemRandomNumberGenerator(); return DeploymentOrder.order(usable, using: &rng) }()
        let upstreamTimeout = Duration.seconds(config.gateway.upstreamTimeoutSeconds)
        let outcome = await caller.call(ordered, started: meter.startedAt, logger: context.logger) { routed in
            UpstreamRequest(route: route, provider: routed.provider, upstreamModel: routed.upstreamModel,
                            body: inbound.rewritten(upstreamModel: routed.upstreamModel, injectUsageOption: injectUsage, integers: capped.integers),
                            stream: inbound.stream, forwardedHeaders: forwarded, clientCredential: passThroughCredential,
                            deadline: .now + upstreamTimeout, clientBody: inbound.body)
        }
        switch outcome {
        case let .response(upstream, routed, attempts):
            meter.calledUpstream = true
            meter.provider = routed.provider.name
            meter.priceProvider = routed.provider.effectivePriceProvider
            meter.model = routed.upstreamModel
            meter.attempts = attempts
            return respond(with: upstream, meter: meter, requestBody: inbound.body, injectedUsage: injectUsage, admission: admission,
                           cacheKey: cacheKey.map { ($0, cacheTTL ?? config.controls.cache.ttlSeconds) }, connection: context.connection,
                           logger: context.logger, capture: capture)
        case let .failed(error, routed, attempts):
            admission.cancel()
            meter.calledUpstream = true
            meter.provider = routed.provider.name
            meter.model = routed.upstreamModel
            meter.attempts = attempts
            capture?.keep(requestID: meter.id, timestampMicros: meter.timestampMicros, request: inbound.body, response: nil, reassembled: nil,
                          responseCut: false)
            let (status, errorClass) = Self.classify(error)
            context.logger.warning("upstream call failed", metadata: ["provider": "\(routed.provider.name)", "error": "\(Self.describe(error))"])
            return await reject(.upstreamUnavailable("The upstream provider \(routed.provider.name) could not be reached: \(Self.describe(error))", status: status),
                                meter: meter, errorClass: errorClass)
        case let .breakersOpen(seconds, attempts):
            admission.cancel()
            capture?.keep(requestID: meter.id, timestampMicros: meter.timestampMicros, request: inbound.body, response: nil, reassembled: nil,
                          responseCut: false)
            meter.attempts = attempts
            return await reject(GatewayError(status: .serviceUnavailable,
                                             message: "Every deployment of \(meter.requestedModel) is failing; its circuit breaker is open. Retry in \(seconds)s.",
                                             type: "api_error", code: "circuit_open", retryAfterSeconds: seconds),
                                meter: meter, errorClass: .upstreamUnreachable)
        }
    }

    /// Streams the provider's answer to the client, metering it on the way.
    private func respond(with upstream: UpstreamResponse, meter: CallMeter, requestBody: [UInt8], injectedUsage: Bool, admission: Admission,
                         cacheKey: (key: String, ttl: Int)?, connection: any Channel, logger: Logger, capture: BodyCapture?) -> Response {
        var headers = HTTPFields()
        for (name, value) in upstream.headers where HeaderPolicy.forwardsResponseHeader(name.lowercased()) {
            if let fieldName = HTTPField.Name(name) { headers.append(HTTPField(name: fieldName, value: value)) }
        }
        for (name, value) in admission.headers { headers[HTTPField.Name(name)!] = value }
        headers[.gatehouseRecordID] = meter.id
        if cacheKey != nil { headers[.gatehouseCache] = "MISS" }
        let isEventStream = upstream.header("content-type")?.lowercased().hasPrefix("text/event-stream") ?? false
        // Error bodies are rewritten (provider keys masked), so their length may change.
        let contentLength = isEventStream || !(200..<300).contains(upstream.status) ? nil : upstream.header("content-length").flatMap(Int.init)
        let status = upstream.status
        let gateway = self
        let unstarted = UnstartedBodyGuard(gateway: self, meter: meter, status: status, admission: admission, requestBody: requestBody)
        let contentType = upstream.header("content-type") ?? "application/json"
        let captureLimit = cacheKey != nil && status == 200 ? config.controls.cache.maxEntryBytes : 0
        let timeoutSeconds = config.gateway.upstreamTimeoutSeconds
        let clientGrace = Duration.seconds(config.gateway.clientDisconnectGraceSeconds)
        let writeDeadline = meter.startedAt + .seconds(timeoutSeconds) + Self.writeGrace
        let idleTimeout = Duration.seconds(config.gateway.streamIdleTimeoutSeconds)
        let body = ResponseBody(contentLength: contentLength) { writer in
            unstarted.markStarted()
            var relay = StreamRelay(route: meter.route, eventStream: isEventStream, dropInjectedUsage: injectedUsage, status: status,
                                    captureLimit: captureLimit, secrets: gateway.providerSecrets, clientGrace: clientGrace,
                                    reassembleLimit: capture?.limit)
            var meter = meter
            // Kept however the body ends: a cut stream's bodies are the ones worth reading.
            defer { relay.keepBodies(capture, meter: meter, requestBody: requestBody) }
            let promptTokens = { TokenEstimator.inputTokens(ofRequestBody: requestBody) }
            // A client that stops reading blocks the write in progress, which no clock below can
            // interrupt: past the deadline (and a moment to record), its connection is closed,
            // which fails that write and lets the call be recorded and its quotas settled.
            // A timer on the connection's event loop, not a sleeping task: cancelling it frees it at
            // once, where the runtime keeps a cancelled sleep's timer (~700 B) until its deadline,
            // which held memory for every call for the whole timeout.
            let writeGuard = connection.eventLoop.scheduleTask(in: .nanoseconds(TimeExpressions.nanos(max(.zero, writeDeadline - .now)))) {
                connection.close(promise: nil)
            }
            defer { writeGuard.cancel() }
            do {
                // The deadline and the idle timeout also hold after the first byte, and after the
                // client has gone (the rest is read so the provider's usage still lands).
                try await TimedUpstreamBody.read(upstream.body, started: meter.startedAt, totalSeconds: timeoutSeconds, idleTimeout: idleTimeout,
                                                 timerLoop: MultiThreadedEventLoopGroup.singleton.any()) {
                    try await relay.pump($0, into: &writer, meter: &meter, clocks: $1)
                }
                try await relay.flushRemainder(into: &writer)
                try await writer.finish(nil)
                let record = await gateway.finish(meter, relay: relay, failure: nil, admission: admission, promptTokens: promptTokens)
                if let cacheKey, record.complete, record.errorClass == nil, let captured = relay.capturedBody {
                    let now = TimeExpressions.nowMicros()
                    gateway.cache.insert(CachedResponse(
                        key: cacheKey.key, status: status, contentType: contentType, body: captured, model: record.model, provider: record.provider,
                        usage: record.usage, cost: record.cost, createdAtMicros: now, expiresAtMicros: now + Int64(cacheKey.ttl) * 1_000_000))
                }
            } catch let error as StreamRelay.ClientGone {
                await gateway.finish(meter, relay: relay, failure: (.clientDisconnected, "client disconnected: \(error.underlying)"), admission: admission,
                                     promptTokens: promptTokens)
                throw error
            } catch let timeout as TimedUpstreamBody.Timeout {
                logger.warning("upstream stream cut", metadata: ["reason": "\(timeout)"])
                // The caller leaving, or not reading, is not the provider's fault (health and error metrics).
                let errorClass: ErrorClass = timeout.kind == .afterClientLeft || relay.clientGone != nil ? .clientDisconnected : .upstreamTimeout
                await gateway.finish(meter, relay: relay, failure: (errorClass, "stream cut: \(timeout)"), admission: admission,
                                     promptTokens: promptTokens)
                // A cut response ends its connection now: flushing what is queued could wait
                // forever on a client that stopped reading.
                connection.close(promise: nil)
                throw timeout
            } catch {
                logger.warning("upstream stream ended early", metadata: ["error": "\(Redactor.scrubText(String(describing: error)))"])
                await gateway.finish(meter, relay: relay, failure: (.streamIncomplete, "upstream stream ended early: \(Self.describe(error))"), admission: admission,
                                     promptTokens: promptTokens)
                connection.close(promise: nil)
                throw error
            }
        }
        return Response(status: HTTPResponse.Status(code: status), headers: headers, body: body)
    }

    /// Answers from the cache: the stored body replayed through the same relay (so a stream is
    /// a stream and the usage chunk follows this caller's `stream_options`), metered as a hit.
    private func replay(_ hit: CachedResponse, meter: CallMeter, inbound: InboundRequest, extraHeaders: [(String, String)],
                        capture: BodyCapture?) -> Response {
        var headers: HTTPFields = [.contentType: hit.contentType]
        for (name, value) in extraHeaders { headers[HTTPField.Name(name)!] = value }
        headers[.gatehouseRecordID] = meter.id
        headers[.gatehouseCache] = "HIT"
        headers[.heliconeCache] = "HIT"
        let isEventStream = hit.contentType.lowercased().hasPrefix("text/event-stream")
        let dropUsage = inbound.streamNeedsUsageOption && !inbound.clientRequestedUsage
        var hitMeter = meter
        hitMeter.provider = hit.provider
        hitMeter.model = hit.model
        let gateway = self
        let started = hitMeter
        let requestBody = inbound.body
        let body = ResponseBody(contentLength: isEventStream ? nil : hit.body.count) { writer in
            var meter = started
            var relay = StreamRelay(route: meter.route, eventStream: isEventStream, dropInjectedUsage: dropUsage, status: hit.status,
                                    reassembleLimit: capture?.limit)
            defer { relay.keepBodies(capture, meter: meter, requestBody: requestBody) }
            let bytes = ByteBuffer(bytes: hit.body)
            let once = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
                continuation.yield(bytes)
                continuation.finish()
            }
            do {
                try await relay.pump(once, into: &writer, meter: &meter)
                try await relay.flushRemainder(into: &writer)
                try await writer.finish(nil)
            } catch {
                await gateway.submit(meter.record(status: hit.status, usage: hit.usage, reportedModel: hit.model, errorClass: .clientDisconnected,
                                                  errorMessage: "client disconnected", complete: false, prices: gateway.prices, cacheHit: true, costSaved: hit.cost),
                                     meter: meter)
                throw error
            }
            await gateway.submit(meter.record(status: hit.status, usage: hit.usage, reportedModel: hit.model, errorClass: nil, errorMessage: nil,
                                              complete: true, prices: gateway.prices, cacheHit: true, costSaved: hit.cost),
                                 meter: meter)
        }
        return Response(status: HTTPResponse.Status(code: hit.status), headers: headers, body: body)
    }

    /// W3C Trace Context's header (spelled out: another imported module names one too).
    static let traceparentHeader = HTTPField.Name("traceparent")!

    /// How long past the call's deadline a response may still be writing before its connection is closed.
    static let writeGrace = Duration.seconds(5)

    /// Records a call that reached upstream and settles its quotas with what it consumed.
    ///
    /// When the provider's usage never came (the stream was cut, by either side, before it), the
    /// call is charged an estimate: the prompt's tokens and the tokens of the text relayed. Quotas
    /// settle on that, never on zero.
    @discardableResult
    func finish(_ meter: CallMeter, relay: StreamRelay, failure: (ErrorClass, String)?, admission: Admission,
                promptTokens: () -> Int) async -> RequestRecord {
        let outcome = relay.outcome()
        var errorClass = failure?.0 ?? outcome.errorClass
        var message = failure?.1 ?? outcome.errorMessage
        var complete = failure == nil
        if failure == nil, relay.eventStream, relay.status == 200, !outcome.sawEnd {
            errorClass = .streamIncomplete
            message = "the stream ended without its end marker"
            complete = false
        }
        var usage = outcome.usage
        var estimated = false
        if (200..<300).contains(relay.status), usage == nil || !outcome.sawEnd {
            var filled = usage ?? .zero
            if filled.inputTokens == 0 {
                filled.inputTokens = promptTokens()
            }
            if meter.route != .embeddings, outcome.relayedOutputTokens > filled.outputTokens {
                filled.outputTokens = outcome.relayedOutputTokens
            }
            estimated = filled != (usage ?? .zero)
            usage = filled
        }
        var record = meter.record(status: relay.status, usage: usage, reportedModel: outcome.model, errorClass: errorClass,
                                  errorMessage: message, complete: complete, prices: prices)
        record.usageEstimated = estimated
        admission.settle(tokens: Int64(record.usage.inputTokens).addingSaturated(Int64(record.usage.outputTokens)), cost: record.cost)
        await submit(record, meter: meter)
        return record
    }

    /// Records a call whose response body was never written: the client went away between the
    /// response head and the body, so the upstream body was dropped unread.
    func finishUnstarted(_ meter: CallMeter, status: Int, admission: Admission, requestBody: [UInt8]) async {
        // The provider's answer is not read: charge at least the prompt, marked as an estimate.
        let prompt = (200..<300).contains(status) ? TokenEstimator.inputTokens(ofRequestBody: requestBody) : 0
        var record = meter.record(status: status, usage: prompt > 0 ? TokenUsage(inputTokens: prompt, outputTokens: 0) : nil,
                                  reportedModel: nil, errorClass: .clientDisconnected,
                                  errorMessage: "client disconnected before the response body started", complete: false, prices: prices)
        record.usageEstimated = prompt > 0
        // The provider may have charged for an answer nobody read: keep what was reserved.
        admission.settleAsReserved()
        await submit(record, meter: meter)
    }

    private func reject(_ rejection: ControlRejection, meter: CallMeter) async -> Response {
        var response = await reject(rejection.error, meter: meter, errorClass: rejection.errorClass)
        for (name, value) in rejection.headers { response.headers[HTTPField.Name(name)!] = value }
        return response
    }

    private func reject(_ error: GatewayError, meter: CallMeter, errorClass: ErrorClass) async -> Response {
        let record = meter.record(status: Int(error.status.code), usage: nil, reportedModel: nil, errorClass: errorClass,
                                  errorMessage: error.message, complete: true, prices: prices)
        await submit(record, meter: meter)
        var response = error.response(dialect: meter.route.dialect)
        response.headers[.gatehouseRecordID] = meter.id
        return response
    }

    func submit(_ record: RequestRecord, meter: CallMeter) async {
        GatewayMetrics.record(record)
        spans?(GatewaySpans.span(for: record, meter: meter, system: providerSystems[record.provider]))
        if !record.provider.isEmpty {
            let upstreamFault = [.upstreamServerError, .upstreamUnreachable, .upstreamTimeout, .upstreamRateLimited, .streamIncomplete]
                .contains(record.errorClass)
            health.record(provider: record.provider, success: !upstreamFault, latencyMicros: record.latencyMicros,
                          error: upstreamFault ? record.errorMessage : nil)
        }
        if Task.isCancelled {
            // A read cut by its clocks cancels the call's task; a record still waits for room
            // in the recorder's queue like any other, never dropped for that.
            _ = await Task { await sink.record(record) }.value
        } else {
            await sink.record(record)
        }
    }

    // MARK: - Helpers

    /// Provider keys, and the values of configured provider headers outside the harmless list
    /// (some providers authenticate by a header of their own name): masked wherever they echo.
    static func secrets(of config: GatehouseConfig) -> [String] {
        config.providers.flatMap { provider in
            [provider.apiKey].compactMap { $0 } + provider.headers.filter { !Redactor.isHarmlessHeader($0.key) }.map(\.value)
        }
    }

    /// The credential the client sent, for pass-through and for telling callers apart.
    static func clientCredential(_ headers: HTTPFields) -> String? {
        if let auth = headers[.authorization] {
            if let token = BearerToken.token(auth) { return token }
            let trimmed = auth.trimmingCharacters(in: .whitespaces)
            return trimmed.isEmpty ? nil : trimmed
        }
        if let key = headers[HTTPField.Name("x-api-key")!], !key.isEmpty { return key }
        if let key = headers[HTTPField.Name("api-key")!], !key.isEmpty { return key }
        return nil
    }

    static func dialectMismatch(route: GatewayRoute, provider: ProviderConfig) -> String? {
        switch (route.dialect, provider.kind) {
        case (.anthropic, .openAI), (.anthropic, .openAICompatible), (.anthropic, .azure):
            return "provider \(provider.name) speaks OpenAI's API; call /v1/chat/completions or /v1/responses for this model"
        case (.openAI, .anthropic):
            return "provider \(provider.name) speaks Anthropic's API; call /v1/messages for this model"
        default:
            return nil
        }
    }

    static func classify(_ error: any Error) -> (HTTPResponse.Status, ErrorClass) {
        if error is UpstreamTimedOut { return (.gatewayTimeout, .upstreamTimeout) }
        return (.badGateway, .upstreamUnreachable)
    }

    static func describe(_ error: any Error) -> String {
        Redactor.scrubText(String(describing: error)).prefix(300).description
    }
}

/// Held by a response body: if the body is discarded without ever running (the connection
/// closed first), the call is still recorded, so no call goes missing from the records.
final class UnstartedBodyGuard: Sendable {
    private let started = Atomic<Bool>(false)
    private let gateway: Gateway
    private let meter: CallMeter
    private let status: Int
    private let admission: Admission
    private let requestBody: [UInt8]

    init(gateway: Gateway, meter: CallMeter, status: Int, admission: Admission, requestBody: [UInt8]) {
        self.gateway = gateway
        self.meter = meter
        self.status = status
        self.admission = admission
        self.requestBody = requestBody
    }

    func markStarted() { started.store(true, ordering: .relaxed) }

    deinit {
        guard !started.load(ordering: .relaxed) else { return }
        let (gateway, meter, status, admission, requestBody) = (gateway, meter, status, admission, requestBody)
        Task { await gateway.finishUnstarted(meter, status: status, admission: admission, requestBody: requestBody) }
    }
}

extension HTTPField.Name {
    static let gatehouseRecordID = Self("Gatehouse-Record-Id")!
    static let gatehouseKey = Self("Gatehouse-Key")!
    static let gatehouseCache = Self("Gatehouse-Cache")!
    static let gatehouseCacheSeed = Self("Gatehouse-Cache-Seed")!
    static let gatehouseCapture = Self("Gatehouse-Capture")!
    static let heliconeCache = Self("Helicone-Cache")!
    static let heliconeRateLimitPolicy = Self("Helicone-RateLimit-Policy")!
}
