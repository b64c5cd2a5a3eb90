import Foundation
import GatehouseAPI
import GatehouseCore

/// Small parts the logs, correlation and issue pages share.
enum TelemetryView {
    /// A name and its value, linked where the value leads somewhere.
    struct Field {
        var name: String
        var value: String
        var href: String?
    }

    /// `field:"value"` in the query language, quoted so any value reads back as itself.
    static func match(_ field: String, _ value: String) -> String {
        field + ":\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    static func correlationHref(_ id: String) -> String { "/correlation/" + PathSegment.encode(id) }

    static func issueHref(_ id: String, event: String? = nil) -> String {
        Console.url("/issues/" + PathSegment.encode(id), event.map { [("event", $0)] } ?? [])
    }
}

extension JSONValue {
    /// The value as one line of text: a string as it is, anything else as compact JSON.
    var consoleText: String {
        switch self {
        case .string(let text): text
        default: (try? APIJSON.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        }
    }
}
