import Foundation
import GatehouseAPI
import GatehouseStorage
import GatehouseTestSupport
import Logging
import Testing

/// `backups: {dir, interval, keep}` in a real server: backups written while it serves, pruned to
/// `keep`, restorable to the same usage, and a failing backup that turns its built-in heartbeat
/// down and raises the alert. The one-shot `gatehouse backup` under load is proven in
/// `BackupEndToEndTests`; these reuse its load and checks.
@Suite(.serialized) struct ScheduledBackupEndToEndTests {
    static let heartbeat = "gatehouse-backup"

    /// Log lines of written backups, so far.
    static func written(_ gatehouse: GatehouseProcess) -> Int {
        gatehouse.child.output.filter { $0.contains("scheduled backup written") }.count
    }

    /// The files in `directory`, sorted.
    static func files(_ directory: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
    }

    /// The service's backups in `directory`, oldest first.
    static func backups(_ directory: URL) throws -> [String] {
        try files(directory).filter { $0.range(of: #"^gatehouse-\d{8}T\d{6}Z\.sqlite\.gz$"#, options: .regularExpression) != nil }
    }

    static func backupHeartbeat(_ api: TypedAPI) async throws -> ProbeView? {
        try await api.get("/api/v1/probes", as: ProbeList.self).data.first { $0.name == heartbeat }
    }

    /// `name{labels} value` from `/metrics`, 0 when absent.
    static func metric(_ base: String, _ series: String) async throws -> Double {
        let (_, body) = try await HTTP.get(base + "/metrics")
        let line = String(decoding: body, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix(series + " ") }
        return line.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
    }

    /// Four callers and log lines run through three scheduled backups; the service keeps two of
    /// its files and leaves everyone else's; the backup taken under load checks out and restores
    /// with the same counts; once quiet, the next backup restores to the same usage totals.
    @Test func backupsWrittenWhileServingArePrunedAndRestore() async throws {
        let work = try TestEnvironment.temporaryDirectory()
        let directory = work.appendingPathComponent("backups")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let foreign = ["gatehouse-2026-12-01.sqlite.gz", "README.txt"]
        for name in foreign { try Data("not the service's".utf8).write(to: directory.appendingPathComponent(name)) }
        let gatehouse = try await GatehouseProcess.start(yaml: """
            recorder: {flush_interval_ms: 50}
            backups: {dir: "\(directory.path)", interval: 10s, keep: 2}
            """)
        let api = TypedAPI(baseURL: gatehouse.baseURL)

        // The first runs at start and pings the built-in heartbeat, which nobody else can ping.
        try await Poll.until("the first scheduled backup", timeout: .seconds(30)) { Self.written(gatehouse) >= 1 }
        let up = try #require(try await Self.backupHeartbeat(api))
        #expect(up.kind == "heartbeat" && up.status == .up && up.lastCheck != nil && up.lastError == nil, "\(up)")
        let ping = try await api.failure(.POST, "/api/v1/heartbeats/\(Self.heartbeat)")
        #expect(ping.status == 403 && ping.error.error.code == "built_in_heartbeat", "\(ping)")
        #expect(try await api.failure(.GET, "/api/v1/heartbeats/\(Self.heartbeat)/ping").status == 403)

        let sent = BackupEndToEndTests.Sent()
        let base = gatehouse.baseURL
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<4 { group.addTask { await BackupEndToEndTests.load(base, sent) } }
            }
        }
        _ = try await BackupEndToEndTests.waitForStorage(api, "the load's records being stored") { $0 >= 10 && $1 >= 10 }
        let callsBefore = sent.calls.load(ordering: .relaxed)
        let before = Self.written(gatehouse)
        try await Poll.until("two backups written under load", timeout: .seconds(40), every: .milliseconds(200)) { Self.written(gatehouse) >= before + 2 }
        let callsDuring = sent.calls.load(ordering: .relaxed) - callsBefore
        // Taken at once, before a later backup could prune it.
        let underLoad = try #require(try Self.backups(directory).last)
        let copy = work.appendingPathComponent("under-load.sqlite.gz").path
        try FileManager.default.copyItem(atPath: directory.appendingPathComponent(underLoad).path, toPath: copy)
        load.cancel()
        await load.value
        #expect(callsDuring > 20, "calls were answered across the two backups: \(callsDuring)")

        let names = try Self.files(directory), ours = try Self.backups(directory)
        #expect(ours.count == 2, "keep: 2 — \(names)")
        #expect(names == (foreign + ours).sorted(), "no temporary file, nothing else touched: \(names)")

        let verified = try BackupEndToEndTests.json(try await BackupEndToEndTests.run(["verify-backup", copy, "--json"]).output)
        #expect(verified["ok"] as? Bool == true && verified["integrity_check"] as? String == "ok", "\(verified)")
        let takenCounts = BackupEndToEndTests.counts(verified)
        #expect((takenCounts["requests"] ?? 0) >= 10 && (takenCounts["logs"] ?? 0) >= 10, "\(takenCounts)")
        let restoredUnderLoad = work.appendingPathComponent("restored-under-load").path
        let restore = try await BackupEndToEndTests.run(["restore", "--input", copy, "--data-dir", restoredUnderLoad, "--json"])
        #expect(restore.status == 0, "\(restore.output)")
        #expect(BackupEndToEndTests.counts(try BackupEndToEndTests.json(restore.output)) == takenCounts, "the restored copy counts the same")

        // Quiet: every answered call stored, then the next backup has them all.
        let allCalls = Int64(sent.calls.load(ordering: .relaxed)), allLines = Int64(sent.lines.load(ordering: .relaxed))
        _ = try await BackupEndToEndTests.waitForStorage(api, "every answered call and line stored") { $0 >= allCalls && $1 >= allLines }
        try await Task.sleep(for: .seconds(1))
        let stored = try await BackupEndToEndTests.waitForStorage(api, "the stored rows") { _, _ in true }
        #expect((takenCounts["requests"] ?? 0) <= stored.requests)
        let quietFrom = Self.written(gatehouse)
        try await Poll.until("a backup of the quiet store", timeout: .seconds(30), every: .milliseconds(200)) { Self.written(gatehouse) > quietFrom }
        let kept = try Self.backups(directory)
        let quiet = try #require(kept.last)
        #expect(kept == [underLoad, quiet] && quiet > underLoad, "the newest two: \(kept)")
        let restoredQuiet = work.appendingPathComponent("restored-quiet").path
        let quietRestore = try await BackupEndToEndTests.run(["restore", "--input", directory.appendingPathComponent(quiet).path, "--data-dir", restoredQuiet, "--json"])
        #expect(quietRestore.status == 0, "\(quietRestore.output)")
        let quietReport = try BackupEndToEndTests.json(quietRestore.output)
        #expect(quietReport["integrity_check"] as? String == "ok")
        #expect(BackupEndToEndTests.counts(quietReport)["requests"] == stored.requests, "\(BackupEndToEndTests.counts(quietReport)) vs \(stored)")
        let original = try await BackupEndToEndTests.totals(gatehouse.baseURL)
        let again = try await GatehouseProcess.start(databaseURL: "sqlite://" + restoredQuiet + "/gatehouse.sqlite")
        #expect(try await BackupEndToEndTests.totals(again.baseURL) == original, "the restored server answers the same usage")
        try await again.stop()

        let successes = try await Self.metric(gatehouse.baseURL, #"gatehouse_backups_total{result="success"}"#)
        #expect(successes >= 4 && successes == Double(Self.written(gatehouse)))
        #expect(try await Self.metric(gatehouse.baseURL, #"gatehouse_backups_total{result="failure"}"#) == 0)
        #expect(try await Self.metric(gatehouse.baseURL, "gatehouse_backup_last_success_timestamp_seconds") > Date().timeIntervalSince1970 - 60)
        print("scheduled backups: \(Self.written(gatehouse)) written, \(callsDuring) calls answered across two of them; under load \(takenCounts["requests"] ?? 0) calls, "
            + "quiet \(stored.requests)")
        try await gatehouse.stop()
        let left = try Self.files(directory)
        #expect(left.allSatisfy { !$0.hasPrefix(".") }, "no temporary file after shutdown: \(left)")
    }

    /// The backup volume is not there: the first backup fails at start, the heartbeat is DOWN at
    /// once with the reason, GatehouseBackupMissing fires and reaches the receiver. Once the
    /// directory exists the next backup succeeds, the heartbeat is up and the alert resolves.
    @Test func aFailingBackupTurnsTheHeartbeatDownAndAlerts() async throws {
        let receiver = try await Receiver.start()
        let work = try TestEnvironment.temporaryDirectory()
        let directory = work.appendingPathComponent("not-mounted")
        let gatehouse = try await GatehouseProcess.start(yaml: """
            backups: {dir: "\(directory.path)", interval: 10s, keep: 3}
            alerts:
              evaluation_interval_seconds: 1
              group_wait_seconds: 0
              group_interval_seconds: 1
              receivers:
                - {name: hook, webhook: {url: "\(receiver.baseURL)/hook"}}
              default_receiver: hook
            """)
        let api = TypedAPI(baseURL: gatehouse.baseURL)
        try await Poll.until("the heartbeat is down") { try await Self.backupHeartbeat(api)?.status == .down }
        let down = try #require(try await Self.backupHeartbeat(api))
        #expect(down.lastError?.contains("scheduled backup failed: the directory \(directory.path) does not exist") == true, "\(down)")
        #expect(gatehouse.child.output.contains { $0.contains("scheduled backup failed") && $0.contains("\"error\"") })
        #expect(!FileManager.default.fileExists(atPath: directory.path), "a missing directory is not created")

        func hooks(_ status: String) async throws -> [[String: Any]] {
            try await receiver.received("/hook").compactMap { $0["body"] as? [String: Any] }.filter { $0["status"] as? String == status }
        }
        try await Poll.until("GatehouseBackupMissing is sent") { try await !hooks("firing").isEmpty }
        let alert = try #require((try await hooks("firing").first?["alerts"] as? [[String: Any]])?.first)
        let labels = alert["labels"] as? [String: String] ?? [:]
        #expect(labels["alertname"] == "GatehouseBackupMissing" && labels["probe"] == Self.heartbeat && labels["severity"] == "high", "\(labels)")
        #expect((alert["annotations"] as? [String: String])?["summary"]?.contains(directory.path) == true, "\(alert)")
        #expect(try await activeAlerts(api).contains { $0.alert.rule == "GatehouseBackupMissing" && $0.alert.state == .firing })
        #expect(try await Self.metric(gatehouse.baseURL, #"gatehouse_backups_total{result="failure"}"#) >= 1)

        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try await Poll.until("the next backup succeeds", timeout: .seconds(30)) { try await Self.backupHeartbeat(api)?.status == .up }
        try await Poll.until("the alert resolves", timeout: .seconds(20)) { try await !hooks("resolved").isEmpty }
        let file = try #require(try Self.backups(directory).first)
        let verify = try await BackupEndToEndTests.run(["verify-backup", directory.appendingPathComponent(file).path])
        #expect(verify.status == 0 && verify.output.contains("check passed"), "\(verify.output)")
        try await gatehouse.stop()
        try await receiver.stop()
    }

    /// A failed backup is remembered by the store, not the process: after a restart whose next
    /// backup is an hour away, the heartbeat is still DOWN with the reason (it came back UP
    /// when only the process knew).
    @Test func aFailedBackupStaysDownAcrossARestart() async throws {
        let work = try TestEnvironment.temporaryDirectory()
        let directory = work.appendingPathComponent("backups"), away = work.appendingPathComponent("unmounted")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let database = "sqlite://" + work.appendingPathComponent("gatehouse.sqlite").path
        let first = try await GatehouseProcess.start(yaml: "backups: {dir: \"\(directory.path)\", interval: 10s, keep: 3}", databaseURL: database)
        let api = TypedAPI(baseURL: first.baseURL)
        try await Poll.until("the first backup", timeout: .seconds(30)) { Self.written(first) >= 1 }
        try await Poll.until("the heartbeat is up") { try await Self.backupHeartbeat(api)?.status == .up }
        // The volume goes away: the next backup fails.
        try FileManager.default.moveItem(at: directory, to: away)
        try await Poll.until("the heartbeat is down", timeout: .seconds(30)) { try await Self.backupHeartbeat(api)?.status == .down }
        #expect(try await first.stop() == 0)

        // Back with its one backup, seconds old: the next is an hour away, so nothing pings.
        try FileManager.default.moveItem(at: away, to: directory)
        let second = try await GatehouseProcess.start(yaml: "backups: {dir: \"\(directory.path)\", interval: 1h, keep: 3}", databaseURL: database)
        let again = TypedAPI(baseURL: second.baseURL)
        try await Poll.until("the service's first_in_seconds") { second.child.output.contains { $0.contains("scheduled backups on") } }
        let down = try #require(try await Self.backupHeartbeat(again))
        #expect(down.status == .down && down.lastError?.contains("scheduled backup failed") == true, "\(down)")
        #expect(Self.written(second) == 0)
        #expect(try await second.stop() == 0)
    }

    /// check-config refuses backups on PostgreSQL and says what to use instead.
    @Test func checkConfigRefusesBackupsOnPostgreSQL() async throws {
        let work = try TestEnvironment.temporaryDirectory()
        let config = work.appendingPathComponent("gatehouse.yaml").path
        try Data("backups: {dir: /var/backups/gatehouse}\n".utf8).write(to: URL(fileURLWithPath: config))
        let refused = try await CLIEndToEndTests.run(["check-config", "--config", config, "--database-url", "postgres://gh:pw-secret@127.0.0.1:5432/gatehouse"])
        #expect(refused.status == 2 && refused.output.contains("backups: scheduled backups are for the SQLite store") && refused.output.contains("pg_dump"),
                "\(refused.output)")
        #expect(!refused.output.contains("pw-secret"))
        let fine = try await CLIEndToEndTests.run(["check-config", "--config", config, "--data-dir", work.appendingPathComponent("data").path])
        #expect(fine.status == 0 && fine.output.contains(#"backups: {dir: "/var/backups/gatehouse", interval: 1d, keep: 7}"#), "\(fine.output)")
    }

    /// A SQLite store of ~300 MB of incompressible junk, so a backup takes seconds.
    static func bigStore(_ work: URL) throws -> String {
        let path = work.appendingPathComponent("big.sqlite").path
        let fill = try ProcessRunner.run("/usr/bin/sqlite3", [path,
            "CREATE TABLE junk AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) SELECT randomblob(1000) AS b FROM c;"])
        guard fill.status == 0 else { throw ProcessRunner.Failure(message: "sqlite3: \(fill.output)") }
        return "sqlite://" + path
    }

    /// The backup's copying and compressing run off the event loops: the server answers
    /// `/ready` promptly all through a backup of a large store.
    @Test func aLargeBackupDoesNotStallTheServer() async throws {
        let work = try TestEnvironment.temporaryDirectory()
        let directory = work.appendingPathComponent("backups")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let url = try Self.bigStore(work)
        let gatehouse = try await GatehouseProcess.start(yaml: "backups: {dir: \"\(directory.path)\", interval: 1h, keep: 1}", databaseURL: url)
        var slowest: Duration = .zero
        let clock = ContinuousClock()
        let until = clock.now + .seconds(25)
        while Self.written(gatehouse) == 0 && clock.now < until {
            let started = clock.now
            let (status, _) = try await HTTP.get(gatehouse.baseURL + "/ready")
            slowest = max(slowest, clock.now - started)
            #expect(status == 200)
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(Self.written(gatehouse) == 1, "the backup finished")
        #expect(slowest < .seconds(1), "slowest /ready during the backup: \(slowest)")
        #expect(try await gatehouse.stop() == 0)
    }

    /// SIGTERM during a long backup: the backup is abandoned (no temporary file, nothing with a
    /// backup's name) and the server exits at once, well within systemd's stop timeout.
    @Test func shutdownAbandonsABackupUnderWay() async throws {
        let work = try TestEnvironment.temporaryDirectory()
        let directory = work.appendingPathComponent("backups")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let url = try Self.bigStore(work)
        let gatehouse = try await GatehouseProcess.start(yaml: "backups: {dir: \"\(directory.path)\", interval: 1h, keep: 1}", databaseURL: url)
        try await Poll.until("the backup's temporary file", timeout: .seconds(20), every: .milliseconds(20)) {
            (try? Self.files(directory))?.contains { $0.hasPrefix(".gatehouse-scheduled-") } == true
        }
        try await Task.sleep(for: .milliseconds(500))
        let started = ContinuousClock.now
        let status = try await gatehouse.child.stop(signal: SIGTERM, timeout: .seconds(60))
        let took = ContinuousClock.now - started
        #expect(status == 0)
        #expect(took < .seconds(5), "exit took \(took)")
        let left = try Self.files(directory)
        #expect(left == [], "nothing left: \(left)")
    }
}
