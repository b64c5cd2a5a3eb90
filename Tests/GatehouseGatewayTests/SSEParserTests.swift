import Testing
@testable import GatehouseGateway

@Suite struct SSEParserTests {
    static let stream = Array("""
    event: message_start\r
    data: {"type":"message_start"}\r
    \r
    : keep-alive comment

    data: line one
    data: line two

    data:no-space
    id: 7
    retry: 10

    data: [DONE]


    """.utf8)

    func parseAll(_ bytes: [UInt8], chunks: [Int]) throws -> (events: [SSEEvent], remainder: [UInt8]) {
        var parser = SSEParser()
        var events: [SSEEvent] = []
        var index = 0
        for size in chunks where index < bytes.count {
            let end = min(bytes.count, index + size)
            events += try parser.feed(bytes[index..<end])
            index = end
        }
        if index < bytes.count { events += try parser.feed(bytes[index...]) }
        return (events, parser.remainder)
    }

    @Test func parsesFieldsAndKeepsRawBytes() throws {
        let (events, remainder) = try parseAll(Self.stream, chunks: [Self.stream.count])
        #expect(events.map(\.event) == ["message_start", nil, nil, nil, nil])
        #expect(events[0].data == #"{"type":"message_start"}"#)
        #expect(events[1].hasData == false)
        #expect(events[2].data == "line one\nline two")
        #expect(events[3].data == "no-space")
        #expect(events[4].data == "[DONE]")
        #expect(events.flatMap(\.raw) + remainder == Self.stream, "forwarding every raw event must reproduce the stream byte for byte")
    }

    /// Property: however the bytes are split, the same events come out and nothing is lost.
    @Test func anyChunkingGivesTheSameEvents() throws {
        let whole = try parseAll(Self.stream, chunks: [Self.stream.count])
        var rng = SplitMix(seed: 42)
        for _ in 0..<500 {
            var chunks: [Int] = []
            var total = 0
            while total < Self.stream.count {
                let n = Int(rng.next() % 7) + 1
                chunks.append(n)
                total += n
            }
            let split = try parseAll(Self.stream, chunks: chunks)
            #expect(split.events == whole.events)
            #expect(split.remainder == whole.remainder)
        }
    }

    @Test func lineEndingsLFCRLFAndCRAreEquivalent() throws {
        for ending in ["\n", "\r\n", "\r"] {
            let text = "event: a\(ending)data: 1\(ending)\(ending)data: 2\(ending)\(ending)"
            var parser = SSEParser()
            var events = try parser.feed(Array(text.utf8))
            // A final CR may be followed by LF; the parser waits for one more byte to know.
            if ending == "\r" { events += try parser.feed(Array("x".utf8)) }
            #expect(events.map(\.data) == ["1", "2"], "ending \(ending.debugDescription)")
            #expect(events.first?.event == "a")
        }
    }

    /// Fuzz: random bytes never crash, never lose a byte, and stay within the event limit.
    @Test func randomBytesNeverCrashOrLoseBytes() throws {
        var rng = SplitMix(seed: 7)
        let alphabet = Array("data: event:\r\n\n\n:x{}\"[]".utf8) + [0, 0xFF, 0xC3]
        for _ in 0..<2000 {
            let length = Int(rng.next() % 200)
            let bytes = (0..<length).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            var parser = SSEParser(maxEventBytes: 1 << 20)
            var out: [UInt8] = []
            var index = 0
            while index < bytes.count {
                let end = min(bytes.count, index + Int(rng.next() % 9) + 1)
                out += try parser.feed(bytes[index..<end]).flatMap(\.raw)
                index = end
            }
            #expect(out + parser.remainder == bytes)
        }
    }

    @Test func oversizedEventIsAnError() {
        var parser = SSEParser(maxEventBytes: 64)
        #expect(throws: SSEParser.EventTooLarge.self) {
            _ = try parser.feed(Array(("data: " + String(repeating: "x", count: 100)).utf8))
        }
    }
}

/// A small deterministic generator so property tests replay exactly.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}
