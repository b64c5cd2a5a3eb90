import Foundation
import GatehouseCore
import NIOCore
import Synchronization
@testable import GatehouseGateway

/// A provider scripted in process: each call it receives gets the reply the script picks for it,
/// so a test can make the gateway's upstream fail in any way without a socket.
final class FakeUpstream: UpstreamTransport {
    /// What one call gets back.
    enum Reply: Sendable {
        /// A response head, then the body's chunks one by one, then its ending.
        case answer(status: Int, headers: [(name: String, value: String)], chunks: [String], ending: Ending)
        /// No connection: the call fails before any response, as a refused connection does.
        case refuse
        /// No answer at all: the call fails once the request's deadline passes, as a real
        /// client's deadline does.
        case hang
    }

    /// How a body ends after its chunks.
    enum Ending: Sendable {
        case complete
        /// The connection breaks: reading the body throws.
        case cut
        /// Nothing more comes, and the body never ends.
        case stall
    }

    struct Call: Sendable {
        var request: UpstreamRequest
        var at: ContinuousClock.Instant
        var body: String { String(decoding: request.body, as: UTF8.self) }
    }

    struct ConnectionRefused: Error, CustomStringConvertible {
        var description: String { "connection refused (fake upstream)" }
    }

    struct ConnectionReset: Error, CustomStringConvertible {
        var description: String { "connection reset by peer (fake upstream)" }
    }

    private let script: @Sendable (_ request: UpstreamRequest, _ callIndex: Int) -> Reply
    private let log = Mutex<[Call]>([])

    /// `script` gets each request and its index among every call this fake received (from 0).
    init(_ script: @escaping @Sendable (_ request: UpstreamRequest, _ callIndex: Int) -> Reply) {
        self.script = script
    }

    var calls: [Call] { log.withLock { $0 } }

    func calls(to provider: String) -> [Call] { calls.filter { $0.request.provider.name == provider } }

    func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        let index = log.withLock { calls in
            calls.append(Call(request: request, at: .now))
            return calls.count - 1
        }
        switch script(request, index) {
        case .refuse:
            throw ConnectionRefused()
        case .hang:
            try await Task.sleep(until: request.deadline, clock: .continuous)
            throw UpstreamTimedOut("the fake upstream sent nothing before the deadline")
        case let .answer(status, headers, chunks, ending):
            let body = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
                let producer = Task {
                    for chunk in chunks { continuation.yield(ByteBuffer(string: chunk)) }
                    switch ending {
                    case .complete: continuation.finish()
                    case .cut: continuation.finish(throwing: ConnectionReset())
                    case .stall:
                        // Ends only when the reader gives up (cancelling this task).
                        try? await Task.sleep(for: .seconds(3600))
                        continuation.finish()
                    }
                }
                continuation.onTermination = { _ in producer.cancel() }
            }
            return UpstreamResponse(status: status, headers: headers, body: UpstreamBody(body))
        }
    }
}

extension FakeUpstream.Reply {
    /// The usage the fake's successful answers report.
    static let promptTokens = 12
    static let completionTokens = 5

    /// A chat completion with text and usage, as OpenAI sends it.
    static func chat(usage: Bool = true) -> Self {
        let usageMember = usage ? #","usage":{"prompt_tokens":\#(promptTokens),"completion_tokens":\#(completionTokens),"total_tokens":\#(promptTokens + completionTokens)}"# : ""
        let body = #"{"id":"chatcmpl-fake","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"hello from the fake"},"finish_reason":"stop"}]\#(usageMember)}"#
        return .answer(status: 200, headers: [("content-type", "application/json"), ("content-length", "\(body.utf8.count)")],
                       chunks: [body], ending: .complete)
    }

    /// An error answer; by default OpenAI's JSON error shape.
    static func failure(_ status: Int, headers: [(name: String, value: String)] = [], contentType: String = "application/json",
                        body: String? = nil) -> Self {
        let text = body ?? #"{"error":{"message":"the fake upstream answered \#(status)","type":"server_error","code":null}}"#
        return .answer(status: status, headers: [("content-type", contentType)] + headers, chunks: [text], ending: .complete)
    }

    /// An OpenAI chat stream of `words` (one event each); the usage chunk and `[DONE]` only when
    /// the stream is `.complete` and `usage` is true.
    static func chatStream(words: Int, usage: Bool = true, ending: FakeUpstream.Ending = .complete) -> Self {
        func event(_ json: String) -> String { "data: \(json)\n\n" }
        var chunks = [event(#"{"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#)]
        for i in 0..<words {
            chunks.append(event(#"{"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" word\#(i)"},"finish_reason":null}]}"#))
        }
        if ending == .complete {
            chunks.append(event(#"{"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#))
            if usage {
                chunks.append(event(#"{"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":\#(promptTokens),"completion_tokens":\#(words),"total_tokens":\#(promptTokens + words)}}"#))
            }
            chunks.append("data: [DONE]\n\n")
        }
        return .answer(status: 200, headers: [("content-type", "text/event-stream")], chunks: chunks, ending: ending)
    }

    /// An Anthropic message stream whose `message_start` reports `inputTokens`, then `words`
    /// text deltas; the closing events only when the stream is `.complete`.
    static func messageStream(inputTokens: Int, words: Int, ending: FakeUpstream.Ending) -> Self {
        func event(_ name: String, _ json: String) -> String { "event: \(name)\ndata: \(json)\n\n" }
        var chunks = [
            event("message_start", #"{"type":"message_start","message":{"id":"msg_fake","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"usage":{"input_tokens":\#(inputTokens),"output_tokens":1}}}"#),
            event("content_block_start", #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
        ]
        for i in 0..<words {
            chunks.append(event("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" word\#(i)"}}"#))
        }
        if ending == .complete {
            chunks.append(event("content_block_stop", #"{"type":"content_block_stop","index":0}"#))
            chunks.append(event("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":\#(words)}}"#))
            chunks.append(event("message_stop", #"{"type":"message_stop"}"#))
        }
        return .answer(status: 200, headers: [("content-type", "text/event-stream")], chunks: chunks, ending: ending)
    }
}

/// Keeps every record the gateway writes, in order, instead of storing them.
final class RecordingSink: RequestRecordSink {
    private let stored = Mutex<[RequestRecord]>([])

    var records: [RequestRecord] { stored.withLock { $0 } }

    @discardableResult
    func record(_ record: RequestRecord) async -> Bool {
        stored.withLock { $0.append(record) }
        return true
    }
}
