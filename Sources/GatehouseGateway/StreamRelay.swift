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

    let route: GatewayRoute
    let eventStream: Bool
    let dropInjectedUsage: Bool
    let status: Int
    private var parser = SSEParser()
    private var accumulator: StreamUsageAccumulator
    private var copy: [UInt8] = []
    private var copyOverflowed = false
    /// The raw event stream as upstream sent it, for the response cache (nil: not kept).
    private var capture: [UInt8]?
    private let captureLimit: Int

    init(route: GatewayRoute, eventStream: Bool, dropInjectedUsage: Bool, status: Int, captureLimit: Int = 0) {
        self.route = route
        self.eventStream = eventStream
        self.dropInjectedUsage = dropInjectedUsage
        self.status = status
        self.captureLimit = captureLimit
        capture = captureLimit > 0 && eventStream ? [] : nil
        accumulator = StreamUsageAccumulator(route: route)
    }

    /// The whole body as upstream sent it, when it was kept and fit the limit.
    var capturedBody: [UInt8]? {
        if eventStream { return capture }
        return copyOverflowed || copy.count > max(captureLimit, 0) ? nil : copy
    }

    mutating func pump<S: AsyncSequence>(_ body: S, into writer: inout any ResponseBodyWriter, meter: inout CallMeter) async throws
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
                    if isInjectedUsage && dropInjectedUsage { continue }
                    out.writeBytes(event.raw)
                }
                if out.readableBytes > 0 { try await write(out, to: &writer) }
            } else {
                if !copyOverflowed {
                    if copy.count + chunk.readableBytes <= Self.maxCopiedBytes {
                        copy.append(contentsOf: chunk.readableBytesView)
                    } else {
                        copyOverflowed = true
                        copy = []
                    }
                }
                try await write(chunk, to: &writer)
            }
        }
    }

    /// Bytes after the last complete event (a stream that ends without a blank line).
    mutating func flushRemainder(into writer: inout any ResponseBodyWriter) async throws {
        guard eventStream, !parser.remainder.isEmpty else { return }
        try await write(ByteBuffer(bytes: parser.remainder), to: &writer)
    }

    private func write(_ buffer: ByteBuffer, to writer: inout any ResponseBodyWriter) async throws {
        do {
            try await writer.write(buffer)
        } catch {
            throw ClientGone(underlying: error)
        }
    }

    struct Outcome {
        var usage: TokenUsage?
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
            result.model = accumulator.model
            result.sawEnd = accumulator.sawEnd
            if let error = accumulator.streamError {
                result.errorClass = .upstreamServerError
                result.errorMessage = error
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
            result.errorMessage = Self.errorMessage(copy) ?? "upstream answered \(status)"
        }
        return result
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
