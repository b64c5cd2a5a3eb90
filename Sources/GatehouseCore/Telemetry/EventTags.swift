import Foundation

/// The tags an error event is searched by (`function:tasks.list`, `user.email:ada@example.com`),
/// as Sentry indexes them: the SDK's `tags` (an object, or the old list of pairs), plus the
/// event's level, environment, release, dist, transaction, logger, server name and user.
/// Keys are lowercased; a key or value too long, or beyond the per-event count, is dropped
/// (Sentry drops such tags too), never truncated, so a search never matches a cut value.
public enum EventTags {
    public static let maxTagsPerEvent = 64
    public static let maxKeyLength = 64
    public static let maxValueLength = 200
    /// The user fields kept as tags, under Sentry's names (`user.ip` is `ip_address`).
    static let userFields: [(field: String, key: String)] = [("id", "user.id"), ("email", "user.email"), ("username", "user.username"),
                                                             ("ip_address", "user.ip")]

    /// The event's tags: those read at ingest, else read from its document.
    public static func of(_ event: ErrorEvent) -> [EventTag] {
        if let tags = event.tags { return tags }
        let document = (try? JSONSerialization.jsonObject(with: Data(event.documentJSON.utf8))) as? [String: Any] ?? [:]
        return extract(event, document: document)
    }

    /// The event's tags, each key once (the event's own fields first, then its document's
    /// tags). `document` is the parsed event (a Sentry payload).
    public static func extract(_ event: ErrorEvent, document: [String: Any]) -> [EventTag] {
        var candidates: [(String, String?)] = [
            ("level", event.level.rawValue), ("environment", event.environment), ("release", event.release),
            ("dist", text(document["dist"])), ("transaction", text(document["transaction"])), ("logger", text(document["logger"])),
            ("server_name", text(document["server_name"])), ("user", event.userKey),
        ]
        let user = document["user"] as? [String: Any] ?? [:]
        candidates += userFields.map { ($0.key, text(user[$0.field])) }
        if let object = document["tags"] as? [String: Any] {
            candidates += object.sorted { $0.key < $1.key }.map { ($0.key, text($0.value)) }
        } else if let pairs = document["tags"] as? [Any] {
            candidates += pairs.compactMap { $0 as? [Any] }.filter { $0.count == 2 }.map { (text($0[0]) ?? "", text($0[1])) }
        }
        var seen = Set<String>()
        var tags: [EventTag] = []
        for (rawKey, rawValue) in candidates {
            guard tags.count < maxTagsPerEvent else { break }
            let key = rawKey.lowercased()
            guard let value = rawValue, isUsable(key: key, value: value), seen.insert(key).inserted else { continue }
            tags.append(EventTag(key: key, value: value))
        }
        return tags
    }

    static func isUsable(key: String, value: String) -> Bool {
        // Characters as Sentry counts them, and at most 4 bytes each: one character may be any
        // number of combining marks, and (key, value) is indexed (PostgreSQL's rows stop near 2.7 KB).
        !key.isEmpty && key.count <= maxKeyLength && key.utf8.count <= 4 * maxKeyLength
            && !value.isEmpty && value.count <= maxValueLength && value.utf8.count <= 4 * maxValueLength
            && !key.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }
            && !value.unicodeScalars.contains { $0.value == 0 }
    }

    /// A JSON scalar as text; nil for null, objects and arrays.
    static func text(_ value: Any?) -> String? {
        switch value {
        case let s as String: s
        case let n as NSNumber: n.stringValue
        default: nil
        }
    }
}

/// One tag of an error event, as stored for search.
public struct EventTag: Sendable, Equatable {
    public var key: String
    public var value: String
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}
