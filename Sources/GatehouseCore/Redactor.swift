import Crypto
import Foundation
import Yams

/// Keeps secrets out of logs, stored records, error messages and printed configuration.
public enum Redactor {
    public static let mask = "[REDACTED]"

    /// Header names whose values are credentials and never stored or logged. As key names they
    /// are credentials too (`isSecretKey`).
    public static let secretHeaderNames: Set<String> = [
        "authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "set-cookie",
        "x-sentry-auth", "helicone-auth", "openai-api-key", "anthropic-api-key", "x-goog-api-key",
    ]

    public static func isSecretHeader(_ name: String) -> Bool { secretHeaderNames.contains(name.lowercased()) }

    /// Header names whose values say who calls and in what format, never who may: the only
    /// configured headers printed as they are. Any other may be a gateway's key under a name of
    /// its own (`Ocp-Apim-Subscription-Key`, `X-Signature`), so it prints masked.
    public static let harmlessHeaderNames: Set<String> = [
        "accept", "content-type", "user-agent", "http-referer", "referer", "x-title",
        "anthropic-version", "anthropic-beta", "openai-beta", "openai-organization", "openai-project",
    ]

    public static func isHarmlessHeader(_ name: String) -> Bool { harmlessHeaderNames.contains(name.lowercased()) }

    /// Parts of key names that mark a credential (`password`, `x_auth_token`, `stripeApiKey`).
    /// With `secretHeaderNames`, the one list of secret names: every name `isSecretKey` accepts
    /// contains one of these or is a header name, so log ingest can scan raw bytes for them
    /// before looking closer.
    public static let secretKeyMarkers = ["password", "passwd", "secret", "token", "api_key", "apikey", "api-key", "private_key",
                                          "access_key", "sentry_key"]

    /// Key names whose values are credentials wherever they appear: a log line's attributes, a
    /// Sentry event's request headers, a call's `Gatehouse-Property-*` names, a provider's
    /// configured headers, a URL's query.
    public static func isSecretKey(_ key: String) -> Bool {
        let k = key.lowercased()
        if secretHeaderNames.contains(k) { return true }
        // "token" names a credential (`token`, `x_auth_token`, `csrfToken`), not a count
        // (`max_tokens`, `token_count`): an LLM app's logs are full of the latter.
        if k.hasSuffix("token") { return true }
        return secretKeyMarkers.contains { $0 != "token" && k.contains($0) }
    }

    /// A URL query parameter whose value is a credential: every secret key name, and, since
    /// query names are terse (`?key=`, `?sig_token=`) and a URL's query holds no counts, any
    /// name containing `key` or `token`, and signatures.
    public static func isSecretQueryName(_ name: String) -> Bool {
        let n = name.lowercased()
        // A presigned URL's signature (`sig=`, `X-Amz-Signature=`) opens what it signs.
        return isSecretKey(n) || n.contains("key") || n.contains("token") || n == "sig" || n.contains("signature")
    }

    /// How many strings holding JSON one `redactJSON(insideStrings: true)` parses; past it they
    /// are masked by the text scanner, which builds no objects (a body of 250,000 `"{}"` strings
    /// is not 250,000 parses).
    static let nestedParseBudget = 1_000

    /// A JSON value (from JSONSerialization) with the values of secret-named keys masked, at any depth.
    /// With `insideStrings`, a string that holds JSON itself (a tool call's `arguments`, a tool
    /// result) is masked the same way.
    public static func redactJSON(_ value: Any, depth: Int = 0, insideStrings: Bool = false) -> Any {
        var budget = insideStrings ? nestedParseBudget : 0
        return redactJSON(value, depth: depth, insideStrings: insideStrings, budget: &budget)
    }

    private static func redactJSON(_ value: Any, depth: Int, insideStrings: Bool, budget: inout Int) -> Any {
        // Deeper than anyone nests real data: masked whole rather than left unread.
        guard depth < 64 else { return mask }
        if let object = value as? [String: Any] {
            var copy = object
            for (key, inner) in object {
                copy[key] = isSecretKey(key) ? mask : redactJSON(inner, depth: depth + 1, insideStrings: insideStrings, budget: &budget)
            }
            return copy
        }
        if let array = value as? [Any] {
            // Headers often come as [[name, value], …] pairs.
            if array.count == 2, let name = array[0] as? String, isSecretKey(name) { return [name, mask] }
            return array.map { redactJSON($0, depth: depth + 1, insideStrings: insideStrings, budget: &budget) }
        }
        guard let text = value as? String else { return value }
        if insideStrings, let opening = text.utf8.first(where: { $0 > 0x20 }), opening == UInt8(ascii: "{") || opening == UInt8(ascii: "[") {
            if budget > 0, depth + 1 < 64 {
                budget -= 1
                if let inner = JSONDecoderBridge.object(Array(text.utf8)), inner is [String: Any] || inner is [Any] {
                    let masked = redactJSON(inner, depth: depth + 1, insideStrings: true, budget: &budget)
                    // Only an object or array serializes; the depth limit's bare mask stands for the whole string.
                    guard masked is [String: Any] || masked is [Any],
                          let data = try? JSONSerialization.data(withJSONObject: masked, options: [.sortedKeys, .withoutEscapingSlashes]) else { return mask }
                    return String(decoding: data, as: UTF8.self)
                }
            }
            // JSON cut short (a stream's last arguments), or past the budget: masked as text.
            return redactJSONText(text)
        }
        // Values under innocent names hold secrets too: a frame's `client = "https://key@host/42"`.
        return scrubText(maskURLCredentials(text))
    }

    /// Text that should be JSON but does not parse (cut at a size limit, a lone surrogate
    /// escape) with what `redactJSON` would mask masked (`JSONTextMasker`), then scrubbed like
    /// free text.
    public static func redactJSONText(_ text: String) -> String {
        scrubText(maskURLCredentials(JSONTextMasker.mask(text)))
    }

    /// `text` with every secret of at least 8 characters masked, longest first (so a secret
    /// inside another leaves no piece of the longer one behind).
    public static func maskSecrets(_ secrets: [String], in text: String) -> String {
        var text = text
        for secret in secrets.filter({ $0.count >= 8 }).sorted(by: { $0.count > $1.count }) where text.contains(secret) {
            text = text.replacingOccurrences(of: secret, with: mask)
        }
        return text
    }

    /// Every `scheme://user[:password]@host` inside `text` with its user part masked
    /// (`scheme://[REDACTED]@host`): database URLs, Sentry DSNs, basic-auth links.
    public static func maskURLCredentials(_ text: String) -> String {
        guard text.contains("://"), text.contains("@") else { return text }
        var result = ""
        var rest = text[...]
        while let scheme = rest.range(of: "://") {
            result += rest[..<scheme.upperBound]
            rest = rest[scheme.upperBound...]
            // The authority ends at the first /, ?, # or whitespace; an @ before that ends user info.
            let authorityEnd = rest.firstIndex { "/?#".contains($0) || $0.isWhitespace } ?? rest.endIndex
            if let at = rest[..<authorityEnd].lastIndex(of: "@"), at > rest.startIndex {
                result += mask
                rest = rest[at...]
            }
        }
        return result + rest
    }

    /// Trace attributes (Sentry span `data` and tags, OpenTelemetry attributes) with credentials
    /// masked where their names alone do not say so: HTTP headers recorded as
    /// `http.request.header.authorization` or `cookie`, and secret query values in URLs
    /// (`url.full`, `http.url`, any `https://…` value) and query strings (`http.query`,
    /// `url.query`). Then `redactJSON` masks secret-named keys at any depth.
    public static func redactAttributes(_ attributes: [String: Any], depth: Int = 0) -> [String: Any] {
        var copy = attributes
        for (key, value) in attributes { copy[key] = redactAttribute(key, value, depth: depth) }
        return redactJSON(copy) as? [String: Any] ?? [:]
    }

    /// One attribute's value: a header-named one masked whatever its shape (OpenTelemetry records
    /// captured headers as lists of strings), URLs and query strings in strings and lists, and the
    /// same inside nested objects and lists of objects (span events, links).
    static func redactAttribute(_ key: String, _ value: Any, depth: Int) -> Any {
        let name = key.lowercased()
        let last = String(name.split(separator: ".").last ?? Substring(name)).replacingOccurrences(of: "_", with: "-")
        if isSecretHeader(last) || name.contains("authorization") || name.contains("cookie") { return mask }
        guard depth < 16 else { return value }
        if let nested = value as? [String: Any] { return redactAttributes(nested, depth: depth + 1) }
        if let list = value as? [Any] { return list.map { redactAttribute(key, $0, depth: depth + 1) } }
        guard let text = value as? String else { return value }
        if text.contains("://") { return redactURL(maskURLCredentials(text)) }
        if name.hasSuffix("query") || name.hasSuffix("query-string") || name.hasSuffix("query_string") {
            return redactFormEncoded(text.hasPrefix("?") ? String(text.dropFirst()) : text)
        }
        return text
    }

    /// A URL with its password and secret query values (`isSecretQueryName`, or `isSecretName`
    /// when given) replaced, also in a `#name=value` fragment (OAuth's implicit flow puts the
    /// access token there).
    public static func redactURL(_ text: String, isSecretName: (String) -> Bool = isSecretQueryName) -> String {
        guard var components = URLComponents(string: text) else { return mask }
        if components.password != nil { components.password = "REDACTED" }
        if let items = components.queryItems {
            components.queryItems = items.map { item in
                isSecretName(item.name) ? URLQueryItem(name: item.name, value: "REDACTED") : item
            }
        }
        if let fragment = components.percentEncodedFragment, fragment.contains("=") {
            // `[REDACTED]`'s brackets are not allowed in a fragment (setting them traps).
            components.percentEncodedFragment = redactFormEncoded(fragment, isSecretName: isSecretName, replacement: "REDACTED")
        }
        return components.string ?? mask
    }

    /// `a=1&password=x` (a query string, a form body) with the values of secret names masked;
    /// everything else, including its encoding, kept as sent.
    public static func redactFormEncoded(_ text: String, isSecretName: (String) -> Bool = isSecretQueryName,
                                         replacement: String = mask) -> String {
        text.split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
            let encodedName = pair.prefix { $0 != "=" }
            let name = encodedName.replacingOccurrences(of: "+", with: " ")
            guard isSecretName(name.removingPercentEncoding ?? name) else { return String(pair) }
            return String(encodedName) + "=" + replacement
        }.joined(separator: "&")
    }

    /// A URL reduced to its scheme and host: a webhook's path is its secret.
    public static func redactURLPath(_ text: String) -> String {
        guard let c = URLComponents(string: text), let scheme = c.scheme, let host = c.host else { return mask }
        return "\(scheme)://\(host)\(c.port.map { ":\($0)" } ?? "")/\(mask)"
    }

    /// A short, stable, non-reversible label for a credential, for telling keys apart in records.
    /// Shows the key's scheme prefix (e.g. `sk-…`) and a hash fragment; never the key itself.
    public static func fingerprint(ofSecret secret: String, hash: (String) -> String) -> String {
        let prefix = secret.hasPrefix("sk-ant-") ? "sk-ant-" : secret.hasPrefix("sk-") ? "sk-" : ""
        return prefix + "…" + String(hash(secret).prefix(12))
    }

    /// Replaces anything that looks like a provider key inside free text (e.g. an upstream error
    /// message that echoes "Incorrect API key provided: sk-abc…").
    public static func scrubText(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.count)
        var index = text.startIndex
        while index < text.endIndex {
            let rest = text[index...]
            if rest.hasPrefix(KeyMint.secretPrefix) {
                // A Gatehouse key (`gh-` and 40 base62 characters): masked wherever it is pasted,
                // also cut short (32 are far more than any word that happens to start `gh-`).
                let run = rest.dropFirst(KeyMint.secretPrefix.count).prefix { $0.isASCII && ($0.isLetter || $0.isNumber) }
                if run.count >= 32 {
                    result += mask
                    index = run.endIndex
                    continue
                }
            }
            if rest.hasPrefix("sk-") || rest.hasPrefix("Bearer ") {
                let start = rest.hasPrefix("Bearer ") ? text.index(index, offsetBy: 7) : index
                var end = start
                while end < text.endIndex, text[end].isLetter || text[end].isNumber || "-_*.".contains(text[end]) {
                    end = text.index(after: end)
                }
                if text.distance(from: start, to: end) >= 8 {
                    result += text[index..<start] + mask
                    index = end
                    continue
                }
            }
            result.append(text[index])
            index = text.index(after: index)
        }
        return result
    }
}

extension Redactor {
    /// `sk-…1a2b3c4d5e6f`: the key's scheme prefix and the first 12 hex digits of its SHA-256.
    public static func fingerprint(ofSecret secret: String) -> String {
        fingerprint(ofSecret: secret) { text in
            Hex.sha256(text)
        }
    }
}
