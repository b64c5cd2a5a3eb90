import Foundation
import GatehouseAPI

/// `/docs`: a readable reference page made from the OpenAPI document — every operation by tag,
/// with its access, parameters, request body and answers, and every schema as a field list.
/// Plain HTML and CSS (no script, nothing fetched), so it works offline and behind any proxy.
enum APIReferencePage {
    static let html: Result<String, OpenAPIDocument.MergeError> = {
        do {
            return .success(render(try OpenAPIDocument.merged()))
        } catch let error as OpenAPIDocument.MergeError {
            return .failure(error)
        } catch {
            return .failure(OpenAPIDocument.MergeError(description: "\(error)"))
        }
    }()

    static let methods = ["get", "post", "put", "patch", "delete"]

    static func render(_ document: [String: Any]) -> String {
        let info = document["info"] as? [String: Any] ?? [:]
        let paths = document["paths"] as? [String: Any] ?? [:]
        let components = document["components"] as? [String: Any] ?? [:]
        let schemas = components["schemas"] as? [String: Any] ?? [:]
        let renderer = SchemaRenderer(document: document)

        // Operations grouped by their first tag, in the order the document lists its tags.
        var byTag: [String: [(path: String, method: String, operation: [String: Any])]] = [:]
        for path in paths.keys.sorted() {
            guard let item = paths[path] as? [String: Any] else { continue }
            for method in methods {
                guard let operation = item[method] as? [String: Any] else { continue }
                let tag = (operation["tags"] as? [String])?.first ?? "other"
                byTag[tag, default: []].append((path, method, operation))
            }
        }
        var tagOrder = (document["tags"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        tagOrder += byTag.keys.filter { !tagOrder.contains($0) }.sorted()
        let tagDescriptions = Dictionary((document["tags"] as? [[String: Any]] ?? []).compactMap { tag in
            (tag["name"] as? String).map { ($0, tag["description"] as? String ?? "") }
        }, uniquingKeysWith: { a, _ in a })

        var out = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(info["title"] as? String ?? "API")) reference</title>
        <style>\(css)</style></head><body>
        <nav><p class="brand">\(escape(info["title"] as? String ?? "API")) <span class="version">\(escape(info["version"] as? String ?? ""))</span></p>
        <p><a href="/openapi.json">openapi.json</a></p>
        """
        for tag in tagOrder {
            guard let operations = byTag[tag] else { continue }
            out += "<h3>\(escape(tag))</h3><ul>"
            for op in operations {
                out += "<li><a href=\"#\(anchor(op.method, op.path))\"><span class=\"m \(op.method)\">\(op.method.uppercased())</span> \(escape(op.path))</a></li>"
            }
            out += "</ul>"
        }
        out += "<h3>schemas</h3><ul>"
        for name in schemas.keys.sorted() { out += "<li><a href=\"#schema-\(escape(name))\">\(escape(name))</a></li>" }
        out += "</ul></nav><main>"
        out += "<h1>\(escape(info["title"] as? String ?? "API"))</h1>"
        if let summary = info["summary"] as? String { out += "<p class=\"lead\">\(inline(summary))</p>" }
        if let description = info["description"] as? String { out += paragraphs(description) }

        for tag in tagOrder {
            guard let operations = byTag[tag] else { continue }
            out += "<section><h2 id=\"tag-\(escape(tag))\">\(escape(tag))</h2>"
            if let d = tagDescriptions[tag], !d.isEmpty { out += "<p>\(inline(d))</p>" }
            for op in operations { out += operationHTML(op.path, op.method, op.operation, renderer: renderer) }
            out += "</section>"
        }
        out += "<section><h2 id=\"schemas\">Schemas</h2>"
        for name in schemas.keys.sorted() {
            out += "<div class=\"schema\"><h3 id=\"schema-\(escape(name))\">\(escape(name))</h3>"
            out += renderer.html(schemas[name] ?? [:], expandRefs: false)
            out += "</div>"
        }
        out += "</section></main></body></html>\n"
        return out
    }

    static func operationHTML(_ path: String, _ method: String, _ operation: [String: Any], renderer: SchemaRenderer) -> String {
        var out = "<article class=\"op\" id=\"\(anchor(method, path))\">"
        out += "<h3><span class=\"m \(method)\">\(method.uppercased())</span> <code>\(escape(path))</code></h3>"
        if let summary = operation["summary"] as? String { out += "<p class=\"summary\">\(inline(summary))</p>" }
        let security = operation["security"] as? [[String: Any]]
        out += security.map { $0.isEmpty ? "" : "<p class=\"access\">Needs <code>Authorization: Bearer &lt;GATEHOUSE_ADMIN_TOKEN&gt;</code>.</p>" } ?? ""
        if let description = operation["description"] as? String { out += paragraphs(description) }

        let parameters = (operation["parameters"] as? [Any] ?? []).compactMap { renderer.resolve($0) }
        if !parameters.isEmpty {
            out += "<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th>description</th></tr>"
            for p in parameters {
                let required = (p["required"] as? Bool) == true ? " <span class=\"req\">required</span>" : ""
                out += "<tr><td><code>\(escape(p["name"] as? String ?? ""))</code>\(required)</td><td>\(escape(p["in"] as? String ?? ""))</td>"
                out += "<td>\(renderer.typeName(p["schema"] ?? [:]))</td><td>\(inline(p["description"] as? String ?? ""))</td></tr>"
            }
            out += "</table>"
        }
        if let body = operation["requestBody"].flatMap(renderer.resolve) {
            out += "<h4>Request body</h4>"
            if let d = body["description"] as? String { out += "<p>\(inline(d))</p>" }
            for (media, content) in (body["content"] as? [String: Any] ?? [:]).sorted(by: { $0.key < $1.key }) {
                out += "<p class=\"media\"><code>\(escape(media))</code></p>"
                if let schema = (content as? [String: Any])?["schema"] { out += renderer.html(schema, expandRefs: true) }
            }
        }
        out += "<h4>Responses</h4>"
        for (status, value) in (operation["responses"] as? [String: Any] ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard let response = renderer.resolve(value) else { continue }
            out += "<div class=\"response\"><p><span class=\"status s\(status.prefix(1))\">\(escape(status))</span> \(inline(response["description"] as? String ?? ""))</p>"
            for (media, content) in (response["content"] as? [String: Any] ?? [:]).sorted(by: { $0.key < $1.key }) {
                out += "<p class=\"media\"><code>\(escape(media))</code></p>"
                if let schema = (content as? [String: Any])?["schema"] { out += renderer.html(schema, expandRefs: status.hasPrefix("2")) }
            }
            out += "</div>"
        }
        return out + "</article>"
    }

    /// Field lists for schemas, following `$ref`s to a bounded depth (schemas may refer to themselves).
    struct SchemaRenderer {
        let document: [String: Any]

        func resolve(_ value: Any) -> [String: Any]? {
            guard var node = value as? [String: Any] else { return nil }
            var hops = 0
            while let ref = node["$ref"] as? String, hops < 8, let target = lookup(ref) {
                node = target
                hops += 1
            }
            return node
        }

        func lookup(_ ref: String) -> [String: Any]? {
            guard ref.hasPrefix("#/") else { return nil }
            var node: Any = document
            for part in ref.dropFirst(2).split(separator: "/") {
                guard let next = (node as? [String: Any])?[String(part)] else { return nil }
                node = next
            }
            return node as? [String: Any]
        }

        /// A short type: `string`, `integer | null`, `array of LogLine`, a link for a reference.
        func typeName(_ value: Any) -> String {
            guard let node = value as? [String: Any] else { return "any" }
            if let ref = node["$ref"] as? String {
                let name = String(ref.split(separator: "/").last ?? "")
                return ref.hasPrefix("#/components/schemas/") ? "<a href=\"#schema-\(escape(name))\">\(escape(name))</a>" : escape(name)
            }
            for combinator in ["oneOf", "anyOf", "allOf"] {
                if let options = node[combinator] as? [Any] { return options.map(typeName).joined(separator: combinator == "allOf" ? " &amp; " : " | ") }
            }
            var types: [String]
            if let list = node["type"] as? [String] { types = list } else if let single = node["type"] as? String { types = [single] } else { types = ["any"] }
            types = types.map { type in
                switch type {
                case "array": return "array of " + typeName(node["items"] ?? [:])
                case "object" where node["properties"] == nil:
                    if let values = node["additionalProperties"] as? [String: Any] { return "map of " + typeName(values) }
                    return "object"
                default:
                    var text = escape(type)
                    if let format = node["format"] as? String { text += " (\(escape(format)))" }
                    return text
                }
            }
            var text = types.joined(separator: " | ")
            if let values = node["enum"] as? [Any] {
                text += ": " + values.map { "<code>\(escape(String(describing: $0)))</code>" }.joined(separator: ", ")
            }
            return text
        }

        func html(_ value: Any, expandRefs: Bool, depth: Int = 0) -> String {
            guard let raw = value as? [String: Any] else { return "" }
            if raw["$ref"] != nil, !expandRefs || depth > 0 { return "<p class=\"type\">\(typeName(raw))</p>" }
            guard let node = resolve(raw) else { return "" }
            var out = ""
            if let d = node["description"] as? String, depth == 0 { out += "<p>\(inline(d))</p>" }
            let properties = node["properties"] as? [String: Any]
            if let properties, depth < 5 {
                let required = Set(node["required"] as? [String] ?? [])
                out += "<ul class=\"fields\">"
                for name in properties.keys.sorted() {
                    let property = properties[name] ?? [:]
                    let resolved = resolve(property) ?? [:]
                    out += "<li><code>\(escape(name))</code> <span class=\"type\">\(typeName(property))</span>"
                    if required.contains(name) { out += " <span class=\"req\">always</span>" }
                    if let d = (property as? [String: Any])?["description"] as? String ?? resolved["description"] as? String { out += " — \(inline(d))" }
                    // Inline objects (not references) are shown in place.
                    if (property as? [String: Any])?["$ref"] == nil {
                        if resolved["properties"] != nil { out += html(resolved, expandRefs: false, depth: depth + 1) }
                        if let items = resolved["items"] as? [String: Any], items["$ref"] == nil, items["properties"] != nil {
                            out += html(items, expandRefs: false, depth: depth + 1)
                        }
                    }
                    out += "</li>"
                }
                out += "</ul>"
            } else {
                out += "<p class=\"type\">\(typeName(node))</p>"
            }
            return out
        }
    }

    static func anchor(_ method: String, _ path: String) -> String {
        method + "-" + path.map { $0.isLetter || $0.isNumber ? String($0) : "-" }.joined()
    }

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    /// Escaped text with `code` spans and **bold**, the only markup the document's descriptions use.
    static func inline(_ text: String) -> String {
        var out = ""
        for (i, part) in escape(text).components(separatedBy: "`").enumerated() {
            if i % 2 == 1 { out += "<code>\(part)</code>"; continue }
            for (j, piece) in part.components(separatedBy: "**").enumerated() { out += j % 2 == 1 ? "<strong>\(piece)</strong>" : piece }
        }
        return out
    }

    static func paragraphs(_ text: String) -> String {
        text.components(separatedBy: "\n\n").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
            .map { "<p>\(inline($0.replacingOccurrences(of: "\n", with: " ")))</p>" }.joined()
    }

    static let css = """
    body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;display:flex}
    nav{width:290px;flex:none;height:100vh;overflow:auto;position:sticky;top:0;background:#f4f6f9;border-right:1px solid #dde2ea;padding:12px 16px;box-sizing:border-box;font-size:13px}
    nav ul{list-style:none;padding:0;margin:0 0 8px}nav li{margin:2px 0}nav a{color:#1d2330;text-decoration:none}nav a:hover{text-decoration:underline}
    nav h3{margin:14px 0 4px;font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:#5b6475}
    .brand{font-weight:700;font-size:16px;margin:4px 0}.version{font-weight:400;color:#5b6475;font-size:13px}
    main{max-width:980px;padding:24px 36px;min-width:0}h1{margin-top:0}.lead{font-size:17px;color:#3a4252}
    section{margin-top:28px}h2{border-bottom:2px solid #dde2ea;padding-bottom:4px;text-transform:capitalize}
    .op{border:1px solid #dde2ea;border-radius:8px;padding:4px 18px 10px;margin:16px 0}.op h3{font-size:16px;word-break:break-all}
    .m{display:inline-block;min-width:56px;text-align:center;border-radius:4px;color:#fff;font:700 12px/20px ui-monospace,monospace;margin-right:4px}
    .get{background:#2f7d32}.post{background:#1f5fbf}.patch{background:#9a6700}.put{background:#6f42c1}.delete{background:#b42318}
    code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px;background:#f0f2f6;padding:1px 4px;border-radius:3px}
    table{border-collapse:collapse;width:100%;font-size:14px}td,th{border:1px solid #dde2ea;padding:4px 8px;text-align:left;vertical-align:top}
    .req{font-size:11px;color:#b42318;text-transform:uppercase}.type{color:#5b6475}.type a{color:#1f5fbf}
    .fields{padding-left:18px;margin:4px 0}.fields li{margin:3px 0}.summary{font-weight:600}.access{color:#9a6700}
    .status{display:inline-block;border-radius:4px;padding:0 6px;font:700 12px/20px ui-monospace,monospace;background:#dde2ea}
    .s2{background:#d3f0d5}.s4{background:#fde7c9}.s5{background:#f9d2cf}.media{margin:2px 0;color:#5b6475}
    .schema{border-top:1px solid #eef0f4}
    """
}
