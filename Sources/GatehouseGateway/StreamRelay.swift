import GatehouseCore
import Hummingbird
import NIOCore

/// Moves one upstream body to the client chunk by chunk, reading usage as it passes.
///
/// Event streams are cut into events so the usage chunk Gatehouse asked for on the client's
/// behalf can be held back; every other byte is forwarded as it came. Other bodies are forwarded
/// untouched, with a bounded copy kept to read usage (or the error message) at the end.
struct StreamRelay {
    /// A write to the client failed: it went away. Distinct from upstream failing.
    struct ClientGone: Error { var underlying: any Error }

    /// The most of a non-stream body kept to read usage from; larger answers are still forwarded.
    static let maxCopiedBytes = 32 * 1024 * 1024
    /// The most of an upstream error body relayed (it is held back whole to mask secrets in it).
    static let maxErrorBodyBytes = 1024 * 1024

    let route: GatewayRoute
    let eventStream: Bool
    let dropInjectedUsage: Bool
    let status: Int
    /// Provider keys to mask in error bodies before they reach the client (providers echo keys).
    let secrets: [String]
    /// How long the upstream is read after the client has gone, for its usage.
    let clientGrace: Duration
    private var parser = SSEParser()
    private var accumulator: StreamUsageAccumulator
    private var copy: [UInt8] = []
    private var copyOverflowed = false
    /// The raw event stream as upstream sent it, for the response cache (nil: not kept).
    private var capture: [UInt8]?
    private let captureLimit: Int
    /// The client went away; the rest of the upstream body is read (not written) so the
    /// provider's own usage still arrives.
    private(set) var clientGone: (any Error)?
    /// Tokens of the text relayed so far, for a stream that ends before its usage.
    private(set) var relayedOutputTokens = 0
    /// Builds the answer an event stream adds up to, when the call's bodies are captured.
    private var reassembler: StreamReassembler?

    init(route: GatewayRoute, eventStream: Bool, dropInjectedUsage: Bool, status: Int, captureLimit: Int = 0, secrets: [String] = [],
         clientGrace: Duration = .seconds(10), reassembleLimit: Int? = nil) {
        self.route = route
        self.clientGrace = clientGrace
        self.secrets = secrets
        self.eventStream = eventStream
        self.dropInjectedUsage = dropInjectedUsage
        self.status = status
        self.captureLimit = captureLimit
        capture = captureLimit > 0 && eventStream ? [] : nil
        accumulator = StreamUsageAccumulator(route: route)
        reassembler = reassembleLimit.flatMap { eventStream && status == 200 ? StreamReassembler(route: route, limit: $0) : nil }
    }

    /// The whole body as upstream sent it, when it was kept and fit the limit.
    var capturedBody: [UInt8]? {
        if eventStream { return capture }
        return copyOverflowed || copy.count > max(captureLimit, 0) ? nil : copy
    }

    /// Forwards every chunk of `body`. When the client goes away, keeps reading upstream without
    /// writing, for up to `clientGrace` (the reader is then cancelled), then throws `ClientGone`.
    mutating func pump<S: AsyncSequence>(_ body: S, into writer: inout any ResponseBodyWriter, meter: inout CallMeter,
                                         clocks: TimedUpstreamBody.Clocks? = nil) async throws
    where S.Element == ByteBuffer {
        for try await chunk in body {
            if meter.firstByteAt == nil { meter.firstByteAt = .now }
            if eventStream && status == 200 {
                if capture != nil {
                    if capture!.count + chunk.readableBytes <= captureLimit { capture!.append(contentsOf: chunk.readableBytesView) } else { capture = nil }
                }
                let events = try parser.feed(chunk.readableBytesView)
                guard !events.isEmpty else { continue }
                var out = ByteBuffer()
                for event in events {
                    let isInjectedUsage = accumulator.observe(event)
                    reassembler?.observe(event)
                    relayedOutputTokens = relayedOutputTokens.addingSaturated(RelayedText.tokens(in: event, route: route))
                    if isInjectedUsage && dropInjectedUsage { continue }
                    out.writeBytes(event.raw)
                }
                if out.readableBytes > 0 { await write(out, to: &writer) }
            } else if holdsBodyBack {
                // An error body is held back, and written masked when it ends.
                let room = Self.maxErrorBodyBytes - copy.count
                if room > 0 { copy.append(contentsOf: chunk.readableBytesView.prefix(room)) }
            } else {
                if !copyOverflowed {
                    if copy.count + chunk.readableBytes <= Self.maxCopiedBytes {
                        copy.append(contentsOf: chunk.readableBytesView)
                    } else {
                        copyOverflowed = true
                        copy = []
                    }
                }
                await write(chunk, to: &writer)
            }
            if clientGone != nil, let clocks { clocks.clientLeft(grace: clientGrace) }
        }
        // A cancelled reader ends its sequence as if the body had ended: it did not.
        try Task.checkCancellation()
        if let clientGone { throw ClientGone(underlying: clientGone) }
    }

    /// Hands the call's bodies to `capture` (when it is on): the reassembled stream (or its raw
    /// events), or the body as copied (nothing when it outgrew the copy).
    func keepBodies(_ capture: BodyCapture?, meter: CallMeter, requestBody: [UInt8]) {
        guard let capture else { return }
        let answer = reassembler?.reassembledAnswer
        let response: [UInt8]?
        if let reassembler {
            // A stream on a route with no answer shape is kept as its events came.
            response = answer == nil ? reassembler.raw : nil
        } else {
            response = copyOverflowed ? nil : copy
        }
        capture.keep(requestID: meter.id, timestampMicros: meter.timestampMicros, request: requestBody,
                     response: response, reassembled: answer, responseCut: copyOverflowed || reassembler?.truncated == true)
    }

    /// An error body is held back whole and written once, masked, when it ends.
    private var holdsBodyBack: Bool { !(200..<300).contains(status) }

    /// Bytes after the last complete event (a stream that ends without a blank line), or the
    /// held-back error body with provider keys masked.
    mutating func flushRemainder(into writer: inout any ResponseBodyWriter) async throws(ClientGone) {
        if holdsBodyBack {
            await write(ByteBuffer(bytes: Self.masking(secrets, in: copy)), to: &writer)
            if let clientGone { throw ClientGone(underlying: clientGone) }
            return
        }
        guard eventStream, !parser.remainder.isEmpty else { return }
        await write(ByteBuffer(bytes: parser.remainder), to: &writer)
        if let clientGone { throw ClientGone(underlying: clientGone) }
    }

    /// Writes to the client unless it has gone; a failed write marks it gone. A write cut by
    /// the read's own clocks (they cancel the task) is not the client leaving: the call is
    /// recorded as the timeout it is.
    private mutating func write(_ buffer: ByteBuffer, to writer: inout any ResponseBodyWriter) async {
        guard clientGone == nil else { return }
        do {
            try await writer.write(buffer)
        } catch is CancellationError where Task.isCancelled {
            return
        } catch {
            clientGone = error
        }
    }

    struct Outcome {
        var usage: TokenUsage?
        /// Tokens of the text that reached the relay (event streams only).
        var relayedOutputTokens = 0
        var model: String?
        var sawEnd: Bool
        var errorClass: ErrorClass?
        var errorMessage: String?
    }

    /// What the body said: usage and model, or for an error status, the provider's message.
    func outcome() -> Outcome {
        var result = Outcome(usage: nil, model: nil, sawEnd: false)
        if eventStream && status == 200 {
            result.usage = accumulator.usage
            result.relayedOutputTokens = relayedOutputTokens
            result.model = accumulator.model
            result.sawEnd = accumulator.sawEnd
            if let error = accumulator.streamError {
                result.errorClass = .upstreamServerError
                result.errorMessage = String(decoding: Self.masking(secrets, in: Array(error.utf8)), as: UTF8.self)
            }
            return result
        }
        result.sawEnd = true
        if (200..<300).contains(status) {
            let extracted = UsageExtraction.fromBody(copy, dialect: route.dialect)
            result.usage = extracted.usage
            result.model = extracted.model
        } else {
            result.errorClass = status == 429 ? .upstreamRateLimited : status >= 500 ? .upstreamServerError : .upstreamClientError
            result.errorMessage = Self.errorMessage(Self.masking(secrets, in: copy)) ?? "upstream answered \(status)"
        }
        return result
    }

    /// `body` with every occurrence of each secret, and anything shaped like a provider key, masked.
    static func masking(_ secrets: [String], in body: [UInt8]) -> [UInt8] {
        Array(Redactor.scrubText(Redactor.maskSecrets(secrets, in: String(decoding: body, as: UTF8.self))).utf8)
    }

    /// `error.message` in either provider's error format.
    static func errorMessage(_ body: [UInt8]) -> String? {
        guard let object = JSONDecoderBridge.object(body) as? [String: Any] else {
            return body.isEmpty ? nil : String(decoding: body.prefix(300), as: UTF8.self)
        }
        if let error = object["error"] as? [String: Any], let message = error["message"] as? String { return message }
        return object["message"] as? String
    }
}

/// The text a model produced, read from stream events as they pass (content, tool arguments,
/// reasoning), in tokens: what a stream that ends before its usage is charged for.
enum RelayedText {
    static func tokens(in event: SSEEvent, route: GatewayRoute) -> Int {
        guard event.hasData, event.data != "[DONE]" else { return 0 }
        let keys: Set<String>
        switch route {
        case .chatCompletions: keys = ["content", "arguments", "refusal", "reasoning_content"]
        case .completions: keys = ["text"]
        case .responses:
            // Only deltas: the final events repeat the whole text.
            guard (event.event ?? StreamUsageAccumulator.quickType(event.data) ?? "").hasSuffix(".delta") else { return 0 }
            keys = ["delta"]
        case .messages:
            guard (event.event ?? StreamUsageAccumulator.quickType(event.data)) == "content_block_delta" else { return 0 }
            keys = ["text", "partial_json", "thinking"]
        default: return 0
        }
        return stringValueTokens(Array(event.data.utf8), keys: keys)
    }

    /// Tokens in the string values of `keys`, anywhere in a JSON text, without decoding it.
    static func stringValueTokens(_ bytes: [UInt8], keys: Set<String>) -> Int {
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        /// The index of the quote that closes the string opening at `start`.
        func stringEnd(_ start: Int) -> Int {
            var i = start + 1
            while i < bytes.count {
                if bytes[i] == backslash { i += 2; continue }
                if bytes[i] == quote { return i }
                i += 1
            }
            return bytes.count
        }
        func skipSpaces(_ i: Int) -> Int {
            var i = i
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
            return i
        }
        var tokens = 0
        var i = 0
        while i < bytes.count {
            guard bytes[i] == quote else { i += 1; continue }
            let end = stringEnd(i)
            let afterKey = skipSpaces(end + 1)
            guard afterKey < bytes.count, bytes[afterKey] == UInt8(ascii: ":") else { i = end + 1; continue }
            let valueStart = skipSpaces(afterKey + 1)
            let key = String(decoding: bytes[(i + 1)..<min(end, bytes.count)], as: UTF8.self)
            guard valueStart < bytes.count, bytes[valueStart] == quote, keys.contains(key) else { i = valueStart; continue }
            let valueEnd = stringEnd(valueStart)
            tokens = tokens.addingSaturated(TokenEstimator.count(bytes: bytes[(valueStart + 1)..<min(valueEnd, bytes.count)]))
            i = valueEnd + 1
        }
        return tokens
    }
}
