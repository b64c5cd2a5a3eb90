import Foundation
import GatehouseCore

/// An opaque page cursor: the (timestamp, id) of the last row of a page, in URL-safe base64.
enum PageCursor {
    static func encode(ts: Int64, id: String) -> String {
        Base64URL.encode(Array("\(ts):\(id)".utf8))
    }

    static func decode(_ cursor: String) -> (Int64, String)? {
        guard cursor.count <= 512, let bytes = Base64URL.decode(cursor) else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let colon = text.firstIndex(of: ":"), let ts = Int64(text[..<colon]) else { return nil }
        let id = String(text[text.index(after: colon)...])
        return id.isEmpty ? nil : (ts, id)
    }
}
