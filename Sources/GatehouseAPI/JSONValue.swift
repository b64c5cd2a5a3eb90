import Foundation

/// Any JSON value, for the few fields whose shape is free-form (an audit entry's `details`).
/// Integers are kept apart from other numbers so a 64-bit id or count round-trips exactly.
public enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// Any encodable value as JSON (through the API's encoding).
    public init(encoding value: some Encodable) throws {
        self = try APIJSON.decode(JSONValue.self, from: try APIJSON.encode(value))
    }

    /// The value read as one of the API's types, e.g. an audit entry's details as `KeyChangesDetails`.
    public func decode<T: Decodable>(as type: T.Type = T.self) throws -> T {
        try APIJSON.decode(T.self, from: try APIJSON.encode(self))
    }

    /// The member `key` of an object; nil for anything else.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }
}
