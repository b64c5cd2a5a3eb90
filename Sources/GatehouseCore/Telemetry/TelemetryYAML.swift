import Foundation

/// Reads the `telemetry:` section of the configuration file.
extension YAMLReader {
    mutating func readTelemetry(_ value: Any, into t: inout TelemetrySettings) {
        guard let map = mapping(value, at: "telemetry") else { return }
        check(map, at: "telemetry", allowed: ["projects", "slow_operations", "retention", "limits", "otlp_export"])
        if let value = map["otlp_export"], !(value is NSNull) { t.otlpExport = readOTLPExport(value) }
        if let list = map["projects"].flatMap({ sequence($0, at: "telemetry.projects") }) {
            t.projects = list.enumerated().compactMap { i, item in
                let at = "telemetry.projects[\(i)]"
                guard let m = mapping(item, at: at) else { return nil }
                check(m, at: at, allowed: ["name", "id", "key", "events_per_minute"])
                let name = string(m["name"], at: "\(at).name", required: true)
                let id = string(m["id"], at: "\(at).id", required: true)
                let key = string(m["key"], at: "\(at).key", required: true)
                let eventsPerMinute = int(m["events_per_minute"], at: "\(at).events_per_minute") ?? 0
                guard let name, let id, let key else { return nil }
                return TelemetryProject(name: name, id: id, key: key, eventsPerMinute: eventsPerMinute)
            }
        }
        if let m = map["slow_operations"].flatMap({ mapping($0, at: "telemetry.slow_operations") }) {
            check(m, at: "telemetry.slow_operations", allowed: ["duration_ms", "db_calls", "docs_scanned"])
            if let v = number(m["duration_ms"], at: "telemetry.slow_operations.duration_ms") { t.slow.durationMilliseconds = v }
            if let v = number(m["db_calls"], at: "telemetry.slow_operations.db_calls") { t.slow.dbCalls = v }
            if let v = number(m["docs_scanned"], at: "telemetry.slow_operations.docs_scanned") { t.slow.docsScanned = v }
        }
        if let m = map["retention"].flatMap({ mapping($0, at: "telemetry.retention") }) {
            let kinds = TelemetryKind.allCases.map(\.rawValue)
            check(m, at: "telemetry.retention", allowed: Set(kinds.map { "\($0)_days" } + kinds.map { "\($0)_max_rows" } + ["interval_seconds"]))
            for kind in TelemetryKind.allCases {
                if let v = int(m["\(kind.rawValue)_days"], at: "telemetry.retention.\(kind.rawValue)_days") { t.retention.days[kind] = v }
                if let v = int(m["\(kind.rawValue)_max_rows"], at: "telemetry.retention.\(kind.rawValue)_max_rows") { t.retention.maxRows[kind] = v }
            }
            if let v = int(m["interval_seconds"], at: "telemetry.retention.interval_seconds") { t.retention.intervalSeconds = v }
        }
        if let m = map["limits"].flatMap({ mapping($0, at: "telemetry.limits") }) {
            check(m, at: "telemetry.limits", allowed: ["max_body_bytes", "max_line_bytes", "max_lines_per_request", "max_attributes",
                                                       "max_message_bytes", "max_event_bytes"])
            if let v = int(m["max_body_bytes"], at: "telemetry.limits.max_body_bytes") { t.limits.maxBodyBytes = v }
            if let v = int(m["max_line_bytes"], at: "telemetry.limits.max_line_bytes") { t.limits.maxLineBytes = v }
            if let v = int(m["max_lines_per_request"], at: "telemetry.limits.max_lines_per_request") { t.limits.maxLinesPerRequest = v }
            if let v = int(m["max_attributes"], at: "telemetry.limits.max_attributes") { t.limits.maxAttributes = v }
            if let v = int(m["max_message_bytes"], at: "telemetry.limits.max_message_bytes") { t.limits.maxMessageBytes = v }
            if let v = int(m["max_event_bytes"], at: "telemetry.limits.max_event_bytes") { t.limits.maxEventBytes = v }
        }
    }

    mutating func number(_ value: Any?, at path: String) -> Double? {
        guard let value, !(value is NSNull) else { return nil }
        if let i = value as? Int { return Double(i) }
        if let d = value as? Double { return d }
        if let s = value as? String, let d = Double(s) { return d }
        errors.append(.init(key: path, problem: "must be a number"))
        return nil
    }

    static func validateTelemetry(_ t: TelemetrySettings) -> [ConfigError] {
        var errors: [ConfigError] = []
        var names = Set<String>(), ids = Set<String>(), keys = Set<String>()
        for (i, p) in t.projects.enumerated() {
            let at = "telemetry.projects[\(i)]"
            if !names.insert(p.name).inserted { errors.append(.init(key: "\(at).name", problem: "\"\(p.name)\" is used by another project")) }
            if p.id.isEmpty || !p.id.allSatisfy(\.isNumber) { errors.append(.init(key: "\(at).id", problem: "must be digits, as in a Sentry DSN (…/42)")) }
            if !ids.insert(p.id).inserted { errors.append(.init(key: "\(at).id", problem: "\(p.id) is used by another project")) }
            if p.key.count < 16 || !p.key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
                errors.append(.init(key: "\(at).key", problem: "must be at least 16 letters, digits, '-' or '_' (it becomes the DSN's public key)"))
            }
            if !keys.insert(p.key).inserted { errors.append(.init(key: "\(at).key", problem: "is the key of another project")) }
            if p.eventsPerMinute < 0 { errors.append(.init(key: "\(at).events_per_minute", problem: "must not be negative")) }
        }
        for (kind, days) in t.retention.days where days < 0 {
            errors.append(.init(key: "telemetry.retention.\(kind.rawValue)_days", problem: "must not be negative (0 keeps everything)"))
        }
        for (kind, rows) in t.retention.maxRows where rows < 0 {
            errors.append(.init(key: "telemetry.retention.\(kind.rawValue)_max_rows", problem: "must not be negative (0 is no limit)"))
        }
        if t.retention.intervalSeconds < 1 { errors.append(.init(key: "telemetry.retention.interval_seconds", problem: "must be at least 1")) }
        let l = t.limits
        for (value, key, low, high) in [(l.maxBodyBytes, "max_body_bytes", 1024, 256 << 20), (l.maxLineBytes, "max_line_bytes", 256, 16 << 20),
                                        (l.maxLinesPerRequest, "max_lines_per_request", 1, 100_000), (l.maxAttributes, "max_attributes", 1, 10_000),
                                        (l.maxMessageBytes, "max_message_bytes", 64, 16 << 20), (l.maxEventBytes, "max_event_bytes", 1024, 64 << 20)] {
            if value < low || value > high { errors.append(.init(key: "telemetry.limits.\(key)", problem: "must be between \(low) and \(high)")) }
        }
        errors += validateOTLPExport(t.otlpExport)
        return errors
    }
}
