import Foundation
import GatehouseCore

/// Reads a Sentry `transaction` item into spans: the transaction itself (its root span, from
/// `contexts.trace`) and each entry of its `spans`, secrets masked, every id, count and size
/// checked. https://develop.sentry.dev/sdk/data-model/event-payloads/transaction/ and /span/
public enum SentryTransactionReader {
    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    /// Spans one transaction may carry besides its root (Sentry's SDKs stop at 1000).
    public static let maxSpans = 1000
    /// Longest name, op, status, service, environment or release, in UTF-8 bytes: these are
    /// copied into every span of a transaction and indexed (PostgreSQL's index rows stop near 2.7 KB).
    public static let maxNameBytes = 1024
    /// Largest attributes object of one span, as JSON text.
    public static let maxAttributeBytes = 64 * 1024
    /// Longest a span may last: a day (a wrong clock, not a real operation, beyond that).
    public static let maxDurationMicros: Int64 = 86_400_000_000

    /// Span statuses that are not failures (Sentry's failure rate leaves these out).
    static let successStatuses: Set<String> = ["ok", "unset", "cancelled", "unknown", ""]

    public static func read(_ payload: ArraySlice<UInt8>, project: String, receivedMicros: Int64) throws(Invalid) -> [Span] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any] else {
            throw Invalid(description: "the transaction is not a JSON object")
        }
        return try read(object, project: project, receivedMicros: receivedMicros)
    }

    public static func read(_ event: [String: Any], project: String, receivedMicros: Int64) throws(Invalid) -> [Span] {
        guard let trace = (event["contexts"] as? [String: Any])?["trace"] as? [String: Any] else {
            throw Invalid(description: "the transaction has no contexts.trace")
        }
        let traceID = try hexID(trace["trace_id"], length: 32, what: "contexts.trace.trace_id")
        let rootID = try hexID(trace["span_id"], length: 16, what: "contexts.trace.span_id")
        let rootParent = try optionalHexID(trace["parent_span_id"], length: 16, what: "contexts.trace.parent_span_id")
        // Masked once: every span of the transaction carries the name.
        let name = maskName(try text(event["transaction"], what: "transaction") ?? "<unlabeled transaction>")
        guard let end = SentryEventReader.timestamp(event["timestamp"]) else { throw Invalid(description: "the transaction has no valid timestamp") }
        guard let start = SentryEventReader.timestamp(event["start_timestamp"]) else {
            throw Invalid(description: "the transaction has no valid start_timestamp")
        }
        let rootDuration = try duration(start: start, end: end, what: "the transaction")
        // A clock far ahead moves the whole transaction to the receive time; its spans keep their offsets.
        let shift = LogIngest.acceptedTimestamp(start, received: receivedMicros) - start
        let tags = SentryEventReader.tagDictionary(event["tags"])
        let extra = event["extra"] as? [String: Any] ?? [:]
        // An id a log line or AI call could carry too (`CorrelationID.isAcceptable`), else the trace's.
        let correlation = CorrelationID.attributeKeys.lazy.compactMap { tags[$0] ?? (extra[$0] as? String) }.first
            .flatMap { CorrelationID.isAcceptable($0) ? $0 : nil } ?? traceID
        let environment = try text(event["environment"], what: "environment")
        let release = try text(event["release"], what: "release")
        let service = try text(event["server_name"], what: "server_name")

        var rootAttributes: [String: Any] = tags
        if let data = trace["data"] as? [String: Any] { rootAttributes.merge(data) { tag, _ in tag } }
        if let source = (event["transaction_info"] as? [String: Any])?["source"] as? String { rootAttributes["sentry.source"] = source }
        let rootStatus = try text(trace["status"], what: "contexts.trace.status")?.lowercased() ?? "ok"
        var spans = [Span(
            traceID: traceID, spanID: rootID, parentSpanID: rootParent, project: project, source: .sentry, service: service,
            name: name, op: try text(trace["op"], what: "contexts.trace.op"), transaction: name, isTransaction: true,
            startMicros: start + shift, durationMicros: rootDuration, status: rootStatus, isError: !successStatuses.contains(rootStatus),
            environment: environment, release: release, correlationID: correlation,
            attributesJSON: try attributes(rootAttributes, what: "the transaction"))]

        if let spans = event["spans"], !(spans is NSNull), !(spans is [Any]) { throw Invalid(description: "spans must be a list") }
        let children = event["spans"] as? [Any] ?? []
        guard children.count <= maxSpans else { throw Invalid(description: "the transaction has \(children.count) spans; at most \(maxSpans) are accepted") }
        var seen: Set<String> = [rootID]
        for (index, element) in children.enumerated() {
            guard let span = element as? [String: Any] else { throw Invalid(description: "spans[\(index)] is not an object") }
            let what = "spans[\(index)]"
            let spanID = try hexID(span["span_id"], length: 16, what: "\(what).span_id")
            guard seen.insert(spanID).inserted else { throw Invalid(description: "\(what).span_id \(spanID) appears twice in the transaction") }
            if span["trace_id"] != nil, !(span["trace_id"] is NSNull) {
                guard try hexID(span["trace_id"], length: 32, what: "\(what).trace_id") == traceID else {
                    throw Invalid(description: "\(what).trace_id is not the transaction's trace id")
                }
            }
            let parent = try optionalHexID(span["parent_span_id"], length: 16, what: "\(what).parent_span_id") ?? rootID
            guard let spanStart = SentryEventReader.timestamp(span["start_timestamp"]) else {
                throw Invalid(description: "\(what) has no valid start_timestamp")
            }
            // A span still running when the transaction ended has no end: it lasts to the transaction's end.
            let spanEnd = SentryEventReader.timestamp(span["timestamp"]) ?? max(spanStart, end)
            // A child's clock is the transaction's: one dated outside it by more than a span may
            // last is moved to its edge (a far-future row would outlive retention), and one that
            // ends before it starts, or runs past a day, is cut rather than failing the envelope.
            let childStart = min(max(spanStart, start.subtractingSaturated(maxDurationMicros)), end.addingSaturated(maxDurationMicros))
            let childDuration = min(max(0, spanEnd.subtractingSaturated(spanStart)), maxDurationMicros)
            let status = try text(span["status"], what: "\(what).status")?.lowercased() ?? "ok"
            let op = try text(span["op"], what: "\(what).op")
            var spanAttributes = SentryEventReader.tagDictionary(span["tags"]) as [String: Any]
            if let data = span["data"] as? [String: Any] { spanAttributes.merge(data) { tag, _ in tag } }
            spans.append(Span(
                traceID: traceID, spanID: spanID, parentSpanID: parent, project: project, source: .sentry, service: service,
                name: maskName(try text(span["description"], what: "\(what).description") ?? op ?? "span"), op: op, transaction: name,
                isTransaction: false, startMicros: childStart.addingSaturated(shift), durationMicros: childDuration,
                status: status, isError: !successStatuses.contains(status), environment: environment, release: release, correlationID: correlation,
                attributesJSON: try attributes(spanAttributes, what: what)))
        }
        return spans
    }

    // MARK: - Fields

    /// Lowercase hex of exactly `length` digits (UUID-style dashes are dropped from trace ids).
    static func hexID(_ value: Any?, length: Int, what: String) throws(Invalid) -> String {
        guard let raw = value as? String else { throw Invalid(description: "\(what) is missing: it must be \(length) hex digits") }
        let hex = (length == 32 ? raw.replacingOccurrences(of: "-", with: "") : raw).lowercased()
        guard TraceParent.isID(hex, digits: length) else {
            let allZeros = hex.utf8.count == length && hex.utf8.allSatisfy { $0 == UInt8(ascii: "0") }
            throw Invalid(description: allZeros ? "\(what) must not be all zeros"
                                                : "\(what) must be \(length) hex digits, got \(String(reflecting: String(raw.prefix(80))))")
        }
        return hex
    }

    static func optionalHexID(_ value: Any?, length: Int, what: String) throws(Invalid) -> String? {
        guard let value, !(value is NSNull) else { return nil }
        return try hexID(value, length: length, what: what)
    }

    /// A text field within `maxNameBytes`, NUL characters removed; nil when absent.
    static func text(_ value: Any?, what: String) throws(Invalid) -> String? {
        guard let value, !(value is NSNull) else { return nil }
        guard let text = value as? String else { throw Invalid(description: "\(what) must be a string") }
        guard text.utf8.count <= maxNameBytes else { throw Invalid(description: "\(what) is longer than \(maxNameBytes) bytes") }
        return text.removingNUL
    }

    static func duration(start: Int64, end: Int64, what: String) throws(Invalid) -> Int64 {
        let micros = end.subtractingSaturated(start)
        guard micros >= 0 else { throw Invalid(description: "\(what) ends before it starts") }
        guard micros <= maxDurationMicros else { throw Invalid(description: "\(what) lasts longer than a day") }
        return micros
    }

    /// Tags and data as a JSON object's text: secret-named values masked, within `maxAttributeBytes`.
    static func attributes(_ values: [String: Any], what: String) throws(Invalid) -> String {
        let masked = LogIngest.withoutNUL(Redactor.redactAttributes(values))
        guard JSONSerialization.isValidJSONObject(masked),
              let data = try? JSONSerialization.data(withJSONObject: masked, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            throw Invalid(description: "\(what): its tags and data are not JSON")
        }
        guard data.count <= maxAttributeBytes else { throw Invalid(description: "\(what): its tags and data are larger than \(maxAttributeBytes) bytes") }
        return String(decoding: data, as: UTF8.self)
    }

    /// A span's name as shown and searched: an HTTP span's description is often a whole URL
    /// (`GET https://api.example.com/v1?api_key=…`), so credentials and secret query values in
    /// any URL-looking word are masked, and provider keys anywhere.
    static func maskName(_ name: String) -> String {
        let words = name.split(separator: " ", omittingEmptySubsequences: false).map { word -> String in
            // Only URLs and paths (`api.example.com/v1?token=…` too): a SQL statement's `?`
            // placeholders are no query string.
            guard word.contains("://") || word.hasPrefix("/") || (word.contains("/") && word.contains("?") && word.contains("=")) else {
                return String(word)
            }
            let masked = Redactor.maskURLCredentials(String(word))
            guard masked.contains("?") || masked.contains("#"), URLComponents(string: masked) != nil else { return masked }
            return Redactor.redactURL(masked)
        }
        return Redactor.scrubText(words.joined(separator: " "))
    }
}
