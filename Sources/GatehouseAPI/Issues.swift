import Foundation

// The errors part of the API (`OpenAPI/errors.yaml`): issues (`GET /api/v1/issues`,
// `GET/PATCH /api/v1/issues/{id}`), their error events, and one correlation id's timeline
// (`GET /api/v1/correlation/{id}`).

/// Where an issue stands in triage.
public enum IssueTriageStatus: String, Codable, Sendable, Equatable, CaseIterable {
    case unresolved, resolved, ignored
}

/// Error events grouped by fingerprint: what a person triages.
public struct IssueView: Codable, Sendable, Equatable {
    public var id: String
    public var project: String
    public var title: String
    /// The exception type (`ValueError`); empty for a message event.
    public var type: String
    /// Where it happened: the innermost in-app frame, or the transaction.
    public var culprit: String
    public var level: TelemetryLevel
    public var status: IssueTriageStatus
    /// A resolved issue that happened again; cleared when it is resolved once more.
    public var regressed: Bool
    public var count: Int64
    /// Distinct users among the stored events.
    public var users: Int64
    public var firstSeen: String
    public var lastSeen: String
    @Nullable public var lastRelease: String?
    /// Ignored until this many more events; null unless so ignored.
    @Nullable public var ignoreUntilCount: Int64?
    /// How many of those events are still to come.
    @Nullable public var ignoreEventsLeft: Int64?
    /// Ignored until the first event after this time; null unless so ignored.
    @Nullable public var ignoreUntil: String?
    /// `escalated` when an ignore's count or time passed and an event made the issue unresolved
    /// again; null after any status change made by hand.
    @Nullable public var statusReason: String?

    enum CodingKeys: String, CodingKey {
        case id, project, title, type, culprit, level, status, regressed, count, users
        case firstSeen = "first_seen"
        case lastSeen = "last_seen"
        case lastRelease = "last_release"
        case ignoreUntilCount = "ignore_until_count"
        case ignoreEventsLeft = "ignore_events_left"
        case ignoreUntil = "ignore_until"
        case statusReason = "status_reason"
    }

    public init(id: String, project: String, title: String, type: String, culprit: String, level: TelemetryLevel, status: IssueTriageStatus,
                regressed: Bool, count: Int64, users: Int64, firstSeen: String, lastSeen: String, lastRelease: String?,
                ignoreUntilCount: Int64? = nil, ignoreEventsLeft: Int64? = nil, ignoreUntil: String? = nil, statusReason: String? = nil) {
        self.ignoreUntilCount = ignoreUntilCount
        self.ignoreEventsLeft = ignoreEventsLeft
        self.ignoreUntil = ignoreUntil
        self.statusReason = statusReason
        self.id = id
        self.project = project
        self.title = title
        self.type = type
        self.culprit = culprit
        self.level = level
        self.status = status
        self.regressed = regressed
        self.count = count
        self.users = users
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.lastRelease = lastRelease
    }
}

/// `GET /api/v1/issues`: the matching issues, most recently seen first.
public struct IssueList: Codable, Sendable, Equatable {
    public var data: [IssueView]

    public init(data: [IssueView]) { self.data = data }
}

/// One error report (a Sentry event) as stored beside its issue.
public struct ErrorEventView: Codable, Sendable, Equatable {
    /// The SDK's `event_id` (32 hex digits), or one Gatehouse made.
    public var eventID: String
    public var issueID: String
    public var project: String
    public var timestamp: String
    public var level: TelemetryLevel
    /// The primary exception's type; empty for a message event.
    public var type: String
    /// The exception's value or the message, as sent.
    public var value: String
    public var title: String
    public var culprit: String
    @Nullable public var release: String?
    @Nullable public var environment: String?
    @Nullable public var correlationID: String?
    /// The user as Sentry identifies one: id, else email, else username, else IP address.
    @Nullable public var user: String?
    /// The whole event as the SDK sent it, secrets masked. Only in an issue's detail; a
    /// correlation timeline leaves it out.
    public var event: [String: JSONValue]?

    enum CodingKeys: String, CodingKey {
        case eventID = "event_id"
        case issueID = "issue_id"
        case project, timestamp, level, type, value, title, culprit, release, environment
        case correlationID = "correlation_id"
        case user, event
    }

    public init(eventID: String, issueID: String, project: String, timestamp: String, level: TelemetryLevel, type: String, value: String,
                title: String, culprit: String, release: String? = nil, environment: String? = nil, correlationID: String? = nil,
                user: String? = nil, event: [String: JSONValue]? = nil) {
        self.eventID = eventID
        self.issueID = issueID
        self.project = project
        self.timestamp = timestamp
        self.level = level
        self.type = type
        self.value = value
        self.title = title
        self.culprit = culprit
        self.release = release
        self.environment = environment
        self.correlationID = correlationID
        self.user = user
        self.event = event
    }
}

/// `GET /api/v1/issues/{id}` (and the answer to its PATCH): the issue's fields and its latest
/// events, each with its whole document, side by side in one object.
public struct IssueDetail: Codable, Sendable, Equatable {
    public var issue: IssueView
    /// The latest events, newest first, at most 10.
    public var events: [ErrorEventView]

    enum CodingKeys: String, CodingKey {
        case events
    }

    public init(issue: IssueView, events: [ErrorEventView]) {
        self.issue = issue
        self.events = events
    }

    // The issue's fields sit at the top level beside `events`, as the API has always answered.
    public init(from decoder: any Decoder) throws {
        issue = try IssueView(from: decoder)
        events = try decoder.container(keyedBy: CodingKeys.self).decode([ErrorEventView].self, forKey: .events)
    }

    public func encode(to encoder: any Encoder) throws {
        try issue.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(events, forKey: .events)
    }
}

/// The body of `PATCH /api/v1/issues/{id}`. With `ignored`, `ignore_until_count` (1 to
/// 1,000,000,000 more events) and/or `ignore_until` (an RFC 3339 time) end the ignore: the
/// first event past either makes the issue unresolved again. Without them an ignore is forever.
public struct IssueUpdate: Codable, Sendable, Equatable {
    public var status: IssueTriageStatus
    public var ignoreUntilCount: Int64?
    public var ignoreUntil: String?

    enum CodingKeys: String, CodingKey {
        case status
        case ignoreUntilCount = "ignore_until_count"
        case ignoreUntil = "ignore_until"
    }

    public init(status: IssueTriageStatus, ignoreUntilCount: Int64? = nil, ignoreUntil: String? = nil) {
        self.status = status
        self.ignoreUntilCount = ignoreUntilCount
        self.ignoreUntil = ignoreUntil
    }
}

/// The body of `POST /api/v1/issues/{id}/merge`: the issues (1 to 100, of the same project)
/// merged into the one in the path.
public struct IssueMergeRequest: Codable, Sendable, Equatable {
    public var issues: [String]

    public init(issues: [String]) { self.issues = issues }
}

/// What `GET /api/v1/issues/{id}` answers (301, with `Location`) for an issue merged into another.
public struct IssueMoved: Codable, Sendable, Equatable {
    public var mergedInto: String

    enum CodingKeys: String, CodingKey {
        case mergedInto = "merged_into"
    }

    public init(mergedInto: String) { self.mergedInto = mergedInto }
}

/// `GET /api/v1/issues/{id}/events/{event_id}` (`latest` for the newest): one event with its
/// document, and the ids of the events just newer and just older, to page through them.
public struct IssueEventPage: Codable, Sendable, Equatable {
    public var event: ErrorEventView
    @Nullable public var newerEventID: String?
    @Nullable public var olderEventID: String?

    enum CodingKeys: String, CodingKey {
        case event
        case newerEventID = "newer_event_id"
        case olderEventID = "older_event_id"
    }

    public init(event: ErrorEventView, newerEventID: String?, olderEventID: String?) {
        self.event = event
        self.newerEventID = newerEventID
        self.olderEventID = olderEventID
    }
}

/// An AI call in a correlation timeline: the fields that place it in the story.
public struct CorrelatedAIRequest: Codable, Sendable, Equatable {
    public var id: String
    public var timestamp: String
    /// The gateway route it came in on (`/v1/chat/completions`, `/v1/messages`, …).
    public var route: String
    public var provider: String
    public var model: String
    /// The HTTP status the caller got.
    public var status: Int
    public var latencyMilliseconds: Double
    public var inputTokens: Int
    public var outputTokens: Int
    /// US dollars as a decimal string.
    public var costUSD: String
    /// Why the call did not complete normally; null when it did.
    @Nullable public var errorClass: String?

    enum CodingKeys: String, CodingKey {
        case id, timestamp, route, provider, model, status
        case latencyMilliseconds = "latency_ms"
        case inputTokens = "input_tokens"
        case outputTokens = "output_tokens"
        case costUSD = "cost_usd"
        case errorClass = "error_class"
    }

    public init(id: String, timestamp: String, route: String, provider: String, model: String, status: Int, latencyMilliseconds: Double,
                inputTokens: Int, outputTokens: Int, costUSD: String, errorClass: String?) {
        self.id = id
        self.timestamp = timestamp
        self.route = route
        self.provider = provider
        self.model = model
        self.status = status
        self.latencyMilliseconds = latencyMilliseconds
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.costUSD = costUSD
        self.errorClass = errorClass
    }
}

/// One entry of a correlation timeline: a log line, an error event (without its document) or an
/// AI call, its own fields beside `kind`.
public enum CorrelationEntry: Codable, Sendable, Equatable {
    case log(LogLine)
    case error(ErrorEventView)
    case aiRequest(CorrelatedAIRequest)

    public enum Kind: String, Codable, Sendable, CaseIterable {
        case log, error
        case aiRequest = "ai_request"
    }

    public var kind: Kind {
        switch self {
        case .log: .log
        case .error: .error
        case .aiRequest: .aiRequest
        }
    }

    public var timestamp: String {
        switch self {
        case .log(let line): line.timestamp
        case .error(let event): event.timestamp
        case .aiRequest(let call): call.timestamp
        }
    }

    enum CodingKeys: String, CodingKey {
        case kind
    }

    public init(from decoder: any Decoder) throws {
        switch try decoder.container(keyedBy: CodingKeys.self).decode(Kind.self, forKey: .kind) {
        case .log: self = .log(try LogLine(from: decoder))
        case .error: self = .error(try ErrorEventView(from: decoder))
        case .aiRequest: self = .aiRequest(try CorrelatedAIRequest(from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .log(let line): try line.encode(to: encoder)
        case .error(let event): try event.encode(to: encoder)
        case .aiRequest(let call): try call.encode(to: encoder)
        }
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .kind)
    }
}

/// `GET /api/v1/correlation/{id}`: every log line, error event and AI call that carries one
/// correlation id, oldest first.
public struct CorrelationTimeline: Codable, Sendable, Equatable {
    public var correlationID: String
    public var timeline: [CorrelationEntry]
    /// The traces whose spans carry this id (`GET /api/v1/traces/{id}`), busiest first: the id is
    /// a trace id, or an `X-Request-Id` the spans were tagged with.
    public var traceIDs: [String]

    enum CodingKeys: String, CodingKey {
        case correlationID = "correlation_id"
        case timeline
        case traceIDs = "trace_ids"
    }

    public init(correlationID: String, timeline: [CorrelationEntry], traceIDs: [String] = []) {
        self.correlationID = correlationID
        self.timeline = timeline
        self.traceIDs = traceIDs
    }
}
