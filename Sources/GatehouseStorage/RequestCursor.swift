import Foundation
import GatehouseCore

/// A keyset cursor over a sorted request list: which way it pages and the sort key of the row it
/// starts from (the sort column's value, the time and the id). The default order's forward
/// cursors keep the `PageCursor` form, so cursors the API handed out before sorting still work.
enum RequestCursor {
    struct Position {
        var backward: Bool
        var key: [SQLValue]
    }

    /// The columns a sort orders by, the sort column first; time and id break ties.
    static func keyColumns(_ field: RequestSort.Field) -> [String] {
        switch field {
        case .time: ["ts", "id"]
        case .cost: ["cost_micros", "ts", "id"]
        case .latency: ["latency_us", "ts", "id"]
        case .tokens: ["(input_tokens + output_tokens)", "ts", "id"]
        }
    }

    static func value(_ record: RequestRecord, _ field: RequestSort.Field) -> Int64 {
        switch field {
        case .time: record.timestampMicros
        case .cost: record.cost.value
        case .latency: record.latencyMicros
        case .tokens: Int64(record.usage.inputTokens) + Int64(record.usage.outputTokens)
        }
    }

    static func encode(_ record: RequestRecord, sort: RequestSort, backward: Bool) -> String {
        if sort == .newestFirst && !backward { return PageCursor.encode(ts: record.timestampMicros, id: record.id) }
        let payload = [prefix, sort.name, backward ? "back" : "next", String(value(record, sort.field)), String(record.timestampMicros), record.id]
        return Base64URL.encode(Array(payload.joined(separator: "|").utf8))
    }

    /// The position `cursor` names; a cursor of another sort (or none of ours) is invalid.
    static func decode(_ cursor: String, sort: RequestSort) throws -> Position {
        guard cursor.count <= 512 else { throw StoreError.invalidCursor }
        if let text = fromBase64URL(cursor), text.hasPrefix(prefix + "|") {
            let parts = text.split(separator: "|", maxSplits: 5, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 6, parts[1] == sort.name, ["back", "next"].contains(parts[2]),
                  let value = Int64(parts[3]), let ts = Int64(parts[4]), !parts[5].isEmpty else { throw StoreError.invalidCursor }
            let key: [SQLValue] = sort.field == .time ? [.int(ts), .text(parts[5])] : [.int(value), .int(ts), .text(parts[5])]
            return Position(backward: parts[2] == "back", key: key)
        }
        guard sort == .newestFirst, let (ts, id) = PageCursor.decode(cursor) else { throw StoreError.invalidCursor }
        return Position(backward: false, key: [.int(ts), .text(id)])
    }

    private static let prefix = "rc1"

    private static func fromBase64URL(_ text: String) -> String? {
        Base64URL.decode(text).map { String(decoding: $0, as: UTF8.self) }
    }
}
