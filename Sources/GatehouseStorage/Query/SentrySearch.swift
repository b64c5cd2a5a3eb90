import Foundation
import GatehouseCore

/// Sentry's issue search on the issues and error-events schemas: any other `key:value` is a
/// tag (`function:tasks.list`, `user.email:ada@example.com`, stored in `event_tags`), plus
/// `is:`, `has:`, `times_seen:`, and `first_seen:`/`last_seen:`/`timestamp:` where a time alone
/// (`-24h`, an RFC 3339 time) means "since then" and `+24h` means "longer ago than that".
/// On issues a tag matches the issues that have an event with it; on events, the events.
enum SentrySearch {
    case issues, errorEvents
}

extension QueryCompiler {
    /// The SQL of a Sentry key on `search`'s table; nil when `name` is none of them (a column
    /// then, or a tag: `tag`).
    func sentryField(_ search: SentrySearch, name: String, _ match: FieldMatch, _ b: inout SQLBuilder) throws -> String? {
        let normalized = QuerySchema.normalize(name)
        // Fields of the issue; on events they select the events of the issues that match.
        func onIssue(_ condition: String) -> String {
            search == .issues ? condition : "issue_id IN (SELECT id FROM issues WHERE \(condition))"
        }
        switch normalized {
        case "is":
            guard case .equals(let value) = match else { throw QueryFieldError("`is` takes a state: \(Self.states.joined(separator: ", "))") }
            let state = Self.rawText(value).lowercased()
            switch state {
            case "unresolved", "resolved", "ignored": return onIssue("status = \(b.bind(.text(state)))")
            case "regressed": return onIssue("regressed = 1")
            case "escalated": return onIssue("status_reason = 'escalated'")
            default: throw QueryFieldError("`is` is one of \(Self.states.joined(separator: ", "))")
            }
        case "has":
            guard case .equals(let value) = match else { throw QueryFieldError("`has` takes a tag name: has:user, has:environment") }
            return try tag(search, key: Self.rawText(value), .exists, &b)
        case "timesseen":
            return onIssue(try number(QuerySchema.Column(sql: "event_count", kind: .integer), name: name, match, &b))
        case "firstseen", "age", "lastseen":
            let column = QuerySchema.Column(sql: normalized == "lastseen" ? "last_seen" : "first_seen", kind: .time)
            return onIssue(try sentryTime(column.sql, match, &b) ?? number(column, name: name, match, &b))
        default:
            if let column = schema.columns[normalized], column.kind == .time { return try sentryTime(column.sql, match, &b) }
            return nil
        }
    }

    static let states = ["unresolved", "resolved", "ignored", "regressed", "escalated"]

    /// `first_seen:-24h` is "since 24 hours ago", `first_seen:+24h` "before then"; nil for a
    /// comparison or range, which compile as for any time.
    private func sentryTime(_ sql: String, _ match: FieldMatch, _ b: inout SQLBuilder) throws -> String? {
        guard case .equals(let value) = match else { return nil }
        switch value {
        case .time(let micros): return "\(sql) >= \(b.bind(.int(micros)))"
        // `+24h` reads as a duration: longer ago than that.
        case .duration(let ago): return "\(sql) < \(b.bind(.int(TimeExpressions.nowMicros().subtractingSaturated(ago))))"
        case .text(let text) where text.hasPrefix("+"):
            guard let ago = TimeExpressions.durationMicros(String(text.dropFirst())) else { return nil }
            return "\(sql) < \(b.bind(.int(TimeExpressions.nowMicros().subtractingSaturated(ago))))"
        default: return nil
        }
    }

    /// A tag term: its key, and its value matched ignoring case (`key:value`, `key:prefix*`,
    /// `key:*`), read from `event_tags`.
    func tag(_ search: SentrySearch, key name: String, _ match: FieldMatch, _ b: inout SQLBuilder) throws -> String {
        let key = name.lowercased()
        guard !key.isEmpty, key.count <= EventTags.maxKeyLength else {
            throw QueryFieldError("`\(name)` is no tag: tag names are 1 to \(EventTags.maxKeyLength) characters")
        }
        var condition = "tag_key = \(b.bind(.text(key)))"
        switch match {
        // `release:2.0` reads as a number: the tag matches as written ("2.0") and as read ("2").
        case .equals(.number(let n)) where String(n) != Self.rawText(.number(n)):
            condition += " AND LOWER(tag_value) IN (\(b.bind(.text(Self.rawText(.number(n))))), \(b.bind(.text(String(n)))))"
        case .equals(let value): condition += " AND LOWER(tag_value) = \(b.bind(.text(Self.rawText(value).lowercased())))"
        case .wildcard(let pattern): condition += " AND LOWER(tag_value) LIKE \(b.bind(.text(Self.likePattern(pattern)))) ESCAPE '\\'"
        case .exists: break
        case .compare, .range:
            throw QueryFieldError("`\(name)` is a tag, which is text: match it with \(name):value, a wildcard or \(name):*")
        }
        switch search {
        case .issues: return "id IN (SELECT issue_id FROM event_tags WHERE \(condition))"
        case .errorEvents:
            return "EXISTS (SELECT 1 FROM event_tags t WHERE t.project = error_events.project AND t.event_id = error_events.event_id AND \(condition))"
        }
    }
}
