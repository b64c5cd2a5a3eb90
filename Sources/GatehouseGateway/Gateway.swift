import AsyncHTTPClient
import Foundation
import GatehouseCore
import GatehouseHTTP
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// The AI gateway: OpenAI- and Anthropic-compatible routes that forward each call to its
/// provider, stream the answer back as it arrives, and meter it into a `RequestRecord`.
public struct Gateway: Sendable {
    let config: GatehouseConfig
    let router: ModelRouter
    let prices: PriceTable
    let http: HTTPUpstream
    let mock = MockProvider()
    let sink: any RequestRecordSink
    public let health: ProviderHealth

    public init(config: GatehouseConfig, prices: PriceTable, httpClient: HTTPClient, sink: any RequestRecordSink,
                health: ProviderHealth = ProviderHealth()) {
        self.config = config
        self.router = ModelRouter(config: config)
        self.prices = prices
        self.http = HTTPUpstream(client: httpClient, timeout: .seconds(Int64(config.gateway.upstreamTimeoutSeconds)))
        self.sink = sink
        self.health = health
    }

    public func addRoutes(to router: Router<GatehouseRequestContext>) {
        for route in GatewayRoute.allCases where route != .models {
            router.post(RouterPath(route.rawValue)) { request, context in
                await self.handle(route, request: request, context: context)
            }
        }
        router.get("/v1/models") { _, _ in self.modelList() }
    }

    func modelList() -> Response {
        let created = Int(Date().timeIntervalSince1970)
        let data = router.listedModels(prices: prices).map { ["id": $0.id, "object": "model", "created": created, "owned_by": $0.ownedBy] as [String: Any] }
        return JSONResponse.make(["object": "list", "data": data])
    }

    // MARK: - One call

    func handle(_ route: GatewayRoute, request: Request, context: GatehouseRequestContext) async -> Response {
        var meter = CallMeter(route: route, correlationID: context.correlationID)
        let headers = request.headers.map { (name: $0.name.rawName, value: $0.value) }
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
        meter.keyID = credential.map { Redactor.fingerprint(ofSecret: $0) }

        let bodyBuffer: ByteBuffer
        do {
            bodyBuffer = try await request.body.collect(upTo: config.gateway.maxRequestBodyBytes)
        } catch {
            return await reject(.tooLarge(limit: config.gateway.maxRequestBodyBytes), meter: meter, errorClass: .invalidRequest)
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
        let routed: RoutedModel
        do {
            routed = try router.route(model)
        } catch {
            return await reject(GatewayError(status: .notFound, message: "\(error)", type: "invalid_request_error", code: "model_not_found", param: "model"),
                                meter: meter, errorClass: .invalidRequest)
        }
        meter.provider = routed.provider.name
        meter.priceProvider = routed.provider.effectivePriceProvider
        meter.model = routed.upstreamModel
        if let problem = Self.dialectMismatch(route: route, provider: routed.provider) {
            return await reject(.invalidRequest(problem, param: "model"), meter: meter, errorClass: .invalidRequest)
        }

        let injectUsage = inbound.streamNeedsUsageOption && !inbound.clientRequestedUsage
        let upstreamRequest = UpstreamRequest(
            route: route, provider: routed.provider, upstreamModel: routed.upstreamModel,
            body: inbound.rewritten(upstreamModel: routed.upstreamModel, injectUsageOption: injectUsage), stream: inbound.stream,
            forwardedHeaders: headers.filter { HeaderPolicy.forwardsRequestHeader($0.name.lowercased()) }, clientCredential: credential)
        let upstream: UpstreamResponse
        do {
            upstream = routed.provider.kind == .mock
                ? try await mock.send(upstreamRequest, inbound: inbound)
                : try await http.send(upstreamRequest)
        } catch {
            let (status, errorClass) = Self.classify(error)
            context.logger.warning("upstream call failed", metadata: ["provider": "\(routed.provider.name)", "error": "\(Redactor.scrubText(String(describing: error)))"])
            return await reject(.upstreamUnavailable("The upstream provider \(routed.provider.name) could not be reached: \(Self.describe(error))", status: status),
                                meter: meter, errorClass: errorClass)
        }
        return respond(with: upstream, meter: meter, injectedUsage: injectUsage, logger: context.logger)
    }

    /// Streams the provider's answer to the client, metering it on the way.
    private func respond(with upstream: UpstreamResponse, meter: CallMeter, injectedUsage: Bool, logger: Logger) -> Response {
        var headers = HTTPFields()
        for (name, value) in upstream.headers where HeaderPolicy.forwardsResponseHeader(name.lowercased()) {
            if let fieldName = HTTPField.Name(name) { headers.append(HTTPField(name: fieldName, value: value)) }
        }
        headers[HTTPField.Name("Gatehouse-Record-Id")!] = meter.id
        let isEventStream = upstream.header("content-type")?.lowercased().hasPrefix("text/event-stream") ?? false
        let contentLength = isEventStream ? nil : upstream.header("content-length").flatMap(Int.init)
        let status = upstream.status
        let gateway = self
        let unstarted = UnstartedBodyGuard(gateway: self, meter: meter, status: status)
        let body = ResponseBody(contentLength: contentLength) { writer in
            unstarted.markStarted()
            var relay = StreamRelay(route: meter.route, eventStream: isEventStream, dropInjectedUsage: injectedUsage, status: status)
            var meter = meter
            do {
                switch upstream.body {
                case .http(let sequence): try await relay.pump(sequence, into: &writer, meter: &meter)
                case .generated(let sequence): try await relay.pump(sequence, into: &writer, meter: &meter)
                }
                try await relay.flushRemainder(into: &writer)
                try await writer.finish(nil)
                await gateway.finish(meter, relay: relay, failure: nil)
            } catch let error as StreamRelay.ClientGone {
                await gateway.finish(meter, relay: relay, failure: (.clientDisconnected, "client disconnected: \(error.underlying)"))
                throw error
            } catch {
                logger.warning("upstream stream ended early", metadata: ["error": "\(Redactor.scrubText(String(describing: error)))"])
                await gateway.finish(meter, relay: relay, failure: (.streamIncomplete, "upstream stream ended early: \(Self.describe(error))"))
                throw error
            }
        }
        return Response(status: HTTPResponse.Status(code: status), headers: headers, body: body)
    }

    /// Records a call that reached upstream.
    func finish(_ meter: CallMeter, relay: StreamRelay, failure: (ErrorClass, String)?) async {
        let outcome = relay.outcome()
        var errorClass = failure?.0 ?? outcome.errorClass
        var message = failure?.1 ?? outcome.errorMessage
        var complete = failure == nil
        if failure == nil, relay.eventStream, relay.status == 200, !outcome.sawEnd {
            errorClass = .streamIncomplete
            message = "the stream ended without its end marker"
            complete = false
        }
        let record = meter.record(status: relay.status, usage: outcome.usage, reportedModel: outcome.model, errorClass: errorClass,
                                  errorMessage: message, complete: complete, prices: prices)
        await submit(record)
    }

    /// Records a call whose response body was never written: the client went away between the
    /// response head and the body, so the upstream body was dropped unread.
    func finishUnstarted(_ meter: CallMeter, status: Int) async {
        let record = meter.record(status: status, usage: nil, reportedModel: nil, errorClass: .clientDisconnected,
                                  errorMessage: "client disconnected before the response body started", complete: false, prices: prices)
        await submit(record)
    }

    private func reject(_ error: GatewayError, meter: CallMeter, errorClass: ErrorClass) async -> Response {
        let record = meter.record(status: Int(error.status.code), usage: nil, reportedModel: nil, errorClass: errorClass,
                                  errorMessage: error.message, complete: true, prices: prices)
        await submit(record)
        var response = error.response(dialect: meter.route.dialect)
        response.headers[HTTPField.Name("Gatehouse-Record-Id")!] = meter.id
        return response
    }

    private func submit(_ record: RequestRecord) async {
        GatewayMetrics.record(record)
        if !record.provider.isEmpty {
            let upstreamFault = [.upstreamServerError, .upstreamUnreachable, .upstreamTimeout, .upstreamRateLimited, .streamIncomplete]
                .contains(record.errorClass)
            health.record(provider: record.provider, success: !upstreamFault, latencyMicros: record.latencyMicros,
                          error: upstreamFault ? record.errorMessage : nil)
        }
        await sink.record(record)
    }

    // MARK: - Helpers

    /// The credential the client sent, for pass-through and for telling callers apart.
    static func clientCredential(_ headers: HTTPFields) -> String? {
        if let auth = headers[.authorization] {
            let trimmed = auth.trimmingCharacters(in: .whitespaces)
            if trimmed.lowercased().hasPrefix("bearer ") { return String(trimmed.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
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
        if let e = error as? HTTPClientError, [.deadlineExceeded, .connectTimeout, .readTimeout].contains(e) {
            return (.gatewayTimeout, .upstreamTimeout)
        }
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

    init(gateway: Gateway, meter: CallMeter, status: Int) {
        self.gateway = gateway
        self.meter = meter
        self.status = status
    }

    func markStarted() { started.store(true, ordering: .relaxed) }

    deinit {
        guard !started.load(ordering: .relaxed) else { return }
        let (gateway, meter, status) = (gateway, meter, status)
        Task { await gateway.finishUnstarted(meter, status: status) }
    }
}
