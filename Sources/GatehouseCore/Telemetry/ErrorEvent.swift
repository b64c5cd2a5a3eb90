/// One error report (a Sentry event), as stored beside the issue it was grouped into.
public struct ErrorEvent: Sendable, Equatable {
    /// The SDK's `event_id` (32 hex digits), or one Gatehouse made.
    public var eventID: String
    public var project: String
    /// The issue this event belongs to: a digest of project and fingerprint.
    public var issueID: String
    public var timestampMicros: Int64
    public var level: LogLevel
    /// The primary exception's type (`ValueError`), empty for a message event.
    public var type: String
    /// The exception's value or the message, as sent.
    public var value: String
    /// `Type: value` (or the message's first line), short enough for a list.
    public var title: String
    /// Where it happened: the innermost in-app frame, or the transaction.
    public var culprit: String
    public var release: String?
    public var environment: String?
    public var correlationID: String?
    /// The user as Sentry identifies one: id, else email, else username, else IP address.
    public var userKey: String?
    /// The whole event, secrets redacted, as JSON text.
    public var documentJSON: String

    public init(eventID: String, project: String, issueID: String, timestampMicros: Int64, level: LogLevel, type: String, value: String,
                title: String, culprit: String, release: String? = nil, environment: String? = nil, correlationID: String? = nil,
                userKey: String? = nil, documentJSON: String) {
        self.eventID = eventID
        self.project = project
        self.issueID = issueID
        self.timestampMicros = timestampMicros
        self.level = level
        self.type = type
        self.value = value
        self.title = title
        self.culprit = culprit
        self.release = release
        self.environment = environment
        self.correlationID = correlationID
        self.userKey = userKey
        self.documentJSON = documentJSON
    }
}

public enum IssueStatus: String, Sendable, CaseIterable {
    case unresolved, resolved, ignored
}

/// Events grouped by fingerprint: what a person triages.
public struct ErrorIssue: Sendable, Equatable {
    public var id: String
    public var project: String
    public var title: String
    public var type: String
    public var culprit: String
    public var level: LogLevel
    public var status: IssueStatus
    /// Set when a resolved issue happened again; cleared when it is resolved once more.
    public var regressed: Bool
    public var firstSeenMicros: Int64
    public var lastSeenMicros: Int64
    public var count: Int64
    /// Distinct users among the stored events.
    public var users: Int64
    public var lastRelease: String?

    public init(id: String, project: String, title: String, type: String, culprit: String, level: LogLevel, status: IssueStatus,
                regressed: Bool, firstSeenMicros: Int64, lastSeenMicros: Int64, count: Int64, users: Int64, lastRelease: String?) {
        self.id = id
        self.project = project
        self.title = title
        self.type = type
        self.culprit = culprit
        self.level = level
        self.status = status
        self.regressed = regressed
        self.firstSeenMicros = firstSeenMicros
        self.lastSeenMicros = lastSeenMicros
        self.count = count
        self.users = users
        self.lastRelease = lastRelease
    }
}
