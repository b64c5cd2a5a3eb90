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
    /// The tags it is searched by (`EventTags`), read where the event was parsed (off the
    /// event loops); nil: the store reads them from `documentJSON`.
    public var tags: [EventTag]?

    public init(eventID: String, project: String, issueID: String, timestampMicros: Int64, level: LogLevel, type: String, value: String,
                title: String, culprit: String, release: String? = nil, environment: String? = nil, correlationID: String? = nil,
                userKey: String? = nil, documentJSON: String, tags: [EventTag]? = nil) {
        self.tags = tags
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
    /// An issue ignored until N more events: N, and the count it had when it was ignored.
    public var ignoreUntilCount: Int64?
    public var ignoredAtCount: Int64?
    /// An issue ignored until a time (µs since 1970).
    public var ignoreUntilMicros: Int64?
    /// Why the status is what it is when Gatehouse changed it: `escalated` when an ignore's
    /// count or time passed and an event made the issue unresolved again.
    public var statusReason: String?

    public init(id: String, project: String, title: String, type: String, culprit: String, level: LogLevel, status: IssueStatus,
                regressed: Bool, firstSeenMicros: Int64, lastSeenMicros: Int64, count: Int64, users: Int64, lastRelease: String?,
                ignoreUntilCount: Int64? = nil, ignoredAtCount: Int64? = nil, ignoreUntilMicros: Int64? = nil, statusReason: String? = nil) {
        self.ignoreUntilCount = ignoreUntilCount
        self.ignoredAtCount = ignoredAtCount
        self.ignoreUntilMicros = ignoreUntilMicros
        self.statusReason = statusReason
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

/// A triage change: the new status and, for `ignored`, what ends the ignore (neither: forever).
public struct IssueStatusChange: Sendable, Equatable {
    public var status: IssueStatus
    /// Unresolved again after this many more events.
    public var ignoreUntilCount: Int64?
    /// Unresolved again at the first event after this time (µs since 1970).
    public var ignoreUntilMicros: Int64?

    public init(status: IssueStatus, ignoreUntilCount: Int64? = nil, ignoreUntilMicros: Int64? = nil) {
        self.status = status
        self.ignoreUntilCount = ignoreUntilCount
        self.ignoreUntilMicros = ignoreUntilMicros
    }
}

/// Why issues could not be merged; nothing was changed.
public enum IssueMergeError: Error, Equatable, Sendable, CustomStringConvertible {
    case noTarget(String)
    case noSources
    case tooMany(Int)
    case targetAmongSources
    case missing([String])
    case otherProject([String])

    /// At most this many issues merge into one in one call.
    public static let maxSources = 100

    public var description: String {
        switch self {
        case .noTarget(let id): "no issue with id \(id)"
        case .noSources: "name at least one issue to merge"
        case .tooMany(let n): "at most \(Self.maxSources) issues merge at once (got \(n))"
        case .targetAmongSources: "an issue cannot be merged into itself"
        case .missing(let ids): "no issue with id \(ids.joined(separator: ", "))"
        case .otherProject(let ids): "issues of another project cannot be merged: \(ids.joined(separator: ", "))"
        }
    }
}
