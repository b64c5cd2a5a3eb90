import Foundation
import GatehouseCore
import Testing
@testable import GatehouseGateway

@Suite struct RequestRewriteTests {
    func object(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    @Test func readsModelAndStreamWithoutDecodingTheRest() throws {
        let body = Array(#"{"messages":[{"role":"user","content":"a \"quoted\" {brace}"}],"model":"mock/gpt-4o","stream":true,"temperature":0.7}"#.utf8)
        let request = try InboundRequest(route: .chatCompletions, body: body)
        #expect(request.model == "mock/gpt-4o")
        #expect(request.stream)
        #expect(request.streamNeedsUsageOption)
        #expect(!request.clientRequestedUsage)
    }

    @Test func rewriteReplacesModelAndInjectsUsageOptionKeepingOtherBytes() throws {
        let original = #"{ "model" : "mock/gpt-4o", "temperature": 0.7000000000000001, "stream": true, "messages": [] }"#
        let request = try InboundRequest(route: .chatCompletions, body: Array(original.utf8))
        let rewritten = request.rewritten(upstreamModel: "gpt-4o", injectUsageOption: true)
        let text = String(decoding: rewritten, as: UTF8.self)
        #expect(text.contains("0.7000000000000001"), "numbers must reach upstream exactly as sent")
        let json = try object(rewritten)
        #expect(json["model"] as? String == "gpt-4o")
        #expect((json["stream_options"] as? [String: Any])?["include_usage"] as? Bool == true)
    }

    @Test func existingStreamOptionsAreMergedNotDuplicated() throws {
        let original = #"{"model":"m","stream":true,"stream_options":{"include_usage":false,"other":1}}"#
        let request = try InboundRequest(route: .completions, body: Array(original.utf8))
        let json = try object(request.rewritten(upstreamModel: nil, injectUsageOption: true))
        let options = try #require(json["stream_options"] as? [String: Any])
        #expect(options["include_usage"] as? Bool == true)
        #expect(options["other"] as? Int == 1)
    }

    @Test func emptyObjectInjectionIsValidJSON() throws {
        let request = try InboundRequest(route: .chatCompletions, body: Array("{}".utf8))
        _ = try object(request.rewritten(upstreamModel: nil, injectUsageOption: true))
    }

    @Test(arguments: [
        "", "[]", "{", #"{"model":}"#, #"{"model":"x",}"#, #"{"a":"\x"}"#, #"{"a":1.}"#, #"{"a":tru}"#, "{} extra", #"{"a":"\u12"}"#,
    ])
    func rejectsInvalidJSON(text: String) {
        #expect(throws: JSONObjectScanner.SyntaxError.self) { try JSONObjectScanner.members(of: Array(text.utf8)) }
    }

    @Test func deepNestingIsRefusedNotRecursedForever() {
        let deep = "{\"a\":" + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
        #expect(throws: JSONObjectScanner.SyntaxError.self) { try JSONObjectScanner.members(of: Array(deep.utf8)) }
    }

    /// Property: for JSON that Foundation produces, the scanner finds the same top-level keys,
    /// and each value range decodes to the same value.
    @Test func agreesWithFoundationOnGeneratedJSON() throws {
        var rng = SplitMix(seed: 99)
        func value(_ depth: Int) -> Any {
            switch rng.next() % (depth > 3 ? 4 : 6) {
            case 0: return Int(rng.next() % 1000) - 500
            case 1: return "s\(rng.next() % 100)\"\\\n\u{1F600}"
            case 2: return rng.next() % 2 == 0
            case 3: return Double(rng.next() % 10_000) / 7
            case 4: return (0..<Int(rng.next() % 4)).map { _ in value(depth + 1) }
            default: return Dictionary(uniqueKeysWithValues: (0..<Int(rng.next() % 4)).map { ("k\($0)", value(depth + 1)) })
            }
        }
        for _ in 0..<300 {
            let object = Dictionary(uniqueKeysWithValues: (0..<Int(rng.next() % 6)).map { ("key\($0)", value(0)) })
            let data = try JSONSerialization.data(withJSONObject: object)
            let bytes = [UInt8](data)
            let members = try JSONObjectScanner.members(of: bytes)
            #expect(Set(members.map(\.key)) == Set(object.keys))
            let reparsed = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            func canonical(_ value: Any) throws -> Data { try JSONSerialization.data(withJSONObject: [value], options: .sortedKeys) }
            for m in members {
                let decoded = try JSONSerialization.jsonObject(with: Data(bytes[m.valueRange]), options: .fragmentsAllowed)
                #expect(try canonical(decoded) == canonical(reparsed[m.key]!), "value of \(m.key)")
            }
        }
    }

    /// Fuzz: random mutations of a valid body never crash the scanner.
    @Test func mutatedBodiesNeverCrash() {
        var rng = SplitMix(seed: 5)
        let base = Array(#"{"model":"mock/x","messages":[{"role":"user","content":"hi \u00e9"}],"stream":true,"n":1.5e3}"#.utf8)
        for _ in 0..<5000 {
            var bytes = base
            for _ in 0..<Int(rng.next() % 4) + 1 {
                let i = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 3 {
                case 0: bytes[i] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes.remove(at: i)
                default: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: i)
                }
                if bytes.isEmpty { break }
            }
            _ = try? JSONObjectScanner.members(of: bytes)
        }
    }
}
