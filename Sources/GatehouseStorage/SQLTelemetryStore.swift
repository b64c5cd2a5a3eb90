import Foundation
import GatehouseCore

/// Logs, error events and issues on any `SQLDriver`.
public final class SQLTelemetryStore: TelemetryStore {
    let driver: any SQLDriver
    private var dialect: any SQLDialect { driver.dialect }

    /// Rows per INSERT: 11 binds a log line keeps a statement far below both databases' bind limits.
    static let logRowsPerStatement = 500

    /// One merge at a time: a merge's checks (the target and sources exist, one project) are
    /// reads before its transaction, and two merges of A into B and B into A at once would each
    /// pass them and together lose both issues.
    let mergeLock = AsyncLock()

    init(driver: any SQLDriver) { self.driver = driver }

    // MARK: - Logs

    static let logColumns = ["ts", "project", "severity", "message", "service", "environment", "correlation_id", "function",
                             "duration_us", "slow", "attributes"]

    public func insertLogs(_ lines: [LogRecord]) async throws {
        guard !lines.isEmpty else { return }
        var statements: [SQLStatement] = []
        var start = 0
        while start < lines.count {
            let chunk = lines[start..<min(start + Self.logRowsPerStatement, lines.count)]
            var b = SQLBuilder(dialect: dialect)
            let rows = chunk.map { line -> String in
                let values: [String] = [
                    b.bind(.int(line.timestampMicros)), b.bind(.text(line.project)), b.bind(.int(Int64(line.level.severity))),
                    b.bind(.text(line.message)), b.bind(Self.text(line.service)), b.bind(Self.text(line.environment)),
                    b.bind(Self.text(line.correlationID)), b.bind(Self.text(line.function)),
                    b.bind(line.durationMicros.map { .int($0) } ?? .null), b.bind(.int(line.slow ? 1 : 0)),
                    dialect.jsonValue(b.bind(.text(line.attributesJSON))),
                ]
                return "(" + values.joined(separator: ", ") + ")"
            }
            statements.append(SQLStatement("INSERT INTO logs (\(Self.logColumns.joined(separator: ", "))) VALUES \(rows.joined(separator: ", "))", b.binds))
            start += Self.logRowsPerStatement
        }
        try await driver.transaction(statements)
    }

    private var logSelect: String {
        "SELECT seq, " + Self.logColumns.map { $0 == "attributes" ? "\(dialect.jsonAsText("attributes")) AS attributes" : $0 }.joined(separator: ", ") + " FROM logs"
    }

    public func logs(_ query: LogListQuery) async throws -> LogPage {
        var b = SQLBuilder(dialect: dialect)
        var conditions: [String] = []
        if let filter = query.filter { conditions.append(try QueryCompiler(schema: .logs).compile(filter, &b)) }
        if let from = query.fromMicros { conditions.append("ts >= \(b.bind(.int(from)))") }
        if let to = query.toMicros { conditions.append("ts < \(b.bind(.int(to)))") }
        if let cursor = query.cursor {
            guard let (ts, id) = PageCursor.decode(cursor), let seq = Int64(id) else { throw StoreError.invalidCursor }
            let t1 = b.bind(.int(ts)), t2 = b.bind(.int(ts)), s = b.bind(.int(seq))
            conditions.append("(ts < \(t1) OR (ts = \(t2) AND seq < \(s)))")
        }
        let limit = max(1, min(query.limit, 1000))
        let sql = "\(logSelect)\(SQLBuilder.whereClause(conditions)) ORDER BY ts DESC, seq DESC LIMIT \(b.bind(.int(Int64(limit + 1))))"
        var lines = try await driver.query(sql, b.binds).map(Self.decodeLog)
        var next: String?
        if lines.count > limit {
            lines.removeLast()
            if let last = lines.last { next = PageCursor.encode(ts: last.timestampMicros, id: String(last.sequence ?? 0)) }
        }
        return LogPage(lines: lines, nextCursor: next)
    }

    public func logs(after sequence: Int64, filter: QueryNode?, limit: Int) async throws -> [LogRecord] {
        var b = SQLBuilder(dialect: dialect)
        var conditions = ["seq > \(b.bind(.int(sequence)))"]
        if let filter { conditions.append(try QueryCompiler(schema: .logs).compile(filter, &b)) }
        let sql = "\(logSelect)\(SQLBuilder.whereClause(conditions)) ORDER BY seq LIMIT \(b.bind(.int(Int64(max(1, limit)))))"
        return try await driver.query(sql, b.binds).map(Self.decodeLog)
    }

    public func latestLogSequence() async throws -> Int64 {
        try await driver.query("SELECT COALESCE(MAX(seq), 0) AS seq FROM logs", []).first?["seq"].int ?? 0
    }

    public func logs(correlationID: String, limit: Int) async throws -> [LogRecord] {
        var b = SQLBuilder(dialect: dialect)
        let sql = "\(logSelect) WHERE correlation_id = \(b.bind(.text(correlationID))) ORDER BY ts, seq LIMIT \(b.bind(.int(Int64(limit))))"
        return try await driver.query(sql, b.binds).map(Self.decodeLog)
    }

    public func countLogs(filter: QueryNode?, fromMicros: Int64, toMicros: Int64) async throws -> Int64 {
        try await count("logs", schema: .logs, filter: filter, fromMicros: fromMicros, toMicros: toMicros)
    }

    public func countErrorEvents(filter: QueryNode?, fromMicros: Int64, toMicros: Int64) async throws -> Int64 {
        try await count("error_events", schema: .errorEvents, filter: filter, fromMicros: fromMicros, toMicros: toMicros)
    }

    /// Alert rules' counts are the query language's `| count`, compiled by the one aggregation compiler.
    private func count(_ table: String, schema: QuerySchema, filter: QueryNode?, fromMicros: Int64, toMicros: Int64) async throws -> Int64 {
        guard fromMicros < toMicros else { return 0 }
        let query = AggregationQuery(aggregation: Aggregation(function: .count, groupBy: []), filter: filter,
                                     fromMicros: fromMicros, toMicros: toMicros, limit: 1)
        return try await driver.aggregate(query, table: table, schema: schema).groups.first?.count ?? 0
    }

    public func aggregate(_ target: TelemetryAggregationTarget, _ query: AggregationQuery) async throws -> AggregationOutcome {
        switch target {
        case .logs: try await driver.aggregate(query, table: "logs", schema: .logs)
        case .errorEvents: try await driver.aggregate(query, table: "error_events", schema: .errorEvents)
        case .spans: try await driver.aggregate(query, table: "spans", schema: .spans)
        }
    }

    static func decodeLog(_ row: SQLRow) throws -> LogRecord {
        guard let seq = row["seq"].int, let ts = row["ts"].int else { throw StoreError.corrupt("log row without seq or ts") }
        let severity = Int(row["severity"].int ?? 3)
        return LogRecord(
            sequence: seq, timestampMicros: ts, project: row["project"].text ?? "",
            level: LogLevel(severity: severity) ?? .info, message: row["message"].text ?? "",
            service: row["service"].text, environment: row["environment"].text, correlationID: row["correlation_id"].text,
            function: row["function"].text, durationMicros: row["duration_us"].int, attributesJSON: row["attributes"].text ?? "{}",
            slow: row["slow"].int == 1)
    }

    // MARK: - Errors and issues

    static let eventColumns = ["event_id", "project", "issue_id", "ts", "severity", "type", "value", "title", "culprit", "release",
                               "environment", "correlation_id", "user_key", "document"]

    /// Stores each event once and counts it into its issue once, however often and from however
    /// many instances at once an SDK sends it (it retries after a timeout). An event is stored
    /// only if its (project, event_id) was new, in the statement that claims it, so two inserts of
    /// it racing cannot both see it missing: on PostgreSQL the claim is a row of
    /// `error_event_ids` (the partitioned table's key includes `ts`, and a retry of an event
    /// without a timestamp has another); on SQLite it is error_events' own key.
    public func insertErrorEvents(_ events: [ErrorEvent]) async throws {
        var seen = Set<String>()
        let fresh = events.filter { seen.insert($0.project + "\u{0}" + $0.eventID).inserted }
        guard !fresh.isEmpty else { return }
        var statements: [SQLStatement] = []
        let now = TimeExpressions.nowMicros()
        for event in fresh {
            var b = SQLBuilder(dialect: dialect)
            let values: [SQLValue] = [
                .text(event.eventID), .text(event.project), .int(event.timestampMicros), .int(Int64(event.level.severity)),
                .text(event.type), .text(event.value), .text(event.title), .text(event.culprit), Self.text(event.release),
                Self.text(event.environment), Self.text(event.correlationID), Self.text(event.userKey), .text(event.documentJSON),
            ]
            // issue_id last: the event's own issue, or the one it was merged into.
            let columns = (Self.eventColumns.filter { $0 != "issue_id" } + ["issue_id"]).joined(separator: ", ")
            if dialect.name == "postgres" {
                let claim = [b.bind(.text(event.project)), b.bind(.text(event.eventID)), b.bind(.int(event.timestampMicros))].joined(separator: ", ")
                let placeholders = (values.map { b.bind($0) } + [Self.issueRedirected(event.issueID, &b)]).joined(separator: ", ")
                let upsert = issueUpsert(event, from: "FROM stored", now: now, &b)
                statements.append(SQLStatement("""
                    WITH claimed AS (INSERT INTO error_event_ids (project, event_id, ts) VALUES (\(claim)) ON CONFLICT DO NOTHING RETURNING 1),
                    stored AS (INSERT INTO error_events (\(columns)) SELECT \(placeholders) FROM claimed ON CONFLICT DO NOTHING RETURNING 1)
                    \(upsert)
                    """, b.binds))
            } else {
                let placeholders = (values.map { b.bind($0) } + [Self.issueRedirected(event.issueID, &b)]).joined(separator: ", ")
                statements.append(SQLStatement("INSERT INTO error_events (\(columns)) VALUES (\(placeholders)) ON CONFLICT DO NOTHING", b.binds))
                // Counted only if the insert just before stored it (one writer: nothing runs between).
                var u = SQLBuilder(dialect: dialect)
                statements.append(SQLStatement(issueUpsert(event, from: "WHERE changes() = 1", now: now, &u), u.binds))
            }
            // A retried event's tags are already there: ON CONFLICT DO NOTHING keeps them once.
            if let tags = tagInsert(event) { statements.append(tags) }
        }
        try await driver.transaction(statements)
    }

    /// Creates the event's issue or counts the event into it. A resolved issue that happens again
    /// becomes unresolved and is marked as a regression; an ignored one stays ignored until its
    /// ignore's count or time (`now`) has passed, then becomes unresolved, `escalated`. The
    /// issue keeps its first title, as Sentry's do. An event of a merged issue counts into the
    /// issue it was merged into. `source` ends the SELECT of the event's values: the rows it is counted for.
    private func issueUpsert(_ e: ErrorEvent, from source: String, now: Int64, _ b: inout SQLBuilder) -> String {
        let values = [
            Self.issueRedirected(e.issueID, &b), b.bind(.text(e.project)), b.bind(.text(e.title)), b.bind(.text(e.type)), b.bind(.text(e.culprit)),
            b.bind(.int(Int64(e.level.severity))), b.bind(.int(e.timestampMicros)), b.bind(.int(e.timestampMicros)), b.bind(Self.text(e.release)),
        ]
        let d = dialect
        let escalates = """
            (issues.status = 'ignored' AND ((issues.ignore_until_count IS NOT NULL
                AND issues.event_count + 1 - COALESCE(issues.ignored_at_count, 0) >= issues.ignore_until_count)
                OR (issues.ignore_until IS NOT NULL AND \(b.bind(.int(now))) >= issues.ignore_until)))
            """
        let sql = """
            INSERT INTO issues (id, project, title, type, culprit, severity, status, regressed, first_seen, last_seen, event_count, last_release)
            SELECT \(values[0]), \(values[1]), \(values[2]), \(values[3]), \(values[4]), \(values[5]), 'unresolved', 0, \(values[6]), \(values[7]), 1, \(values[8]) \(source)
            ON CONFLICT (id) DO UPDATE SET
                event_count = issues.event_count + 1,
                first_seen = \(d.least("issues.first_seen", "excluded.first_seen")),
                last_seen = \(d.greatest("issues.last_seen", "excluded.last_seen")),
                severity = \(d.greatest("issues.severity", "excluded.severity")),
                culprit = excluded.culprit,
                last_release = COALESCE(excluded.last_release, issues.last_release),
                regressed = CASE WHEN issues.status = 'resolved' THEN 1 ELSE issues.regressed END,
                status = CASE WHEN issues.status = 'resolved' OR \(escalates) THEN 'unresolved' ELSE issues.status END,
                status_reason = CASE WHEN \(escalates) THEN 'escalated' ELSE issues.status_reason END,
                ignore_until_count = CASE WHEN \(escalates) THEN NULL ELSE issues.ignore_until_count END,
                ignored_at_count = CASE WHEN \(escalates) THEN NULL ELSE issues.ignored_at_count END,
                ignore_until = CASE WHEN \(escalates) THEN NULL ELSE issues.ignore_until END
            """
        return sql
    }

    private static let issueSelect = """
        SELECT id, project, title, type, culprit, severity, status, regressed, first_seen, last_seen, event_count, last_release,
               ignore_until_count, ignored_at_count, ignore_until, status_reason,
               (SELECT COUNT(DISTINCT user_key) FROM error_events e WHERE e.issue_id = issues.id) AS users
        FROM issues
        """

    public func issues(_ query: IssueListQuery) async throws -> [ErrorIssue] {
        var b = SQLBuilder(dialect: dialect)
        var conditions: [String] = []
        if let filter = query.filter { conditions.append(try QueryCompiler(schema: .issues).compile(filter, &b)) }
        let limit = max(1, min(query.limit, 1000))
        let sql = "\(Self.issueSelect)\(SQLBuilder.whereClause(conditions)) ORDER BY last_seen DESC, id LIMIT \(b.bind(.int(Int64(limit))))"
        return try await driver.query(sql, b.binds).map(Self.decodeIssue)
    }

    public func issue(id: String) async throws -> ErrorIssue? {
        var b = SQLBuilder(dialect: dialect)
        return try await driver.query("\(Self.issueSelect) WHERE id = \(b.bind(.text(id)))", b.binds).first.map(Self.decodeIssue)
    }

    public func setIssueStatus(id: String, status: IssueStatus) async throws -> Bool {
        try await updateIssueStatus(id: id, to: IssueStatusChange(status: status))
    }

    /// A person's status change replaces any ignore and any `escalated` reason; an ignore
    /// counts its events from the issue's count at this moment.
    public func updateIssueStatus(id: String, to change: IssueStatusChange) async throws -> Bool {
        guard try await issue(id: id) != nil else { return false }
        var b = SQLBuilder(dialect: dialect)
        let s = b.bind(.text(change.status.rawValue))
        let ignored = change.status == .ignored
        let count = b.bind(ignored ? change.ignoreUntilCount.map { .int($0) } ?? .null : .null)
        let at = ignored && change.ignoreUntilCount != nil ? "event_count" : "NULL"
        let until = b.bind(ignored ? change.ignoreUntilMicros.map { .int($0) } ?? .null : .null)
        // Resolving again clears the regression mark: the next recurrence is a new regression.
        let regressed = change.status == .resolved ? ", regressed = 0" : ""
        try await driver.transaction([SQLStatement("""
            UPDATE issues SET status = \(s)\(regressed), status_reason = NULL,
                ignore_until_count = \(count), ignored_at_count = \(at), ignore_until = \(until)
            WHERE id = \(b.bind(.text(id)))
            """, b.binds)])
        return true
    }

    public func events(issueID: String, limit: Int) async throws -> [ErrorEvent] {
        var b = SQLBuilder(dialect: dialect)
        let sql = "SELECT \(Self.eventColumns.joined(separator: ", ")) FROM error_events WHERE issue_id = \(b.bind(.text(issueID))) ORDER BY ts DESC LIMIT \(b.bind(.int(Int64(limit))))"
        return try await driver.query(sql, b.binds).map(Self.decodeEvent)
    }

    public func errorEvents(correlationID: String, limit: Int) async throws -> [ErrorEvent] {
        var b = SQLBuilder(dialect: dialect)
        let sql = "SELECT \(Self.eventColumns.joined(separator: ", ")) FROM error_events WHERE correlation_id = \(b.bind(.text(correlationID))) ORDER BY ts LIMIT \(b.bind(.int(Int64(limit))))"
        return try await driver.query(sql, b.binds).map(Self.decodeEvent)
    }

    public func issueEventCounts(issueIDs: [String], fromMicros: Int64, toMicros: Int64, bucketMicros: Int64) async throws -> [IssueEventBucket] {
        guard !issueIDs.isEmpty, bucketMicros > 0 else { return [] }
        var b = SQLBuilder(dialect: dialect)
        let width = b.bind(.int(bucketMicros))
        let ids = Set(issueIDs).sorted().map { b.bind(.text($0)) }.joined(separator: ", ")
        let sql = """
            SELECT issue_id, (ts / \(width)) * \(width) AS bucket, COUNT(*) AS n FROM error_events
            WHERE issue_id IN (\(ids)) AND ts >= \(b.bind(.int(fromMicros))) AND ts < \(b.bind(.int(toMicros)))
            GROUP BY 1, 2
            """
        return try await driver.query(sql, b.binds).map { row in
            IssueEventBucket(issueID: row["issue_id"].text ?? "", startMicros: row["bucket"].int ?? 0, count: row["n"].int ?? 0)
        }
    }

    public func issueTagValues(issueID: String, valuesPerKey: Int) async throws -> [IssueTagValue] {
        var b = SQLBuilder(dialect: dialect)
        let issue = b.bind(.text(issueID))
        // Sentry SDKs send tags as an object; old ones as a list of [key, value] pairs. A list's
        // other elements (a bare "x", which json_extract cannot read as JSON) are passed over.
        let documentTags = dialect.name == "postgres" ? """
            SELECT t.key AS tag_key, t.value AS tag_value FROM docs,
                jsonb_each_text(CASE WHEN jsonb_typeof(docs.tags) = 'object' THEN docs.tags ELSE '{}'::jsonb END) t
            UNION ALL
            SELECT p ->> 0, p ->> 1 FROM docs, jsonb_array_elements(CASE WHEN jsonb_typeof(docs.tags) = 'array' THEN docs.tags ELSE '[]'::jsonb END) p
            """ : """
            SELECT CASE WHEN docs.kind = 'array' THEN json_extract(t.value, '$[0]') ELSE t.key END AS tag_key,
                   CASE WHEN docs.kind = 'array' THEN json_extract(t.value, '$[1]') ELSE t.value END AS tag_value
            FROM docs, json_each(docs.document, '$.tags') t
            WHERE docs.kind <> 'array' OR t.type = 'array'
            """
        // Only the newest events: a busy issue has hundreds of thousands, and each document is parsed.
        let latest = "SELECT document, environment, release FROM error_events WHERE issue_id = \(issue) ORDER BY ts DESC, event_id DESC LIMIT \(b.bind(.int(Int64(IssueTagValue.eventLimit))))"
        let docs = dialect.name == "postgres"
            ? "SELECT document::jsonb -> 'tags' AS tags FROM latest"
            : "SELECT document, json_type(document, '$.tags') AS kind FROM latest"
        let sql = """
            WITH latest AS (\(latest)),
            docs AS (\(docs)),
            tagged AS (
                \(documentTags)
                UNION ALL SELECT 'environment', environment FROM latest
                UNION ALL SELECT 'release', release FROM latest
            ),
            counted AS (
                SELECT tag_key, tag_value, COUNT(*) AS n FROM tagged WHERE tag_key IS NOT NULL AND tag_value IS NOT NULL GROUP BY tag_key, tag_value
            ),
            ranked AS (
                SELECT tag_key, tag_value, n, CAST(SUM(n) OVER (PARTITION BY tag_key) AS BIGINT) AS total,
                       ROW_NUMBER() OVER (PARTITION BY tag_key ORDER BY n DESC, tag_value) AS position
                FROM counted
            )
            SELECT tag_key, tag_value, n, total FROM ranked WHERE position <= \(b.bind(.int(Int64(max(1, valuesPerKey)))))
            ORDER BY tag_key, position LIMIT 1000
            """
        return try await driver.query(sql, b.binds).map { row in
            IssueTagValue(key: row["tag_key"].text ?? "", value: row["tag_value"].text ?? "", count: row["n"].int ?? 0, keyTotal: row["total"].int ?? 0)
        }
    }

    public func issueEvent(issueID: String, eventID: String?) async throws -> IssueEventPosition? {
        var b = SQLBuilder(dialect: dialect)
        var conditions = ["issue_id = \(b.bind(.text(issueID)))"]
        if let eventID { conditions.append("event_id = \(b.bind(.text(eventID)))") }
        let sql = "SELECT \(Self.eventColumns.joined(separator: ", ")) FROM error_events\(SQLBuilder.whereClause(conditions)) ORDER BY ts DESC, event_id DESC LIMIT 1"
        guard let event = try await driver.query(sql, b.binds).first.map(Self.decodeEvent) else { return nil }
        // Events are ordered by time, then id (several can share a microsecond).
        var n = SQLBuilder(dialect: dialect)
        let issue = n.bind(.text(issueID)), ts = n.bind(.int(event.timestampMicros)), id = n.bind(.text(event.eventID))
        let neighbours = """
            SELECT 'newer' AS side, event_id FROM (SELECT event_id FROM error_events WHERE issue_id = \(issue)
                AND (ts > \(ts) OR (ts = \(ts) AND event_id > \(id))) ORDER BY ts, event_id LIMIT 1) newer
            UNION ALL
            SELECT 'older' AS side, event_id FROM (SELECT event_id FROM error_events WHERE issue_id = \(issue)
                AND (ts < \(ts) OR (ts = \(ts) AND event_id < \(id))) ORDER BY ts DESC, event_id DESC LIMIT 1) older
            """
        let rows = try await driver.query(neighbours, n.binds)
        func neighbour(_ side: String) -> String? { rows.first { $0["side"].text == side }?["event_id"].text }
        return IssueEventPosition(event: event, newerEventID: neighbour("newer"), olderEventID: neighbour("older"))
    }

    static func decodeIssue(_ row: SQLRow) throws -> ErrorIssue {
        guard let id = row["id"].text else { throw StoreError.corrupt("issue row without id") }
        let severity = Int(row["severity"].int ?? 5)
        return ErrorIssue(
            id: id, project: row["project"].text ?? "", title: row["title"].text ?? "", type: row["type"].text ?? "",
            culprit: row["culprit"].text ?? "", level: LogLevel(severity: severity) ?? .error,
            status: row["status"].text.flatMap(IssueStatus.init(rawValue:)) ?? .unresolved, regressed: row["regressed"].int == 1,
            firstSeenMicros: row["first_seen"].int ?? 0, lastSeenMicros: row["last_seen"].int ?? 0, count: row["event_count"].int ?? 0,
            users: row["users"].int ?? 0, lastRelease: row["last_release"].text,
            ignoreUntilCount: row["ignore_until_count"].int, ignoredAtCount: row["ignored_at_count"].int,
            ignoreUntilMicros: row["ignore_until"].int, statusReason: row["status_reason"].text)
    }

    static func decodeEvent(_ row: SQLRow) throws -> ErrorEvent {
        guard let id = row["event_id"].text, let ts = row["ts"].int else { throw StoreError.corrupt("error event without id or ts") }
        let severity = Int(row["severity"].int ?? 5)
        return ErrorEvent(
            eventID: id, project: row["project"].text ?? "", issueID: row["issue_id"].text ?? "", timestampMicros: ts,
            level: LogLevel(severity: severity) ?? .error, type: row["type"].text ?? "", value: row["value"].text ?? "",
            title: row["title"].text ?? "", culprit: row["culprit"].text ?? "", release: row["release"].text, environment: row["environment"].text,
            correlationID: row["correlation_id"].text, userKey: row["user_key"].text, documentJSON: row["document"].text ?? "{}")
    }

    // MARK: - Storage and retention

    /// Each kind's table, its time column, its row key, and an estimate of a row's size
    /// (`StoreKinds` names its tables from here too).
    static func table(_ kind: TelemetryKind) -> (name: String, key: String, size: String) {
        switch kind {
        case .requests: ("requests", "id", "200 + LENGTH(COALESCE(error_message, '')) + LENGTH(COALESCE(attempts, ''))")
        case .logs: ("logs", "seq", "64 + LENGTH(message) + LENGTH(CAST(attributes AS TEXT))")
        case .errors: ("error_events", "event_id", "128 + LENGTH(value) + LENGTH(document)")
        case .bodies: ("request_bodies", "request_id", "64 + request_bytes + response_bytes")
        // A span id is unique only within its trace and project.
        case .spans: ("spans", "trace_id, span_id, project", "96 + LENGTH(name) + LENGTH(CAST(attributes AS TEXT))")
        }
    }

    /// How many of a table's newest rows its average row size is taken from.
    static let sizeSampleRows = 1000
    /// On PostgreSQL, tables the planner believes larger than this report its row estimate
    /// (`pg_class.reltuples`, kept by autovacuum) instead of a count.
    static let estimatedRowsAbove: Int64 = 100_000

    /// Rows, bytes and the oldest row of each kind, without reading every row: counting every
    /// row and summing every row's length took seconds on a store with a million of each.
    /// Bytes are an estimate: captured bodies sum the sizes stored with them; other kinds take
    /// the table's size on disk without indexes on PostgreSQL (`pg_table_size`) and, on SQLite,
    /// the average size of the newest rows times the row count.
    public func storageUse() async throws -> [StorageUse] {
        var result: [StorageUse] = []
        for kind in TelemetryKind.allCases {
            let t = Self.table(kind)
            let oldest = try await driver.query("SELECT MIN(ts) AS oldest FROM \(t.name)", []).first?["oldest"].int
            var planner: (rows: Int64, bytes: Int64)?
            if dialect.name == "postgres" {
                // A partitioned table is the sum of its partitions (the parent itself holds no rows).
                let row = try await driver.query("""
                    SELECT CAST(SUM(GREATEST(reltuples, 0)) AS BIGINT) AS estimate, CAST(SUM(pg_table_size(oid)) AS BIGINT) AS bytes FROM pg_class
                    WHERE oid = to_regclass(\(dialect.placeholder(1))) OR oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass(\(dialect.placeholder(1))))
                    """, [.text(t.name)]).first
                planner = (row?["estimate"].int ?? -1, row?["bytes"].int ?? 0)
            }
            // SQLite counts a table from its smallest index's pages, without decoding rows.
            let rows: Int64
            if let planner, planner.rows > Self.estimatedRowsAbove {
                rows = planner.rows
            } else {
                rows = try await driver.query("SELECT COUNT(*) AS n FROM \(t.name)", []).first?["n"].int ?? 0
            }
            let bytes: Int64
            if kind == .bodies {
                // Read from an index that holds the sizes: the bodies themselves are never touched.
                bytes = try await driver.query("SELECT \(dialect.sumInt("64 + request_bytes + response_bytes")) AS bytes FROM request_bodies", []).first?["bytes"].int ?? 0
            } else if let planner {
                bytes = planner.bytes
            } else {
                var b = SQLBuilder(dialect: dialect)
                let sample = "SELECT \(t.size) AS size FROM \(t.name) ORDER BY ts DESC LIMIT \(b.bind(.int(Int64(Self.sizeSampleRows))))"
                let average = try await driver.query("SELECT AVG(size) AS average FROM (\(sample)) newest", b.binds).first?["average"].double ?? 0
                bytes = Int64((average * Double(rows)).rounded())
            }
            result.append(StorageUse(kind: kind, rows: rows, approximateBytes: bytes, oldestMicros: oldest))
        }
        return result
    }

    /// On PostgreSQL, whole day partitions older than the cutoff are dropped (after any older row
    /// elsewhere is deleted), then what is left before it is deleted row by row: rows of the
    /// default partition, and those of the day the cutoff falls in. Retention's cutoffs fall on
    /// day boundaries there (`retentionStepMicros`), so it deletes no partition's rows.
    public func prune(_ kind: TelemetryKind, beforeMicros: Int64, batch: Int) async throws -> Int {
        var removed = 0
        if dialect.name == "postgres", DayPartitions.isPartitioned(kind) {
            removed = try await DayPartitions.dropPartitions(of: Self.table(kind).name, before: beforeMicros, batch: batch, driver: driver) {
                try await self.deleteOldest(kind, beforeMicros: $0, batch: batch)
            }
        }
        if removed < batch { removed += try await deleteOldest(kind, beforeMicros: beforeMicros, batch: batch - removed) }
        if kind == .requests { try await pruneRollups(beforeMicros: beforeMicros) }
        if kind == .errors, dialect.name == "postgres" { try await pruneEventIDs(beforeMicros: beforeMicros, batch: batch) }
        if kind == .errors { try await pruneEventTags(beforeMicros: beforeMicros, batch: batch) }
        return removed
    }

    /// Deletes the ids of events older than the cutoff (`insertErrorEvents`), in batches: a day
    /// partition dropped at once leaves a day of them. An id is dated by its event's `ts`, so the
    /// two go together.
    private func pruneEventIDs(beforeMicros: Int64, batch: Int) async throws {
        while true {
            let deleted = try await driver.query("""
                WITH doomed AS (DELETE FROM error_event_ids WHERE (project, event_id) IN
                    (SELECT project, event_id FROM error_event_ids WHERE ts < $1 LIMIT $2) RETURNING 1)
                SELECT COUNT(*) AS n FROM doomed
                """, [.int(beforeMicros), .int(Int64(batch))]).first?["n"].int ?? 0
            if deleted < batch { return }
        }
    }

    public func retentionStepMicros(_ kind: TelemetryKind) -> Int64 {
        dialect.name == "postgres" && DayPartitions.isPartitioned(kind) ? TimeExpressions.microsPerDay : 1
    }

    /// Deletes up to `batch` of the oldest rows before `beforeMicros`.
    private func deleteOldest(_ kind: TelemetryKind, beforeMicros: Int64, batch: Int) async throws -> Int {
        let t = Self.table(kind)
        var b = SQLBuilder(dialect: dialect)
        let before = b.bind(.int(beforeMicros))
        // Oldest first: what is left is then all newer than what went, which the request rollups rely on.
        let selection = "SELECT \(t.key) FROM \(t.name) WHERE ts < \(before) ORDER BY ts LIMIT \(b.bind(.int(Int64(batch))))"
        let count = try await driver.query("SELECT COUNT(*) AS n FROM (\(selection)) doomed", b.binds).first?["n"].int ?? 0
        guard count > 0 else { return 0 }
        // The bound on ts again: on PostgreSQL it keeps the DELETE to the partitions before the cutoff.
        try await driver.transaction([SQLStatement("DELETE FROM \(t.name) WHERE ts < \(before) AND (\(t.key)) IN (\(selection))", b.binds)])
        return Int(count)
    }

    /// Deletes the request rollup slots (half hours and days) that hold no call any more: those
    /// wholly before both the cutoff and the slot of the oldest call left (a prune runs in batches, so calls before the
    /// cutoff may remain for a while). The slot of the oldest call stays; usage reads it from the
    /// calls (`SQLRequestStore.rollupPlan`).
    private func pruneRollups(beforeMicros: Int64) async throws {
        var statements: [SQLStatement] = []
        for grain in RequestRollups.Grain.allCases {
            let width = grain.micros
            let levels = RequestRollups.Level.allCases.map { String(RequestRollups.stored($0, grain)) }.joined(separator: ", ")
            var b = SQLBuilder(dialect: dialect)
            let cutoff = b.bind(.int((beforeMicros / width) * width)), w1 = b.bind(.int(width)), w2 = b.bind(.int(width))
            // One statement, so a call stored meanwhile is seen; `level IN` first, so the primary key (level, slot, …) serves the range.
            statements.append(SQLStatement("""
                DELETE FROM request_rollups WHERE level IN (\(levels)) AND slot < \(cutoff)
                    AND slot < COALESCE((SELECT (MIN(ts) / \(w1)) * \(w2) FROM requests), \(cutoff))
                """, b.binds))
        }
        try await driver.transaction(statements)
    }

    public func trim(_ kind: TelemetryKind, keep: Int64, batch: Int) async throws -> Int {
        let t = Self.table(kind)
        var b = SQLBuilder(dialect: dialect)
        // The timestamp of the newest row beyond `keep`; everything at or before it goes.
        let cutoffSQL = "SELECT ts FROM \(t.name) ORDER BY ts DESC LIMIT 1 OFFSET \(b.bind(.int(keep)))"
        guard let cutoff = try await driver.query(cutoffSQL, b.binds).first?["ts"].int else { return 0 }
        return try await prune(kind, beforeMicros: cutoff + 1, batch: batch)
    }

    // MARK: - Helpers

    static func text(_ value: String?) -> SQLValue { value.map { .text($0) } ?? .null }

}
