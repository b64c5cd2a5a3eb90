import Foundation

/// The one JSON encoding of Gatehouse's own API, used by the server to write answers and by the
/// CLI and the tests to read them. Field names are spelled out in each type's `CodingKeys`
/// (snake_case on the wire), never derived by a key strategy: a strategy would also rewrite the
/// keys of free-form maps such as a key's `metadata`.
public enum APIJSON {
    /// Sorted keys and unescaped slashes, so answers are stable and readable.
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static func decoder() -> JSONDecoder { JSONDecoder() }

    public static func encode<T: Encodable>(_ value: T) throws -> Data { try encoder().encode(value) }

    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T { try decoder().decode(type, from: data) }
}

/// A field of a PATCH-style body that can be absent (leave as is), `null` (clear) or a value.
/// Declare it as `Patch<T>?` and decode it with `decodePatch(_:forKey:)`: plain `Optional`
/// decoding cannot tell `null` from a missing field.
public enum Patch<Value: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    case clear
    case set(Value)

    public var value: Value? {
        if case .set(let v) = self { return v }
        return nil
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        self = container.decodeNil() ? .clear : .set(try container.decode(Value.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .clear: try container.encodeNil()
        case .set(let v): try container.encode(v)
        }
    }
}

extension KeyedDecodingContainer {
    /// nil when the field is absent, `.clear` when it is `null`, `.set` otherwise.
    public func decodePatch<T>(_ type: T.Type, forKey key: Key) throws -> Patch<T>? {
        guard contains(key) else { return nil }
        if try decodeNil(forKey: key) { return .clear }
        return .set(try decode(T.self, forKey: key))
    }
}

extension KeyedEncodingContainer {
    /// Writes nothing for nil, `null` for `.clear`, the value for `.set`.
    public mutating func encodePatch<T>(_ patch: Patch<T>?, forKey key: Key) throws {
        guard let patch else { return }
        try encode(patch, forKey: key)
    }
}

/// An optional field that is always written: `null` when nil, as the API has always answered
/// (`"alias": null`), instead of being left out as synthesized `Codable` would. Reading accepts
/// `null` and a missing field alike.
@propertyWrapper
public struct Nullable<Value: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var wrappedValue: Value?

    public init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        wrappedValue = container.decodeNil() ? nil : try container.decode(Value.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
    }
}

extension KeyedDecodingContainer {
    /// A missing `@Nullable` field reads as nil.
    public func decode<T>(_ type: Nullable<T>.Type, forKey key: Key) throws -> Nullable<T> {
        try decodeIfPresent(Nullable<T>.self, forKey: key) ?? Nullable(wrappedValue: nil)
    }
}
