import Foundation
import GatehouseCore
import GatehouseTestSupport
import Logging
import Synchronization
import Testing
@testable import GatehouseStorage

/// The server's scheduled backups, one step at a time: names, pruning, failures and leftovers.
@Suite struct ScheduledBackupTests {
    /// Every report the service made: (time, failure).
    final class Reports: Sendable {
        let list = Mutex<[String?]>([])
        var all: [String?] { list.withLock { $0 } }
    }

    static func service(directory: String, databaseURL: String, keep: Int = 2, reports: Reports) -> ScheduledBackupService {
        ScheduledBackupService(settings: BackupSettings(directory: directory, intervalSeconds: 60, keep: keep), databaseURL: databaseURL,
                               logger: Logger(label: "test")) { _, failure in reports.list.withLock { $0.append(failure) } }
    }

    @Test func namesCarryTheirTimeAndNothingElseReadsAsOne() throws {
        let date = try #require(ISO8601DateFormatter().date(from: "2026-12-02T03:04:05Z"))
        #expect(ScheduledBackupService.name(for: date) == "gatehouse-20261202T030405Z.sqlite.gz")
        #expect(ScheduledBackupService.date(ofName: "gatehouse-20261202T030405Z.sqlite.gz") == date)
        for other in ["gatehouse-2026-12-02.sqlite.gz", "gatehouse-20261202T030405Z.sqlite.gz.tmp", "gatehouse-20261202T0304Z.sqlite.gz",
                      ".gatehouse-scheduled-1234.gz.tmp", "xgatehouse-20261202T030405Z.sqlite.gz", "gatehouse-2026120xT030405Z.sqlite.gz"] {
            #expect(ScheduledBackupService.date(ofName: other) == nil, "\(other)")
        }
    }

    /// Backups are written and checked, the newest `keep` of them stay, and files the service
    /// did not name (a cron job's, anything else, a directory with a backup's name) are left.
    @Test func backupsArePrunedToKeepAndOthersAreLeft() async throws {
        let (url, _, directory) = try await StoreBackupTests.filledSQLite()
        let target = directory.appendingPathComponent("backups")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        let foreign = ["gatehouse-2026-12-01.sqlite.gz", "notes.txt", "gatehouse-20200101T000000Z.sqlite.gz.bak"]
        for name in foreign { try Data("keep me".utf8).write(to: target.appendingPathComponent(name)) }
        try FileManager.default.createDirectory(at: target.appendingPathComponent("gatehouse-20000101T000000Z.sqlite.gz"), withIntermediateDirectories: false)
        let reports = Reports()
        let service = Self.service(directory: target.path, databaseURL: url, keep: 2, reports: reports)
        let start = Date()
        for step in 0..<4 { await service.backupOnce(now: start.addingTimeInterval(Double(step) * 60)) }
        #expect(reports.all == [nil, nil, nil, nil], "four successes: \(reports.all)")
        let names = try FileManager.default.contentsOfDirectory(atPath: target.path).sorted()
        let kept = [2, 3].map { ScheduledBackupService.name(for: start.addingTimeInterval(Double($0) * 60)) }
        #expect(names == (foreign + kept + ["gatehouse-20000101T000000Z.sqlite.gz"]).sorted(), "\(names)")
        for name in kept {
            let report = try await StoreBackup.verify(backupFile: target.appendingPathComponent(name).path, logger: Logger(label: "test"))
            StoreBackupTests.expectFilledCounts(report)
        }
        #expect(service.backupFiles() == kept.reversed(), "newest first")
    }

    /// A missing directory is a failure, reported with the reason; nothing is pruned and nothing
    /// is created (a missing directory is often an unmounted volume).
    @Test func aMissingDirectoryIsAReportedFailure() async throws {
        let (url, _, directory) = try await StoreBackupTests.filledSQLite()
        let missing = directory.appendingPathComponent("not-mounted").path
        let reports = Reports()
        await Self.service(directory: missing, databaseURL: url, reports: reports).backupOnce()
        #expect(reports.all.count == 1 && reports.all[0]?.contains("scheduled backup failed: the directory \(missing) does not exist") == true, "\(reports.all)")
        #expect(!FileManager.default.fileExists(atPath: missing))

        // A store that is gone fails too, and the backups already there stay.
        let target = directory.appendingPathComponent("backups")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        let good = Self.service(directory: target.path, databaseURL: url, keep: 1, reports: reports)
        await good.backupOnce()
        let gone = Self.service(directory: target.path, databaseURL: "sqlite://" + directory.appendingPathComponent("gone/gatehouse.sqlite").path, keep: 1, reports: reports)
        await gone.backupOnce(now: Date().addingTimeInterval(60))
        #expect(reports.all.count == 3 && reports.all[1] == nil && reports.all[2]?.contains("there is no SQLite database") == true, "\(reports.all)")
        #expect(good.backupFiles().count == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: target.path).allSatisfy { !$0.hasSuffix(".tmp") })
    }

    /// A killed run's temporary files (`.gatehouse-scheduled-…`) are removed when the service
    /// starts; another writer's (`gatehouse backup`'s `.gatehouse-backup-…`) are not its own.
    @Test func leftoversOfAKilledRunAreRemovedAtStart() async throws {
        let directory = try TestEnvironment.temporaryDirectory()
        let mine = [".gatehouse-scheduled-1a2b3c4d.sqlite.tmp", ".gatehouse-scheduled-1a2b3c4d.gz.tmp", ".gatehouse-scheduled-1a2b3c4d.sqlite.tmp-journal"]
        let others = [".gatehouse-backup-99887766.sqlite.tmp", "gatehouse-20261202T030405Z.sqlite.gz"]
        for name in mine + others { try Data("x".utf8).write(to: directory.appendingPathComponent(name)) }
        Self.service(directory: directory.path, databaseURL: "sqlite:///nowhere", reports: Reports()).removeLeftovers()
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == others.sorted())
    }

    /// At start the newest backup on disk is reported as a success at its own time, before any
    /// backup is due: a store restored from an older backup must not report the backup missing.
    @Test func theNewestBackupOnDiskIsReportedAtStart() async throws {
        let directory = try TestEnvironment.temporaryDirectory()
        let newest = Date().addingTimeInterval(-30).timeIntervalSince1970.rounded(.down)
        for age in [0.0, 60, 120] {
            try Data([0x1f, 0x8b, 0x08]).write(to: directory.appendingPathComponent(ScheduledBackupService.name(for: Date(timeIntervalSince1970: newest - age))))
        }
        // Newer, but not a backup: an empty file `touch` made, and one that is not gzip.
        for (age, bytes) in [(-10.0, Data()), (-5.0, Data("not gzip".utf8))] {
            try bytes.write(to: directory.appendingPathComponent(ScheduledBackupService.name(for: Date(timeIntervalSince1970: newest - age))))
        }
        let times = Mutex<[Int64]>([])
        let service = ScheduledBackupService(settings: BackupSettings(directory: directory.path, intervalSeconds: 3600, keep: 3),
                                             databaseURL: "sqlite:///nowhere", logger: Logger(label: "test")) { at, failure in
            #expect(failure == nil)
            times.withLock { $0.append(at) }
        }
        await service.reportNewestOnDisk()
        #expect(times.withLock { $0 } == [Int64(newest) * 1_000_000])
        #expect(service.secondsUntilFirstBackup() < 3600 - 25, "the next is due an interval after the real newest backup")
        #expect(service.backupFiles().count == 3, "the empty and the non-gzip file are neither counted nor pruned")

        let empty = ScheduledBackupService(settings: BackupSettings(directory: try TestEnvironment.temporaryDirectory().path), databaseURL: "sqlite:///nowhere",
                                           logger: Logger(label: "test")) { _, _ in Issue.record("nothing on disk, nothing to report") }
        await empty.reportNewestOnDisk()
    }

    /// A backup named with a future time (a clock that ran ahead, a file copied in) is not the
    /// newest: the backup just written survives `keep: 1`, and the next is not put off past an interval.
    @Test func aFutureNamedFileNeitherPrunesNewBackupsNorPostponesTheNext() async throws {
        let (url, _, directory) = try await StoreBackupTests.filledSQLite()
        let target = directory.appendingPathComponent("backups")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        let future = ScheduledBackupService.name(for: Date().addingTimeInterval(365 * 86_400))
        try Data("from the future".utf8).write(to: target.appendingPathComponent(future))
        let reports = Reports()
        let service = Self.service(directory: target.path, databaseURL: url, keep: 1, reports: reports)
        #expect(service.secondsUntilFirstBackup() <= 60, "one interval at most: \(service.secondsUntilFirstBackup())")
        let now = Date()
        await service.backupOnce(now: now)
        #expect(reports.all == [nil])
        let names = try FileManager.default.contentsOfDirectory(atPath: target.path)
        #expect(names.contains(ScheduledBackupService.name(for: now)), "the new backup survives: \(names)")
        #expect(names.contains(future), "not this service's to judge: left alone: \(names)")
        #expect(service.secondsUntilFirstBackup() > 50, "after a restart the next one waits for the new backup's interval")
    }
}
