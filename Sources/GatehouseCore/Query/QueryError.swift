/// A query that cannot be parsed: where (a 0-based character offset) and what was expected.
public struct QuerySyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    public var position: Int
    public var message: String

    public init(position: Int, message: String) {
        self.position = position
        self.message = message
    }

    public var description: String { "at character \(position + 1): \(message)" }

    /// The query with a caret under the position, for terminals and error bodies.
    public func pointer(in query: String) -> String {
        let line = String(query.prefix(200))
        return line + "\n" + String(repeating: " ", count: min(position, line.count)) + "^"
    }
}

/// A query that parses but cannot run against a kind of record: an unknown field, or a value
/// of the wrong kind for its field.
public struct QueryFieldError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Explicit bounds on what one query may ask for.
public enum QueryLimits {
    public static let maxLength = 4096
    public static let maxTerms = 100
    public static let maxDepth = 32
}
