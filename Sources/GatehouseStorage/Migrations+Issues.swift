/// Version 14 (issue 13, Sentry parity for issues): error event tags stored for search, what ends
/// an ignore, and the redirects of merged issues.
extension Migrations {
    static func issueSearchMigration(sqlite: Bool) -> [String] {
        let bigint = sqlite ? "INTEGER" : "BIGINT"
        return [
            // One row per tag of an event, written with the event (`EventTags`). Not partitioned:
            // a retried event may carry another `ts`, and its tags must still be stored once.
            // Retention deletes them by age with their events (`SQLTelemetryStore.prune`).
            """
            CREATE TABLE event_tags (
                project TEXT NOT NULL,
                event_id TEXT NOT NULL,
                issue_id TEXT NOT NULL,
                ts \(bigint) NOT NULL,
                tag_key TEXT NOT NULL,
                tag_value TEXT NOT NULL,
                PRIMARY KEY (project, event_id, tag_key)
            )
            """,
            // `function:tasks.list` on issues reads this index alone (values match ignoring case).
            "CREATE INDEX event_tags_key_value ON event_tags (tag_key, LOWER(tag_value), issue_id)",
            "CREATE INDEX event_tags_issue ON event_tags (issue_id)",
            "CREATE INDEX event_tags_ts ON event_tags (ts)",
            // Ignore until N more events (N and the count when ignored) or until a time.
            "ALTER TABLE issues ADD COLUMN ignore_until_count \(bigint)",
            "ALTER TABLE issues ADD COLUMN ignored_at_count \(bigint)",
            "ALTER TABLE issues ADD COLUMN ignore_until \(bigint)",
            "ALTER TABLE issues ADD COLUMN status_reason TEXT",
            // A merged issue's id leads here: its new events land in the target at insert time.
            "CREATE TABLE issue_redirects (source_id TEXT PRIMARY KEY, target_id TEXT NOT NULL, merged_at \(bigint) NOT NULL)",
            "CREATE INDEX issue_redirects_target ON issue_redirects (target_id)",
        ]
    }
}
