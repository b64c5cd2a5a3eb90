import GatehouseCore
import Logging
import PostgresNIO
import ServiceLifecycle

/// An opened store and what must run for it to work.
public struct OpenedStore: Sendable {
    public var store: SQLRequestStore
    public var controls: SQLControlStore
    public var telemetry: SQLTelemetryStore
    public var alerts: SQLAlertStore
    public var accounts: SQLAccountStore
    /// Services to run in the ServiceGroup (the PostgreSQL pool), started before anything else.
    public var services: [any Service]
    /// Closes connections; call after every user of the store has stopped.
    public var close: @Sendable () async throws -> Void
    public var kind: String
}

public enum StoreFactory {
    /// Opens the store named by `databaseURL` and applies pending migrations.
    ///
    /// For PostgreSQL the pool's `run()` has to be going while migrations run, so it is started
    /// in `runTask`'s scope by the caller: use `withStore` where no ServiceGroup exists.
    public static func open(databaseURL: String, logger: Logger) async throws -> OpenedStore {
        try await open(databaseURL: databaseURL, logger: logger, postgresTimeouts: PostgresDriver.Timeouts())
    }

    static func open(databaseURL: String, logger: Logger, postgresTimeouts: PostgresDriver.Timeouts) async throws -> OpenedStore {
        guard let url = DatabaseURL(databaseURL) else {
            throw StoreError.unavailable("unsupported database URL \(Redactor.redactURL(databaseURL))")
        }
        switch url {
        case .sqlite(let path):
            let driver = try await SQLiteDriver.open(path: path, logger: logger)
            return OpenedStore(store: SQLRequestStore(driver: driver), controls: SQLControlStore(driver: driver), telemetry: SQLTelemetryStore(driver: driver), alerts: SQLAlertStore(driver: driver),
                               accounts: SQLAccountStore(driver: driver), services: [], close: { try await driver.close() }, kind: "sqlite")
        case .postgres(let text):
            let client = PostgresClient(configuration: try PostgresDriver.configuration(fromURL: text), backgroundLogger: logger)
            let driver = PostgresDriver(client: client, logger: logger, timeouts: postgresTimeouts)
            return OpenedStore(store: SQLRequestStore(driver: driver), controls: SQLControlStore(driver: driver), telemetry: SQLTelemetryStore(driver: driver), alerts: SQLAlertStore(driver: driver),
                               accounts: SQLAccountStore(driver: driver), services: [PostgresService(client: client, driver: driver, logger: logger)],
                               close: {}, kind: "postgres")
        }
    }

    /// Opens a store, runs `body` with it and closes it; for the CLI and tests.
    public static func withStore<T: Sendable>(databaseURL: String, logger: Logger,
                                              _ body: @Sendable (SQLRequestStore) async throws -> T) async throws -> T {
        try await withStores(databaseURL: databaseURL, logger: logger) { requests, _ in try await body(requests) }
    }

    /// Opens the request and control stores, runs `body` with them and closes them.
    public static func withStores<T: Sendable>(databaseURL: String, logger: Logger,
                                               _ body: @Sendable (SQLRequestStore, SQLControlStore) async throws -> T) async throws -> T {
        try await withOpenedStore(databaseURL: databaseURL, logger: logger) { try await body($0.store, $0.controls) }
    }

    /// `gatehouse migrate`: applies pending migrations and says from which version to which.
    /// Instances and other runs of it may start at the same time: the migration lock (an
    /// advisory lock on PostgreSQL, the write lock on SQLite) lets one apply, the others wait and
    /// then find the schema current.
    ///
    /// `timeout` bounds the whole run on PostgreSQL, the wait for another run's lock included;
    /// nil (the default) sets no bound, since a big store's migration may take longer than any
    /// bound a server start should have. A run cut off by it rolls back its current version.
    public static func migrate(databaseURL: String, logger: Logger, timeout: Duration? = nil) async throws -> MigrationRun {
        var timeouts = PostgresDriver.Timeouts()
        timeouts.migration = timeout
        return try await withOpenedStore(databaseURL: databaseURL, logger: logger, migrating: false, postgresTimeouts: timeouts) {
            try await $0.store.migrate()
        }
    }

    /// Opens every store on one database, migrated (unless `migrating` is false), runs `body`
    /// with them and closes them.
    public static func withOpenedStore<T: Sendable>(databaseURL: String, logger: Logger, migrating: Bool = true,
                                                    _ body: @Sendable (OpenedStore) async throws -> T) async throws -> T {
        try await withOpenedStore(databaseURL: databaseURL, logger: logger, migrating: migrating, postgresTimeouts: PostgresDriver.Timeouts(), body)
    }

    private static func withOpenedStore<T: Sendable>(databaseURL: String, logger: Logger, migrating: Bool, postgresTimeouts: PostgresDriver.Timeouts,
                                                     _ body: @Sendable (OpenedStore) async throws -> T) async throws -> T {
        let opened = try await open(databaseURL: databaseURL, logger: logger, postgresTimeouts: postgresTimeouts)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            for service in opened.services { group.addTask { try await service.run() } }
            defer { group.cancelAll() }
            do {
                if migrating { try await opened.store.migrate() }
                let result = try await body(opened)
                try await opened.close()
                return result
            } catch {
                // Connections must be closed on every path (SQLiteNIO asserts it on deinit).
                try? await opened.close()
                throw error
            }
        }
    }
}

extension SQLRequestStore {
    /// Applies pending migrations (a no-op when already current).
    @discardableResult
    public func migrate() async throws -> MigrationRun {
        let run = try await Migrations.apply(to: driver)
        // Today's and the coming week's day partitions, before anything writes (PostgreSQL only).
        // One that cannot be made now (a long read holds its table) must not stop a start or
        // `gatehouse migrate`: the default partition takes its rows, and maintenance retries.
        do {
            try await DayPartitions.ensure(driver: driver)
        } catch {
            Logger(label: "gatehouse.storage").warning("could not create every day partition; rows of those days go to the default partition and the servers' maintenance tries again",
                                                      metadata: ["error": "\(error)"])
        }
        return run
    }

    /// Throws `SchemaNotCurrent` unless the schema is the one this binary knows; changes nothing.
    /// Waits for PostgreSQL as long as a migrating start does: pods started during a failover
    /// must not exit for a database that is a few seconds away.
    public func requireCurrentSchema() async throws {
        if let postgres = driver as? PostgresDriver {
            try await postgres.withStartupConnection { try await Migrations.requireCurrent($0) }
        } else {
            try await Migrations.requireCurrent(driver)
        }
    }
}

/// Runs the PostgreSQL pool for the server's lifetime.
struct PostgresService: Service {
    let client: PostgresClient
    let driver: PostgresDriver
    let logger: Logger

    func run() async throws {
        // The pool stops when this task is cancelled, which ServiceGroup does last (it was
        // registered first), after the recorder's final flush.
        await client.run()
    }
}
