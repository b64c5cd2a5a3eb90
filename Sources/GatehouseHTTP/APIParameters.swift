import Foundation
import GatehouseCore
import Hummingbird

/// Query-string parameters shared by Gatehouse's read APIs, with the errors they give.
public enum APIParameters {
    /// `from=`/`to=`: RFC 3339, a date, `now`, `today`, `-24h`, or Unix seconds.
    public static func instant(_ text: String, name: String) throws(GatewayError) -> Int64 {
        guard let v = TimeExpressions.instantMicros(text) else {
            throw .invalidRequest("`\(name)` must be RFC 3339 (2026-11-22T10:00:00Z), a date, `now`, `today`, a relative time like -24h, or Unix seconds",
                                  param: name)
        }
        return v
    }

    /// `q=`: a query-language filter (nil when blank). A syntax error points at its position.
    public static func filter(_ text: String?) throws(GatewayError) -> QueryNode? {
        guard let text, !text.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
        let query: Query
        do {
            query = try QueryParser.parse(text)
        } catch {
            throw .invalidRequest("`q` \(error)\n\(error.pointer(in: text))", param: "q", code: "invalid_query")
        }
        guard query.aggregation == nil else {
            throw .invalidRequest("`q`: aggregation stages (| count …) are not supported here; they run on /api/v1/logs, /api/v1/requests, "
                                  + "/api/v1/issues (over error events) and /api/v1/spans", param: "q", code: "invalid_query")
        }
        return query.filter
    }

    /// `limit=`: 1…`max`, `fallback` when absent.
    public static func limit(_ text: String?, fallback: Int, max: Int) throws(GatewayError) -> Int {
        guard let text else { return fallback }
        guard let n = Int(text), (1...max).contains(n) else { throw .invalidRequest("`limit` must be 1 to \(max)", param: "limit") }
        return n
    }
}

/// A query string read as an HTML form encodes it: `+` is a space (curl's `--data-urlencode`,
/// browsers and `URLSearchParams` all write one), `%2B` a plus. Hummingbird's own reading
/// keeps `+`, which would turn `q=level:error+timestamp:>-1h` into a syntax error.
public struct FormParameters: Sequence, Sendable {
    private let pairs: [(String, String)]

    public init(query: String?) {
        pairs = (query ?? "").split(separator: "&").compactMap { part in
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String? { String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding }
            guard let key = decode(kv[0]), !key.isEmpty else { return nil }
            return (key, kv.count > 1 ? decode(kv[1]) ?? "" : "")
        }
    }

    /// The first value of `name`.
    public func get(_ name: String) -> String? { pairs.first { $0.0 == name }?.1 }

    /// The same parameters without any `name` (an aggregation reads `q` itself, the rest as a list would).
    public func removing(_ name: String) -> FormParameters { FormParameters(pairs: pairs.filter { $0.0 != name }) }

    private init(pairs: [(String, String)]) { self.pairs = pairs }

    public func makeIterator() -> IndexingIterator<[(String, String)]> { pairs.makeIterator() }
}
