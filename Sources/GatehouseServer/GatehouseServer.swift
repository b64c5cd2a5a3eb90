import AsyncHTTPClient
import Foundation
import GatehouseAlerts
import GatehouseCore
import GatehouseGateway
import GatehouseHTTP
import GatehouseStorage
import GatehouseTelemetry
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// A built Gatehouse: the HTTP application and every service it needs, ready to run.
public struct GatehouseServer: Sendable {
    public let config: GatehouseConfig
    public let store: SQLRequestStore
    public let recorder: Recorder<RequestRecord>
    let application: Application<RouterResponder<GatehouseRequestContext>>
    let services: [any Service]
    let closeStore: @Sendable () async throws -> Void
    let logger: Logger

    /// Builds the application for `config`: opens the store, creates the recorder, the upstream
    /// HTTP client and the routes. Nothing listens until `run()`.
    ///
    /// `onListening` receives the bound port (useful with port 0).
    public static func build(config: GatehouseConfig, logger: Logger,
                             onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws -> GatehouseServer {
        _ = MetricsRegistry.bootstrap()
        let opened = try await StoreFactory.open(databaseURL: config.resolvedDatabaseURL, logger: logger)
        let recorder = Recorder(store: opened.store, settings: config.recorder, logger: logger)

        var prices = try PriceTable.shipped()
        for entry in config.prices { prices.upsert(try PriceTable.modelPrice(from: entry)) }

        var clientConfiguration = HTTPClient.Configuration()
        clientConfiguration.timeout.connect = .seconds(Int64(config.gateway.connectTimeoutSeconds))
        clientConfiguration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
        clientConfiguration.decompression = .disabled
        clientConfiguration.redirectConfiguration = .disallow
        let httpClient = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: clientConfiguration)

        let controls = Controls(
            settings: config.controls, state: ControlState(store: opened.controls, logger: logger),
            ledger: QuotaLedger(store: opened.controls, leaseFraction: config.controls.leaseFraction,
                                failOpen: config.controls.whenStoreUnavailable == .admit, logger: logger), prices: prices)
        let cache = ResponseCache(settings: config.controls.cache, store: opened.controls)
        let gateway = Gateway(config: config, prices: prices, httpClient: httpClient, sink: recorder, controls: controls, cache: cache)
        let router = Router(context: GatehouseRequestContext.self)
        router.add(middleware: CorrelationMiddleware())
        router.add(middleware: CORSAllowList(origins: config.corsAllowedOrigins))
        router.add(middleware: HTTPMetricsMiddleware())
        router.add(middleware: AdminAuthMiddleware(token: config.controls.adminToken))
        gateway.addRoutes(to: router)
        let telemetry = opened.telemetry
        let logRecorder = Recorder<LogRecord>(kind: "logs", settings: Self.telemetryRecorderSettings(config.recorder), logger: logger) {
            try await telemetry.insertLogs($0)
        }
        let eventRecorder = Recorder<ErrorEvent>(kind: "errors", settings: config.recorder, logger: logger) {
            try await telemetry.insertErrorEvents($0)
        }
        let ingest = IngestRoutes(settings: config.telemetry, acceptLogs: { logRecorder.recordAll($0) }, acceptEvents: { eventRecorder.recordAll($0) },
                                  waitForLogRoom: { await logRecorder.waitForRoom($0, timeout: $1) })
        if ingest.isOpen {
            logger.notice("telemetry ingest is open: no projects are configured, so logs and Sentry events are accepted without a key (configure telemetry.projects to require one)")
        }
        ingest.addRoutes(to: router)
        TelemetryRoutes(store: telemetry, requests: opened.store, retention: config.telemetry.retention).addRoutes(to: router)
        AdminRoutes(store: opened.controls, controls: controls, budgets: config.controls.budgets).addRoutes(to: router)
        UsageRoutes(store: opened.store).addRoutes(to: router)

        let probes = ProbeMonitor(probes: config.alerts.probes, heartbeats: config.alerts.heartbeats, store: opened.alerts, client: httpClient, logger: logger)
        let reader = SignalReader(requests: opened.store, telemetry: telemetry,
                                  budgets: BudgetReporter(store: opened.controls, controls: controls, budgets: config.controls.budgets),
                                  probes: probes, retention: config.telemetry.retention)
        let delivery = DeliveryService(client: httpClient, store: opened.alerts, attempts: config.alerts.deliveryAttempts, logger: logger)
        let alerting = AlertService(settings: config.alerts, reader: reader, delivery: delivery, store: opened.alerts, logger: logger)
        AlertRoutes(settings: config.alerts, service: alerting, store: opened.alerts, probes: probes).addRoutes(to: router)
        OpsRoutes(store: opened.store, storeKind: opened.kind, health: gateway.health, providers: config.providers,
                  breakers: gateway.breakers).addRoutes(to: router)

        let store = opened.store
        var application = Application(
            responder: router.buildResponder(),
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: "gatehouse"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? config.port) },
            logger: logger)
        // Migrations need the PostgreSQL pool running, which starts with the service group.
        application.beforeServerStarts {
            try await store.migrate()
            try await controls.state.refresh(force: true)
        }

        let sync = ControlSyncService(controls: controls, cache: cache, store: opened.controls,
                                      interval: .milliseconds(config.controls.syncIntervalMilliseconds), logger: logger)
        // Shut down in reverse: the application first (in-flight calls settle), then the control
        // sync's final report, then the recorder's flush, then the pool.
        let retention = RetentionService(store: telemetry, retention: config.telemetry.retention, logger: logger)
        // Alert evaluation stops before deliveries, which stop before the HTTP client closes.
        let services: [any Service] = opened.services + [HTTPClientService(client: httpClient), recorder, logRecorder, eventRecorder, retention,
                                                         delivery, probes, alerting, sync]
        return GatehouseServer(config: config, store: opened.store, recorder: recorder, application: application,
                               services: services, closeStore: opened.close, logger: logger)
    }

    /// Log lines come in thousands a second: a deeper queue and bigger batches than AI calls.
    static func telemetryRecorderSettings(_ base: GatehouseConfig.RecorderSettings) -> GatehouseConfig.RecorderSettings {
        var settings = base
        settings.capacity = max(base.capacity, 200_000)
        settings.batchSize = max(base.batchSize, 5_000)
        return settings
    }

    /// Runs until SIGTERM or SIGINT (or until the task is cancelled), then shuts down in order:
    /// stop accepting and finish in-flight requests, flush the recorder, close upstream
    /// connections, close the store.
    public func run(handleSignals: Bool = true) async throws {
        // ServiceGroup shuts services down in reverse order: the application first, the store's
        // pool last, so the recorder's final flush still has a database.
        let group = ServiceGroup(configuration: .init(
            services: (services + [application]).map { .init(service: $0) },
            gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
            logger: logger))
        do {
            try await group.run()
        } catch {
            try? await closeStore()
            throw error
        }
        try await closeStore()
    }
}

/// Keeps the upstream HTTP client for the server's lifetime and shuts it down after the
/// application has stopped sending through it.
struct HTTPClientService: Service {
    let client: HTTPClient

    func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown().get()
    }
}
