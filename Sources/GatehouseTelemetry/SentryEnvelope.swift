import Foundation

/// Sentry's envelope format: a JSON header line, then items, each a JSON header line and a
/// payload that is `length` bytes long or, without a length, runs to the next newline.
/// https://develop.sentry.dev/sdk/envelopes/
public struct SentryEnvelope {
    public struct Item {
        public var type: String
        public var header: [String: Any]
        public var payload: ArraySlice<UInt8>
    }

    public var header: [String: Any]
    public var items: [Item]

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Items past this count are refused rather than parsed.
    public static let maxItems = 1000

    public static func parse(_ bytes: [UInt8]) throws(ParseError) -> SentryEnvelope {
        var position = bytes.startIndex
        func line() -> ArraySlice<UInt8>? {
            guard position < bytes.endIndex else { return nil }
            let end = bytes[position...].firstIndex(of: 10) ?? bytes.endIndex
            defer { position = end < bytes.endIndex ? end + 1 : end }
            return bytes[position..<end]
        }
        func object(_ slice: ArraySlice<UInt8>, what: String) throws(ParseError) -> [String: Any] {
            let trimmed = slice.last == 13 ? slice.dropLast() : slice
            if trimmed.allSatisfy({ $0 == 32 || $0 == 9 }) { return [:] }  // an empty header is allowed
            guard let value = try? JSONSerialization.jsonObject(with: Data(trimmed)) as? [String: Any] else {
                throw ParseError(message: "the envelope's \(what) is not a JSON object")
            }
            return value
        }
        guard let first = line() else { throw ParseError(message: "the envelope is empty") }
        let header = try object(first, what: "header")
        var items: [Item] = []
        while position < bytes.endIndex {
            guard let headerLine = line() else { break }
            if headerLine.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { continue }  // trailing newlines
            guard items.count < maxItems else { throw ParseError(message: "the envelope has more than \(maxItems) items") }
            let itemHeader = try object(headerLine, what: "item header #\(items.count)")
            guard let type = itemHeader["type"] as? String else { throw ParseError(message: "item #\(items.count) has no type") }
            let payload: ArraySlice<UInt8>
            if let lengthValue = itemHeader["length"] {
                guard let length = (lengthValue as? NSNumber)?.intValue, length >= 0 else {
                    throw ParseError(message: "item #\(items.count) has a length that is not a whole number")
                }
                guard bytes.endIndex - position >= length else {
                    throw ParseError(message: "item #\(items.count) says it is \(length) bytes but the envelope ends sooner")
                }
                payload = bytes[position..<(position + length)]
                position += length
                if position < bytes.endIndex, bytes[position] == 10 { position += 1 }
            } else {
                payload = line() ?? []
            }
            items.append(Item(type: type, header: itemHeader, payload: payload))
        }
        return SentryEnvelope(header: header, items: items)
    }
}

/// Who is sending: the public key from `X-Sentry-Auth` (or `Authorization: Sentry …`), the
/// `sentry_key` query parameter, or the envelope header's `dsn`.
public enum SentryAuth {
    /// `Sentry sentry_version=7, sentry_client=…, sentry_key=KEY` → KEY.
    public static func key(fromHeader header: String) -> String? {
        var text = Substring(header.trimmingCharacters(in: .whitespaces))
        if text.lowercased().hasPrefix("sentry ") { text = text.dropFirst(7) }
        for part in text.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2, pair[0] == "sentry_key", !pair[1].isEmpty { return pair[1] }
        }
        return nil
    }

    /// `https://KEY@host/42` → (KEY, "42").
    public static func parse(dsn: String) -> (key: String, project: String)? {
        guard let components = URLComponents(string: dsn), let key = components.user, !key.isEmpty else { return nil }
        guard let project = components.path.split(separator: "/").last else { return nil }
        return (key, String(project))
    }
}
