import Foundation

/// A browser-like client for the console's HTML pages: keeps cookies, signs in through the real
/// form, sends each form's CSRF token, and does not follow redirects (tests look at them).
public final class ConsoleClient: @unchecked Sendable {
    public let port: Int
    private let lock = NSLock()
    private var cookies: [String: String] = [:]

    public struct Page: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var html: String
        public func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
        /// Where a redirect points.
        public var location: String? { header("location") }
        /// The value of the first `<input name="_csrf" value="…">` on the page.
        public var csrfToken: String? { ConsoleClient.inputValue("_csrf", in: html) }
    }

    public init(port: Int) { self.port = port }

    public func get(_ target: String, headers: [(String, String)] = []) async throws -> Page {
        try await send("GET", target, body: nil, headers: headers)
    }

    /// Posts a urlencoded form; `csrf` nil sends the token of `csrfFrom` (a page on the console).
    public func post(_ target: String, form: [(String, String)], csrfFrom: String? = "/", includeCSRF: Bool = true,
                     headers: [(String, String)] = []) async throws -> Page {
        var fields = form
        if includeCSRF, let source = csrfFrom, !fields.contains(where: { $0.0 == "_csrf" }) {
            let page = try await get(source)
            guard let token = page.csrfToken else { throw Failure("no CSRF token on \(source) (status \(page.status))") }
            fields.append(("_csrf", token))
        }
        let body = fields.map { Self.encode($0.0) + "=" + Self.encode($0.1) }.joined(separator: "&")
        return try await send("POST", target, body: body, headers: [("Content-Type", "application/x-www-form-urlencoded")] + headers)
    }

    /// Signs in through `/login`: with an email and password, or the admin token (email empty).
    @discardableResult
    public func signIn(email: String = "", password: String) async throws -> Page {
        let page = try await post("/login", form: [("email", email), ("password", password), ("next", "/")], csrfFrom: "/login")
        return page
    }

    public func cookie(_ name: String) -> String? { lock.withLock { cookies[name] } }

    func send(_ method: String, _ target: String, body: String?, headers: [(String, String)]) async throws -> Page {
        let jar = lock.withLock { cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ") }
        // Built here rather than by RawHTTP.send so a test can send its own Host header.
        var request = "\(method) \(target) HTTP/1.1\r\n"
        if !headers.contains(where: { $0.0.lowercased() == "host" }) { request += "Host: 127.0.0.1:\(port)\r\n" }
        // As a browser moving between the console's own pages (the flash after a form needs it).
        if !headers.contains(where: { $0.0.lowercased() == "referer" }) { request += "Referer: http://127.0.0.1:\(port)/\r\n" }
        request += "Connection: close\r\n"
        for (name, value) in (jar.isEmpty ? [] : [("Cookie", jar)]) + headers { request += "\(name): \(value)\r\n" }
        if let body { request += "Content-Length: \(body.utf8.count)\r\n" }
        request += "\r\n" + (body ?? "")
        let answer = try await RawHTTP.exchange(port: port, bytes: Array(request.utf8), timeout: .seconds(30))
        let text = answer.text
        let head = text.components(separatedBy: "\r\n\r\n").first ?? ""
        var parsed: [(String, String)] = []
        for line in head.split(separator: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            parsed.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        lock.withLock {
            for (name, value) in parsed where name.lowercased() == "set-cookie" {
                let pair = value.split(separator: ";").first.map(String.init) ?? ""
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { continue }
                let maxAgeZero = value.lowercased().contains("max-age=0")
                cookies[String(parts[0])] = maxAgeZero || parts[1].isEmpty ? nil : String(parts[1])
            }
        }
        return Page(status: answer.status, headers: parsed, html: answer.body)
    }

    public static func inputValue(_ name: String, in html: String) -> String? {
        guard let range = html.range(of: "name=\"\(name)\" value=\"") else { return nil }
        let rest = html[range.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return String(rest[..<end])
    }

    static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
