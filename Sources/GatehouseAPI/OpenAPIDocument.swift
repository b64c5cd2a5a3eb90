import Foundation
import Yams

/// Gatehouse's OpenAPI 3.1 document: `gatehouse.yaml` (info, shared components) merged with one
/// file per capability (its `paths` and `components`), all embedded in the binary.
public enum OpenAPIDocument {
    public struct MergeError: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// The merged document as a JSON-compatible object. Throws when a source does not parse or two
    /// sources define the same path or component.
    public static func merged(_ sources: [(name: String, yaml: String)] = sources) throws -> [String: Any] {
        guard let rootSource = sources.first(where: { $0.name == "gatehouse.yaml" }) else {
            throw MergeError(description: "gatehouse.yaml is missing")
        }
        var document = try object(rootSource)
        var paths = document["paths"] as? [String: Any] ?? [:]
        var components = document["components"] as? [String: Any] ?? [:]
        for source in sources where source.name != rootSource.name {
            let part = try object(source)
            if let unknown = part.keys.first(where: { $0 != "paths" && $0 != "components" }) {
                throw MergeError(description: "\(source.name): only `paths` and `components` may be given here, not `\(unknown)`")
            }
            for (path, item) in part["paths"] as? [String: Any] ?? [:] {
                guard paths[path] == nil else { throw MergeError(description: "\(source.name): \(path) is already described elsewhere") }
                paths[path] = item
            }
            for (section, entries) in part["components"] as? [String: Any] ?? [:] {
                var merged = components[section] as? [String: Any] ?? [:]
                for (name, value) in entries as? [String: Any] ?? [:] {
                    guard merged[name] == nil else {
                        throw MergeError(description: "\(source.name): components.\(section).\(name) is already defined elsewhere")
                    }
                    merged[name] = value
                }
                components[section] = merged
            }
        }
        document["paths"] = paths
        document["components"] = components
        return document
    }

    /// The document as served at `/openapi.json`, merged once. The sources are compiled in and a
    /// test merges them, so a failure here is a build defect; the route answers 500 with it.
    public static let json: Result<Data, MergeError> = {
        do {
            return .success(try JSONSerialization.data(withJSONObject: try merged(), options: [.sortedKeys, .withoutEscapingSlashes]))
        } catch let error as MergeError {
            return .failure(error)
        } catch {
            return .failure(MergeError(description: "\(error)"))
        }
    }()

    /// YAML 1.2's core schema: `on`, `yes` and unquoted dates stay strings, as JSON would read them.
    static let coreSchema: Resolver = {
        // Only true/false are booleans (YAML 1.1 also reads yes/no/on/off as booleans).
        let schema = Resolver.default.removing(.timestamp).removing(.merge).removing(.value)
        return (try? schema.replacing(.bool, with: "^(?:true|True|TRUE|false|False|FALSE)$")) ?? schema
    }()

    private static func object(_ source: (name: String, yaml: String)) throws -> [String: Any] {
        guard let object = try Yams.load(yaml: source.yaml, coreSchema) as? [String: Any] else {
            throw MergeError(description: "\(source.name) is not a YAML mapping")
        }
        guard JSONSerialization.isValidJSONObject(object) else {
            throw MergeError(description: "\(source.name) holds a value JSON cannot carry")
        }
        return object
    }
}
