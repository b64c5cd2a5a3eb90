import Foundation
import GatehouseCore
import GatehouseTestSupport
import Logging
import Testing
@testable import GatehouseStorage

/// Backups, restores and checks of a store, and what they do with damaged or hostile files.
@Suite struct StoreBackupTests {
    static let logger = Logger(label: "test")

    /// A store holding 120 calls, 300 log lines and 3 error events in 2 issues.
    static func fill(_ url: String) async throws {
        try await StoreFactory.withOpenedStore(databaseURL: url, logger: logger) { opened in
            try await opened.store.insert((0..<120).map { makeRecord($0, at: base + Int64($0) * 1000, cost: Int64(100 + $0)) })
            try await opened.telemetry.insertLogs((0..<300).map { makeLine($0, at: base + Int64($0)) })
            try await opened.telemetry.insertErrorEvents([makeEvent("e1", issue: "i1", at: base), makeEvent("e2", issue: "i1", at: base + 5),
                                                          makeEvent("e3", issue: "i2", at: base + 9)])
        }
    }

    /// A filled SQLite store in a new directory: its URL, its file and the directory.
    static func filledSQLite() async throws -> (url: String, path: String, directory: URL) {
        let directory = try TestEnvironment.temporaryDirectory()
        let path = directory.appendingPathComponent("data/gatehouse.sqlite").path
        try await fill("sqlite://" + path)
        return ("sqlite://" + path, path, directory)
    }

    static func expectFilledCounts(_ report: StoreReport) {
        #expect(report.ok, "\(report.problems)")
        #expect(report.rows("requests") == 120 && report.rows("logs") == 300 && report.rows("error events") == 3 && report.rows("issues") == 2,
                "\(report.kinds.map { "\($0.kind)=\($0.rows)" })")
        #expect(report.schemaVersion == report.knownSchemaVersion && report.schemaVersion >= 9)
        #expect(report.newestRecordMicros == base + 119_000, "the newest call's time")
        #expect(report.rows("request rollups").map { $0 > 0 } == true, "the rollups travel with the calls")
    }

    @Test func aBackupRestoresToTheSameStore() async throws {
        let (url, _, directory) = try await Self.filledSQLite()
        let file = directory.appendingPathComponent("backup.sqlite.gz").path
        let taken = try await StoreBackup.backup(databaseURL: url, to: file, overwrite: false, logger: Self.logger)
        Self.expectFilledCounts(taken)
        #expect(taken.integrityCheck == "ok")
        #expect(try Data(contentsOf: URL(fileURLWithPath: file)).prefix(2) == Data([0x1F, 0x8B]), "gzip")
        let permissions = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions]
        let mode = (permissions as? NSNumber)?.intValue ?? (permissions as? Int)
        #expect(mode == 0o600, "a backup holds key hashes and logs: only its owner reads it")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty, "temporary files are removed: \(leftovers)")

        let verified = try await StoreBackup.verify(backupFile: file, logger: Self.logger)
        Self.expectFilledCounts(verified)
        #expect(verified.kinds.map(\.rows) == taken.kinds.map(\.rows))

        let restoredPath = directory.appendingPathComponent("restored/gatehouse.sqlite").path
        let restored = try await StoreBackup.restore(from: file, toDatabaseAt: restoredPath, logger: Self.logger)
        #expect(restored.kinds.map(\.rows) == taken.kinds.map(\.rows))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("restored").path) == ["gatehouse.sqlite"])
        let query = UsageQuery(fromMicros: base, toMicros: base + hour)
        let original = try await StoreFactory.withStore(databaseURL: url, logger: Self.logger) { try await $0.usage(query) }
        let copy = try await StoreFactory.withStore(databaseURL: "sqlite://" + restoredPath, logger: Self.logger) { try await $0.usage(query) }
        #expect(copy == original && copy.totals.requests == 120)
        // The same report for the database in place.
        let inPlace = try await StoreBackup.verify(databaseURL: "sqlite://" + restoredPath, logger: Self.logger)
        #expect(inPlace.kinds.map(\.rows) == taken.kinds.map(\.rows))
    }

    @Test func refusals() async throws {
        let (url, _, directory) = try await Self.filledSQLite()
        let file = directory.appendingPathComponent("backup.sqlite.gz").path
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: file))
        let exists = await #expect(throws: BackupError.self) { try await StoreBackup.backup(databaseURL: url, to: file, overwrite: false, logger: Self.logger) }
        #expect(exists?.message.contains("exists; pass --force") == true, "\(String(describing: exists))")
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "keep me", "an existing file is not touched without --force")
        _ = try await StoreBackup.backup(databaseURL: url, to: file, overwrite: true, logger: Self.logger)
        Self.expectFilledCounts(try await StoreBackup.verify(backupFile: file, logger: Self.logger))

        // A directory holding anything is refused, and left as it was.
        let busy = directory.appendingPathComponent("busy")
        try FileManager.default.createDirectory(at: busy, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: busy.appendingPathComponent("notes.txt"))
        let notEmpty = await #expect(throws: BackupError.self) {
            try await StoreBackup.restore(from: file, toDatabaseAt: busy.appendingPathComponent("gatehouse.sqlite").path, logger: Self.logger)
        }
        #expect(notEmpty?.message.contains("is not empty") == true, "\(String(describing: notEmpty))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: busy.path) == ["notes.txt"])

        // PostgreSQL is pg_dump's job; its password is not repeated.
        let postgres = await #expect(throws: BackupError.self) {
            try await StoreBackup.backup(databaseURL: "postgres://gatehouse:hunter2-secret@127.0.0.1:1/gatehouse", to: file + ".pg", overwrite: false, logger: Self.logger)
        }
        #expect(postgres?.message.contains("pg_dump") == true && postgres?.message.contains("hunter2-secret") == false, "\(String(describing: postgres))")
        #expect(!FileManager.default.fileExists(atPath: file + ".pg"))

        // A missing store is not created by looking for it.
        let nowhere = directory.appendingPathComponent("nowhere/gatehouse.sqlite").path
        await #expect(throws: BackupError.self) { try await StoreBackup.backup(databaseURL: "sqlite://" + nowhere, to: file + ".2", overwrite: false, logger: Self.logger) }
        #expect(!FileManager.default.fileExists(atPath: nowhere))

        // Not gzip, empty, truncated.
        let plain = directory.appendingPathComponent("plain.gz").path
        try Data("SQLite format 3\0 and then some".utf8).write(to: URL(fileURLWithPath: plain))
        let notGzip = await #expect(throws: BackupError.self) { try await StoreBackup.verify(backupFile: plain, logger: Self.logger) }
        #expect(notGzip?.message.contains("not gzip") == true, "\(String(describing: notGzip))")
        try Data().write(to: URL(fileURLWithPath: plain))
        await #expect(throws: BackupError.self) { try await StoreBackup.verify(backupFile: plain, logger: Self.logger) }
        let whole = try Data(contentsOf: URL(fileURLWithPath: file))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: plain))
        let truncated = await #expect(throws: BackupError.self) { try await StoreBackup.verify(backupFile: plain, logger: Self.logger) }
        #expect(truncated?.message.contains("truncated") == true, "\(String(describing: truncated))")
        let fresh = directory.appendingPathComponent("fresh")
        await #expect(throws: BackupError.self) {
            try await StoreBackup.restore(from: plain, toDatabaseAt: fresh.appendingPathComponent("gatehouse.sqlite").path, logger: Self.logger)
        }
        #expect(!FileManager.default.fileExists(atPath: fresh.path), "a failed restore leaves no directory behind")
    }

    /// gzip that is sound around a database that is not: integrity_check says so, and the
    /// restore refuses it.
    @Test func aDamagedDatabaseInsideSoundGzipFailsItsCheck() async throws {
        let (url, _, directory) = try await Self.filledSQLite()
        let file = directory.appendingPathComponent("backup.sqlite.gz").path
        _ = try await StoreBackup.backup(databaseURL: url, to: file, overwrite: false, logger: Self.logger)
        let raw = directory.appendingPathComponent("raw.sqlite").path
        try Gzip.decompress(file, to: raw)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: raw)))
        // Pages 2 to the middle become garbage: b-tree pages whose headers make no sense.
        for i in 4096..<max(8192, bytes.count / 2) where i < bytes.count { bytes[i] = UInt8(truncatingIfNeeded: i &* 131 &+ 7) }
        try Data(bytes).write(to: URL(fileURLWithPath: raw))
        let damaged = directory.appendingPathComponent("damaged.sqlite.gz").path
        try Gzip.compress(raw, to: damaged)
        let report = try await StoreBackup.verify(backupFile: damaged, logger: Self.logger)
        #expect(!report.ok && report.integrityCheck != "ok", "\(report)")
        let target = directory.appendingPathComponent("restored")
        let refused = await #expect(throws: BackupError.self) {
            try await StoreBackup.restore(from: damaged, toDatabaseAt: target.appendingPathComponent("gatehouse.sqlite").path, logger: Self.logger)
        }
        #expect(refused?.message.contains("failed its check") == true, "\(String(describing: refused))")
        #expect(!FileManager.default.fileExists(atPath: target.path))
    }

    /// A database a newer Gatehouse migrated is reported, not silently accepted.
    @Test func aNewerSchemaFailsTheCheck() async throws {
        let (url, path, directory) = try await Self.filledSQLite()
        let driver = try await SQLiteDriver.open(path: path, logger: Self.logger)
        _ = try await driver.query("INSERT INTO gatehouse_migrations (version, name, applied_at) VALUES (999, 'from the future', 0)", [])
        try await driver.close()
        let report = try await StoreBackup.verify(databaseURL: url, logger: Self.logger)
        #expect(!report.ok && report.schemaVersion == 999 && report.problems.contains { $0.contains("newer than this binary knows") }, "\(report.problems)")
        #expect(report.rows("requests") == 120, "the counts are still given")
        await #expect(throws: BackupError.self) {
            try await StoreBackup.backup(databaseURL: url, to: directory.appendingPathComponent("b.gz").path, overwrite: false, logger: Self.logger)
        }
    }

    /// Random damage to a backup file (flipped bytes, cut ends, overwritten runs, appended
    /// bytes) never crashes verify or restore: each answers a report or a `BackupError`, a
    /// failed restore leaves nothing behind, and whatever passes holds every row.
    @Test func randomDamageNeverCrashesVerifyOrRestore() async throws {
        let (url, _, directory) = try await Self.filledSQLite()
        let file = directory.appendingPathComponent("backup.sqlite.gz").path
        let original = try await StoreBackup.backup(databaseURL: url, to: file, overwrite: false, logger: Self.logger)
        let whole = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
        var random = SplitMix(state: 0x6A7E_B0C5)
        var outcomes: [String: Int] = [:]
        for round in 0..<600 {
            var bytes = whole
            switch round % 4 {
            case 0:
                for _ in 0..<(1 + Int(random.next() % 4)) {
                    let at = Int(random.next() % UInt64(bytes.count))
                    bytes[at] ^= UInt8(1 + random.next() % 255)
                }
            case 1: bytes = Array(bytes.prefix(Int(random.next() % UInt64(bytes.count))))
            case 2:
                let at = Int(random.next() % UInt64(bytes.count)), length = min(bytes.count - at, 1 + Int(random.next() % 512))
                for i in at..<(at + length) { bytes[i] = UInt8(truncatingIfNeeded: random.next()) }
            default: bytes += (0..<(1 + Int(random.next() % 64))).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            }
            let damaged = directory.appendingPathComponent("damaged-\(round).gz")
            try Data(bytes).write(to: damaged)
            do {
                let report = try await StoreBackup.verify(backupFile: damaged.path, logger: Self.logger)
                if report.ok {
                    // Only harmless bytes changed (gzip's header time or OS byte): every row is there.
                    #expect(report.kinds.map(\.rows) == original.kinds.map(\.rows), "round \(round) passed with other counts")
                    outcomes["passed", default: 0] += 1
                } else {
                    outcomes["failed check", default: 0] += 1
                }
            } catch let error as BackupError {
                #expect(!error.message.isEmpty)
                outcomes["refused", default: 0] += 1
            }
            if round % 8 == 0 {
                let target = directory.appendingPathComponent("restore-\(round)")
                do {
                    let report = try await StoreBackup.restore(from: damaged.path, toDatabaseAt: target.appendingPathComponent("gatehouse.sqlite").path, logger: Self.logger)
                    #expect(report.ok && report.kinds.map(\.rows) == original.kinds.map(\.rows))
                } catch let error as BackupError {
                    #expect(!error.message.isEmpty)
                    #expect(!FileManager.default.fileExists(atPath: target.path), "round \(round): a refused restore leaves no directory")
                }
            }
            try FileManager.default.removeItem(at: damaged)
        }
        #expect(outcomes["refused", default: 0] > 400, "\(outcomes)")
        print("backup damage rounds (\(whole.count)-byte backup): \(outcomes.sorted { $0.key < $1.key })")
    }

    /// A store larger than the 1 MiB chunks, compressed to more than one too: every chunk
    /// boundary is crossed both ways, and damage past the first chunk is still caught.
    @Test func aLargeStoreStreamsThroughManyChunks() async throws {
        let (url, path, directory) = try await Self.filledSQLite()
        var random = SplitMix(state: 0xB16)
        var batches: [[LogRecord]] = []
        for batch in 0..<12 {
            batches.append((0..<1000).map { n in
                // Hex noise compresses to about half: the backup spans several chunks too.
                let noise = (0..<25).map { _ in String(random.next(), radix: 16) }.joined()
                return makeLine(n, at: base + 1_000_000 + Int64(batch * 1000 + n), message: noise)
            })
        }
        let lines = batches
        try await StoreFactory.withOpenedStore(databaseURL: url, logger: Self.logger) { opened in
            for batch in lines { try await opened.telemetry.insertLogs(batch) }
        }
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size]
        let databaseBytes = (size as? NSNumber)?.intValue ?? (size as? Int) ?? 0
        let file = directory.appendingPathComponent("large.sqlite.gz").path
        let taken = try await StoreBackup.backup(databaseURL: url, to: file, overwrite: false, logger: Self.logger)
        let whole = try Data(contentsOf: URL(fileURLWithPath: file))
        #expect(databaseBytes > 3 * StoreBackup.chunkSize && whole.count > 2 * StoreBackup.chunkSize, "database \(databaseBytes) bytes, backup \(whole.count)")
        #expect(taken.ok && taken.rows("logs") == 12_300 && taken.rows("requests") == 120)
        let restoredPath = directory.appendingPathComponent("restored/gatehouse.sqlite").path
        let restored = try await StoreBackup.restore(from: file, toDatabaseAt: restoredPath, logger: Self.logger)
        #expect(restored.kinds.map(\.rows) == taken.kinds.map(\.rows))
        let query = LogListQuery(fromMicros: base + 1_000_000, toMicros: base + 2_000_000, limit: 50)
        let originalLines = try await StoreFactory.withOpenedStore(databaseURL: url, logger: Self.logger) { try await $0.telemetry.logs(query).lines.map(\.message) }
        let restoredLines = try await StoreFactory.withOpenedStore(databaseURL: "sqlite://" + restoredPath, logger: Self.logger) {
            try await $0.telemetry.logs(query).lines.map(\.message)
        }
        #expect(originalLines.count == 50 && originalLines == restoredLines, "the same lines, byte for byte")

        let damaged = directory.appendingPathComponent("damaged.gz")
        try whole.prefix(whole.count - StoreBackup.chunkSize / 2).write(to: damaged)
        let cut = await #expect(throws: BackupError.self) { try await StoreBackup.verify(backupFile: damaged.path, logger: Self.logger) }
        #expect(cut?.message.contains("truncated") == true, "\(String(describing: cut))")
        var flipped = [UInt8](whole)
        flipped[StoreBackup.chunkSize + 12_345] ^= 0x40
        try Data(flipped).write(to: damaged)
        await #expect(throws: BackupError.self) { try await StoreBackup.verify(backupFile: damaged.path, logger: Self.logger) }
    }

    /// A server that creates its database in the target while a restore runs keeps it: the
    /// restore fails, removes only its own temporary file and never replaces or deletes theirs.
    @Test func aFailedRestoreLeavesFilesItDidNotCreate() async throws {
        let (url, _, directory) = try await Self.filledSQLite()
        let file = directory.appendingPathComponent("backup.sqlite.gz").path
        _ = try await StoreBackup.backup(databaseURL: url, to: file, overwrite: false, logger: Self.logger)
        let target = directory.appendingPathComponent("restored")
        let database = target.appendingPathComponent("gatehouse.sqlite").path
        let refused = await #expect(throws: BackupError.self) {
            try await StoreBackup.restore(from: file, toDatabaseAt: database, logger: Self.logger) {
                try Data("theirs".utf8).write(to: URL(fileURLWithPath: database))
                try Data("their wal".utf8).write(to: URL(fileURLWithPath: database + "-wal"))
            }
        }
        #expect(refused?.message.contains("nothing was replaced") == true, "\(String(describing: refused))")
        #expect((try? String(contentsOfFile: database, encoding: .utf8)) == "theirs", "their database is neither replaced nor removed")
        #expect((try? String(contentsOfFile: database + "-wal", encoding: .utf8)) == "their wal")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: target.path).sorted()) ?? []
        #expect(left == ["gatehouse.sqlite", "gatehouse.sqlite-wal"], "only the restore's own temporary file is removed: \(left)")
    }

    /// `verify-backup --database-url sqlite://…` is read-only: a WAL database whose last
    /// transactions are still in its -wal keeps both files as they were (no recovery written, no
    /// checkpoint on close), and the check still sees those transactions.
    @Test func verifyingASQLiteDatabaseInPlaceWritesNothing() async throws {
        let (_, path, directory) = try await Self.filledSQLite()
        let copy = directory.appendingPathComponent("copy")
        try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
        // The copy is taken while sqlite3 holds the database open with frames not checkpointed.
        let script = "PRAGMA journal_mode=WAL;\nPRAGMA wal_autocheckpoint=0;\nCREATE TABLE extra(x);\nINSERT INTO extra VALUES (1), (2);\n"
            + ".system cp '\(path)' '\(copy.path)/gatehouse.sqlite' && cp '\(path)-wal' '\(copy.path)/gatehouse.sqlite-wal'\n"
        let made = try await ProcessRunner.runAsync("/usr/bin/env", ["sqlite3", path], input: Data(script.utf8))
        #expect(made.status == 0, "\(made.output)")
        let main = copy.appendingPathComponent("gatehouse.sqlite").path
        let before = try Data(contentsOf: URL(fileURLWithPath: main)), walBefore = try Data(contentsOf: URL(fileURLWithPath: main + "-wal"))
        #expect(walBefore.count > 32, "frames are left in the -wal")
        let report = try await StoreBackup.verify(databaseURL: "sqlite://" + main, logger: Self.logger)
        #expect(report.rows("extra") == 2, "the -wal's transactions are read: \(report.kinds.map(\.kind))")
        #expect(try Data(contentsOf: URL(fileURLWithPath: main)) == before, "the database file is not written")
        #expect((try? Data(contentsOf: URL(fileURLWithPath: main + "-wal"))) == walBefore, "the -wal is neither checkpointed nor removed")
    }

    /// A gzip stream of 200 MB of zeros is refused at its first bytes, not after writing them all.
    @Test func aDecompressionBombIsRefusedAtItsHeader() async throws {
        let directory = try TestEnvironment.temporaryDirectory()
        let bomb = directory.appendingPathComponent("bomb.gz").path
        let made = try await ProcessRunner.runAsync("/bin/sh", ["-c", "head -c 209715200 /dev/zero | gzip -1 > '\(bomb)'"])
        #expect(made.status == 0, "\(made.output)")
        let refused = await #expect(throws: BackupError.self) { try await StoreBackup.verify(backupFile: bomb, logger: Self.logger) }
        #expect(refused?.message.contains("not a SQLite database") == true, "\(String(describing: refused))")
        #expect(refused?.message.contains("its first 16 bytes") == true, "it stops at the header: \(String(describing: refused))")
        let target = directory.appendingPathComponent("restored")
        let restore = await #expect(throws: BackupError.self) {
            try await StoreBackup.restore(from: bomb, toDatabaseAt: target.appendingPathComponent("gatehouse.sqlite").path, logger: Self.logger)
        }
        #expect(restore?.message.contains("not a SQLite database") == true, "\(String(describing: restore))")
        #expect(!FileManager.default.fileExists(atPath: target.path), "the temporary file and the new directory are removed")
    }

    /// A virtual table runs its module's code when read: a checked file's are not counted (the
    /// CLI lists them by name), and the rest of the report is still given.
    @Test func virtualTablesAreNotRead() async throws {
        let (url, path, _) = try await Self.filledSQLite()
        let made = try await ProcessRunner.runAsync("/usr/bin/env", ["sqlite3", path, "CREATE VIRTUAL TABLE v USING fts5(x); INSERT INTO v VALUES ('hello');"])
        #expect(made.status == 0, "\(made.output)")
        let report = try await StoreBackup.verify(databaseURL: url, logger: Self.logger)
        #expect(!report.kinds.contains { $0.table == "v" }, "the virtual table is not counted: \(report.kinds.map(\.table))")
        #expect(report.rows("requests") == 120 && report.integrityCheck == "ok", "\(report.problems)")
    }

    /// `verify-backup --database-url postgres://…`: the same report from PostgreSQL, read-only.
    @Test func aPostgreSQLDatabaseIsCountedInPlace() async throws {
        let url = try Backend.postgres.databaseURL()
        try await Self.fill(url)
        let report = try await StoreBackup.verify(databaseURL: url, logger: Self.logger)
        Self.expectFilledCounts(report)
        #expect(report.database == "postgres" && report.integrityCheck == nil)
        #expect(Set(report.kinds.map(\.table)).isSuperset(of: StoreKinds.all.map(\.table)), "every table of the schema is counted")
    }
}
