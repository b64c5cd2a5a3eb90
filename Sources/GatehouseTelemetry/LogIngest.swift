import Foundation
import GatehouseCore

/// Turns a `POST /api/v1/logs` body (one JSON object, a JSON array of objects, or NDJSON) into
/// log records. A bad line is reported with its index and reason; the others are kept.
public struct LogIngest: Sendable {
    public struct Rejection: Sendable, Equatable {
        public var index: Int
        public var reason: String
    }

    public struct Result: Sendable {
        public var lines: [LogRecord] = []
        public var rejections: [Rejection] = []
    }

    public enum BodyError: Error, Equatable, CustomStringConvertible {
        case tooManyLines(limit: Int)
        case notJSON(String)
        public var description: String {
            switch self {
            case .tooManyLines(let limit): "the body holds more than \(limit) lines; send smaller batches"
            case .notJSON(let reason): reason
            }
        }
    }

    let limits: IngestLimits
    let slow: SlowThresholds

    public init(limits: IngestLimits, slow: SlowThresholds) {
        self.limits = limits
        self.slow = slow
    }

    /// Parses `body` for `project`; `receivedMicros` stands in for a missing timestamp.
    public func parse(_ body: [UInt8], project: String, receivedMicros: Int64) throws(BodyError) -> Result {
        var result = Result()
        let trimmed = body.drop { $0 == 32 || $0 == 9 || $0 == 10 || $0 == 13 }
        guard let first = trimmed.first else { throw .notJSON("the body is empty; send a JSON object, an array of objects, or NDJSON") }
        let bytes = Array(trimmed)
        if first == UInt8(ascii: "[") {
            guard let elements = try? JSONObjectScanner.elements(ofArray: bytes) else {
                throw .notJSON("the body starts with [ but is not a JSON array")
            }
            guard elements.count <= limits.maxLinesPerRequest else { throw .tooManyLines(limit: limits.maxLinesPerRequest) }
            result.lines.reserveCapacity(elements.count)
            for (index, range) in elements.enumerated() {
                take(bytes[range], index: index, project: project, received: receivedMicros, into: &result)
            }
            return result
        }
        // One object (possibly pretty-printed over several lines), else NDJSON.
        if first == UInt8(ascii: "{"), (try? JSONObjectScanner.members(of: bytes)) != nil {
            guard bytes.count <= limits.maxLineBytes else {
                result.rejections.append(.init(index: 0, reason: "the line is longer than \(limits.maxLineBytes) bytes"))
                return result
            }
            take(bytes[...], index: 0, project: project, received: receivedMicros, into: &result)
            return result
        }
        var index = 0
        var start = bytes.startIndex
        while start < bytes.endIndex {
            let end = bytes[start...].firstIndex(of: 10) ?? bytes.endIndex
            var line = bytes[start..<end]
            if line.last == 13 { line = line.dropLast() }
            start = end < bytes.endIndex ? end + 1 : end
            if line.allSatisfy({ $0 == 32 || $0 == 9 }) { continue }
            guard index < limits.maxLinesPerRequest else { throw .tooManyLines(limit: limits.maxLinesPerRequest) }
            if line.count > limits.maxLineBytes {
                result.rejections.append(.init(index: index, reason: "the line is longer than \(limits.maxLineBytes) bytes"))
            } else {
                take(line, index: index, project: project, received: receivedMicros, into: &result)
            }
            index += 1
        }
        return result
    }

    private func take(_ line: ArraySlice<UInt8>, index: Int, project: String, received: Int64, into result: inout Result) {
        let first = line.first { $0 != 32 && $0 != 9 && $0 != 10 && $0 != 13 }
        let bytes = Array(line)
        guard let members = try? JSONObjectScanner.members(of: bytes) else {
            let isJSON = first != UInt8(ascii: "{") && JSONDecoderBridge.object(bytes) != nil
            result.rejections.append(.init(index: index, reason: isJSON ? "a log line must be a JSON object" : "not valid JSON"))
            return
        }
        do {
            result.lines.append(try record(RawLine(bytes: bytes, members: members), project: project, received: received))
        } catch {
            result.rejections.append(.init(index: index, reason: error.reason))
        }
    }

    struct LineError: Error {
        var reason: String
    }

    /// Keys read into columns; the first one present wins. Everything else is an attribute.
    static let timestampKeys = ["timestamp", "time", "ts", "@timestamp", "date"]
    static let levelKeys = ["level", "severity", "levelname", "log.level", "severity_text", "severityText"]
    static let messageKeys = ["message", "msg", "@message"]
    static let serviceKeys = ["service", "service.name", "serviceName", "app"]
    static let environmentKeys = ["environment", "env"]
    static let correlationKeys = CorrelationID.attributeKeys + ["traceId", "trace_id"]
    static let functionKeys = ["function", "func", "functionName"]
    static let durationKeys = ["duration", "durationMs", "duration_ms"]
    static let wellKnown = Set(timestampKeys + levelKeys + messageKeys + serviceKeys + environmentKeys + correlationKeys + functionKeys + durationKeys)

    /// A line's fields as the two readers deliver them: well-known values decoded (strings,
    /// numbers, booleans; containers as `RawJSON`), the rest as a JSON object's text.
    struct Fields {
        var known: [String: Any] = [:]
        var attributesJSON = "{}"
        var attributeCount = 0
        /// The values the slow-operation thresholds look at.
        var dbCalls: Double?
        var docsScanned: Double?
    }

    /// A container value kept as its JSON text (a message that is an object, say).
    struct RawJSON {
        var text: String
    }

    /// A line straight from the body: the scanner's members over its bytes.
    struct RawLine {
        var bytes: [UInt8]
        var members: [JSONObjectScanner.Member]
    }

    /// The fast path: attributes are copied as the raw bytes they came in; only the well-known
    /// values are decoded. A line that may carry a credential takes the masking path.
    func record(_ line: RawLine, project: String, received: Int64) throws(LineError) -> LogRecord {
        var fields = Fields()
        var attributes: [UInt8] = [UInt8(ascii: "{")]
        attributes.reserveCapacity(line.bytes.count)
        var count = 0
        for m in line.members {
            let raw = line.bytes[m.valueRange]
            if Self.wellKnown.contains(m.key) {
                let value = Self.decode(raw)
                // A string whose escapes are not text (a lone `\ud800`) decodes to nothing: refuse
                // the line, as documented, rather than store it with that field empty.
                if value == nil && raw.first == UInt8(ascii: "\"") {
                    throw LineError(reason: "`\(m.key)` has a string escape that is not valid text (such as a lone \\ud800)")
                }
                fields.known[m.key] = value
                continue
            }
            if m.key == "dbCalls" || m.key == "db_calls" { fields.dbCalls = Self.number(Self.decode(raw)) }
            if m.key == "docsScanned" || m.key == "docs_scanned" { fields.docsScanned = Self.number(Self.decode(raw)) }
            if count > 0 { attributes.append(UInt8(ascii: ",")) }
            attributes.append(contentsOf: line.bytes[m.keyRange])
            attributes.append(UInt8(ascii: ":"))
            attributes.append(contentsOf: raw)
            count += 1
        }
        attributes.append(UInt8(ascii: "}"))
        fields.attributeCount = count
        // The slow path parses and re-encodes: for credentials (the byte scan sees the keys too),
        // and for escapes (an escaped key can hide a credential's name; `\u0000` and lone
        // surrogates are refused by PostgreSQL).
        if Self.mayHoldSecret(attributes) || attributes.contains(UInt8(ascii: "\\")) {
            guard let object = JSONDecoderBridge.object(attributes) as? [String: Any] else {
                throw LineError(reason: "the line has a string escape that is not valid text (such as a lone \\ud800)")
            }
            fields.attributesJSON = Self.json(Self.withoutNUL(Redactor.redactJSON(object)))
        } else {
            fields.attributesJSON = String(decoding: attributes, as: UTF8.self)
        }
        return try finish(fields, project: project, received: received)
    }

    /// The object path (OTLP records arrive as decoded values).
    func record(_ object: [String: Any], project: String, received: Int64) throws(LineError) -> LogRecord {
        var fields = Fields()
        var attributes: [String: Any] = [:]
        for (key, value) in object {
            if Self.wellKnown.contains(key) {
                fields.known[key] = value is NSNull ? nil : (value is [String: Any] || value is [Any]) ? RawJSON(text: Self.json(value)) : value
            } else {
                attributes[key] = value
            }
        }
        fields.dbCalls = Self.number(attributes["dbCalls"] ?? attributes["db_calls"])
        fields.docsScanned = Self.number(attributes["docsScanned"] ?? attributes["docs_scanned"])
        fields.attributeCount = attributes.count
        fields.attributesJSON = attributes.isEmpty ? "{}" : Self.json(Redactor.redactJSON(attributes))
        return try finish(fields, project: project, received: received)
    }

    private func finish(_ fields: Fields, project: String, received: Int64) throws(LineError) -> LogRecord {
        func first(_ keys: [String]) -> Any? {
            for key in keys { if let v = fields.known[key] { return v } }
            return nil
        }
        func text(_ keys: [String]) -> String? {
            guard let v = first(keys) else { return nil }
            if let s = v as? String { return s.isEmpty ? nil : String(s.prefix(512)) }
            if let n = v as? NSNumber { return n.stringValue }
            return nil
        }
        guard fields.attributeCount <= limits.maxAttributes else {
            throw LineError(reason: "the line has \(fields.attributeCount) attributes; at most \(limits.maxAttributes) are kept")
        }
        var attributesJSON = fields.attributesJSON
        var timestamp = received
        if let v = first(Self.timestampKeys) {
            guard let t = Self.timestamp(v) else {
                throw LineError(reason: "`timestamp` must be RFC 3339 or a Unix time in seconds, milliseconds, microseconds or nanoseconds")
            }
            timestamp = Self.acceptedTimestamp(t, received: received)
            if timestamp != t { attributesJSON = Self.adding(#""original_timestamp":"\#(TimeExpressions.format(micros: t))""#, to: attributesJSON) }
        }
        var level = LogLevel.info
        if let v = first(Self.levelKeys) {
            if let s = v as? String, let l = LogLevel(loose: s) { level = l } else if let n = v as? NSNumber, !isBoolean(v) {
                // pino writes 10…60 in steps of ten; OpenTelemetry 1…24.
                let i = n.intValue
                level = i >= 10 && i % 10 == 0 ? LogLevel(pinoLevel: i) : LogLevel(openTelemetrySeverity: i)
            } else {
                throw LineError(reason: "`level` must be one of \(LogLevel.allCases.map(\.rawValue).joined(separator: ", ")) (warning, err, critical… are read too)")
            }
        }
        var message = ""
        if let v = first(Self.messageKeys) {
            message = (v as? String) ?? (v as? RawJSON)?.text ?? (v as? NSNumber)?.stringValue ?? ""
        }
        if message.utf8.count > limits.maxMessageBytes {
            message = String(decoding: message.utf8.prefix(limits.maxMessageBytes), as: UTF8.self)
            attributesJSON = Self.adding(#""message_truncated":true"#, to: attributesJSON)
        }
        var duration: Int64?
        if let v = first(Self.durationKeys) {
            guard let d = Self.durationMicros(v) else { throw LineError(reason: "`duration` must be milliseconds (237.4) or a duration such as \"237.42ms\" or \"2s\"") }
            duration = d
        }
        // Lines of an array have no size of their own; what is stored is measured instead.
        guard attributesJSON.utf8.count + message.utf8.count <= limits.maxLineBytes else {
            throw LineError(reason: "the line is longer than \(limits.maxLineBytes) bytes")
        }
        let reasons = slowReasons(durationMicros: duration, dbCalls: fields.dbCalls, docsScanned: fields.docsScanned)
        for reason in reasons { TelemetryMetrics.slowOperation(reason: reason) }
        return LogRecord(timestampMicros: timestamp, project: project, level: level, message: message, service: text(Self.serviceKeys),
                         environment: text(Self.environmentKeys), correlationID: text(Self.correlationKeys), function: text(Self.functionKeys),
                         durationMicros: duration, attributesJSON: attributesJSON, slow: !reasons.isEmpty)
    }

    /// How far past the time it was received a sender's timestamp may be: a clock running
    /// somewhat fast. Sentry's Relay allows a minute by default (`max_secs_in_future`); an hour
    /// keeps the lines of a badly set clock in order while still stopping what matters: every
    /// sender picks its own timestamps (a browser's Sentry DSN is public), and rows dated years
    /// ahead would outlive retention (PostgreSQL's default partition, which each new day's
    /// partition has to scan, would only grow).
    public static let maxFutureSkewMicros: Int64 = 3_600_000_000

    /// `timestamp`, or the receive time for one further ahead of it than `maxFutureSkewMicros`.
    /// Old timestamps are kept: retention removes them.
    public static func acceptedTimestamp(_ timestamp: Int64, received: Int64) -> Int64 {
        timestamp.subtractingSaturated(maxFutureSkewMicros) > received ? received : timestamp
    }

    /// A JSON object's text with one more member (`"key":value`).
    static func adding(_ member: String, to object: String) -> String {
        object == "{}" ? "{\(member)}" : String(object.dropLast()) + ",\(member)}"
    }

    /// NUL characters removed from every string, at any depth: PostgreSQL stores none in TEXT or JSONB.
    static func withoutNUL(_ value: Any, depth: Int = 0) -> Any {
        guard depth < 64 else { return value }
        if let s = value as? String { return s.removingNUL }
        if let o = value as? [String: Any] {
            var copy: [String: Any] = [:]
            for (k, v) in o { copy[k.removingNUL] = withoutNUL(v, depth: depth + 1) }
            return copy
        }
        if let a = value as? [Any] { return a.map { withoutNUL($0, depth: depth + 1) } }
        return value
    }

    /// A raw JSON value as Foundation would give it; containers as `RawJSON`, null as nil.
    static func decode(_ raw: ArraySlice<UInt8>) -> Any? {
        guard let c = raw.first else { return nil }
        switch c {
        case UInt8(ascii: "\""): return JSONObjectScanner.decodeString(raw)?.removingNUL
        case UInt8(ascii: "t"): return true
        case UInt8(ascii: "f"): return false
        case UInt8(ascii: "n"): return nil
        case UInt8(ascii: "{"), UInt8(ascii: "["): return RawJSON(text: String(decoding: raw, as: UTF8.self))
        default:
            let text = String(decoding: raw, as: UTF8.self)
            if let i = Int64(text) { return NSNumber(value: i) }
            return Double(text).map { NSNumber(value: $0) }
        }
    }

    /// Whether the raw attributes may name anything credential-like (then they are parsed and
    /// masked): a marker in ASCII, or any byte outside ASCII.
    /// One pass over the bytes: only where a byte could start a marker are the markers compared
    /// (this runs on every line, so it must cost little more than reading it).
    static func mayHoldSecret(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { buffer in
            let n = buffer.count
            var i = 0
            while i < n {
                // Outside ASCII a name can lower-case into a marker (KELVIN SIGN → k): parse those.
                if buffer[i] >= 0x80 { return true }
                let c = buffer[i] | 0x20  // ASCII lower case (harmless for the other bytes)
                if let candidates = markersByFirstByte[Int(c)] {
                    for marker in candidates where i + marker.count <= n {
                        var j = 1
                        while j < marker.count && (buffer[i + j] | 0x20) == marker[j] { j += 1 }
                        if j == marker.count { return true }
                    }
                }
                i += 1
            }
            return false
        }
    }

    /// The markers, indexed by their first byte.
    static let markersByFirstByte: [[[UInt8]]?] = {
        var table = [[[UInt8]]?](repeating: nil, count: 256)
        for marker in secretMarkers { table[Int(marker[0])] = (table[Int(marker[0])] ?? []) + [marker] }
        return table
    }()

    /// Stored as the scan compares bytes, OR-ed with 0x20: letters in lower case, `_` as 0x7F.
    static let secretMarkers: [[UInt8]] = (Redactor.secretKeyMarkers + Redactor.secretHeaderNames).map { Array($0.utf8).map { $0 | 0x20 } }

    static func json(_ value: Any) -> String {
        (try? JSONSerialization.data(withJSONObject: value, options: [.withoutEscapingSlashes, .fragmentsAllowed]))
            .map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Which slow-operation thresholds a line is over (none: not slow).
    public func slowReasons(durationMicros: Int64?, dbCalls: Double?, docsScanned: Double?) -> [String] {
        var reasons: [String] = []
        if let d = durationMicros, Double(d) > slow.durationMilliseconds * 1000 { reasons.append("duration") }
        if let n = dbCalls, n > slow.dbCalls { reasons.append("db_calls") }
        if let n = docsScanned, n > slow.docsScanned { reasons.append("docs_scanned") }
        return reasons
    }

    static func number(_ v: Any?) -> Double? {
        guard let v, !isBoolean(v) else { return nil }
        if let n = v as? NSNumber { return n.doubleValue }
        if let s = v as? String { return Double(s) }
        return nil
    }

    /// RFC 3339 text, or a Unix time whose unit is told by its size.
    static func timestamp(_ v: Any) -> Int64? {
        if let s = v as? String {
            if let micros = TimeExpressions.rfc3339Micros(s) { return micros }
            if let n = Double(s) { return unixMicros(n) }
            return nil
        }
        if let n = v as? NSNumber, !isBoolean(v) { return unixMicros(n.doubleValue) }
        return nil
    }

    static func unixMicros(_ n: Double) -> Int64? {
        guard n.isFinite, n > 0 else { return nil }
        switch n {
        case ..<1e11: return Int64((n * 1e6).rounded())  // seconds
        case ..<1e14: return Int64((n * 1e3).rounded())  // milliseconds
        case ..<1e17: return Int64(n.rounded())  // microseconds
        case ..<1e20: return Int64((n / 1e3).rounded())  // nanoseconds
        default: return nil
        }
    }

    /// A number is milliseconds; text may carry a unit: `237.42ms`, `2s`, `1.5m`, `800us`, `120µs`.
    /// At most about 11 days (10^15 µs): no operation one log line reports takes longer.
    static func durationMicros(_ v: Any) -> Int64? {
        let longest: Int64 = 1_000_000_000_000_000
        if let n = v as? NSNumber, !isBoolean(v) {
            let ms = n.doubleValue
            return ms.isFinite && ms >= 0 && ms * 1000 < Double(longest) ? Int64((ms * 1000).rounded()) : nil
        }
        guard let text = v as? String, let micros = TimeExpressions.durationMicros(text, unitless: .milliseconds), micros < longest else { return nil }
        return micros
    }
}

extension LogLevel {
    /// pino's numeric levels: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal.
    init(pinoLevel n: Int) {
        switch n {
        case ..<20: self = .trace
        case 20..<30: self = .debug
        case 30..<40: self = .info
        case 40..<50: self = .warn
        case 50..<60: self = .error
        default: self = .fatal
        }
    }
}

/// Whether a decoded JSON value is a boolean. `v is Bool` cannot tell: Foundation bridges
/// `NSNumber` 0 and 1 (and 0.0, 1.0) to `Bool`, so a duration of 0 would pass for `false`.
func isBoolean(_ v: Any) -> Bool {
    if type(of: v) == Bool.self { return true }
    guard let n = v as? NSNumber else { return false }
    // JSONSerialization's booleans are NSNumbers whose type encoding is "c" (char).
    return String(cString: n.objCType) == "c"
}

extension String {
    /// Without NUL characters: PostgreSQL keeps none in TEXT or JSONB.
    var removingNUL: String { contains("\u{0}") ? replacingOccurrences(of: "\u{0}", with: "") : self }
}
