import Foundation
import GatehouseCore
import HTTPTypes
import Hummingbird
import Mustache
import NIOCore

/// Renders the console's templates (compiled into the binary) and answers with the console's
/// security headers. Mustache escapes every `{{value}}`; the only unescaped values (`{{{…}}}`)
/// are SVG charts this module draws from numbers and escaped labels.
public struct PageRenderer: Sendable {
    let library: MustacheLibrary

    public init() throws {
        var library = MustacheLibrary()
        for (name, text) in ConsoleBundle.templates { try library.register(text, named: name) }
        self.library = library
    }

    /// Every console response carries these: no script or style but the console's own, no
    /// framing, no sniffing, no referrer outside the console.
    public static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            + "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        .xContentTypeOptions: "nosniff",
        .xFrameOptions: "DENY",
        .referrerPolicy: "same-origin",
        .cacheControl: "no-store",
    ]

    public func page(_ template: String, _ context: Any, status: HTTPResponse.Status = .ok, setCookie: [String] = []) -> Response {
        let html = library.render(context, withTemplate: template) ?? "template \(template) is missing"
        return Self.respond(status: status, contentType: "text/html; charset=utf-8", body: html, setCookie: setCookie)
    }

    static func respond(status: HTTPResponse.Status, contentType: String, body: String, setCookie: [String] = [],
                        extra: HTTPFields = [:]) -> Response {
        var headers = securityHeaders
        headers[.contentType] = contentType
        for cookie in setCookie { headers.append(HTTPField(name: .setCookie, value: cookie)) }
        headers.append(contentsOf: extra)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// A redirect (303: the browser follows with GET) with the console's headers.
    static func redirect(_ location: String, setCookie: [String] = []) -> Response {
        respond(status: .seeOther, contentType: "text/plain; charset=utf-8", body: "", setCookie: setCookie, extra: [.location: location])
    }
}

extension HTTPField.Name {
    static let xContentTypeOptions = Self("X-Content-Type-Options")!
    static let xFrameOptions = Self("X-Frame-Options")!
    static let referrerPolicy = Self("Referrer-Policy")!
}
