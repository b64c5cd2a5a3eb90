import Foundation
import GatehouseCore

/// Issues as Sentry has them: event tags stored for search (`event_tags`), merging issues, and
/// the redirects that send a merged issue's new events to the issue it was merged into.
extension SQLTelemetryStore {
    /// The SQL of an issue id as stored: the issue it was merged into, else itself. Read in the
    /// inserting statement, so an event never lands in an issue a merge has just removed.
    static func issueRedirected(_ issueID: String, _ b: inout SQLBuilder) -> String {
        let id = b.bind(.text(issueID))
        return "COALESCE((SELECT target_id FROM issue_redirects WHERE source_id = \(id)), \(id))"
    }

    /// The INSERT of an event's tags (`EventTags`), nil when it has none.
    func tagInsert(_ event: ErrorEvent) -> SQLStatement? {
        let tags = EventTags.of(event)
        guard !tags.isEmpty else { return nil }
        var b = SQLBuilder(dialect: driver.dialect)
        let project = b.bind(.text(event.project)), eventID = b.bind(.text(event.eventID)), ts = b.bind(.int(event.timestampMicros))
        let issue = Self.issueRedirected(event.issueID, &b)
        let rows = tags.map { "(\(project), \(eventID), \(issue), \(ts), \(b.bind(.text($0.key))), \(b.bind(.text($0.value))))" }
        return SQLStatement("""
            INSERT INTO event_tags (project, event_id, issue_id, ts, tag_key, tag_value) VALUES \(rows.joined(separator: ", "))
            ON CONFLICT DO NOTHING
            """, b.binds)
    }

    /// Deletes the tags of events older than the cutoff, in batches (a day partition of events
    /// dropped at once leaves a day of tags). A tag is dated by its event's `ts`.
    func pruneEventTags(beforeMicros: Int64, batch: Int) async throws {
        while true {
            var b = SQLBuilder(dialect: driver.dialect)
            let selection = "SELECT project, event_id, tag_key FROM event_tags WHERE ts < \(b.bind(.int(beforeMicros))) LIMIT \(b.bind(.int(Int64(max(1, batch)))))"
            let count = try await driver.query("SELECT COUNT(*) AS n FROM (\(selection)) doomed", b.binds).first?["n"].int ?? 0
            guard count > 0 else { return }
            try await driver.transaction([SQLStatement("DELETE FROM event_tags WHERE (project, event_id, tag_key) IN (\(selection))", b.binds)])
            if count < batch { return }
        }
    }

    public func mergedIssue(id: String) async throws -> String? {
        var b = SQLBuilder(dialect: driver.dialect)
        return try await driver.query("SELECT target_id FROM issue_redirects WHERE source_id = \(b.bind(.text(id)))", b.binds).first?["target_id"].text
    }

    /// Sentry's merge: the sources' events (and their tags) move to the target; the target's
    /// count is the sum of all, its first and last seen the earliest and latest, its level the
    /// highest, its release the latest-seen one; the sources are deleted and their ids (and ids
    /// already merged into them) lead to the target from now on. One transaction.
    public func mergeIssues(into targetID: String, from sourceIDs: [String]) async throws -> ErrorIssue {
        try await mergeLock.withLock { try await mergeIssuesAlone(into: targetID, from: sourceIDs) }
    }

    private func mergeIssuesAlone(into targetID: String, from sourceIDs: [String]) async throws -> ErrorIssue {
        var seen = Set<String>()
        let sources = sourceIDs.filter { seen.insert($0).inserted }
        guard !sources.isEmpty else { throw IssueMergeError.noSources }
        guard sources.count <= IssueMergeError.maxSources else { throw IssueMergeError.tooMany(sources.count) }
        guard !sources.contains(targetID) else { throw IssueMergeError.targetAmongSources }
        guard let target = try await issue(id: targetID) else { throw IssueMergeError.noTarget(targetID) }
        var r = SQLBuilder(dialect: driver.dialect)
        let listed = sources.map { r.bind(.text($0)) }.joined(separator: ", ")
        let found = try await driver.query("SELECT id, project FROM issues WHERE id IN (\(listed))", r.binds)
        let projects = Dictionary(found.compactMap { row in row["id"].text.map { ($0, row["project"].text ?? "") } }, uniquingKeysWith: { a, _ in a })
        let missing = sources.filter { projects[$0] == nil }
        guard missing.isEmpty else { throw IssueMergeError.missing(missing) }
        let foreign = sources.filter { projects[$0] != target.project }
        guard foreign.isEmpty else { throw IssueMergeError.otherProject(foreign) }

        let d = driver.dialect
        func statement(_ make: (_ target: String, _ sources: String, inout SQLBuilder) -> String) -> SQLStatement {
            var b = SQLBuilder(dialect: d)
            let t = b.bind(.text(targetID))
            let s = sources.map { b.bind(.text($0)) }.joined(separator: ", ")
            return SQLStatement(make(t, s, &b), b.binds)
        }
        let now = TimeExpressions.nowMicros()
        let statements = [
            statement { t, s, _ in "UPDATE error_events SET issue_id = \(t) WHERE issue_id IN (\(s))" },
            statement { t, s, _ in "UPDATE event_tags SET issue_id = \(t) WHERE issue_id IN (\(s))" },
            statement { t, s, _ in
                let merged = "FROM issues s WHERE s.id IN (\(s))"
                return """
                    UPDATE issues SET
                        event_count = event_count + (SELECT CAST(COALESCE(SUM(s.event_count), 0) AS BIGINT) \(merged)),
                        first_seen = \(d.least("first_seen", "COALESCE((SELECT MIN(s.first_seen) \(merged)), first_seen)")),
                        last_seen = \(d.greatest("last_seen", "COALESCE((SELECT MAX(s.last_seen) \(merged)), last_seen)")),
                        severity = \(d.greatest("severity", "COALESCE((SELECT MAX(s.severity) \(merged)), severity)")),
                        last_release = COALESCE((SELECT s.last_release \(merged) AND s.last_seen > issues.last_seen AND s.last_release IS NOT NULL
                                                 ORDER BY s.last_seen DESC LIMIT 1), last_release)
                    WHERE id = \(t)
                    """
            },
            // Ids merged into a source earlier now lead to the target too.
            statement { t, s, _ in "UPDATE issue_redirects SET target_id = \(t) WHERE target_id IN (\(s))" },
            statement { t, _, b in
                let at = b.bind(.int(now))
                let rows = sources.map { "(\(b.bind(.text($0))), \(t), \(at))" }.joined(separator: ", ")
                return """
                    INSERT INTO issue_redirects (source_id, target_id, merged_at) VALUES \(rows)
                    ON CONFLICT (source_id) DO UPDATE SET target_id = excluded.target_id, merged_at = excluded.merged_at
                    """
            },
            statement { _, s, _ in "DELETE FROM issues WHERE id IN (\(s))" },
        ]
        try await driver.transaction(statements)
        guard let merged = try await issue(id: targetID) else { throw IssueMergeError.noTarget(targetID) }
        return merged
    }
}
