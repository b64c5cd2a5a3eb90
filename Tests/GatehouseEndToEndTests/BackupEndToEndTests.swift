import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseStorage
import GatehouseTestSupport
import Logging
import Synchronization
import Testing

/// `gatehouse backup`, `restore` and `verify-backup` as an operator runs them: against a server
/// that is taking writes, into new directories, and on files that are not what they should be.
@Suite(.serialized) struct BackupEndToEndTests {
    static let usagePath = "/api/v1/ai/usage?from=-24h&interval=none"

    /// What the load sent and was answered 2xx for.
    final class Sent: Sendable {
        let calls = Atomic<Int>(0)
        let lines = Atomic<Int>(0)
    }

    static func call(_ base: String) async throws -> Bool {
        let reply = try await HTTP.post(base + "/v1/chat/completions", json: #"{"model":"mock/gpt-4o-mini","messages":[{"role":"user","content":"back me up"}]}"#)
        return reply.status == 200
    }

    static func log(_ base: String, _ n: Int) async throws -> Bool {
        let reply = try await HTTP.post(base + "/api/v1/logs", json: #"{"level":"info","message":"line \#(n)","service":"backup-test"}"#)
        return (200..<300).contains(reply.status)
    }

    /// Calls and lines one after the other until cancelled.
    static func load(_ base: String, _ sent: Sent) async {
        var n = 0
        while !Task.isCancelled {
            n += 1
            if (try? await call(base)) == true { sent.calls.add(1, ordering: .relaxed) }
            if (try? await log(base, n)) == true { sent.lines.add(1, ordering: .relaxed) }
        }
    }

    /// The server's stored rows of calls and lines, once `accept` takes them.
    static func waitForStorage(_ api: TypedAPI, _ what: String, _ accept: @escaping (_ requests: Int64, _ logs: Int64) -> Bool) async throws -> (requests: Int64, logs: Int64) {
        try await Poll.until(what, timeout: .seconds(30)) { () async throws -> (requests: Int64, logs: Int64)? in
            let report = try await api.get("/api/v1/storage", as: StorageReport.self)
            let requests = report.kinds.first { $0.kind == .requests }?.rows ?? 0, logs = report.kinds.first { $0.kind == .logs }?.rows ?? 0
            return accept(requests, logs) ? (requests, logs) : nil
        }
    }

    static func json(_ output: String) throws -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any] else {
            throw ProcessRunner.Failure(message: "not a JSON report:\n\(output)")
        }
        return object
    }

    static func counts(_ report: [String: Any]) -> [String: Int64] {
        var counts: [String: Int64] = [:]
        for kind in report["kinds"] as? [[String: Any]] ?? [] {
            if let name = kind["kind"] as? String, let rows = (kind["rows"] as? NSNumber)?.int64Value { counts[name] = rows }
        }
        return counts
    }

    /// Usage totals without latency, which may be summed from rollups or calls depending on the hour.
    static func totals(_ base: String) async throws -> UsageStatsView {
        var totals = try await TypedAPI(baseURL: base).get(usagePath, as: UsageReportView.self).totals
        totals.latencyMs = nil
        return totals
    }

    static func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let result = try await CLIEndToEndTests.run(arguments, seconds: 120)
        #expect(result.finished, "gatehouse \(arguments.joined(separator: " ")) still running")
        return (result.status, result.output)
    }

    /// Backup while a real server takes calls and log lines → restore into a new directory →
    /// verify: integrity ok, every row stored before the backup began is in it, the counts agree
    /// everywhere, and a server on the restored directory answers the same usage.
    @Test func aBackupTakenUnderLoadRestoresAndAnswersTheSame() async throws {
        let gatehouse = try await GatehouseProcess.start()
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        let dataDirectory = gatehouse.dataDirectory.appendingPathComponent("data").path
        let work = try TestEnvironment.temporaryDirectory()
        for n in 0..<30 {
            #expect(try await Self.call(gatehouse.baseURL))
            #expect(try await Self.log(gatehouse.baseURL, n))
        }
        let first = try await Self.waitForStorage(api, "the first 30 calls and lines stored") { $0 >= 30 && $1 >= 30 }

        // The load runs until its records are being written (the recorder flushes every 250 ms),
        // and goes on through the backup.
        let sent = Sent()
        let load = Task { await Self.load(gatehouse.baseURL, sent) }
        let stored = try await Self.waitForStorage(api, "the load's records being stored") { $0 >= first.requests + 10 && $1 >= first.logs + 10 }
        let callsBefore = sent.calls.load(ordering: .relaxed)
        let file = work.appendingPathComponent("gatehouse.sqlite.gz").path
        let backup = try await Self.run(["backup", "--data-dir", dataDirectory, "--output", file, "--json"])
        let callsDuring = sent.calls.load(ordering: .relaxed) - callsBefore
        load.cancel()
        await load.value
        #expect(backup.status == 0, "\(backup.output)")
        #expect(callsDuring > 0, "calls were answered while the backup ran")
        let taken = try Self.json(backup.output)
        #expect(taken["ok"] as? Bool == true && taken["integrity_check"] as? String == "ok", "\(taken)")
        let takenCounts = Self.counts(taken)
        let takenRequests = try #require(takenCounts["requests"]), takenLogs = try #require(takenCounts["logs"])
        #expect(takenRequests >= stored.requests && takenLogs >= stored.logs, "every row stored before the backup began is in it: \(takenCounts) vs \(stored)")
        let allCalls = Int64(30 + sent.calls.load(ordering: .relaxed)), allLines = Int64(30 + sent.lines.load(ordering: .relaxed))
        _ = try await Self.waitForStorage(api, "every answered call and line stored") { $0 >= allCalls && $1 >= allLines }
        // A call cut off on our side when the load stopped may still be answered and stored: let it settle.
        try await Task.sleep(for: .seconds(1))
        let final = try await Self.waitForStorage(api, "the stored rows") { _, _ in true }
        #expect(takenRequests <= final.requests && takenLogs <= final.logs)
        print("backup under load: \(callsDuring) calls answered while it ran; stored before it \(stored), in it \(takenRequests) calls and \(takenLogs) lines, "
            + "stored in the end \(final)")

        // Into a directory that does not exist yet.
        let restoredDirectory = work.appendingPathComponent("restored").path
        let restore = try await Self.run(["restore", "--input", file, "--data-dir", restoredDirectory, "--json"])
        #expect(restore.status == 0, "\(restore.output)")
        #expect(Self.counts(try Self.json(restore.output)) == takenCounts)
        let verify = try await Self.run(["verify-backup", file, "--json"])
        #expect(verify.status == 0, "\(verify.output)")
        let verified = try Self.json(verify.output)
        #expect(Self.counts(verified) == takenCounts)
        #expect(verified["integrity_check"] as? String == "ok" && verified["schema_version"] as? Int == verified["known_schema_version"] as? Int)
        #expect(verified["newest_record"] as? String != nil)
        let text = try await Self.run(["verify-backup", file])
        #expect(text.status == 0 && text.output.contains("integrity_check  ok") && text.output.contains("check passed"), "\(text.output)")
        #expect(text.output.contains("requests") && text.output.contains("error events") && text.output.contains("audit entries"), "\(text.output)")

        let copy = try await GatehouseProcess.start(databaseURL: "sqlite://" + restoredDirectory + "/gatehouse.sqlite")
        #expect(try await Self.totals(copy.baseURL).requests == takenRequests, "the restored server counts the backup's calls")
        try await copy.stop()

        // Quiet now: a second backup replaces the first only with --force, and restores to the
        // very same usage totals as the server it came from.
        let refused = try await Self.run(["backup", "--data-dir", dataDirectory, "--output", file])
        #expect(refused.status == 2 && refused.output.contains("exists; pass --force"), "\(refused.output)")
        let forced = try await Self.run(["backup", "--data-dir", dataDirectory, "--output", file, "--force"])
        #expect(forced.status == 0 && forced.output.contains("check passed"), "\(forced.output)")
        let second = work.appendingPathComponent("restored-2").path
        #expect(try await Self.run(["restore", "--input", file, "--data-dir", second]).status == 0)
        let original = try await Self.totals(gatehouse.baseURL)
        let again = try await GatehouseProcess.start(databaseURL: "sqlite://" + second + "/gatehouse.sqlite")
        #expect(try await Self.totals(again.baseURL) == original)
        #expect(original.requests == final.requests)
        try await again.stop()
        try await gatehouse.stop()
    }

    /// Each refusal says what is wrong in one line, exits 1, and leaves files as they were.
    @Test func refusalsAreClearAndTouchNothing() async throws {
        let work = try TestEnvironment.temporaryDirectory()
        let dataDirectory = work.appendingPathComponent("data").path
        try await StoreFactory.withOpenedStore(databaseURL: "sqlite://" + dataDirectory + "/gatehouse.sqlite", logger: Logger(label: "test")) { _ in }
        let file = work.appendingPathComponent("backup.gz").path
        #expect(try await Self.run(["backup", "--data-dir", dataDirectory, "--output", file]).status == 0)

        let notEmpty = try await Self.run(["restore", "--input", file, "--data-dir", dataDirectory])
        #expect(notEmpty.status == 2 && notEmpty.output.contains("error: ") && notEmpty.output.contains("is not empty"), "\(notEmpty.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dataDirectory).contains("gatehouse.sqlite"))

        let whole = try Data(contentsOf: URL(fileURLWithPath: file))
        let cut = work.appendingPathComponent("cut.gz").path
        try whole.prefix(whole.count - 20).write(to: URL(fileURLWithPath: cut))
        let garbage = work.appendingPathComponent("garbage.gz").path
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 37) }).write(to: URL(fileURLWithPath: garbage))
        for (input, words) in [(cut, "truncated"), (garbage, "not a Gatehouse backup")] {
            let target = work.appendingPathComponent("target").path
            let restore = try await Self.run(["restore", "--input", input, "--data-dir", target])
            #expect(restore.status == 2 && restore.output.contains(words), "\(restore.output)")
            #expect(!FileManager.default.fileExists(atPath: target), "a refused restore leaves no directory")
            let verify = try await Self.run(["verify-backup", input])
            #expect(verify.status == 2 && verify.output.contains(words), "\(verify.output)")
        }

        let postgres = try await Self.run(["backup", "--database-url", "postgres://gatehouse:hunter2-secret@127.0.0.1:1/gatehouse", "--output", file + ".pg"])
        #expect(postgres.status == 2 && postgres.output.contains("pg_dump") && !postgres.output.contains("hunter2-secret"), "\(postgres.output)")
        #expect(!FileManager.default.fileExists(atPath: file + ".pg"))

        // Random damage through the binary: status 0, 1 (failed check) or 2 (unusable), never a crash.
        var seed: UInt64 = 0x5EED_0B0C
        func next() -> UInt64 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return seed >> 33
        }
        let bytes = [UInt8](whole)
        for round in 0..<12 {
            var damaged = bytes
            let at = Int(next() % UInt64(damaged.count))
            if round % 2 == 0 { damaged[at] ^= UInt8(1 + next() % 255) } else { damaged = Array(damaged.prefix(at)) }
            let path = work.appendingPathComponent("damaged-\(round).gz").path
            try Data(damaged).write(to: URL(fileURLWithPath: path))
            let verify = try await Self.run(["verify-backup", path])
            #expect(verify.status == 0 || ((verify.status == 1 || verify.status == 2) && verify.output.contains("error: ")), "round \(round): \(verify.status)\n\(verify.output)")
        }
    }

    /// A PostgreSQL store backed up with pg_dump and restored with pg_restore, as
    /// docs/operations.md says, is checked in place by `verify-backup --database-url`.
    @Test func verifyBackupCountsARestoredPostgreSQLDatabase() async throws {
        let source = try TestEnvironment.freshPostgresDatabase()
        let gatehouse = try await GatehouseProcess.start(databaseURL: source)
        for n in 0..<12 {
            #expect(try await Self.call(gatehouse.baseURL))
            #expect(try await Self.log(gatehouse.baseURL, n))
        }
        _ = try await Self.waitForStorage(TypedAPI(baseURL: gatehouse.baseURL), "12 calls and lines stored") { $0 >= 12 && $1 >= 12 }
        let usage = try await Self.totals(gatehouse.baseURL)
        try await gatehouse.stop()

        let work = try TestEnvironment.temporaryDirectory()
        let dump = work.appendingPathComponent("gatehouse.dump").path
        let dumped = try await ProcessRunner.runAsync("/usr/bin/env", ["pg_dump", "--format=custom", "--file=" + dump, source])
        #expect(dumped.status == 0, "\(dumped.output)")
        let target = try TestEnvironment.freshPostgresDatabase()
        let restored = try await ProcessRunner.runAsync("/usr/bin/env", ["pg_restore", "--no-owner", "--exit-on-error", "--dbname=" + target, dump])
        #expect(restored.status == 0, "\(restored.output)")

        let verify = try await Self.run(["verify-backup", "--database-url", target, "--json"])
        #expect(verify.status == 0, "\(verify.output)")
        let report = try Self.json(verify.output)
        #expect(report["ok"] as? Bool == true && report["database"] as? String == "postgres" && report["integrity_check"] is NSNull, "\(report)")
        let counts = Self.counts(report)
        #expect(counts["requests"] == 12 && counts["logs"] == 12 && (counts["request rollups"] ?? 0) > 0, "\(counts)")
        #expect(report["schema_version"] as? Int == report["known_schema_version"] as? Int)
        let text = try await Self.run(["verify-backup", "--database-url", target])
        #expect(text.status == 0 && text.output.contains("check passed") && !text.output.contains("integrity_check"), "\(text.output)")

        // The restored database serves the same usage.
        let copy = try await GatehouseProcess.start(databaseURL: target)
        #expect(try await Self.totals(copy.baseURL) == usage)
        try await copy.stop()

        let refused = try await Self.run(["backup", "--database-url", target, "--output", work.appendingPathComponent("pg.gz").path])
        #expect(refused.status == 2 && refused.output.contains("pg_dump"), "\(refused.output)")
    }

    /// A cron backup needs only the store's location: a configuration whose provider key is
    /// encrypted (GATEHOUSE_ENCRYPTION_KEY unset) still backs up the database it names.
    @Test func backupNeedsOnlyTheStoreLocationFromTheConfiguration() async throws {
        let work = try TestEnvironment.temporaryDirectory()
        let dataDirectory = work.appendingPathComponent("data").path
        try await StoreFactory.withOpenedStore(databaseURL: "sqlite://" + dataDirectory + "/gatehouse.sqlite", logger: Logger(label: "test")) { _ in }
        let config = work.appendingPathComponent("gatehouse.yaml").path
        try Data("""
            data_dir: "\(dataDirectory)"
            providers:
              - name: openai
                kind: openai
                api_key: "enc:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            """.utf8).write(to: URL(fileURLWithPath: config))
        let file = work.appendingPathComponent("backup.gz").path
        let backup = try await Self.run(["backup", "--config", config, "--output", file, "--json"])
        #expect(backup.status == 0, "\(backup.output)")
        #expect(FileManager.default.fileExists(atPath: file))
        #expect((try? Self.json(backup.output))?["ok"] as? Bool == true, "the store the file's data_dir names: \(backup.output)")
    }

    /// With --json an unusable input is a JSON object too; 1 is a failed check, 2 an unusable file.
    @Test func unusableInputsAnswerJSONAndStatus2() async throws {
        let work = try TestEnvironment.temporaryDirectory()
        let garbage = work.appendingPathComponent("garbage.gz").path
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 37) }).write(to: URL(fileURLWithPath: garbage))
        let verify = try await Self.run(["verify-backup", garbage, "--json"])
        #expect(verify.status == 2, "\(verify.status) \(verify.output)")
        let braces = verify.output.firstIndex(of: "{").flatMap { start in verify.output.lastIndex(of: "}").map { start...$0 } }
        let object = try? Self.json(braces.map { String(verify.output[$0]) } ?? verify.output)
        #expect(object?["ok"] as? Bool == false && (object?["error"] as? String)?.contains("not gzip") == true, "\(verify.output)")
        let restore = try await Self.run(["restore", "--input", garbage, "--data-dir", work.appendingPathComponent("t").path, "--json"])
        #expect(restore.status == 2, "\(restore.status) \(restore.output)")
    }

    /// Table names from the checked file reach the terminal with their control characters
    /// escaped: a name holding an escape sequence cannot repaint the operator's screen.
    @Test func tableNamesAreEscapedInTheReport() async throws {
        let work = try TestEnvironment.temporaryDirectory()
        let path = work.appendingPathComponent("data/gatehouse.sqlite").path
        try await StoreFactory.withOpenedStore(databaseURL: "sqlite://" + path, logger: Logger(label: "test")) { _ in }
        let made = try await ProcessRunner.runAsync("/usr/bin/env", ["sqlite3", path, "CREATE TABLE \"evil\u{1B}[2Jname\"(x); CREATE VIRTUAL TABLE v USING fts5(x);"])
        #expect(made.status == 0, "\(made.output)")
        let verify = try await Self.run(["verify-backup", "--database-url", "sqlite://" + path])
        #expect(verify.status == 0, "\(verify.output)")
        #expect(!verify.output.contains("\u{1B}") && verify.output.contains("evil\\u{1b}[2Jname"), "\(verify.output.debugDescription)")
        #expect(verify.output.contains("virtual tables v"), "\(verify.output)")
    }

}
