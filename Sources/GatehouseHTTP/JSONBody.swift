import Foundation
import GatehouseAPI
import Hummingbird
import NIOCore

/// Reading the JSON body of a call to Gatehouse's own API: bounded, decoded into one of the API's
/// types, and every mistake a 400 that names the field (`limits[0].per must be a string`).
public enum JSONBody {
    /// The body's bytes (empty when there is none), at most `limit`: 413 beyond it, 400 when its
    /// framing is broken. Neither is the store's fault, so neither may fall into a 5xx.
    public static func collect(_ request: Request, limit: Int) async throws(GatewayError) -> Data {
        do {
            return Data(buffer: try await request.body.collect(upTo: limit))
        } catch is NIOTooManyBytesError {
            throw GatewayError.tooLarge(limit: limit)
        } catch {
            throw GatewayError.invalidRequest("the request body could not be read: its framing is malformed (Transfer-Encoding, chunk sizes or Content-Length)")
        }
    }

    /// `T` from `data`; a body that is not JSON, or a field of the wrong type, is a 400 naming it.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws(GatewayError) -> T {
        do {
            return try APIJSON.decode(T.self, from: data)
        } catch let error as DecodingError {
            let path = path(of: error)
            throw GatewayError.invalidRequest(message(for: error), param: path.isEmpty ? nil : text(path))
        } catch {
            throw GatewayError.invalidRequest(notAnObject)
        }
    }

    public static let notAnObject = "the body must be a JSON object"

    /// The path to the value at fault (for a missing field, including that field).
    public static func path(of error: DecodingError) -> [any CodingKey] {
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context): return context.codingPath
        case .keyNotFound(let key, let context): return context.codingPath + [key]
        @unknown default: return []
        }
    }

    /// `limits[0].per`: list positions in brackets, members after dots.
    public static func text(_ path: [any CodingKey]) -> String {
        var text = ""
        for key in path {
            // A list position; a member that merely looks like a number keeps its own spelling.
            if let index = key.intValue, key.stringValue == "Index \(index)" {
                text += "[\(index)]"
            } else {
                text += (text.isEmpty ? "" : ".") + key.stringValue
            }
        }
        return text
    }

    /// A plain message naming the field: "`retry_after` must be a whole number".
    public static func message(for error: DecodingError) -> String {
        let path = path(of: error)
        guard !path.isEmpty else { return notAnObject }
        let field = "`\(text(path))`"
        switch error {
        case .keyNotFound: return "\(field) is required"
        case .valueNotFound(let type, _), .typeMismatch(let type, _): return "\(field) must be \(expected(type))"
        default: return "\(field) has a value that cannot be read"
        }
    }

    /// A JSON type as a request's author knows it.
    static func expected(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is Int.Type, is Int64.Type: return "a whole number"
        case is Double.Type: return "a number"
        default: return "a list or an object"
        }
    }
}
