import Foundation

/// An opaque page cursor: the (timestamp, id) of the last row of a page, in URL-safe base64.
enum PageCursor {
    static func encode(ts: Int64, id: String) -> String {
        Data("\(ts):\(id)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ cursor: String) -> (Int64, String)? {
        var base64 = cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard cursor.count <= 512, let data = Data(base64Encoded: base64) else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        guard let colon = text.firstIndex(of: ":"), let ts = Int64(text[..<colon]) else { return nil }
        let id = String(text[text.index(after: colon)...])
        return id.isEmpty ? nil : (ts, id)
    }
}
