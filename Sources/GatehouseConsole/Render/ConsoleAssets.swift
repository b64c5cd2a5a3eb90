import Crypto
import Foundation
import GatehouseCore
import Hummingbird

/// The console's stylesheet, script and icon, served from memory with their type and an ETag.
struct ConsoleAssets: Sendable {
    struct Asset: Sendable {
        var contentType: String
        var body: String
        var etag: String
    }
    let byName: [String: Asset]

    init() {
        var byName: [String: Asset] = [:]
        for (name, text) in ConsoleBundle.assets {
            let type = switch (name as NSString).pathExtension {
            case "css": "text/css; charset=utf-8"
            case "js": "text/javascript; charset=utf-8"
            case "svg": "image/svg+xml"
            default: "application/octet-stream"
            }
            byName[name] = Asset(contentType: type, body: text, etag: "\"" + String(Hex.sha256(text).prefix(16)) + "\"")
        }
        self.byName = byName
    }

    func response(_ name: String, ifNoneMatch: String?) -> Response {
        guard let asset = byName[name] else {
            return PageRenderer.respond(status: .notFound, contentType: "text/plain; charset=utf-8", body: "no such asset")
        }
        if ifNoneMatch == asset.etag {
            return PageRenderer.respond(status: .notModified, contentType: asset.contentType, body: "", extra: [.eTag: asset.etag])
        }
        var response = PageRenderer.respond(status: .ok, contentType: asset.contentType, body: asset.body, extra: [.eTag: asset.etag])
        // Revalidated each time (a cheap 304): a new binary's assets are seen at once.
        response.headers[.cacheControl] = "no-cache"
        return response
    }
}
