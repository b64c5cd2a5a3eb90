import CCompression
import Foundation
import GatehouseCore
import Logging
import PostgresNIO
import SQLiteNIO
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Online backups of the SQLite store, restores, and checks of a backup or a database.
///
/// A backup is one gzip stream of a `VACUUM INTO` snapshot: a consistent copy taken inside one
/// read transaction, so a server writing in WAL mode meanwhile is neither stopped nor seen half
/// way. Every file is streamed in chunks: memory stays small whatever the store's size, and a
/// hostile or damaged input ends in a `BackupError`, never a crash.
public enum StoreBackup {
    /// Bytes read or written per step while (de)compressing.
    static let chunkSize = 1 << 20

    // MARK: - Temporary files

    /// `.gatehouse-WRITER-STAMP[KIND].tmp`, e.g. `.gatehouse-backup-1a2b3c4d.sqlite.tmp`. Every
    /// temporary file matches `.gatehouse-*.tmp` (docs/operations.md): a killed run's leftovers,
    /// a plaintext copy among them, are found and removed by that one pattern; `WRITER` tells
    /// whose they are (`isTemporaryFile(_:of:)`).
    static func temporaryFileName(_ writer: String, _ stamp: some StringProtocol, _ kind: String = "") -> String {
        ".gatehouse-\(writer)-\(stamp)\(kind).tmp"
    }

    /// Whether `name` is one of the temporary files `writer` names (SQLite's `-journal` or `-wal`
    /// beside one included).
    static func isTemporaryFile(_ name: String, of writer: String) -> Bool {
        name.hasPrefix(".gatehouse-\(writer)-") && name.contains(".tmp")
    }

    // MARK: - Backup

    /// Writes a compressed snapshot of the SQLite database of `databaseURL` to `output`, checks
    /// the snapshot and returns its report. The file appears whole or not at all (a temporary
    /// file beside it, renamed once synced). PostgreSQL is refused: `pg_dump` does it better.
    /// `temporaryName` names the temporary files (`.gatehouse-NAME-….tmp`), so their writer can
    /// find a killed run's leftovers.
    public static func backup(databaseURL: String, to output: String, overwrite: Bool, temporaryName: String = "backup",
                              logger: Logger) async throws -> StoreReport {
        let source: String
        switch DatabaseURL(databaseURL) {
        case .sqlite(let path): source = path
        case .postgres:
            throw BackupError("the store is PostgreSQL (\(Redactor.redactURL(databaseURL))): back it up with pg_dump "
                + "(pg_dump --format=custom --file=gatehouse.dump \"$GATEHOUSE_DATABASE_URL\") or your provider's point-in-time recovery, "
                + "see docs/operations.md; `gatehouse verify-backup --database-url …` checks a restored copy")
        case nil: throw BackupError("unsupported database URL \(Redactor.redactURL(databaseURL))")
        }
        guard isRegularFile(source) else { throw BackupError("there is no SQLite database at \(source)") }
        let target = URL(fileURLWithPath: output).standardizedFileURL
        let directory = target.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw BackupError("the directory \(directory) does not exist")
        }
        if FileManager.default.fileExists(atPath: target.path, isDirectory: &isDirectory) {
            if isDirectory.boolValue { throw BackupError("\(target.path) is a directory") }
            if !overwrite { throw BackupError("\(target.path) exists; pass --force to replace it") }
        }
        let stamp = UUID().uuidString.prefix(8)
        let snapshot = (directory as NSString).appendingPathComponent(temporaryFileName(temporaryName, stamp, ".sqlite"))
        let compressed = (directory as NSString).appendingPathComponent(temporaryFileName(temporaryName, stamp, ".gz"))
        defer {
            removeDatabaseFiles(snapshot)
            try? FileManager.default.removeItem(atPath: compressed)
        }
        // Cancelling the task abandons the backup between steps and between compressed chunks
        // (the server's shutdown must not wait for a backup of a large store); the temporary
        // files go with it.
        try await snapshotSQLite(source, into: snapshot, logger: logger)
        try Task.checkCancellation()
        let report = try await verify(sqliteFile: snapshot, logger: logger)
        try Task.checkCancellation()
        guard report.ok else { throw BackupError("the snapshot failed its check: " + report.problems.joined(separator: "; "), report: report) }
        let abandoned = AbandonFlag()
        try await withTaskCancellationHandler {
            try await onOwnThread { try Gzip.compress(snapshot, to: compressed, abandonIf: abandoned.isSet) }
        } onCancel: {
            abandoned.set()
        }
        if overwrite {
            guard rename(compressed, target.path) == 0 else { throw BackupError("cannot write \(target.path): \(String(cString: strerror(errno)))") }
        } else {
            // No check-then-rename: a file that appeared meanwhile is kept.
            try placeWithoutReplacing(compressed, at: target.path, hint: "; pass --force to replace it")
        }
        syncDirectory(directory)
        return report
    }

    /// Runs blocking `work` (compressing a whole store takes a minute for a GB) on a thread of its
    /// own: never on an event loop, which the server's tasks run on, nor on the thread pool that
    /// every SQLite query shares.
    static func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result(catching: work)) }
            thread.name = "gatehouse-backup"
            thread.start()
        }
    }


    /// `VACUUM INTO` on a connection of its own: it reads in one transaction (WAL: beside the
    /// server's writer, without blocking it) and writes a compact copy that has no WAL to go with it.
    static func snapshotSQLite(_ source: String, into destination: String, logger: Logger) async throws {
        // VACUUM INTO fills an empty file as it finds it: created here, so only we can read it.
        try Gzip.createExclusively(destination).close()
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: source), logger: logger)
        } catch {
            throw BackupError("cannot open \(source): \(error)")
        }
        do {
            _ = try await connection.query("PRAGMA busy_timeout=30000", [])
            _ = try await connection.query("VACUUM INTO ?1", [.text(destination)])
            await connection.closeEvenIfCancelled()
        } catch {
            await connection.closeEvenIfCancelled()
            if error is CancellationError { throw error }
            throw BackupError("cannot copy \(source): \(error)")
        }
    }

    // MARK: - Restore

    /// Decompresses the backup at `input` into `databasePath`, whose directory must be empty or
    /// missing, and checks the result before it takes the database's name. On any failure the
    /// directory is left as it was found (one this call made is removed again).
    public static func restore(from input: String, toDatabaseAt databasePath: String, logger: Logger) async throws -> StoreReport {
        try await restore(from: input, toDatabaseAt: databasePath, logger: logger, beforePlacing: nil)
    }

    /// `beforePlacing` runs once the copy has passed its check, just before it takes its name:
    /// tests make another process's files appear there.
    static func restore(from input: String, toDatabaseAt databasePath: String, logger: Logger,
                        beforePlacing: (() throws -> Void)?) async throws -> StoreReport {
        guard isRegularFile(input) else { throw BackupError("there is no backup file at \(input)") }
        let target = URL(fileURLWithPath: databasePath).standardizedFileURL
        let directory = target.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        var created = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw BackupError("\(directory) is not a directory") }
            let entries = try FileManager.default.contentsOfDirectory(atPath: directory)
            guard entries.isEmpty else {
                throw BackupError("\(directory) is not empty (\(entries.count) entr\(entries.count == 1 ? "y" : "ies"), e.g. \(entries.sorted()[0])); "
                    + "restore into an empty or new directory")
            }
        } else {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw BackupError("cannot create \(directory): \(error.localizedDescription)")
            }
            created = true
        }
        let temporary = (directory as NSString).appendingPathComponent(temporaryFileName("restore", UUID().uuidString.prefix(8)))
        do {
            try Gzip.decompress(input, to: temporary)
            let report = try await verify(sqliteFile: temporary, logger: logger)
            guard report.ok else { throw BackupError("the restored database failed its check: " + report.problems.joined(separator: "; "), report: report) }
            try beforePlacing?()
            // link() fails on an existing name: a database that appeared meanwhile (a server
            // started on the directory) is never replaced.
            try placeWithoutReplacing(temporary, at: target.path)
            syncDirectory(directory)
            removeDatabaseFiles(temporary)  // SQLite removes its -wal and -shm on close; in case it did not
            return report
        } catch {
            // Only what this run made: its temporary file, and the directory only while empty
            // (rmdir refuses otherwise), since another process may have put files in it.
            removeDatabaseFiles(temporary)
            if created { rmdir(directory) }
            throw error
        }
    }

    // MARK: - Verify

    /// Decompresses a backup into a temporary file (under `TMPDIR`), checks it and removes it.
    public static func verify(backupFile: String, logger: Logger) async throws -> StoreReport {
        guard isRegularFile(backupFile) else { throw BackupError("there is no backup file at \(backupFile)") }
        let temporary = FileManager.default.temporaryDirectory.appendingPathComponent(temporaryFileName("verify", UUID().uuidString.prefix(8))).path
        defer { removeDatabaseFiles(temporary) }
        try Gzip.decompress(backupFile, to: temporary)
        return try await verify(sqliteFile: temporary, logger: logger)
    }

    /// Checks a database in place, read-only: a SQLite file (`sqlite://…`) or a PostgreSQL
    /// database (`postgres://…`, e.g. restored with pg_restore). Nothing is migrated.
    public static func verify(databaseURL: String, logger: Logger) async throws -> StoreReport {
        switch DatabaseURL(databaseURL) {
        case .sqlite(let path):
            guard isRegularFile(path) else { throw BackupError("there is no SQLite database at \(path)") }
            return try await verify(sqliteFile: path, logger: logger)
        case .postgres(let text):
            let client = PostgresClient(configuration: try PostgresDriver.configuration(fromURL: text), backgroundLogger: logger)
            // Counting every row of a large table takes longer than a request's deadline.
            let driver = PostgresDriver(client: client, logger: logger, timeouts: .init(query: .seconds(600)))
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                defer { group.cancelAll() }
                return try await report(driver: driver, database: "postgres", integrity: nil)
            }
        case nil:
            throw BackupError("unsupported database URL \(Redactor.redactURL(databaseURL))")
        }
    }

    /// `PRAGMA integrity_check`, then the report; a file SQLite cannot read at all is a failed
    /// report, not an error.
    static func verify(sqliteFile path: String, logger: Logger) async throws -> StoreReport {
        guard try hasSQLiteHeader(path) else {
            return StoreReport.failed(database: "sqlite", problem: "the file is not a SQLite database")
        }
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: readOnlyURI(path)), logger: logger)
        } catch {
            return StoreReport.failed(database: "sqlite", problem: "SQLite cannot open it: \(error)")
        }
        let driver = SingleSQLiteConnection(connection: connection)
        do {
            // Read-only, and the schema's own code (triggers, views) is not trusted: the file may
            // come from anywhere.
            for pragma in ["PRAGMA query_only=ON", "PRAGMA trusted_schema=OFF", "PRAGMA busy_timeout=30000"] {
                _ = try await driver.query(pragma, [])
            }
            let rows = try await driver.query("PRAGMA integrity_check(20)", [])
            let lines = rows.compactMap { $0.values.values.first?.text }
            let integrity = lines.isEmpty ? "no answer" : lines.joined(separator: "; ")
            let result: StoreReport
            if integrity == "ok" {
                result = try await report(driver: driver, database: "sqlite", integrity: integrity)
            } else {
                result = StoreReport.failed(database: "sqlite", problem: "integrity_check: \(integrity)", integrity: integrity)
            }
            await connection.closeEvenIfCancelled()
            return result
        } catch {
            await connection.closeEvenIfCancelled()
            if error is BackupError || error is CancellationError { throw error }
            // Corruption integrity_check did not get to (or that stops it) is a finding too.
            return StoreReport.failed(database: "sqlite", problem: "SQLite cannot read it: \(error)", integrity: "\(error)")
        }
    }

    /// Schema version, row counts per kind and the newest record's time, on either database.
    static func report(driver: any SQLDriver, database: String, integrity: String?) async throws -> StoreReport {
        let tables: [String]
        var virtualTables: [String] = []
        if driver.dialect.name == "postgres" {
            // Partitions are counted through their parent.
            tables = try await driver.query("""
                SELECT CAST(c.relname AS TEXT) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
                """, []).compactMap { $0["name"].text }
        } else {
            // A virtual table's rows come from its module's code (a hostile file can name any
            // module): listed by name, never read.
            var plain: [String] = []
            for row in try await driver.query("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'", []) {
                guard let name = row["name"].text else { continue }
                let sql = (row["sql"].text ?? "").trimmingCharacters(in: .whitespacesAndNewlines).uppercased()
                if sql.hasPrefix("CREATE VIRTUAL") { virtualTables.append(name) } else { plain.append(name) }
            }
            tables = plain
        }
        let present = Set(tables)
        let known = Migrations.newestVersion
        var version: Int64 = 0
        if present.contains("gatehouse_migrations") {
            version = try await driver.query("SELECT COALESCE(MAX(version), 0) AS version FROM gatehouse_migrations", []).first?["version"].int ?? 0
        }
        var counts: [StoreReport.KindCount] = []
        let listed = Set(StoreKinds.all.map(\.table))
        let unlisted = tables.filter { !listed.contains($0) && $0 != "gatehouse_migrations" }.sorted()
        for kind in StoreKinds.all.filter({ present.contains($0.table) }) + unlisted.map({ StoreKind($0, $0) }) {
            let table = quoted(kind.table)
            let rows = try await driver.query("SELECT COUNT(*) AS n FROM \(table)", []).first?["n"].int ?? 0
            var newest: Int64?
            if let column = kind.timeColumn {
                newest = try await driver.query("SELECT MAX(\(column)) AS newest FROM \(table)", []).first?["newest"].int
            }
            counts.append(.init(kind: kind.name, table: kind.table, rows: rows, newestMicros: newest))
        }
        var problems: [String] = []
        if version == 0 {
            problems.append("no schema version (gatehouse_migrations): not a Gatehouse database")
        } else if version > known {
            problems.append("schema version \(version) is newer than this binary knows (\(known)); use a newer Gatehouse")
        }
        let missing = StoreKinds.all.filter { !present.contains($0.table) && $0.since <= version }.map(\.table)
        if !missing.isEmpty, version <= known {
            problems.append("tables missing for schema version \(version): \(missing.joined(separator: ", "))")
        }
        return StoreReport(database: database, integrityCheck: integrity, schemaVersion: version, knownSchemaVersion: known,
                           newestRecordMicros: counts.compactMap(\.newestMicros).max(), kinds: counts, virtualTables: virtualTables.sorted(), problems: problems)
    }

    /// SQLiteNIO opens with SQLITE_OPEN_URI, and `mode=ro` makes the connection read-only from
    /// the start: no hot journal rolled back, no WAL checkpointed or removed on close (query_only
    /// alone still lets the open and close write). `%`, `?` and `#` would end or escape the path.
    static func readOnlyURI(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var escaped = ""
        for character in absolute {
            switch character {
            case "%": escaped += "%25"
            case "?": escaped += "%3F"
            case "#": escaped += "%23"
            default: escaped.append(character)
            }
        }
        return "file:" + escaped + "?mode=ro"
    }

    static func quoted(_ identifier: String) -> String { "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

    // MARK: - Files

    static func isRegularFile(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
    }

    static func hasSQLiteHeader(_ path: String) throws -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw BackupError("cannot read \(path)") }
        defer { try? handle.close() }
        let head = try handle.read(upToCount: 16) ?? Data()
        return head == Data("SQLite format 3\0".utf8)
    }

    /// Gives the file `source` the name `destination` unless that name exists: link() then
    /// unlink(), since rename() would replace whatever took the name after any check.
    static func placeWithoutReplacing(_ source: String, at destination: String, hint: String = "; nothing was replaced") throws {
        guard link(source, destination) == 0 else {
            if errno == EEXIST { throw BackupError("\(destination) appeared meanwhile\(hint)") }
            throw BackupError("cannot write \(destination): \(String(cString: strerror(errno)))")
        }
        unlink(source)
    }

    /// A database file with the journal files SQLite may have left beside it.
    static func removeDatabaseFiles(_ path: String) {
        for suffix in ["", "-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    /// Makes a rename durable: the directory entry is on disk once this returns.
    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }
}

/// A backup, restore or check that cannot go on, in words for the operator.
public struct BackupError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// The report of a copy that was read but failed its check (exit 1 rather than 2).
    public var report: StoreReport?
    public init(_ message: String, report: StoreReport? = nil) {
        self.message = message
        self.report = report
    }
    public var description: String { message }
}

/// One kind of stored data: its name in reports and its table.
public struct StoreKind: Sendable {
    public var name: String
    public var table: String
    /// The column holding a row's time (microseconds), for the newest record; nil when the
    /// rows are state rather than records.
    public var timeColumn: String?
    /// The schema version that created the table: a database at that version or later must have it.
    var since: Int64

    init(_ name: String, _ table: String, time: String? = nil, since: Int64 = Int64.max) {
        self.name = name
        self.table = table
        self.timeColumn = time
        self.since = since
    }
}

/// Every kind of data the store keeps, in one list: `verify-backup` counts these.
public enum StoreKinds {
    /// The tables of the four kinds that retention and `/api/v1/storage` know are named there.
    public static let all: [StoreKind] = [
        StoreKind("requests", SQLTelemetryStore.table(.requests).name, time: "ts", since: 1),
        StoreKind("request bodies", SQLTelemetryStore.table(.bodies).name, time: "ts", since: 8),
        StoreKind("request rollups", "request_rollups", since: 9),
        StoreKind("logs", SQLTelemetryStore.table(.logs).name, time: "ts", since: 3),
        StoreKind("error events", SQLTelemetryStore.table(.errors).name, time: "ts", since: 3),
        StoreKind("issues", "issues", since: 3),
        StoreKind("spans", SQLTelemetryStore.table(.spans).name, time: "ts", since: 13),
        StoreKind("keys", "virtual_keys", since: 2),
        StoreKind("kill switches", "kill_switches", since: 2),
        StoreKind("control versions", "control_versions", since: 2),
        StoreKind("audit entries", "audit_log", time: "ts", since: 2),
        StoreKind("quota counters", "quota_counters", since: 2),
        StoreKind("budget events", "budget_events", time: "ts", since: 2),
        StoreKind("cache entries", "cache_entries", since: 2),
        StoreKind("alert history", "alert_history", time: "ts", since: 4),
        StoreKind("silences", "silences", since: 4),
        StoreKind("alert deliveries", "alert_deliveries", time: "ts", since: 4),
        StoreKind("probe results", "probe_results", time: "ts", since: 4),
        StoreKind("probe rollups", "probe_rollups", since: 9),
        StoreKind("heartbeats", "heartbeats", since: 4),
        StoreKind("heartbeat failures", "heartbeat_failures", since: 12),
        StoreKind("leases", "leases", since: 4),
        StoreKind("console accounts", "console_accounts", since: 6),
        StoreKind("console sessions", "console_sessions", since: 6),
    ]
}

/// What a check of a backup or database found.
public struct StoreReport: Sendable, Encodable {
    public struct KindCount: Sendable, Encodable {
        public var kind: String
        public var table: String
        public var rows: Int64
        public var newestMicros: Int64?

        enum CodingKeys: String, CodingKey { case kind, table, rows, newest }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(kind, forKey: .kind)
            try c.encode(table, forKey: .table)
            try c.encode(rows, forKey: .rows)
            try c.encode(newestMicros.map(TimeExpressions.format(micros:)), forKey: .newest)
        }
    }

    /// `sqlite` or `postgres`.
    public var database: String
    /// SQLite's `PRAGMA integrity_check` answer (`ok` when sound); nil on PostgreSQL, which has none.
    public var integrityCheck: String?
    /// The newest migration applied (0: none, not a Gatehouse database).
    public var schemaVersion: Int64
    /// The newest migration this binary knows.
    public var knownSchemaVersion: Int64
    public var newestRecordMicros: Int64?
    public var kinds: [KindCount]
    /// SQLite virtual tables, by name only: not counted, since reading one runs its module.
    public var virtualTables: [String] = []
    /// Empty when the check passed.
    public var problems: [String]

    public var ok: Bool { problems.isEmpty }

    public func rows(_ kind: String) -> Int64? { kinds.first { $0.kind == kind }?.rows }

    static func failed(database: String, problem: String, integrity: String? = nil) -> StoreReport {
        StoreReport(database: database, integrityCheck: integrity, schemaVersion: 0, knownSchemaVersion: Migrations.newestVersion,
                    newestRecordMicros: nil, kinds: [], virtualTables: [], problems: [problem])
    }

    enum CodingKeys: String, CodingKey {
        case ok, database, integrityCheck = "integrity_check", schemaVersion = "schema_version", knownSchemaVersion = "known_schema_version"
        case newestRecord = "newest_record", kinds, virtualTables = "virtual_tables", problems
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ok, forKey: .ok)
        try c.encode(database, forKey: .database)
        try c.encode(integrityCheck, forKey: .integrityCheck)
        try c.encode(schemaVersion, forKey: .schemaVersion)
        try c.encode(knownSchemaVersion, forKey: .knownSchemaVersion)
        try c.encode(newestRecordMicros.map(TimeExpressions.format(micros:)), forKey: .newestRecord)
        try c.encode(kinds, forKey: .kinds)
        try c.encode(virtualTables, forKey: .virtualTables)
        try c.encode(problems, forKey: .problems)
    }
}

/// One SQLite connection with no deadline: an integrity check of a large file takes as long as
/// it takes, and it must not open readers or change the journal mode as `SQLiteDriver` does.
struct SingleSQLiteConnection: SQLDriver {
    let connection: SQLiteConnection
    var dialect: any SQLDialect { SQLiteDialect() }
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] { try await SQLiteDriver.run(sql, binds, on: connection) }
    func transaction(_ statements: [SQLStatement]) async throws {
        for statement in statements { _ = try await SQLiteDriver.run(statement.sql, statement.binds, on: connection) }
    }
    func withMigrationLock(_ body: @escaping @Sendable (any SQLDriver) async throws -> Void) async throws {
        throw BackupError("a checked database is not migrated")
    }
    func close() async throws { try await connection.close() }
}

/// Set once, from a cancellation handler, and read by work on another thread.
final class AbandonFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func set() { flag.store(true, ordering: .relaxed) }
    @Sendable func isSet() -> Bool { flag.load(ordering: .relaxed) }
}

/// gzip files through zlib, a chunk at a time.
enum Gzip {
    /// Compresses `source` into a new file `destination` (created 0600, synced).
    /// `abandonIf` is asked before each chunk; when true the compression stops with a CancellationError.
    static func compress(_ source: String, to destination: String, abandonIf: @Sendable () -> Bool = { false }) throws {
        guard let input = FileHandle(forReadingAtPath: source) else { throw BackupError("cannot read \(source)") }
        defer { try? input.close() }
        let output = try createExclusively(destination)
        defer { try? output.close() }
        var stream = z_stream()
        guard deflateInit2_(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw BackupError("zlib could not start compressing")
        }
        defer { deflateEnd(&stream) }
        var buffer = [UInt8](repeating: 0, count: StoreBackup.chunkSize)
        var finished = false
        while !finished {
            if abandonIf() { throw CancellationError() }
            let data = try input.read(upToCount: StoreBackup.chunkSize) ?? Data()
            let flush = data.isEmpty ? Z_FINISH : Z_NO_FLUSH
            try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                stream.next_in = UnsafeMutablePointer(mutating: raw.baseAddress?.assumingMemoryBound(to: Bytef.self))
                stream.avail_in = uInt(raw.count)
                repeat {
                    var status: Int32 = Z_OK
                    let produced = buffer.withUnsafeMutableBufferPointer { out -> Int in
                        stream.next_out = out.baseAddress
                        stream.avail_out = uInt(out.count)
                        status = deflate(&stream, flush)
                        return out.count - Int(stream.avail_out)
                    }
                    guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else { throw BackupError("zlib failed while compressing (\(status))") }
                    if produced > 0 { try output.write(contentsOf: Data(buffer[0..<produced])) }
                    if status == Z_STREAM_END { finished = true }
                } while stream.avail_out == 0 && !finished
            }
        }
        try output.synchronize()
    }

    /// The two bytes every gzip file begins with (RFC 1952).
    static let magic = Data([0x1F, 0x8B])

    /// Decompresses the gzip file `source` into a new file `destination`. Damaged, truncated or
    /// non-gzip input, and anything after the stream, is a `BackupError`; the output is only as
    /// large as the disk lets it be (it is never held in memory).
    static func decompress(_ source: String, to destination: String) throws {
        guard let input = FileHandle(forReadingAtPath: source) else { throw BackupError("cannot read \(source)") }
        defer { try? input.close() }
        let magic = try input.read(upToCount: 2) ?? Data()
        guard magic == Self.magic else {
            throw BackupError("\(source) is not a Gatehouse backup: not gzip data (a backup is written by `gatehouse backup`)")
        }
        try input.seek(toOffset: 0)
        let output = try createExclusively(destination)
        var completed = false
        defer {
            try? output.close()
            if !completed { try? FileManager.default.removeItem(atPath: destination) }
        }
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw BackupError("zlib could not start decompressing")
        }
        defer { inflateEnd(&stream) }
        var buffer = [UInt8](repeating: 0, count: StoreBackup.chunkSize)
        var ended = false
        var total: UInt64 = 0
        // The SQLite header is checked as soon as its 16 bytes exist, before they are written: a
        // small gzip of gigabytes of anything else is refused without filling the disk.
        var head: [UInt8] = []
        let header = Array("SQLite format 3\0".utf8)
        let notSQLite = BackupError("\(source) is not a Gatehouse backup: the data in it is not a SQLite database (its first 16 bytes are no SQLite header)")
        while !ended {
            let data = try input.read(upToCount: StoreBackup.chunkSize) ?? Data()
            guard !data.isEmpty else { throw BackupError("\(source) is truncated: the gzip stream ends early (\(total) bytes decompressed)") }
            try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                stream.next_in = UnsafeMutablePointer(mutating: raw.baseAddress?.assumingMemoryBound(to: Bytef.self))
                stream.avail_in = uInt(raw.count)
                while true {
                    var status: Int32 = Z_OK
                    let produced = buffer.withUnsafeMutableBufferPointer { out -> Int in
                        stream.next_out = out.baseAddress
                        stream.avail_out = uInt(out.count)
                        status = inflate(&stream, Z_NO_FLUSH)
                        return out.count - Int(stream.avail_out)
                    }
                    if head.count < header.count, produced > 0 {
                        head += buffer[0..<min(produced, header.count - head.count)]
                        if head != Array(header[0..<head.count]) { throw notSQLite }
                    }
                    if produced > 0 {
                        try output.write(contentsOf: Data(buffer[0..<produced]))
                        total += UInt64(produced)
                    }
                    switch status {
                    case Z_STREAM_END:
                        guard stream.avail_in == 0 else { throw BackupError("\(source) is damaged: data follows the gzip stream") }
                        ended = true
                        return
                    case Z_OK:
                        // All input taken and room left in the output: zlib needs the next chunk.
                        if stream.avail_in == 0 && stream.avail_out > 0 { return }
                    case Z_BUF_ERROR where stream.avail_in == 0:
                        return
                    default:
                        let reason = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                        throw BackupError("\(source) is damaged: \(reason) (after \(total) bytes)")
                    }
                }
            }
        }
        if let rest = try input.read(upToCount: 1), !rest.isEmpty {
            throw BackupError("\(source) is damaged: data follows the gzip stream")
        }
        guard head.count == header.count else { throw notSQLite }
        try output.synchronize()
        completed = true
    }

    /// A new file only this process can read: a backup holds key hashes, audit entries and logs.
    static func createExclusively(_ path: String) throws -> FileHandle {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw BackupError("cannot create \(path): \(String(cString: strerror(errno)))") }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }
}
