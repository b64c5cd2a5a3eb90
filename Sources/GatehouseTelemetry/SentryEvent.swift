import Foundation
import GatehouseCore

/// Reads a Sentry event payload into an `ErrorEvent`: the exception chain, stack frames, tags,
/// user, contexts, breadcrumbs, release and environment stay in the stored document (secrets
/// masked); the fields issues and queries need are lifted out.
/// https://develop.sentry.dev/sdk/data-model/event-payloads/
public enum SentryEventReader {
    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public static func read(_ payload: ArraySlice<UInt8>, project: String, receivedMicros: Int64) throws(Invalid) -> ErrorEvent {
        guard let object = try? JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any] else {
            throw Invalid(description: "the event is not a JSON object")
        }
        return read(object, project: project, receivedMicros: receivedMicros)
    }

    public static func read(_ event: [String: Any], project: String, receivedMicros: Int64) -> ErrorEvent {
        let exceptions = exceptionValues(event)
        // Sentry lists a chain oldest cause first; the last value is the one raised.
        let primary = exceptions.last
        let type = (primary?["type"] as? String) ?? ""
        let value = (primary?["value"] as? String) ?? ""
        let message = messageText(event)
        let components = Fingerprint.components(explicit: (event["fingerprint"] as? [Any])?.map { "\($0)" },
                                                exceptionType: type.isEmpty ? nil : type, exceptionValue: value, message: message)
        let titleText: String
        if !type.isEmpty {
            let first = Fingerprint.firstLine(value)
            titleText = first.isEmpty ? type : "\(type): \(first)"
        } else {
            titleText = Fingerprint.firstLine(message ?? "").isEmpty ? "<unlabeled event>" : Fingerprint.firstLine(message ?? "")
        }
        let eventID = (event["event_id"] as? String).flatMap { id -> String? in
            let hex = id.replacingOccurrences(of: "-", with: "").lowercased()
            return hex.count == 32 && hex.allSatisfy(\.isHexDigit) ? hex : nil
        } ?? UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let tags = tagDictionary(event["tags"])
        let extra = event["extra"] as? [String: Any] ?? [:]
        let correlation = CorrelationID.attributeKeys.lazy.compactMap { tags[$0] ?? (extra[$0] as? String) }.first
            ?? ((event["contexts"] as? [String: Any])?["trace"] as? [String: Any])?["trace_id"] as? String
        let user = event["user"] as? [String: Any]
        let userKey = ["id", "email", "username", "ip_address"].lazy.compactMap { key -> String? in
            guard let v = user?[key], !(v is NSNull) else { return nil }
            return "\(v)"
        }.first
        // A timestamp far ahead is replaced by the receive time, as Relay does, and noted in the
        // event's `errors` the way Relay notes it (`future_timestamp`, with both times).
        let sent = timestamp(event["timestamp"])
        let timestampMicros = sent.map { LogIngest.acceptedTimestamp($0, received: receivedMicros) } ?? receivedMicros
        var stored = event
        if let sent, sent != timestampMicros {
            let note: [String: Any] = ["type": "future_timestamp", "name": "timestamp",
                                       "sdk_time": TimeExpressions.format(micros: sent), "server_time": TimeExpressions.format(micros: receivedMicros)]
            stored["errors"] = ((event["errors"] as? [Any]) ?? []) + [note]
        }
        let document = LogIngest.withoutNUL(Redactor.redactJSON(withoutRequestSecrets(stored)))
        let documentJSON = (try? JSONSerialization.data(withJSONObject: document, options: [.withoutEscapingSlashes]))
            .map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        var read = ErrorEvent(
            eventID: eventID, project: project, issueID: Fingerprint.issueID(project: project, components: components),
            timestampMicros: timestampMicros,
            level: (event["level"] as? String).flatMap(LogLevel.init(loose:)) ?? .error,
            type: String(type.prefix(256)).removingNUL, value: String(value.prefix(8192)).removingNUL, title: String(titleText.prefix(256)).removingNUL,
            culprit: String(culprit(primary, transaction: event["transaction"] as? String).prefix(256)).removingNUL,
            release: (event["release"] as? String).map { String($0.prefix(256)).removingNUL },
            environment: (event["environment"] as? String).map { String($0.prefix(256)).removingNUL },
            correlationID: correlation.map { String($0.prefix(256)).removingNUL }, userKey: userKey.map { String($0.prefix(256)).removingNUL },
            documentJSON: documentJSON)
        // Read here, where parsing runs off the event loops, not again by the store.
        read.tags = EventTags.extract(read, document: document as? [String: Any] ?? [:])
        return read
    }

    /// The event with the end user's credentials in `request` masked where `redactJSON`, which
    /// looks only at key names, cannot see them: cookies, an OAuth `code` or token in the URL,
    /// query or body, fields of a form-encoded or JSON body sent as text.
    /// https://develop.sentry.dev/sdk/data-model/event-payloads/request/
    static func withoutRequestSecrets(_ event: [String: Any]) -> [String: Any] {
        guard var request = event["request"] as? [String: Any] else { return event }
        // A query holds no counts, so its names are read widely; a body's are not (`max_tokens`).
        let isSecretQueryName: (String) -> Bool = { Redactor.isSecretQueryName($0) || $0.lowercased() == "code" }
        let isSecretField: (String) -> Bool = { Redactor.isSecretKey($0) || $0.lowercased() == "code" }
        if let cookies = request["cookies"], !(cookies is NSNull) { request["cookies"] = Redactor.mask }
        if let url = request["url"] as? String { request["url"] = Redactor.redactURL(url, isSecretName: isSecretQueryName) }
        if let query = request["query_string"] {
            request["query_string"] = maskingFields(query, isSecretName: isSecretQueryName)
        }
        if let data = request["data"] { request["data"] = maskingFields(data, isSecretName: isSecretField) }
        var copy = event
        copy["request"] = request
        return copy
    }

    /// Name/value fields as SDKs send them: `a=1&b=2` text, JSON text, an object or [name, value] pairs.
    static func maskingFields(_ value: Any, isSecretName: (String) -> Bool) -> Any {
        if let object = value as? [String: Any] {
            var copy = object
            for key in object.keys where isSecretName(key) { copy[key] = Redactor.mask }
            return copy
        }
        if let pairs = value as? [Any] {
            return pairs.map { pair -> Any in
                guard let pair = pair as? [Any], pair.count == 2, let name = pair[0] as? String, isSecretName(name) else { return pair }
                return [name, Redactor.mask]
            }
        }
        guard let text = value as? String else { return value }
        let trimmed = text.drop { $0.isWhitespace }
        if trimmed.hasPrefix("{") || trimmed.hasPrefix("["),
           let parsed = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: []),
           let masked = try? JSONSerialization.data(withJSONObject: Redactor.redactJSON(maskingFields(parsed, isSecretName: isSecretName)),
                                                     options: [.withoutEscapingSlashes]) {
            return String(decoding: masked, as: UTF8.self)
        }
        // A query string may keep its leading `?`.
        if text.hasPrefix("?") { return "?" + Redactor.redactFormEncoded(String(text.dropFirst()), isSecretName: isSecretName) }
        return Redactor.redactFormEncoded(text, isSecretName: isSecretName)
    }

    static func exceptionValues(_ event: [String: Any]) -> [[String: Any]] {
        // `exception` is {values: […]} or, in old SDKs, the list itself.
        if let e = event["exception"] as? [String: Any], let values = e["values"] as? [[String: Any]] { return values }
        if let values = event["exception"] as? [[String: Any]] { return values }
        return []
    }

    static func messageText(_ event: [String: Any]) -> String? {
        if let entry = event["logentry"] as? [String: Any] ?? event["sentry.interfaces.Message"] as? [String: Any] {
            return entry["formatted"] as? String ?? entry["message"] as? String
        }
        if let m = event["message"] as? String { return m }
        if let m = event["message"] as? [String: Any] { return m["formatted"] as? String ?? m["message"] as? String }
        return nil
    }

    /// Tags come as an object or as a list of [key, value] pairs.
    static func tagDictionary(_ value: Any?) -> [String: String] {
        if let d = value as? [String: Any] { return d.mapValues { "\($0)" } }
        if let pairs = value as? [[Any]] {
            var result: [String: String] = [:]
            for pair in pairs where pair.count == 2 { result["\(pair[0])"] = "\(pair[1])" }
            return result
        }
        return [:]
    }

    /// The innermost in-app frame (`module in function`), else the innermost frame, else the transaction.
    static func culprit(_ exception: [String: Any]?, transaction: String?) -> String {
        let frames = ((exception?["stacktrace"] as? [String: Any])?["frames"] as? [[String: Any]]) ?? []
        let frame = frames.last { $0["in_app"] as? Bool == true } ?? frames.last
        if let frame {
            let place = (frame["module"] as? String) ?? (frame["filename"] as? String) ?? (frame["abs_path"] as? String) ?? "?"
            if let function = frame["function"] as? String { return "\(place) in \(function)" }
            return place
        }
        return transaction ?? ""
    }

    /// Seconds since 1970 (a number) or RFC 3339 text; nil when out of range (year 1970 to 5138).
    static func timestamp(_ value: Any?) -> Int64? {
        func micros(_ seconds: Double) -> Int64? {
            seconds.isFinite && seconds > 0 && seconds < 1e11 ? Int64((seconds * 1_000_000).rounded()) : nil
        }
        if let n = value as? NSNumber, !isBoolean(n) { return micros(n.doubleValue) }
        if let s = value as? String {
            // The same years as a number: `9999-12-31T…` would outlive retention, `0001-…` sort first forever.
            return TimeExpressions.rfc3339Micros(s).flatMap { $0 > 0 && $0 < 100_000_000_000_000_000 ? $0 : nil } ?? Double(s).flatMap(micros)
        }
        return nil
    }
}
