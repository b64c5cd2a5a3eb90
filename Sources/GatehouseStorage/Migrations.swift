import Foundation
import GatehouseCore
import Logging

/// A numbered schema change with its SQL for each database. Versions only grow; a released
/// migration is never edited, a new one is added.
struct Migration: Sendable {
    var version: Int
    var name: String
    var sqlite: [String]
    var postgres: [String]

    func statements(for dialect: any SQLDialect) -> [String] { dialect.name == "postgres" ? postgres : sqlite }
}

enum Migrations {
    static let all: [Migration] = [
        Migration(
            version: 1, name: "request records",
            sqlite: [
                """
                CREATE TABLE requests (
                    id TEXT PRIMARY KEY,
                    ts INTEGER NOT NULL,
                    route TEXT NOT NULL,
                    provider TEXT NOT NULL,
                    requested_model TEXT NOT NULL,
                    model TEXT NOT NULL,
                    status INTEGER NOT NULL,
                    stream INTEGER NOT NULL,
                    latency_us INTEGER NOT NULL,
                    ttft_us INTEGER,
                    input_tokens INTEGER NOT NULL,
                    output_tokens INTEGER NOT NULL,
                    cached_input_tokens INTEGER NOT NULL,
                    cache_creation_input_tokens INTEGER NOT NULL,
                    reasoning_tokens INTEGER NOT NULL,
                    cost_micros INTEGER NOT NULL,
                    key_id TEXT,
                    user_id TEXT,
                    properties TEXT NOT NULL DEFAULT '{}',
                    correlation_id TEXT NOT NULL,
                    error_class TEXT,
                    error_message TEXT,
                    complete INTEGER NOT NULL
                )
                """,
                "CREATE INDEX requests_ts ON requests (ts)",
                "CREATE INDEX requests_correlation ON requests (correlation_id)",
                "CREATE INDEX requests_model_ts ON requests (model, ts)",
                "CREATE INDEX requests_key_ts ON requests (key_id, ts)",
            ],
            postgres: [
                """
                CREATE TABLE requests (
                    id TEXT PRIMARY KEY,
                    ts BIGINT NOT NULL,
                    route TEXT NOT NULL,
                    provider TEXT NOT NULL,
                    requested_model TEXT NOT NULL,
                    model TEXT NOT NULL,
                    status INTEGER NOT NULL,
                    stream SMALLINT NOT NULL,
                    latency_us BIGINT NOT NULL,
                    ttft_us BIGINT,
                    input_tokens BIGINT NOT NULL,
                    output_tokens BIGINT NOT NULL,
                    cached_input_tokens BIGINT NOT NULL,
                    cache_creation_input_tokens BIGINT NOT NULL,
                    reasoning_tokens BIGINT NOT NULL,
                    cost_micros BIGINT NOT NULL,
                    key_id TEXT,
                    user_id TEXT,
                    properties JSONB NOT NULL DEFAULT '{}'::jsonb,
                    correlation_id TEXT NOT NULL,
                    error_class TEXT,
                    error_message TEXT,
                    complete SMALLINT NOT NULL
                )
                """,
                "CREATE INDEX requests_ts ON requests (ts)",
                "CREATE INDEX requests_correlation ON requests (correlation_id)",
                "CREATE INDEX requests_model_ts ON requests (model, ts)",
                "CREATE INDEX requests_key_ts ON requests (key_id, ts)",
                "CREATE INDEX requests_properties ON requests USING GIN (properties jsonb_path_ops)",
            ]),
        Migration(
            version: 2, name: "controls: keys, switches, audit, quota counters, budget events, cache",
            sqlite: controlTables(bigint: "INTEGER", serial: "INTEGER PRIMARY KEY AUTOINCREMENT") + [
                "ALTER TABLE requests ADD COLUMN attempts TEXT",
                "ALTER TABLE requests ADD COLUMN cache_hit INTEGER NOT NULL DEFAULT 0",
                "ALTER TABLE requests ADD COLUMN cost_saved_micros INTEGER NOT NULL DEFAULT 0",
            ],
            postgres: controlTables(bigint: "BIGINT", serial: "BIGSERIAL PRIMARY KEY") + [
                "ALTER TABLE requests ADD COLUMN attempts TEXT",
                "ALTER TABLE requests ADD COLUMN cache_hit SMALLINT NOT NULL DEFAULT 0",
                "ALTER TABLE requests ADD COLUMN cost_saved_micros BIGINT NOT NULL DEFAULT 0",
            ]),
        Migration(
            version: 3, name: "telemetry: logs, error events, issues",
            // AUTOINCREMENT: a log's seq is never reused, even after retention empties the table (a tail resumes by seq).
            sqlite: telemetryTables(bigint: "INTEGER", json: "TEXT", jsonDefault: "'{}'", serial: "INTEGER PRIMARY KEY AUTOINCREMENT"),
            postgres: telemetryTables(bigint: "BIGINT", json: "JSONB", jsonDefault: "'{}'::jsonb", serial: "BIGSERIAL PRIMARY KEY") + [
                // Retention deletes by age here; version 10 partitions the table by day.
                "CREATE INDEX logs_attributes ON logs USING GIN (attributes jsonb_path_ops)",
            ]),
        Migration(
            version: 4, name: "alerts: history, silences, deliveries, probe results, heartbeats, leases",
            sqlite: alertTables(bigint: "INTEGER", serial: "INTEGER PRIMARY KEY"),
            postgres: alertTables(bigint: "BIGINT", serial: "BIGSERIAL PRIMARY KEY")),
        Migration(
            version: 5, name: "requests: usage_estimated",
            sqlite: ["ALTER TABLE requests ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0"],
            postgres: ["ALTER TABLE requests ADD COLUMN usage_estimated SMALLINT NOT NULL DEFAULT 0"]),
        Migration(
            version: 6, name: "console: accounts and sessions",
            sqlite: consoleTables(bigint: "INTEGER"),
            postgres: consoleTables(bigint: "BIGINT")),
        Migration(
            // Probe results are kept 31 days; the hourly prune deletes by age alone, which
            // (probe, ts) cannot serve, so without this it reads the whole table each time.
            version: 7, name: "probe results: an index by time for pruning",
            sqlite: ["CREATE INDEX probe_results_ts ON probe_results (ts)"],
            postgres: ["CREATE INDEX probe_results_ts ON probe_results (ts)"]),
        Migration(
            // Bodies live apart from their records: read one at a time (a request's page),
            // never scanned with them, and pruned on a retention of their own.
            version: 8, name: "captured request and response bodies",
            sqlite: requestBodyTables(bigint: "INTEGER"),
            postgres: requestBodyTables(bigint: "BIGINT")),
        Migration(
            // Issue 11: every console page under 150 ms with a million calls and log lines.
            version: 9, name: "console at scale: request and probe rollups, sort, probe and issue-user indexes, body sizes",
            sqlite: consoleAtScale(sqlite: true),
            postgres: consoleAtScale(sqlite: false)),
        Migration(
            // Issue 12: months of data on PostgreSQL, with retention dropping whole days instead of
            // deleting rows. SQLite keeps its plain tables. The SQL: `Migrations+Partitions.swift`.
            version: 10, name: "PostgreSQL: requests, logs and error events partitioned by day",
            sqlite: [],
            postgres: partitionByDay()),
        Migration(
            // An event's id and project, unique, in a table not partitioned by time: a retried
            // event may carry another `ts`, which the partitioned table's key includes. SQLite's
            // error_events keeps its (project, event_id) key.
            version: 11, name: "PostgreSQL: error event ids, to store each event once",
            sqlite: [],
            postgres: [
                "CREATE TABLE error_event_ids (project TEXT NOT NULL, event_id TEXT NOT NULL, ts BIGINT NOT NULL, PRIMARY KEY (project, event_id))",
                "INSERT INTO error_event_ids (project, event_id, ts) SELECT project, event_id, MIN(ts) FROM error_events GROUP BY project, event_id",
                // Retention deletes the ids with their events, by age.
                "CREATE INDEX error_event_ids_ts ON error_event_ids (ts)",
            ]),
        Migration(
            // A failed scheduled backup kept DOWN across restarts (it was in one process's memory).
            version: 12, name: "heartbeats: the last failure of a built-in heartbeat's job",
            sqlite: SQLAlertStore.heartbeatFailureMigration(sqlite: true),
            postgres: SQLAlertStore.heartbeatFailureMigration(sqlite: false)),
        Migration(
            // Performance traces. On PostgreSQL partitioned by day from the start, like
            // logs (`DayPartitions.tables`); the SQL is `SQLTelemetryStore.spanMigration`.
            version: 13, name: "spans",
            sqlite: SQLTelemetryStore.spanMigration(sqlite: true),
            postgres: SQLTelemetryStore.spanMigration(sqlite: false)),
        Migration(
            // Sentry parity for issues. Events stored before it have no tags (the
            // backfill would parse every stored document); `Migrations+Issues.swift`.
            version: 14, name: "issues: event tags for search, ignore until, merge redirects",
            sqlite: issueSearchMigration(sqlite: true),
            postgres: issueSearchMigration(sqlite: false)),
    ]

    /// Half-hourly and daily request rollups and hourly probe rollups (backfilled from the calls and
    /// checks already stored), indexes for the request
    /// list's cost and latency orders and for latency ranks, covering indexes for probe uptime and
    /// incidents and for issues' distinct users, and the stored sizes of captured bodies
    /// (backfilled once from the bodies).
    static func consoleAtScale(sqlite: Bool) -> [String] {
        let bigint = sqlite ? "INTEGER" : "BIGINT"
        let bytes = sqlite ? { (column: String) in "LENGTH(CAST(\(column) AS BLOB))" } : { (column: String) in "octet_length(\(column))" }
        return [
            // ts alone becomes (ts, latency_us): the same range scans, and ranking a range's latencies reads the index alone.
            "DROP INDEX requests_ts",
            "CREATE INDEX requests_ts ON requests (ts, latency_us)",
            // The request list sorted by cost or latency walks these instead of sorting the range.
            "CREATE INDEX requests_cost_sort ON requests (cost_micros, ts, id)",
            "CREATE INDEX requests_latency_sort ON requests (latency_us, ts, id)",
        ] + RequestRollups.migration(sqlite: sqlite) + [
            "ALTER TABLE request_bodies ADD COLUMN request_bytes \(bigint) NOT NULL DEFAULT 0",
            "ALTER TABLE request_bodies ADD COLUMN response_bytes \(bigint) NOT NULL DEFAULT 0",
            "UPDATE request_bodies SET request_bytes = \(bytes("request_body")), response_bytes = \(bytes("response_body"))",
            // Storage reports sum the sizes from this index; pruning by age uses its first column.
            "DROP INDEX request_bodies_ts",
            "CREATE INDEX request_bodies_ts ON request_bodies (ts, request_bytes, response_bytes)",
            // Uptime and incidents read only these columns, in this order: no table lookups, no sort.
            "DROP INDEX probe_results_probe_ts",
            "CREATE INDEX probe_results_probe_ts ON probe_results (probe, ts, id, up, latency_us)",
            // Incidents start from the failed checks alone: a small partial index.
            "CREATE INDEX probe_results_down ON probe_results (probe, ts, id) WHERE up = 0",
        ] + SQLAlertStore.probeRollupMigration(sqlite: sqlite) + [
            // An issue's distinct users (every issue list and page) counted from the index alone.
            "CREATE INDEX error_events_issue_user ON error_events (issue_id, user_key)",
        ]
    }

    static func requestBodyTables(bigint: String) -> [String] {
        [
            """
            CREATE TABLE request_bodies (
                request_id TEXT PRIMARY KEY,
                ts \(bigint) NOT NULL,
                request_body TEXT NOT NULL,
                request_truncated INTEGER NOT NULL,
                response_body TEXT NOT NULL,
                response_truncated INTEGER NOT NULL,
                response_reassembled INTEGER NOT NULL
            )
            """,
            "CREATE INDEX request_bodies_ts ON request_bodies (ts)",
        ]
    }

    /// Console accounts and their sessions (a session row holds only its token's SHA-256).
    static func consoleTables(bigint: String) -> [String] {
        [
            """
            CREATE TABLE console_accounts (
                id TEXT PRIMARY KEY,
                email TEXT NOT NULL UNIQUE,
                role TEXT NOT NULL,
                password_hash TEXT NOT NULL,
                created_at \(bigint) NOT NULL,
                disabled SMALLINT NOT NULL DEFAULT 0
            )
            """,
            """
            CREATE TABLE console_sessions (
                token_hash TEXT PRIMARY KEY,
                account_id TEXT NOT NULL,
                account_name TEXT NOT NULL,
                role TEXT NOT NULL,
                csrf_token TEXT NOT NULL,
                created_at \(bigint) NOT NULL,
                last_seen \(bigint) NOT NULL,
                expires_at \(bigint) NOT NULL
            )
            """,
            "CREATE INDEX console_sessions_account ON console_sessions (account_id)",
        ]
    }

    static func alertTables(bigint: String, serial: String) -> [String] {
        [
            """
            CREATE TABLE alert_history (
                id \(serial), ts \(bigint) NOT NULL, rule TEXT NOT NULL, fingerprint TEXT NOT NULL, labels TEXT NOT NULL,
                state TEXT NOT NULL, value DOUBLE PRECISION NOT NULL, severity TEXT NOT NULL, summary TEXT NOT NULL
            )
            """,
            "CREATE INDEX alert_history_ts ON alert_history (ts)",
            "CREATE INDEX alert_history_rule_ts ON alert_history (rule, ts)",
            """
            CREATE TABLE silences (
                id TEXT PRIMARY KEY, matchers TEXT NOT NULL, starts_at \(bigint) NOT NULL, ends_at \(bigint) NOT NULL,
                created_by TEXT NOT NULL, comment TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE alert_deliveries (
                id \(serial), ts \(bigint) NOT NULL, receiver TEXT NOT NULL, group_key TEXT NOT NULL, status TEXT NOT NULL,
                attempt INTEGER NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL
            )
            """,
            "CREATE INDEX alert_deliveries_ts ON alert_deliveries (ts)",
            """
            CREATE TABLE probe_results (
                id \(serial), probe TEXT NOT NULL, ts \(bigint) NOT NULL, up SMALLINT NOT NULL, status INTEGER,
                latency_us \(bigint) NOT NULL, error TEXT
            )
            """,
            "CREATE INDEX probe_results_probe_ts ON probe_results (probe, ts)",
            "CREATE TABLE heartbeats (name TEXT PRIMARY KEY, last_ping \(bigint) NOT NULL)",
            "CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at \(bigint) NOT NULL)",
        ]
    }

    /// Logs, error events and issues; the same on both databases but for a few type names.
    static func telemetryTables(bigint: String, json: String, jsonDefault: String, serial: String) -> [String] {
        [
            """
            CREATE TABLE logs (
                seq \(serial),
                ts \(bigint) NOT NULL,
                project TEXT NOT NULL,
                severity SMALLINT NOT NULL,
                message TEXT NOT NULL,
                service TEXT,
                environment TEXT,
                correlation_id TEXT,
                function TEXT,
                duration_us \(bigint),
                slow SMALLINT NOT NULL DEFAULT 0,
                attributes \(json) NOT NULL DEFAULT \(jsonDefault)
            )
            """,
            "CREATE INDEX logs_ts ON logs (ts)",
            "CREATE INDEX logs_severity_ts ON logs (severity, ts)",
            // Text matches ignore case (`LOWER(service) = ?`), so these index the lowered value.
            "CREATE INDEX logs_service_ts ON logs (LOWER(service), ts)",
            "CREATE INDEX logs_function_ts ON logs (LOWER(function), ts)",
            // With ts, so "this id, newest first" reads the index alone (no planner detour through logs_ts).
            "CREATE INDEX logs_correlation ON logs (correlation_id, ts)",
            """
            CREATE TABLE issues (
                id TEXT PRIMARY KEY,
                project TEXT NOT NULL,
                title TEXT NOT NULL,
                type TEXT NOT NULL,
                culprit TEXT NOT NULL,
                severity SMALLINT NOT NULL,
                status TEXT NOT NULL,
                regressed SMALLINT NOT NULL DEFAULT 0,
                first_seen \(bigint) NOT NULL,
                last_seen \(bigint) NOT NULL,
                event_count \(bigint) NOT NULL,
                last_release TEXT
            )
            """,
            "CREATE INDEX issues_last_seen ON issues (last_seen)",
            """
            CREATE TABLE error_events (
                event_id TEXT NOT NULL,
                project TEXT NOT NULL,
                issue_id TEXT NOT NULL,
                ts \(bigint) NOT NULL,
                severity SMALLINT NOT NULL,
                type TEXT NOT NULL,
                value TEXT NOT NULL,
                title TEXT NOT NULL,
                culprit TEXT NOT NULL,
                release TEXT,
                environment TEXT,
                correlation_id TEXT,
                user_key TEXT,
                document TEXT NOT NULL,
                PRIMARY KEY (project, event_id)
            )
            """,
            "CREATE INDEX error_events_issue_ts ON error_events (issue_id, ts)",
            "CREATE INDEX error_events_correlation ON error_events (correlation_id)",
            "CREATE INDEX error_events_ts ON error_events (ts)",
        ]
    }

    /// The controls' tables; identical on both databases but for a few type names.
    static func controlTables(bigint: String, serial: String) -> [String] {
        [
            """
            CREATE TABLE virtual_keys (
                id TEXT PRIMARY KEY,
                hash TEXT NOT NULL UNIQUE,
                document TEXT NOT NULL,
                updated_at \(bigint) NOT NULL
            )
            """,
            "CREATE TABLE kill_switches (kind TEXT NOT NULL, value TEXT NOT NULL, document TEXT NOT NULL, updated_at \(bigint) NOT NULL, PRIMARY KEY (kind, value))",
            "CREATE TABLE control_versions (name TEXT PRIMARY KEY, version \(bigint) NOT NULL)",
            """
            CREATE TABLE audit_log (
                id \(serial),
                ts \(bigint) NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                target TEXT NOT NULL,
                details TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE quota_counters (
                counter TEXT NOT NULL,
                window_start \(bigint) NOT NULL,
                granted \(bigint) NOT NULL,
                used \(bigint) NOT NULL,
                limit_value \(bigint) NOT NULL,
                updated_at \(bigint) NOT NULL,
                PRIMARY KEY (counter, window_start)
            )
            """,
            """
            CREATE TABLE budget_events (
                counter TEXT NOT NULL,
                window_start \(bigint) NOT NULL,
                threshold_percent INTEGER NOT NULL,
                used \(bigint) NOT NULL,
                limit_value \(bigint) NOT NULL,
                ts \(bigint) NOT NULL,
                PRIMARY KEY (counter, window_start, threshold_percent)
            )
            """,
            "CREATE INDEX budget_events_ts ON budget_events (ts)",
            """
            CREATE TABLE cache_entries (
                key TEXT PRIMARY KEY,
                status INTEGER NOT NULL,
                content_type TEXT NOT NULL,
                body TEXT NOT NULL,
                model TEXT NOT NULL,
                provider TEXT NOT NULL,
                usage TEXT NOT NULL,
                cost_micros \(bigint) NOT NULL,
                created_at \(bigint) NOT NULL,
                expires_at \(bigint) NOT NULL
            )
            """,
            "CREATE INDEX cache_entries_expiry ON cache_entries (expires_at)",
        ]
    }

    /// The schema version this binary migrates to.
    static var newestVersion: Int64 { Int64(all.map(\.version).max() ?? 0) }

    /// Applies every migration newer than the database's version, each in its own transaction,
    /// and says what it did. It logs the run: a migration that fills a new table
    /// from a large one can take minutes, during which the server does not listen yet.
    @discardableResult
    static func apply(to driver: any SQLDriver, migrations: [Migration] = all,
                      logger: Logger = Logger(label: "gatehouse.storage")) async throws -> MigrationRun {
        let applied = AppliedVersions()
        try await driver.withMigrationLock { driver in
            _ = try await driver.query(
                "CREATE TABLE IF NOT EXISTS gatehouse_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)", [])
            let rows = try await driver.query("SELECT COALESCE(MAX(version), 0) AS version FROM gatehouse_migrations", [])
            let current = rows.first?["version"].int ?? 0
            // Read under the lock: a run that waited for another reports where that one left it.
            await applied.start(at: current)
            if let newest = migrations.map(\.version).max(), current > Int64(newest) {
                throw SchemaNotCurrent(current: current, needed: Int64(newest))
            }
            let pending = migrations.sorted(by: { $0.version < $1.version }).filter { $0.version > current }
            guard let target = pending.last?.version else { return }
            let started = ContinuousClock.now
            logger.notice("migrating the database; the server listens once it is done", metadata: ["from": "\(current)", "to": "\(target)"])
            defer {
                let seconds = String(format: "%.1f", (ContinuousClock.now - started) / .seconds(1))
                logger.notice("the database migration ended", metadata: ["seconds": "\(seconds)"])
            }
            for migration in pending {
                let now = TimeExpressions.nowMicros()
                var statements = migration.statements(for: driver.dialect).map { SQLStatement($0) }
                let d = driver.dialect
                statements.append(SQLStatement(
                    "INSERT INTO gatehouse_migrations (version, name, applied_at) VALUES (\(d.placeholder(1)), \(d.placeholder(2)), \(d.placeholder(3)))",
                    [.int(Int64(migration.version)), .text(migration.name), .int(now)]))
                logger.info("applying a database migration", metadata: ["version": "\(migration.version)", "migration": "\(migration.name)"])
                try await driver.transaction(statements)
                await applied.add(migration.version)
            }
        }
        let from = await applied.from, versions = await applied.versions
        return MigrationRun(from: from, to: versions.last.map(Int64.init) ?? from, applied: versions)
    }

    private actor AppliedVersions {
        var from: Int64 = 0
        var versions: [Int] = []
        func start(at version: Int64) { from = version }
        func add(_ v: Int) { versions.append(v) }
    }

    /// The database's schema version, read without changing anything: 0 for a database no
    /// Gatehouse has migrated yet (no `gatehouse_migrations` table).
    static func currentVersion(of driver: any SQLDriver) async throws -> Int64 {
        let exists = driver.dialect.name == "postgres"
            ? "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'gatehouse_migrations'"
            : "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'gatehouse_migrations'"
        guard try await driver.query(exists, []).first?["n"].int ?? 0 > 0 else { return 0 }
        return try await driver.query("SELECT COALESCE(MAX(version), 0) AS version FROM gatehouse_migrations", []).first?["version"].int ?? 0
    }

    /// For a server told not to migrate: the schema must be exactly the one this binary knows.
    static func requireCurrent(_ driver: any SQLDriver) async throws {
        let current = try await currentVersion(of: driver)
        if current != newestVersion { throw SchemaNotCurrent(current: current, needed: newestVersion) }
    }
}

/// What one `Migrations.apply` found and did; `applied` is empty when the schema was current.
public struct MigrationRun: Sendable, Equatable {
    public var from: Int64
    public var to: Int64
    public var applied: [Int]
}

/// A server started without migrating found a schema other than its own.
public struct SchemaNotCurrent: Error, CustomStringConvertible, Sendable {
    public var current: Int64
    public var needed: Int64
    public var description: String {
        current < needed
            ? "the database is at schema version \(current) and this Gatehouse needs \(needed), and migrations on start are off "
                + "(--no-migrate, GATEHOUSE_MIGRATE=false or migrate_on_start: false): run `gatehouse migrate` with the same store options first"
            // Refused, never run on: this binary cannot tell whether the newer versions kept
            // what it reads and writes (no compatibility record exists).
            : "the database is at schema version \(current), newer than this Gatehouse knows (\(needed)): a newer release migrated it. "
                + "Run that release (or newer), or roll back by restoring the backup taken before the upgrade "
                + "(docs/deployment.md, \"Rollback\")"
    }
}
