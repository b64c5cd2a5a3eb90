import Foundation
import GatehouseCore
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// `backups:` in the server: every interval a `StoreBackup.backup` of the SQLite store into
/// `dir` as `gatehouse-YYYYMMDDTHHMMSSZ.sqlite.gz`, the newest `keep` of those files kept, and
/// each outcome reported (a success pings the built-in heartbeat, a failure turns it down).
///
/// SQLite serves one instance, so one service backs it up; PostgreSQL is refused by the
/// configuration (pg_dump and PITR back up every instance's data at once).
public struct ScheduledBackupService: Service {
    /// Told after every attempt (when it ended, and why it failed; nil: it succeeded), and once
    /// at start for the newest backup on disk (its name's time, nil).
    public typealias Report = @Sendable (_ atMicros: Int64, _ failure: String?) async throws -> Void

    let settings: BackupSettings
    let databaseURL: String
    let logger: Logger
    let report: Report
    /// Future-dated names already warned about, so the log says it once per file.
    private let warnedFutureNames = WarnedNames()

    /// Temporary files are `.gatehouse-scheduled-….tmp` (`StoreBackup.temporaryFileName`): only
    /// this service writes that name.
    static let temporaryName = "scheduled"
    static let prefix = "gatehouse-", suffix = ".sqlite.gz"
    /// A name dated later than now plus this is not taken for a backup of this service's: a
    /// clock that ran ahead, or a file copied in, must not outrank (and prune) every new backup.
    static let futureMargin: TimeInterval = 300

    public init(settings: BackupSettings, databaseURL: String, logger: Logger, report: @escaping Report) {
        self.settings = settings
        self.databaseURL = databaseURL
        self.logger = logger
        self.report = report
    }

    public func run() async throws {
        for result in ["success", "failure"] { Counter(label: "gatehouse_backups_total", dimensions: [("result", result)]).increment(by: 0) }
        removeLeftovers()
        await reportNewestOnDisk()
        let wait = secondsUntilFirstBackup()
        var due = ContinuousClock.now + .seconds(wait)
        logger.info("scheduled backups on", metadata: ["dir": "\(settings.directory)", "interval_seconds": "\(settings.intervalSeconds)",
                                                        "keep": "\(settings.keep)", "first_in_seconds": "\(Int(wait.rounded()))"])
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let until = due
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(until: until) } } catch { return }
            // Shutdown abandons a backup under way (its temporary files removed, nothing left
            // under a backup's name): services stop one after another, and the recorders' final
            // flush must not wait a minute for a backup of a large store.
            await cancelWhenGracefulShutdown { await backupOnce() }
            // Fixed rate: the next is due an interval after this one began, or now if it ran longer.
            due = max(due + .seconds(settings.intervalSeconds), .now)
        }
    }

    /// A restart does not take an extra backup, nor wait a whole interval after the last one.
    func secondsUntilFirstBackup() -> Double {
        newestBackupDate().map { max(0, $0.timeIntervalSinceNow + Double(settings.intervalSeconds)) } ?? 0
    }

    /// When the newest of this service's backups in the directory began (its name's time).
    func newestBackupDate() -> Date? { backupFiles(now: Date()).first.flatMap(Self.date(ofName:)) }

    /// The newest backup on disk is a success at its time, whatever the store remembers: a store
    /// restored from an older backup (or started on a new disk) holds an older ping or none, and
    /// would report the backup missing until the next one, an interval away. A ping never moves
    /// the heartbeat back in time, and a failure stored after this backup still stands.
    func reportNewestOnDisk() async {
        guard let newest = newestBackupDate() else { return }
        Gauge(label: "gatehouse_backup_last_success_timestamp_seconds").record(newest.timeIntervalSince1970)
        await send(atMicros: Int64(saturating: newest.timeIntervalSince1970 * 1_000_000), failure: nil)
    }

    private func send(atMicros: Int64, failure: String?) async {
        do {
            try await report(atMicros, failure)
        } catch {
            logger.error("the scheduled backup's heartbeat could not be recorded", metadata: ["error": "\(error)"])
        }
    }

    /// One backup, its pruning and its report.
    func backupOnce(now: Date = Date()) async {
        let name = Self.name(for: now)
        let path = (settings.directory as NSString).appendingPathComponent(name)
        let started = ContinuousClock.now
        var failure: String?
        do {
            let report = try await StoreBackup.backup(databaseURL: databaseURL, to: path, overwrite: false,
                                                      temporaryName: Self.temporaryName, logger: logger)
            let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            let seconds = Double(TimeExpressions.micros(ContinuousClock.now - started)) / 1_000_000
            logger.info("scheduled backup written", metadata: [
                "file": "\(path)", "bytes": "\(bytes)", "seconds": "\(String(format: "%.1f", seconds))",
                "requests": "\(report.rows("requests") ?? 0)", "logs": "\(report.rows("logs") ?? 0)",
            ])
            Gauge(label: "gatehouse_backup_last_success_timestamp_seconds").record(now.timeIntervalSince1970)
            prune(now: now, keeping: name)
        } catch {
            if Task.isCancelled {
                logger.notice("scheduled backup abandoned: the server is shutting down", metadata: ["file": "\(path)"])
                return
            }
            failure = "scheduled backup failed: \(error)"
            logger.error("scheduled backup failed", metadata: ["dir": "\(settings.directory)", "error": "\(error)"])
        }
        Counter(label: "gatehouse_backups_total", dimensions: [("result", failure == nil ? "success" : "failure")]).increment()
        await send(atMicros: TimeExpressions.nowMicros(), failure: failure)
    }

    /// Keeps the newest `keep` files this service named, and always `kept` (just written); any
    /// other file in the directory is not its to delete.
    func prune(now: Date, keeping kept: String) {
        let files = backupFiles(now: now)
        let newest = [kept] + files.filter { $0 != kept }
        for name in newest.dropFirst(settings.keep) {
            let path = (settings.directory as NSString).appendingPathComponent(name)
            do {
                try FileManager.default.removeItem(atPath: path)
                logger.info("old scheduled backup removed", metadata: ["file": "\(path)"])
            } catch {
                logger.warning("an old scheduled backup could not be removed", metadata: ["file": "\(path)", "error": "\(error)"])
            }
        }
    }

    /// The names of this service's backups in the directory, newest first (the name sorts by
    /// time); names dated past `now` + `futureMargin` are left out, with a warning, and so is
    /// anything that is not a regular gzip file.
    func backupFiles(now: Date = Date()) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: settings.directory)) ?? []
        return entries.filter { name in
            guard let date = Self.date(ofName: name) else { return false }
            if date > now.addingTimeInterval(Self.futureMargin) {
                if warnedFutureNames.firstTime(name) {
                    logger.warning("a backup file is dated in the future: neither pruned nor counted as the newest backup",
                                   metadata: ["file": "\(name)", "dir": "\(settings.directory)"])
                }
                return false
            }
            // A link, a directory, or a file that is not gzip (an empty one `touch` made) with a
            // backup's name was not written here: it must neither count as the newest backup (a
            // ping at start, the next one put off) nor be pruned.
            let path = (settings.directory as NSString).appendingPathComponent(name)
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            return attributes?[.type] as? FileAttributeType == .typeRegular && Self.startsLikeGzip(path)
        }.sorted(by: >)
    }

    /// Whether the file begins as gzip does (`Gzip.magic`).
    static func startsLikeGzip(_ path: String) -> Bool {
        guard let file = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? file.close() }
        return (try? file.read(upToCount: 2)) == Gzip.magic
    }

    /// Temporary files of a run that was killed (SIGKILL, power loss) before it could remove
    /// them: one may be a whole uncompressed copy of the store.
    func removeLeftovers() {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: settings.directory)) ?? []
        for name in entries where StoreBackup.isTemporaryFile(name, of: Self.temporaryName) {
            try? FileManager.default.removeItem(atPath: (settings.directory as NSString).appendingPathComponent(name))
            logger.notice("removed a killed scheduled backup's temporary file", metadata: ["file": "\(name)"])
        }
    }

    /// `gatehouse-20261202T030000Z.sqlite.gz`.
    static func name(for date: Date) -> String { prefix + stampFormatter().string(from: date) + suffix }

    /// The time in a backup's name; nil for any other name.
    static func date(ofName name: String) -> Date? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
        let stamp = name.dropFirst(prefix.count).dropLast(suffix.count)
        guard stamp.count == 16 else { return nil }
        return stampFormatter().date(from: String(stamp))
    }

    private static func stampFormatter() -> DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter
    }
}

/// Names already reported, shared by the copies of the service value.
final class WarnedNames: Sendable {
    private let names = Mutex<Set<String>>([])
    /// True the first time `name` is seen.
    func firstTime(_ name: String) -> Bool { names.withLock { $0.insert(name).inserted } }
}
