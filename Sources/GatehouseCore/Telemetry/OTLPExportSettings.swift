import Foundation

/// `telemetry.otlp_export`: send every span (Gatehouse's own and those it ingests) on to an
/// OpenTelemetry collector or vendor over OTLP/HTTP protobuf, at `<endpoint>/v1/traces`.
public struct OTLPExportSettings: Sendable, Equatable {
    /// The collector's base URL (`http://otel-collector:4318`); `/v1/traces` is appended.
    public var endpoint: String
    /// Sent with every export (a vendor's API key, say): secrets, never logged, printed masked.
    public var headers: [String: String]
    /// Per export request.
    public var timeoutSeconds: Double

    /// Spans waiting to be sent beyond this are dropped (and counted).
    public static let queueCapacity = 20_000
    /// Most spans per export request.
    public static let batchSize = 512
    public static let timeoutRange = 0.1...120.0

    public init(endpoint: String, headers: [String: String] = [:], timeoutSeconds: Double = 10) {
        self.endpoint = endpoint
        self.headers = headers
        self.timeoutSeconds = timeoutSeconds
    }

    /// Where spans are POSTed.
    public var tracesURL: String {
        (endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint) + "/v1/traces"
    }
}

extension YAMLReader {
    /// `otlp_export: {endpoint, headers: {name: value}, timeout: 10s}`.
    mutating func readOTLPExport(_ value: Any) -> OTLPExportSettings? {
        let at = "telemetry.otlp_export"
        guard let map = mapping(value, at: at) else { return nil }
        check(map, at: at, allowed: ["endpoint", "headers", "timeout"])
        guard let endpoint = string(map["endpoint"], at: "\(at).endpoint", required: true) else { return nil }
        var settings = OTLPExportSettings(endpoint: endpoint)
        if let raw = map["headers"], !(raw is NSNull), let headers = mapping(raw, at: "\(at).headers") {
            for (name, value) in headers {
                if let text = string(value, at: "\(at).headers.\(name)") { settings.headers[name] = text }
            }
        }
        if let text = string(map["timeout"], at: "\(at).timeout") {
            if let micros = TimeExpressions.durationMicros(text) {
                settings.timeoutSeconds = Double(micros) / 1_000_000
            } else {
                errors.append(.init(key: "\(at).timeout", problem: "\"\(text)\" is not a duration, such as 10s or 500ms"))
            }
        }
        return settings
    }

    static func validateOTLPExport(_ settings: OTLPExportSettings?) -> [ConfigError] {
        guard let settings else { return [] }
        let at = "telemetry.otlp_export"
        var errors: [ConfigError] = []
        let url = URLComponents(string: settings.endpoint)
        if url?.scheme.map({ ["http", "https"].contains($0.lowercased()) }) != true || url?.host?.isEmpty != false {
            // The value may carry a credential in its user part or query: it is not repeated.
            errors.append(.init(key: "\(at).endpoint", problem: "must be an http:// or https:// URL with a host, such as http://otel-collector:4318"))
        } else if url?.query != nil || url?.fragment != nil {
            errors.append(.init(key: "\(at).endpoint", problem: "must not have a query or fragment: /v1/traces is appended to it"))
        }
        for name in settings.headers.keys.sorted() {
            let valid = !name.isEmpty && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }
            if !valid { errors.append(.init(key: "\(at).headers", problem: "\"\(name)\" is not a valid HTTP header name")) }
            if let value = settings.headers[name], value.utf8.contains(where: { $0 == 0x0A || $0 == 0x0D || $0 == 0 }) {
                errors.append(.init(key: "\(at).headers.\(name)", problem: "must not contain line breaks"))
            }
        }
        let range = OTLPExportSettings.timeoutRange
        if !range.contains(settings.timeoutSeconds) {
            errors.append(.init(key: "\(at).timeout", problem: "must be between 100ms and \(Int(range.upperBound))s"))
        }
        return errors
    }
}
