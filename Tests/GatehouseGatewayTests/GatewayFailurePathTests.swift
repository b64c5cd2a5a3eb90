import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseHTTP
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
@testable import GatehouseGateway

/// The real gateway routes, in process, in front of a `FakeUpstream`; each call's record is kept.
struct GatewayUnderTest {
    let fake: FakeUpstream
    let sink = RecordingSink()
    let gateway: Gateway
    private let router: Router<GatehouseRequestContext>

    static let openAIKey = "sk-provider-fake-0001"
    static let compatibleKey = "vllm-SECRET-token-4242"
    /// Spelled out: more than one imported module names it.
    static let retryAfter = HTTPField.Name("Retry-After")!

    /// Providers `up` (OpenAI), `upa` (Anthropic) and `local` (OpenAI-compatible, a key that does
    /// not look like one), and the alias `smart`: `bad/gpt-4o-mini` first, `good/gpt-4o-mini` as
    /// fallback. None has a reachable address: every call goes to the fake.
    init(maxAttempts: Int = 3, initialBackoffMilliseconds: Int = 40, gatewaySettings: String = "", breaker: String = "",
         fake: FakeUpstream) throws {
        let yaml = """
            providers:
              - {name: up, kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: \(Self.openAIKey)}
              - {name: upa, kind: anthropic, base_url: "http://127.0.0.1:9/v1", api_key: sk-ant-provider-fake-0002}
              - {name: local, kind: openai-compatible, base_url: "http://127.0.0.1:9/v1", api_key: \(Self.compatibleKey)}
              - {name: bad, kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: sk-provider-bad-0003}
              - {name: good, kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: sk-provider-good-0004}
            aliases:
              - alias: smart
                targets:
                  - {model: bad/gpt-4o-mini, priority: 0}
                  - {model: good/gpt-4o-mini, priority: 1}
            retries: {max_attempts: \(maxAttempts), initial_backoff_ms: \(initialBackoffMilliseconds)}
            \(breaker.isEmpty ? "" : "circuit_breaker: {\(breaker)}")
            \(gatewaySettings.isEmpty ? "" : "gateway: {\(gatewaySettings)}")
            """
        let config = try ConfigurationLoader.load(yaml: yaml, environment: [:], overrides: ConfigOverrides())
        let prices = try PriceTable.shipped()
        let logger = Logger(label: "gateway-failure-path-tests")
        let controls = Controls(settings: config.controls, state: ControlState(store: NoKeysOrSwitches(), logger: logger),
                                ledger: QuotaLedger(store: MemoryQuotaStore(), leaseFraction: config.controls.leaseFraction, logger: logger),
                                prices: prices)
        self.fake = fake
        gateway = Gateway(config: config, prices: prices, upstream: fake, sink: sink, controls: controls,
                          cache: ResponseCache(settings: config.controls.cache, store: NoCachedAnswers()))
        router = Router(context: GatehouseRequestContext.self)
        router.add(middleware: CorrelationMiddleware())
        gateway.addRoutes(to: APIRouter(router: router, adminToken: nil))
    }

    /// Sends one call through the gateway's routes; throws when the response body breaks off.
    func post(_ json: String, to path: String = "/v1/chat/completions", id: String = "call") async throws -> TestResponse {
        let headers: HTTPFields = [.contentType: "application/json", .xRequestID: id]
        return try await Application(router: router).test(.router) { client in
            try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: json))
        }
    }

    func record(_ id: String = "call") throws -> RequestRecord {
        try #require(sink.records.first { $0.correlationID == id }, "no record for \(id): \(sink.records.map(\.correlationID))")
    }

    static func chat(_ model: String, stream: Bool = false) -> String {
        #"{"model":"\#(model)","stream":\#(stream),"messages":[{"role":"user","content":"Tell me a long story about gateways and tokens."}]}"#
    }

    static func message(_ model: String) -> String {
        #"{"model":"\#(model)","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"Tell me a long story about gateways and tokens."}]}"#
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }

    func errorBody() throws -> APIErrorBody { try APIJSON.decode(APIErrorBody.self, from: Data(body.readableBytesView)) }
}

extension Duration {
    var milliseconds: Int { Int(TimeExpressions.micros(self) / 1000) }
}

/// The gateway's failure paths against an upstream that fails in every way a provider can,
/// fast and without sockets (`FailureEndToEndTests` and friends prove the same over HTTP).
@Suite struct GatewayFailurePathTests {
    @Test func aHealthyAnswerIsRelayedAsSentAndBilledAsReported() async throws {
        let harness = try GatewayUnderTest(fake: FakeUpstream { _, _ in .chat() })
        let response = try await harness.post(GatewayUnderTest.chat("up/gpt-4o-mini"))
        #expect(response.status == .ok)
        #expect(response.text.contains("hello from the fake"))
        let record = try harness.record()
        #expect(record.provider == "up" && record.model == "gpt-4o-mini" && record.requestedModel == "up/gpt-4o-mini")
        #expect(record.status == 200 && record.errorClass == nil && record.complete && record.attempts.isEmpty)
        #expect(record.usage.inputTokens == FakeUpstream.Reply.promptTokens && record.usage.outputTokens == FakeUpstream.Reply.completionTokens)
        #expect(!record.usageEstimated && record.cost > .zero)
        let sent = try #require(harness.fake.calls.first)
        #expect(sent.request.upstreamModel == "gpt-4o-mini" && sent.body.contains(#""model":"gpt-4o-mini""#), "the routed name goes upstream")
    }

    @Test func serverErrorsAreRetriedWithBackoffAndTheCallBilledOnce() async throws {
        let harness = try GatewayUnderTest(maxAttempts: 3, initialBackoffMilliseconds: 40, fake: FakeUpstream { _, index in
            switch index {
            case 0: .failure(500)
            case 1: .failure(502, contentType: "text/plain", body: "Bad Gateway")
            default: .chat()
            }
        })
        let response = try await harness.post(GatewayUnderTest.chat("up/gpt-4o-mini"))
        #expect(response.status == .ok)
        let calls = harness.fake.calls
        #expect(calls.count == 3)
        let record = try harness.record()
        #expect(record.status == 200 && record.errorClass == nil && record.complete)
        #expect(record.attempts.map(\.status) == [500, 502, 200])
        #expect(record.attempts.map(\.errorClass) == [.upstreamServerError, .upstreamServerError, nil])
        #expect(record.attempts.map(\.errorMessage) == ["the fake upstream answered 500", "Bad Gateway", nil], "failed answers are read for their message")
        // Full jitter: each wait is at most initial × 2^(retry − 1), and is actually waited.
        let delays = record.attempts.map(\.delayMilliseconds)
        #expect(delays[0] == 0 && (0...40).contains(delays[1]) && (0...80).contains(delays[2]), "\(delays)")
        for i in 1..<calls.count {
            #expect((calls[i].at - calls[i - 1].at).milliseconds >= delays[i])
        }
        // Only the answer that reached the client is billed.
        #expect(record.usage == TokenUsage(inputTokens: FakeUpstream.Reply.promptTokens, outputTokens: FakeUpstream.Reply.completionTokens))
        #expect(!record.usageEstimated)
    }

    @Test func aClientErrorIsNotRetriedAndReachesTheClientAsSent() async throws {
        let harness = try GatewayUnderTest(fake: FakeUpstream { _, _ in .failure(400) })
        let response = try await harness.post(GatewayUnderTest.chat("up/gpt-4o-mini"))
        #expect(response.status == .badRequest)
        #expect(response.text == #"{"error":{"message":"the fake upstream answered 400","type":"server_error","code":null}}"#)
        #expect(harness.fake.calls.count == 1)
        let record = try harness.record()
        #expect(record.status == 400 && record.errorClass == .upstreamClientError && record.errorMessage == "the fake upstream answered 400")
        #expect(record.attempts.isEmpty && record.cost == .zero)
    }

    @Test func whenAttemptsRunOutTheLastAnswerReachesTheClient() async throws {
        let harness = try GatewayUnderTest(maxAttempts: 2, initialBackoffMilliseconds: 1, fake: FakeUpstream { _, _ in .failure(503) })
        let response = try await harness.post(GatewayUnderTest.chat("up/gpt-4o-mini"))
        #expect(response.status == .serviceUnavailable)
        #expect(try response.errorBody().error.message == "the fake upstream answered 503")
        #expect(harness.fake.calls.count == 2)
        let record = try harness.record()
        #expect(record.status == 503 && record.errorClass == .upstreamServerError && !record.usageEstimated && record.cost == .zero)
        #expect(record.attempts.map(\.status) == [503, 503])
    }

    @Test func anUnreachableDeploymentFallsBackToTheNextWithoutWaiting() async throws {
        let harness = try GatewayUnderTest(initialBackoffMilliseconds: 5_000, fake: FakeUpstream { request, _ in
            request.provider.name == "bad" ? .refuse : .chat()
        })
        let response = try await harness.post(GatewayUnderTest.chat("smart"))
        #expect(response.status == .ok)
        #expect(harness.fake.calls.map(\.request.provider.name) == ["bad", "good"])
        let record = try harness.record()
        #expect(record.provider == "good" && record.requestedModel == "smart" && record.status == 200 && record.errorClass == nil)
        #expect(record.attempts.map(\.provider) == ["bad", "good"])
        #expect(record.attempts.map(\.status) == [nil, 200])
        #expect(record.attempts.first?.errorClass == .upstreamUnreachable)
        #expect(record.attempts.first?.errorMessage?.contains("connection refused") == true)
        #expect(record.attempts.map(\.delayMilliseconds) == [0, 0], "a fallback is not a retry: no backoff")
        #expect(record.cost > .zero)
    }

    @Test func anUpstreamNobodyCanReachIsA502() async throws {
        let harness = try GatewayUnderTest(maxAttempts: 2, initialBackoffMilliseconds: 1, fake: FakeUpstream { _, _ in .refuse })
        let response = try await harness.post(GatewayUnderTest.chat("up/gpt-4o-mini"))
        #expect(response.status == .badGateway)
        let error = try response.errorBody().error
        #expect(error.code == "upstream_unavailable" && error.type == "api_error")
        #expect(error.message == "The upstream provider up could not be reached: connection refused (fake upstream)")
        #expect(harness.fake.calls.count == 2)
        let record = try harness.record()
        #expect(record.status == 502 && record.errorClass == .upstreamUnreachable && record.provider == "up" && record.complete)
        #expect(record.attempts.map(\.status) == [nil, nil] && record.attempts.allSatisfy { $0.errorClass == .upstreamUnreachable })
        #expect(record.usage == .zero && record.cost == .zero)
    }

    @Test func anUpstreamThatNeverAnswersTimesOutAsA504() async throws {
        let harness = try GatewayUnderTest(maxAttempts: 2, initialBackoffMilliseconds: 1, gatewaySettings: "upstream_timeout_seconds: 1",
                                           fake: FakeUpstream { _, _ in .hang })
        let started = ContinuousClock.now
        let response = try await harness.post(GatewayUnderTest.chat("up/gpt-4o-mini"))
        let elapsed = ContinuousClock.now - started
        #expect(response.status == .gatewayTimeout)
        #expect(try response.errorBody().error.code == "upstream_unavailable")
        // Each attempt gets its own deadline of upstream_timeout_seconds.
        let calls = harness.fake.calls
        #expect(calls.count == 2)
        for call in calls {
            #expect((500...1_000).contains((call.request.deadline - call.at).milliseconds), "\(call.request.deadline - call.at)")
        }
        // Generous: the machine may be busy; a call held past its deadlines would take an hour.
        #expect(elapsed >= .seconds(2) && elapsed < .seconds(30), "\(elapsed)")
        let record = try harness.record()
        #expect(record.status == 504 && record.errorClass == .upstreamTimeout)
        #expect(record.attempts.count == 2 && record.attempts.allSatisfy { $0.status == nil && $0.errorClass == .upstreamTimeout })
    }

    @Test func theBreakerOpensAfterConsecutiveFailuresAndCallsGoAroundIt() async throws {
        let harness = try GatewayUnderTest(initialBackoffMilliseconds: 1, breaker: "failure_threshold: 2, open_seconds: 30", fake: FakeUpstream { request, _ in
            request.provider.name == "bad" ? .failure(503) : .chat()
        })
        for i in 0..<3 {
            #expect(try await harness.post(GatewayUnderTest.chat("smart"), id: "fb-\(i)").status == .ok)
        }
        // Two failures open bad's breaker: the third call goes straight to good.
        #expect(harness.fake.calls(to: "bad").count == 2 && harness.fake.calls(to: "good").count == 3)
        #expect(try harness.record("fb-0").attempts.map(\.provider) == ["bad", "good"])
        #expect(try harness.record("fb-0").attempts.map(\.status) == [503, 200])
        #expect(try harness.record("fb-2").attempts.isEmpty)
        #expect(try harness.record("fb-2").provider == "good")
        #expect(harness.gateway.breakers.snapshot()["bad/gpt-4o-mini"]?.state == .open)

        // With only the open deployment to try, the call is refused without reaching upstream.
        let refused = try await harness.post(GatewayUnderTest.chat("bad/gpt-4o-mini"), id: "open")
        #expect(refused.status == .serviceUnavailable)
        #expect(try refused.errorBody().error.code == "circuit_open")
        #expect(refused.headers[GatewayUnderTest.retryAfter].flatMap(Int.init).map { (1...31).contains($0) } == true, "\(refused.headers)")
        #expect(harness.fake.calls(to: "bad").count == 2)
        let open = try harness.record("open")
        #expect(open.status == 503 && open.errorClass == .upstreamUnreachable && open.provider == "bad")
    }

    /// One try per call, so nothing here depends on how fast the machine is, only on waiting
    /// at least open_seconds.
    @Test func anOpenBreakerLetsAProbeThroughAfterOpenSecondsAndReopensWhenItFails() async throws {
        let harness = try GatewayUnderTest(maxAttempts: 1, breaker: "failure_threshold: 2, open_seconds: 1",
                                           fake: FakeUpstream { _, _ in .failure(503) })
        for id in ["first", "second"] {
            #expect(try await harness.post(GatewayUnderTest.chat("bad/gpt-4o-mini"), id: id).status == .serviceUnavailable)
        }
        #expect(harness.fake.calls.count == 2)
        #expect(harness.gateway.breakers.snapshot()["bad/gpt-4o-mini"]?.state == .open)

        try await Task.sleep(for: .milliseconds(1_100))
        let probe = try await harness.post(GatewayUnderTest.chat("bad/gpt-4o-mini"), id: "probe")
        #expect(harness.fake.calls.count == 3, "the probe reached upstream")
        #expect(probe.status == .serviceUnavailable)
        #expect(try probe.errorBody().error.message == "the fake upstream answered 503", "the provider's own answer, not circuit_open")
        #expect(harness.gateway.breakers.snapshot()["bad/gpt-4o-mini"]?.state == .open, "the failed probe reopens it")
        #expect(try harness.record("probe").errorClass == .upstreamServerError)
    }

    @Test func retryAfterIsWaitedForBeforeTheNextTry() async throws {
        let harness = try GatewayUnderTest(maxAttempts: 3, initialBackoffMilliseconds: 1, fake: FakeUpstream { _, index in
            switch index {
            case 0: .failure(429, headers: [("Retry-After", "1")])
            case 1: .failure(429, headers: [("retry-after-ms", "300")])
            default: .chat()
            }
        })
        let response = try await harness.post(GatewayUnderTest.chat("up/gpt-4o-mini"))
        #expect(response.status == .ok)
        let calls = harness.fake.calls
        #expect(calls.count == 3)
        let record = try harness.record()
        #expect(record.attempts.map(\.status) == [429, 429, 200])
        #expect(record.attempts.map(\.errorClass) == [.upstreamRateLimited, .upstreamRateLimited, nil])
        let delays = record.attempts.map(\.delayMilliseconds)
        #expect(delays[1] >= 1_000 && delays[2] >= 300, "\(delays)")
        #expect((calls[1].at - calls[0].at).milliseconds >= 1_000 && (calls[2].at - calls[1].at).milliseconds >= 300)
        #expect(record.usage.outputTokens == FakeUpstream.Reply.completionTokens && record.cost > .zero)
    }

    /// A wait past the call's deadline (or no number at all) is not waited: the client gets the
    /// 429 at once, with the provider's `Retry-After`.
    @Test(arguments: ["120", "1e300", "inf"])
    func aRetryAfterPastTheDeadlineIsPassedOnInsteadOfWaited(_ retryAfter: String) async throws {
        let harness = try GatewayUnderTest(maxAttempts: 3, fake: FakeUpstream { _, _ in .failure(429, headers: [("Retry-After", retryAfter)]) })
        let started = ContinuousClock.now
        let response = try await harness.post(GatewayUnderTest.chat("up/gpt-4o-mini"))
        #expect(ContinuousClock.now - started < .seconds(10), "the call waited for the Retry-After")
        #expect(response.status == .tooManyRequests)
        #expect(response.headers[GatewayUnderTest.retryAfter] == retryAfter)
        #expect(harness.fake.calls.count == 1)
        let record = try harness.record()
        #expect(record.status == 429 && record.errorClass == .upstreamRateLimited && record.cost == .zero && record.attempts.isEmpty)
    }

    @Test func aStreamCutMidWayIsRecordedIncompleteAndChargedAnEstimate() async throws {
        let harness = try GatewayUnderTest(fake: FakeUpstream { _, _ in .chatStream(words: 10, ending: .cut) })
        await #expect(throws: (any Error).self, "the client must see its stream break") {
            try await harness.post(GatewayUnderTest.chat("up/gpt-4o-mini", stream: true))
        }
        // The gateway asked for the usage chunk on the client's behalf; it never came.
        #expect(harness.fake.calls.first?.body.contains(#""stream_options":{"include_usage":true}"#) == true)
        #expect(harness.fake.calls.count == 1, "nothing is retried once the answer has started")
        let record = try harness.record()
        #expect(record.status == 200 && !record.complete && record.stream)
        #expect(record.errorClass == .streamIncomplete)
        #expect(record.errorMessage?.hasPrefix("upstream stream ended early: connection reset by peer") == true, "\(record.errorMessage ?? "nil")")
        #expect(record.usageEstimated)
        #expect(record.usage.inputTokens > 0, "the prompt is counted")
        #expect(record.usage.outputTokens >= 10, "the relayed text is counted: \(record.usage)")
        #expect(record.cost > .zero, "a cut stream is never free")
        #expect(record.timeToFirstTokenMicros != nil)
    }

    @Test func aCutAnthropicStreamKeepsTheInputTokensItReported() async throws {
        let harness = try GatewayUnderTest(fake: FakeUpstream { _, _ in .messageStream(inputTokens: 25, words: 8, ending: .cut) })
        await #expect(throws: (any Error).self) {
            try await harness.post(GatewayUnderTest.message("upa/claude-sonnet-4-5"), to: "/v1/messages")
        }
        let record = try harness.record()
        #expect(record.route == .messages && record.provider == "upa" && !record.complete && record.errorClass == .streamIncomplete)
        #expect(record.usage.inputTokens == 25, "message_start's count is the provider's own")
        #expect(record.usage.outputTokens >= 8 && record.usageEstimated, "\(record.usage)")
        #expect(record.cost > .zero)
    }

    /// A stream that stops sending is cut by the call's deadline, or sooner by the idle timeout.
    @Test(arguments: [("upstream_timeout_seconds: 1", "upstream_timeout_seconds"),
                      ("upstream_timeout_seconds: 60, stream_idle_timeout_seconds: 1", "stream_idle_timeout_seconds")])
    func aStreamThatStallsIsCut(settings: String, reason: String) async throws {
        let harness = try GatewayUnderTest(gatewaySettings: settings, fake: FakeUpstream { _, _ in .chatStream(words: 3, ending: .stall) })
        let started = ContinuousClock.now
        await #expect(throws: (any Error).self) {
            try await harness.post(GatewayUnderTest.chat("up/gpt-4o-mini", stream: true))
        }
        // Generous: the machine may be busy; which clock cut the stream is in the message below.
        #expect(ContinuousClock.now - started < .seconds(30), "the stalled stream was held")
        let record = try harness.record()
        #expect(record.status == 200 && !record.complete && record.errorClass == .upstreamTimeout)
        #expect(record.errorMessage?.contains(reason) == true, "\(record.errorMessage ?? "nil")")
        #expect(record.usageEstimated && record.usage.outputTokens >= 3, "\(record.usage)")
    }

    @Test func anAnswerWithoutUsageIsChargedAnEstimateOfThePrompt() async throws {
        let harness = try GatewayUnderTest(fake: FakeUpstream { _, _ in .chat(usage: false) })
        let response = try await harness.post(GatewayUnderTest.chat("up/gpt-4o-mini"))
        #expect(response.status == .ok)
        #expect(!response.text.contains("usage") && response.text.contains("hello from the fake"))
        let record = try harness.record()
        #expect(record.complete && record.errorClass == nil)
        #expect(record.usageEstimated && record.usage.inputTokens > 0 && record.usage.outputTokens == 0, "\(record.usage)")
        #expect(record.cost > .zero)
    }

    @Test func aCompleteStreamWithoutItsUsageChunkIsChargedTheTextRelayed() async throws {
        let harness = try GatewayUnderTest(fake: FakeUpstream { _, _ in .chatStream(words: 6, usage: false) })
        let response = try await harness.post(GatewayUnderTest.chat("up/gpt-4o-mini", stream: true))
        #expect(response.status == .ok)
        #expect(response.text.contains(" word5") && response.text.hasSuffix("data: [DONE]\n\n"))
        let record = try harness.record()
        #expect(record.complete && record.errorClass == nil, "the stream reached [DONE]")
        #expect(record.usageEstimated && record.usage.inputTokens > 0 && record.usage.outputTokens >= 6, "\(record.usage)")
    }

    @Test func aNonJSONErrorBodyIsPassedOnWithTheProviderKeyMasked() async throws {
        let page = "<html><body>key \(GatewayUnderTest.compatibleKey) is not valid</body></html>"
        let harness = try GatewayUnderTest(maxAttempts: 1, fake: FakeUpstream { _, index in
            index == 0 ? .failure(401, contentType: "text/html", body: page) : .failure(502, contentType: "text/plain", body: "upstream connect error")
        })
        let rejected = try await harness.post(GatewayUnderTest.chat("local/llama-3.1-8b"), id: "401")
        #expect(rejected.status == .unauthorized)
        #expect(rejected.headers[.contentType] == "text/html")
        #expect(rejected.text == "<html><body>key [REDACTED] is not valid</body></html>")
        let record = try harness.record("401")
        #expect(record.status == 401 && record.errorClass == .upstreamClientError && record.provider == "local")
        #expect(record.errorMessage == "<html><body>key [REDACTED] is not valid</body></html>")

        let failed = try await harness.post(GatewayUnderTest.chat("local/llama-3.1-8b"), id: "502")
        #expect(failed.status == .badGateway && failed.text == "upstream connect error")
        #expect(try harness.record("502").errorClass == .upstreamServerError)
        #expect(try harness.record("502").errorMessage == "upstream connect error")
        #expect(harness.fake.calls.count == 2)
        #expect(!harness.sink.records.contains { $0.errorMessage?.contains(GatewayUnderTest.compatibleKey) == true })
    }
}
