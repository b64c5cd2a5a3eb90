import GatehouseCore
import Logging
import ServiceLifecycle

// Creating the day partitions ahead of the rows that need them: `DayPartitions.ensure`, run by
// every migration (`SQLRequestStore.migrate`) and hourly by `PartitionMaintenance`.

extension DayPartitions {
    /// Creates the partitions of today (the UTC day of `nowMicros`) and `daysAhead` days after it
    /// that do not exist yet, and the default partitions if one is missing; returns the names it
    /// found missing. Idempotent, and safe from several instances at once: each missing one is
    /// created in a transaction of its own under an advisory lock, only if still missing then.
    ///
    /// Each transaction first locks the parent table exclusively (`lockTimeout` bounds the wait):
    /// an insert holds the parent from its first row to its commit, so once the lock is granted
    /// no row can reach the default partition until the day's rows have been moved out of it and
    /// the partition exists. Without it, a row committed after the move made PostgreSQL refuse the
    /// partition (23514). One transaction a partition, so one that fails (a long read holding the
    /// table) leaves the others created; the rest of that table's days are left for the next try,
    /// each would wait out the same lock. Throws `PartitionsNotCreated` after trying every table.
    @discardableResult
    static func ensure(driver: any SQLDriver, nowMicros: Int64 = TimeExpressions.nowMicros()) async throws -> [String] {
        guard driver.dialect.name == "postgres" else { return [] }
        let today = TimeExpressions.utcDay(micros: nowMicros)
        var created: [String] = [], notCreated: [String] = [], firstError: (any Error)?
        for (table, _) in tables {
            let existing = Set(try await partitions(of: table, driver: driver).map(\.name))
            let defaultPartition = defaultName(table)
            var missing: [(name: String, block: String)] = []
            if try await driver.query("SELECT to_regclass(\(driver.dialect.placeholder(1)))::text AS name", [.text(defaultPartition)]).first?["name"].text == nil {
                missing.append((defaultPartition, "CREATE TABLE \(defaultPartition) PARTITION OF \(table) DEFAULT;"))
            }
            for day in today...(today + daysAhead) where !existing.contains(name(table, day: day)) {
                let partition = name(table, day: day)
                let from = day * TimeExpressions.microsPerDay, to = from + TimeExpressions.microsPerDay
                let inRange = "ts >= \(from) AND ts < \(to)"
                missing.append((partition, """
                    IF EXISTS (SELECT 1 FROM \(defaultPartition) WHERE \(inRange)) THEN
                        CREATE TABLE \(partition) (LIKE \(table) INCLUDING DEFAULTS);
                        WITH moved AS (DELETE FROM \(defaultPartition) WHERE \(inRange) RETURNING *) INSERT INTO \(partition) SELECT * FROM moved;
                        ALTER TABLE \(table) ATTACH PARTITION \(partition) FOR VALUES FROM (\(from)) TO (\(to));
                    ELSE
                        CREATE TABLE \(partition) PARTITION OF \(table) FOR VALUES FROM (\(from)) TO (\(to));
                    END IF;
                    """))
            }
            for (index, partition) in missing.enumerated() {
                do {
                    try await driver.transaction([
                        lock, lockTimeout, SQLStatement("LOCK TABLE ONLY \(table) IN ACCESS EXCLUSIVE MODE"),
                        SQLStatement("DO $$\nBEGIN\nIF to_regclass('\(partition.name)') IS NULL THEN\n\(partition.block)\nEND IF;\nEND $$"),
                    ])
                    created.append(partition.name)
                } catch {
                    notCreated += missing[index...].map(\.name)
                    if firstError == nil { firstError = error }
                    break
                }
            }
        }
        if let firstError { throw PartitionsNotCreated(partitions: notCreated, cause: "\(firstError)") }
        return created
    }
}

/// Day partitions that `DayPartitions.ensure` could not create (most often: a long read held
/// the table past `lockTimeout`). Not fatal: the default partition takes those days' rows
/// until a later attempt creates them, and moves them in then.
public struct PartitionsNotCreated: Error, CustomStringConvertible, Sendable {
    public var partitions: [String]
    public var cause: String
    public var description: String {
        "day partitions not created yet (\(partitions.joined(separator: ", "))): \(cause); "
            + "their rows go to the default partition until a later attempt creates them"
    }
}

/// Creates the coming days' partitions at start and then every hour (`DayPartitions.ensure`),
/// a minute after an attempt that left some missing. Migrating (`SQLRequestStore.migrate`, also
/// `gatehouse migrate`) tries as well, so a migrated store normally has today's before anything
/// writes.
struct PartitionMaintenance: Service {
    let driver: any SQLDriver
    let interval: Duration
    let retryInterval: Duration
    let logger: Logger

    init(driver: any SQLDriver, interval: Duration = .seconds(3600), retryInterval: Duration = .seconds(60), logger: Logger) {
        self.driver = driver
        self.interval = interval
        self.retryInterval = retryInterval
        self.logger = logger
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var wait: Duration?
            while !Task.isCancelled {
                if let wait { do { try await Task.sleep(for: wait) } catch { break } }
                do {
                    let created = try await DayPartitions.ensure(driver: driver)
                    if !created.isEmpty { logger.info("created day partitions", metadata: ["partitions": "\(created.joined(separator: ", "))"]) }
                    wait = interval
                } catch {
                    if Task.isCancelled { break }
                    // A week of partitions exists ahead, and the default one takes rows meanwhile:
                    // soon is early enough, and leaves a long read (pg_dump) time to end.
                    logger.warning("creating day partitions failed; will retry in a minute", metadata: ["error": "\(error)"])
                    wait = retryInterval
                }
            }
        }
    }
}

extension SQLRequestStore {
    /// The hourly creation of day partitions, for the server's service group; nil on SQLite.
    public func partitionMaintenance(logger: Logger) -> (any Service)? {
        dialect.name == "postgres" ? PartitionMaintenance(driver: driver, logger: logger) : nil
    }
}
