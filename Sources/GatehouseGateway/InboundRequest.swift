import Foundation
import GatehouseCore

/// A client's JSON request to a gateway route: what routing and metering read from it, and
/// the splicing edits that rewrite it for upstream without re-encoding the rest.
struct InboundRequest {
    let route: GatewayRoute
    let body: [UInt8]
    let members: [JSONObjectScanner.Member]

    init(route: GatewayRoute, body: [UInt8]) throws {
        self.route = route
        self.body = body
        self.members = try JSONObjectScanner.members(of: body)
    }

    /// The last value of a top-level member, as JSON allows duplicates and parsers keep the last.
    func member(_ key: String) -> JSONObjectScanner.Member? { members.last { $0.key == key } }

    func stringValue(_ key: String) -> String? {
        guard let m = member(key), body[m.valueRange.lowerBound] == UInt8(ascii: "\"") else { return nil }
        return JSONObjectScanner.decodeString(body[m.valueRange])
    }

    func boolValue(_ key: String) -> Bool? {
        guard let m = member(key) else { return nil }
        let raw = body[m.valueRange]
        if raw.elementsEqual("true".utf8) { return true }
        if raw.elementsEqual("false".utf8) { return false }
        return nil
    }

    func intValue(_ key: String) -> Int? {
        guard let m = member(key) else { return nil }
        return Int(String(decoding: body[m.valueRange], as: UTF8.self))
            // Beyond Int's range (or written as 1e300) is "very large", not "absent": saturate.
            ?? Double(String(decoding: body[m.valueRange], as: UTF8.self)).flatMap { $0.isNaN ? nil : Int(saturating: $0) }
    }

    /// A number member (`temperature`), finite; nil when absent or not a number.
    func doubleValue(_ key: String) -> Double? {
        guard let m = member(key), let value = Double(String(decoding: body[m.valueRange], as: UTF8.self)), value.isFinite else { return nil }
        return value
    }

    var model: String? { stringValue("model") }
    var stream: Bool { boolValue("stream") ?? false }

    /// True when this is a stream whose API only reports usage if asked (`stream_options`).
    var streamNeedsUsageOption: Bool { stream && (route == .chatCompletions || route == .completions) }

    /// Whether the client itself asked for the usage chunk.
    var clientRequestedUsage: Bool {
        guard let m = member("stream_options"),
              let object = JSONDecoderBridge.object(body[m.valueRange]) as? [String: Any] else { return false }
        return (object["include_usage"] as? Bool) == true
    }

    /// The body for upstream: `model` replaced by the upstream model name,
    /// `stream_options.include_usage` set when `injectUsageOption` is true, and integer members
    /// set (replaced where present, added where not) from `integers`.
    func rewritten(upstreamModel: String?, injectUsageOption: Bool, integers: [(key: String, value: Int)] = []) -> [UInt8] {
        var edits: [(range: Range<Int>, bytes: [UInt8])] = []
        var insertions: [String] = []
        for (key, value) in integers {
            let matching = members.filter { $0.key == key }
            if matching.isEmpty {
                insertions.append("\(String(decoding: Self.encodeJSONString(key), as: UTF8.self)):\(value)")
            } else {
                for m in matching { edits.append((m.valueRange, Array(String(value).utf8))) }
            }
        }
        if let upstreamModel {
            let encoded = Self.encodeJSONString(upstreamModel)
            for m in members where m.key == "model" { edits.append((m.valueRange, encoded)) }
        }
        if injectUsageOption {
            if let m = member("stream_options") {
                var object = JSONDecoderBridge.object(body[m.valueRange]) as? [String: Any] ?? [:]
                object["include_usage"] = true
                let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data(#"{"include_usage":true}"#.utf8)
                edits.append((m.valueRange, [UInt8](data)))
            } else {
                insertions.append(#""stream_options":{"include_usage":true}"#)
            }
        }
        if !insertions.isEmpty, let open = body.firstIndex(of: UInt8(ascii: "{")) {
            let insertion = insertions.joined(separator: ",") + (members.isEmpty ? "" : ",")
            edits.append((open + 1..<open + 1, Array(insertion.utf8)))
        }
        guard !edits.isEmpty else { return body }
        var result = body
        for edit in edits.sorted(by: { $0.range.lowerBound > $1.range.lowerBound }) {
            result.replaceSubrange(edit.range, with: edit.bytes)
        }
        return result
    }

    static func encodeJSONString(_ s: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count + 2)
        JSONObjectWriter.appendString(s, to: &bytes)
        return bytes
    }
}
