import CCompression
import Foundation
import GatehouseCore
import Testing
@testable import GatehouseTelemetry

/// When the lines are received: 2026-11-30T12:00:00Z, after every time they carry (one further
/// ahead than an hour would be replaced by it).
let now: Int64 = 1_796_040_000_000_000
let ingest = LogIngest(limits: IngestLimits(), slow: SlowThresholds())

func parse(_ text: String, limits: IngestLimits = IngestLimits()) throws -> LogIngest.Result {
    try LogIngest(limits: limits, slow: SlowThresholds()).parse(Array(text.utf8), project: "web", receivedMicros: now)
}

func attributes(_ line: LogRecord) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(line.attributesJSON.utf8)) as? [String: Any]) ?? [:]
}

@Suite struct LogIngestTests {
    @Test func theSeedsSlowQueryLineIsReadIntoColumnsAndAttributes() throws {
        let result = try parse(#"""
            {"level": "warn", "module": "tasks", "message": "Slow query detected", "correlationId": "1704067200000-a3f2",
             "function": "tasks.list", "duration": "237.42ms", "dbCalls": 15, "docsScanned": 342}
            """#)
        #expect(result.rejections.isEmpty)
        #expect(try parse(#"{"message":"zero","duration":0.0,"dbCalls":1}"#).lines.first?.durationMicros == 0)
        let line = try #require(result.lines.first)
        #expect(line.level == .warn && line.message == "Slow query detected" && line.function == "tasks.list")
        #expect(line.correlationID == "1704067200000-a3f2" && line.durationMicros == 237_420 && line.timestampMicros == now)
        #expect(line.slow, "237 ms and 15 DB calls are over the Tanvex thresholds")
        let a = attributes(line)
        #expect(a["module"] as? String == "tasks" && (a["dbCalls"] as? NSNumber)?.intValue == 15 && a["message"] == nil)
    }

    /// A time more than an hour past the receive time is the sender's to choose, not a clock
    /// running fast: the receive time replaces it, the sender's kept beside it.
    @Test func timestampsFarAheadTakeTheReceiveTime() throws {
        let result = try parse("""
            {"message":"far","timestamp":"3000-01-01T00:00:00Z","k":1}
            {"message":"59 minutes","ts":\((now + 59 * 60_000_000) / 1000)}
            {"message":"61 minutes","ts":\((now + 61 * 60_000_000) / 1000)}
            {"message":"old","timestamp":"2001-01-01T00:00:00Z"}
            """)
        #expect(result.lines.map(\.timestampMicros) == [now, now + 59 * 60_000_000, now, TimeExpressions.rfc3339Micros("2001-01-01T00:00:00Z")])
        #expect(attributes(result.lines[0])["original_timestamp"] as? String == "3000-01-01T00:00:00.000Z" && attributes(result.lines[0])["k"] as? Int == 1)
        #expect(attributes(result.lines[1]).isEmpty && attributes(result.lines[3]).isEmpty)
    }

    @Test func arraysAndNDJSONReportEachBadLineByIndex() throws {
        let ndjson = try parse("""
            {"level":"error","message":"one","timestamp":"2026-11-30T10:00:00.5+01:00"}

            not json
            [1,2]
            {"level":"loud","message":"bad level"}
            {"message":"ok","ts":1764496800123}\r
            """)
        #expect(ndjson.lines.map(\.message) == ["one", "ok"])
        #expect(ndjson.rejections.map(\.index) == [1, 2, 3], "blank lines are not counted")
        #expect(ndjson.rejections[0].reason == "not valid JSON" && ndjson.rejections[2].reason.contains("`level`"))
        #expect(ndjson.lines[0].timestampMicros == TimeExpressions.rfc3339Micros("2026-11-30T09:00:00.5Z"))
        #expect(ndjson.lines[1].timestampMicros == 1_764_496_800_123_000, "a 13-digit time is milliseconds")
        let array = try parse(#"[{"msg":"a","severity":"WARNING"}, 3, {"message":"b","level":50,"user":{"id":7,"tags":["x"]}}]"#)
        #expect(array.lines.map(\.level) == [.warn, .error] && array.rejections.map(\.index) == [1])
        #expect(((attributes(array.lines[1])["user"] as? [String: Any])?["tags"] as? [String]) == ["x"], "nested attributes are kept")
    }

    @Test func limitsAreEnforcedPerLineAndPerBody() throws {
        var limits = IngestLimits()
        limits.maxAttributes = 2
        limits.maxLineBytes = 300
        limits.maxLinesPerRequest = 3
        let result = try parse("""
            {"message":"fine","a":1,"b":2}
            {"message":"wide","a":1,"b":2,"c":3}
            {"message":"\(String(repeating: "x", count: 400))"}
            """, limits: limits)
        #expect(result.lines.map(\.message) == ["fine"] && result.rejections.map(\.index) == [1, 2])
        #expect(throws: LogIngest.BodyError.tooManyLines(limit: 3)) { try parse(String(repeating: "{}\n", count: 4), limits: limits) }
        #expect(throws: LogIngest.BodyError.self) { try parse("   ") }
        limits.maxMessageBytes = 64
        limits.maxLineBytes = 10_000
        let cut = try parse(#"{"message":"\#(String(repeating: "y", count: 100))"}"#, limits: limits)
        #expect(cut.lines[0].message.utf8.count == 64 && attributes(cut.lines[0])["message_truncated"] as? Bool == true)
    }

    /// What would crash a conversion or poison a PostgreSQL batch is refused or cleaned at the door.
    @Test func hostileValuesAreRefusedOrCleaned() throws {
        let result = try parse(#"""
            {"message":"a\u0000b","data":"x\u0000y","n":1}
            {"message":"lone","data":"\ud800"}
            {"message":"huge","duration":"200000000000m"}
            {"message":"escaped key","pass\u0077ord":"hunter2"}
            {"message":"helicone","helicone-auth":"Bearer sk-abc"}
            """#)
        #expect(result.lines.map(\.message) == ["ab", "escaped key", "helicone"])
        #expect(result.rejections.map(\.index) == [1, 2])
        #expect(!result.lines[0].attributesJSON.contains("\\u0000") && attributes(result.lines[0])["data"] as? String == "xy")
        #expect(!result.lines[1].attributesJSON.contains("hunter2") && !result.lines[2].attributesJSON.contains("sk-abc"))
        #expect(SentryEventReader.timestamp(NSNumber(value: 1e13)) == nil && SentryEventReader.timestamp("nan") == nil && SentryEventReader.timestamp("1e300") == nil)
        #expect(TimeExpressions.instantMicros("999999999999999999") == nil, "seconds that overflow microseconds are refused")
    }

    @Test func secretsInAttributesAreMasked() throws {
        let line = try #require(try parse(#"{"message":"login","password":"hunter2","headers":{"Authorization":"Bearer abc"},"user":"ada"}"#).lines.first)
        #expect(!line.attributesJSON.contains("hunter2") && !line.attributesJSON.contains("Bearer abc"))
        #expect(attributes(line)["user"] as? String == "ada")
        // A name that only lower-cases to a secret's name outside ASCII (KELVIN SIGN → k) is masked too.
        let kelvin = try #require(try parse("{\"message\":\"m\",\"api_\u{212A}ey\":\"hunter2\"}").lines.first)
        #expect(!kelvin.attributesJSON.contains("hunter2"), "\(kelvin.attributesJSON)")
        for (text, secret) in [(#"{"API_KEY":1}"#, true), (#"{"x-Sentry-Auth":1}"#, true), (#"{"nested":{"Private_Key":1}}"#, true),
                               (#"{"tokenizer":"bpe"}"#, true), (#"{"user":"ada","dbCalls":3}"#, false), (#"{"apix_key":1}"#, false)] {
            #expect(LogIngest.mayHoldSecret(Array(text.utf8)) == secret, "\(text)")
        }
    }

    @Test func durationsAndTimestampsInTheirCommonShapes() throws {
        #expect(LogIngest.durationMicros("237.42ms") == 237_420)
        #expect(LogIngest.durationMicros(NSNumber(value: 1.5)) == 1500)
        #expect(LogIngest.durationMicros(NSNumber(value: 0.0)) == 0 && LogIngest.durationMicros(NSNumber(value: 1)) == 1000, "0 and 1 are numbers, not booleans")
        #expect(LogIngest.durationMicros(true) == nil)
        let decoded = try #require(try JSONSerialization.jsonObject(with: Data("[true, 1, 0.0]".utf8)) as? [Any])
        #expect(isBoolean(decoded[0]) && !isBoolean(decoded[1]) && !isBoolean(decoded[2]), "JSONSerialization's booleans are told from numbers")
        #expect(LogIngest.durationMicros("2s") == 2_000_000 && LogIngest.durationMicros("800us") == 800 && LogIngest.durationMicros("120µs") == 120)
        #expect(LogIngest.durationMicros("fast") == nil && LogIngest.durationMicros("-5ms") == nil)
        #expect(LogIngest.timestamp(NSNumber(value: 1_764_496_800)) == 1_764_496_800_000_000)
        #expect(LogIngest.timestamp(NSNumber(value: 1_764_496_800_000_000_123 as Int64)) == 1_764_496_800_000_000)
        #expect(LogIngest.timestamp("yesterday") == nil)
    }

    /// The hand-written RFC 3339 reader agrees with Foundation's formatter on random instants and offsets.
    @Test func rfc3339ReaderAgreesWithFoundation() {
        var rng = SystemRandomNumberGenerator()
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        for _ in 0..<2000 {
            let seconds = Int64.random(in: -2_000_000_000...4_000_000_000, using: &rng)
            let offsetMinutes = Int.random(in: -14 * 60...14 * 60, using: &rng) / 15 * 15
            formatter.timeZone = TimeZone(secondsFromGMT: offsetMinutes * 60)
            let text = formatter.string(from: Date(timeIntervalSince1970: Double(seconds)))
            #expect(TimeExpressions.rfc3339Micros(text) == seconds * 1_000_000, "\(text)")
        }
        for bad in ["2026-13-01T00:00:00Z", "2026-11-30T25:00:00Z", "2026-11-30", "2026-11-30T10:00:00", "2026-11-30T10:00:00.Z", "x"] {
            #expect(TimeExpressions.rfc3339Micros(bad) == nil, "\(bad)")
        }
    }

    /// Random and mutated bodies never crash the parser; every non-blank line is kept or rejected.
    @Test func mutatedBodiesNeverCrashAndNoLineIsLost() throws {
        var rng = SystemRandomNumberGenerator()
        let seed = Array("""
            {"level":"warn","message":"Slow query detected","duration":"237.42ms","dbCalls":15,"nested":{"a":[1,2,{"b":null}]}}
            {"level":"error","msg":"boom","timestamp":"2026-11-30T10:00:00Z","trace_id":"abc"}
            """.utf8)
        for round in 0..<3000 {
            var body = seed
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                let i = Int.random(in: 0..<body.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: body[i] = UInt8.random(in: 0...255, using: &rng)
                case 1: body.remove(at: i)
                default: body.insert(UInt8.random(in: 0...255, using: &rng), at: i)
                }
                if body.isEmpty { body = [32] }
            }
            if round % 10 == 0 { body = (0..<Int.random(in: 0..<200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) } }
            guard let result = try? ingest.parse(body, project: "p", receivedMicros: now) else { continue }
            let first = body.first { ![32, 9, 10, 13].contains($0) }
            if first != UInt8(ascii: "[") && !(first == UInt8(ascii: "{") && result.lines.count == 1 && result.rejections.isEmpty) {
                let nonBlank = body.split(separator: 10).filter { !$0.allSatisfy { [32, 9, 13].contains($0) } }.count
                #expect(result.lines.count + result.rejections.count == nonBlank)
            }
        }
    }
}

@Suite struct DecompressionTests {
    static func zlibCompress(_ data: [UInt8], windowBits: Int32) -> [UInt8] {
        var stream = z_stream()
        deflateInit2_(&stream, 6, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: data.count + 1024)
        var input = data
        input.withUnsafeMutableBufferPointer { source in
            output.withUnsafeMutableBufferPointer { out in
                stream.next_in = source.baseAddress
                stream.avail_in = uInt(source.count)
                stream.next_out = out.baseAddress
                stream.avail_out = uInt(out.count)
                _ = deflate(&stream, Z_FINISH)
            }
        }
        return Array(output.prefix(Int(stream.total_out)))
    }

    @Test func gzipDeflateAndBrotliBodiesDecode() throws {
        let text = Array(String(repeating: #"{"level":"error","message":"compressed"}"# + "\n", count: 50).utf8)
        #expect(try Decompression.decode(Self.zlibCompress(text, windowBits: 31), encoding: "gzip", limit: 1 << 20) == text)
        #expect(try Decompression.decode(Self.zlibCompress(text, windowBits: 15), encoding: "deflate", limit: 1 << 20) == text)
        #expect(try Decompression.decode(Self.zlibCompress(text, windowBits: -15), encoding: "deflate", limit: 1 << 20) == text, "raw deflate too")
        // Made with Python's brotli module: three copies of one log line.
        let brotli: [UInt8] = [27, 128, 0, 224, 156, 7, 182, 173, 35, 125, 65, 44, 22, 47, 91, 242, 181, 8, 8, 221, 222, 84, 16, 147, 75, 29, 150,
                               190, 22, 73, 99, 123, 11, 19, 57, 17, 8, 91, 96, 116, 17, 121, 110, 58, 30, 14, 68, 152, 248, 64, 127, 171, 237, 208, 58]
        #expect(try Decompression.decode(brotli, encoding: "br", limit: 1 << 20)
                == Array(String(repeating: #"{"level":"error","message":"brotli works"}"# + "\n", count: 3).utf8))
        #expect(try Decompression.decode(text, encoding: nil, limit: 1 << 20) == text)
    }

    @Test func bombsTruncationAndUnknownEncodingsAreRefused() {
        let zeros = [UInt8](repeating: 0, count: 5_000_000)
        let bomb = Self.zlibCompress(zeros, windowBits: 31)
        #expect(bomb.count < 20_000)
        #expect(throws: Decompression.Failure.tooLarge(limit: 1 << 20)) { try Decompression.decode(bomb, encoding: "gzip", limit: 1 << 20) }
        let gz = Self.zlibCompress(Array("hello hello hello".utf8), windowBits: 31)
        #expect(throws: Decompression.Failure.corrupt("gzip")) { try Decompression.decode(Array(gz.prefix(gz.count / 2)), encoding: "gzip", limit: 1 << 20) }
        #expect(throws: Decompression.Failure.corrupt("brotli")) { try Decompression.decode([1, 2, 3, 4], encoding: "br", limit: 1 << 20) }
        #expect(throws: Decompression.Failure.unsupported("zstd")) { try Decompression.decode([1], encoding: "zstd", limit: 1 << 20) }
        #expect(throws: Decompression.Failure.tooLarge(limit: 4)) { try Decompression.decode([1, 2, 3, 4, 5], encoding: "identity", limit: 4) }
    }
}
