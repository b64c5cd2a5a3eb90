import AsyncHTTPClient
import Foundation
import GatehouseAlerts
import GatehouseAPI
import GatehouseConsole
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
    /// The HTTP server, started once the store is migrated.
    let application: any Service
    /// Every route and the access it was registered with (for the route-walking auth test).
    public let routes: [APIRouteAccess]
    /// Routes added to the router without an access level (must be none; checked by a test).
    public let routesWithoutAccess: [String]
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
        // Before the store opens: a certificate that cannot be served stops the start here.
        let tls = try await Self.tlsServing(config, logger: logger)
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
        let requestStore = opened.store
        // Trace spans (Sentry transactions, OTLP and the gateway's own spans, all through
        // `spanSink`), batched like log lines. Built before the gateway so it can be given the sink.
        let traceStore = opened.telemetry
        let spanRecorder = Recorder<Span>(kind: "spans", settings: Self.telemetryRecorderSettings(config.recorder), logger: logger) {
            try await traceStore.insertSpans($0)
        }
        // telemetry.otlp_export: every span the span queue takes is also sent on to a collector, from
        // a bounded queue of its own (a collector that is down drops spans there, counted).
        let otlpExport = config.telemetry.otlpExport.map { export in
            var queue = config.recorder
            queue.capacity = OTLPExportSettings.queueCapacity
            queue.batchSize = OTLPExportSettings.batchSize
            let exporter = OTLPTraceExporter(settings: export, client: httpClient, logger: logger)
            return Recorder<Span>(kind: "otlp_export", settings: queue, logger: logger, writeTimeout: max(.seconds(60), exporter.longestExport)) {
                await exporter.export($0)
            }
        }
        let spanSink: @Sendable ([Span]) -> Int = { spans in
            let taken = spanRecorder.recordAll(spans)
            if let otlpExport, taken > 0 { _ = otlpExport.recordAll(taken == spans.count ? spans : Array(spans.prefix(taken))) }
            return taken
        }
        let bodyRecorder = Recorder<CapturedBodies>(kind: "bodies", settings: Self.bodyRecorderSettings(config), logger: logger) {
            try await requestStore.insertBodies($0)
        }
        let gateway = Gateway(config: config, prices: prices, upstream: HTTPUpstream(client: httpClient), sink: recorder, controls: controls, cache: cache,
                              keepBodies: { bodyRecorder.offer($0) }, spans: { _ = spanSink([$0]) })
        let router = Router(context: GatehouseRequestContext.self)
        router.add(middleware: CorrelationMiddleware())
        router.add(middleware: ClientAddressMiddleware(trustForwardedFor: config.gateway.trustForwardedFor))
        router.add(middleware: CORSAllowList(origins: config.corsAllowedOrigins))
        router.add(middleware: HTTPMetricsMiddleware())
        // Every route is registered with the access it needs (`APIRouter`); the check runs on the
        // route that matched, so no spelling of a path can reach a route around it.
        let api = APIRouter(router: router, adminToken: config.controls.adminToken)
        gateway.addRoutes(to: api)
        let telemetry = opened.telemetry
        let logRecorder = Recorder<LogRecord>(kind: "logs", settings: Self.telemetryRecorderSettings(config.recorder), logger: logger) {
            try await telemetry.insertLogs($0)
        }
        let eventRecorder = Recorder<ErrorEvent>(kind: "errors", settings: config.recorder, logger: logger) {
            try await telemetry.insertErrorEvents($0)
        }
        let ingest = IngestRoutes(settings: config.telemetry, acceptLogs: { logRecorder.recordAll($0) }, acceptEvents: { eventRecorder.recordAll($0) },
                                  waitForLogRoom: { await logRecorder.waitForRoom($0, timeout: $1) }, acceptSpans: spanSink)
        if ingest.isOpen {
            logger.notice("telemetry ingest is open: no projects are configured, so logs and Sentry events are accepted without a key (configure telemetry.projects to require one)")
        }
        ingest.addRoutes(to: api)
        let telemetryRoutes = TelemetryRoutes(store: telemetry, requests: opened.store, retention: config.telemetry.retention)
        telemetryRoutes.addRoutes(to: api)
        let traceRoutes = TraceRoutes(traces: traceStore, telemetry: telemetry, slow: config.telemetry.slow)
        traceRoutes.addRoutes(to: api)
        AdminRoutes(store: opened.controls, controls: controls, budgets: config.controls.budgets).addRoutes(to: api)
        UsageRoutes(store: opened.store).addRoutes(to: api)

        let probes = ProbeMonitor(probes: config.alerts.probes, heartbeats: config.alerts.heartbeats, store: opened.alerts, client: httpClient, logger: logger)
        let reader = SignalReader(requests: opened.store, telemetry: telemetry,
                                  budgets: BudgetReporter(store: opened.controls, controls: controls, budgets: config.controls.budgets),
                                  probes: probes, retention: config.telemetry.retention)
        let delivery = DeliveryService(client: httpClient, store: opened.alerts, attempts: config.alerts.deliveryAttempts, logger: logger)
        let alerting = AlertService(settings: config.alerts, reader: reader, delivery: delivery, store: opened.alerts, logger: logger)
        AlertRoutes(settings: config.alerts, service: alerting, store: opened.alerts).addRoutes(to: api)
        ProbeRoutes(settings: config.alerts, store: opened.alerts, probes: probes).addRoutes(to: api)
        APIDocsRoutes().addRoutes(to: api)
        try Console(ConsoleDependencies(
            requests: opened.store, telemetry: telemetry, logRoutes: telemetryRoutes, traces: traceStore, traceRoutes: traceRoutes, alertStore: opened.alerts, alerting: alerting, probes: probes, controls: opened.controls,
            gate: controls, configuredBudgets: config.controls.budgets, accounts: opened.accounts,
            adminToken: config.controls.adminToken,
            about: .init(version: GatehouseVersion.current, storeKind: opened.kind, retention: config.telemetry.retention,
                         redactedConfiguration: config.redactedYAML(), publicProbes: config.alerts.publicMonitorNames)
        )).addRoutes(to: api)
        OpsRoutes(store: opened.store, storeKind: opened.kind, health: gateway.health, providers: config.providers,
                  breakers: gateway.breakers, metricsToken: config.metrics.requireToken ? config.controls.adminToken : nil).addRoutes(to: api)

        let declared = Set(api.routes.map { "\($0.method) \(RouterPath($0.path).description)" })
        let routesWithoutAccess = router.routes.map { "\($0.method.rawValue) \($0.path.description)" }.filter { !declared.contains($0) }

        let store = opened.store
        var application = Application(
            responder: router.buildResponder(),
            server: Self.httpServer(config, tls: tls.context),
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: "gatehouse"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? config.port) },
            logger: logger)
        application.beforeServerStarts {
            try await controls.state.refresh(force: true)
        }

        let sync = ControlSyncService(controls: controls, cache: cache,
                                      interval: .milliseconds(config.controls.syncIntervalMilliseconds), logger: logger)
        // Shut down in reverse: the application first (in-flight calls settle), then the control
        // sync's final report, then the recorder's flush, then the pool.
        let retention = RetentionService(store: telemetry, retention: config.telemetry.retention, logger: logger)
        let sessionPruner = ConsoleSessionPruner(accounts: opened.accounts, logger: logger)
        // A written backup pings its built-in heartbeat (and, at start, the newest one on disk);
        // a failed one turns it DOWN at once, and the heartbeat's rule raises the alert.
        let backups = config.backups.map { settings in
            ScheduledBackupService(settings: settings, databaseURL: config.resolvedDatabaseURL, logger: logger) { at, failure in
                try await probes.builtInJobReported(BackupSettings.heartbeatName, atMicros: at, failure: failure)
            }
        }
        // Alert evaluation stops before deliveries, which stop before the HTTP client closes.
        // Migrations need the PostgreSQL pool running, which starts with the service group; every
        // service that touches the store, and the application, starts only once they are done.
        let gate = MigrationGate()
        let storeUsers: [any Service] = [recorder, bodyRecorder, logRecorder, eventRecorder, spanRecorder, retention, sessionPruner, delivery, probes, alerting, sync]
            + (backups.map { [$0] } ?? [])
            + (opened.store.partitionMaintenance(logger: logger).map { [$0] } ?? [])
        // Told not to migrate (a separate `gatehouse migrate` step owns the schema), it only
        // checks the version, so pods of a rollout never race that step or each other.
        let migrateOnStart = config.migrateOnStart
        let migrate: @Sendable () async throws -> Void = {
            if migrateOnStart { try await store.migrate() } else { try await store.requireCurrentSchema() }
        }
        let services: [any Service] = opened.services + [MigrationService(migrate: migrate, gate: gate),
                                                         HTTPClientService(client: httpClient)]
            // Stops after everything that hands it spans, and flushes before the HTTP client closes.
            + (otlpExport.map { [$0 as any Service] } ?? [])
            + storeUsers.map { AfterMigrations(service: $0, gate: gate) } + [tls.reloader]
        return GatehouseServer(config: config, store: opened.store, recorder: recorder,
                               application: AfterMigrations(service: BoundedDrain(service: application, limit: Self.httpDrainLimit, logger: logger), gate: gate),
                               routes: api.routes, routesWithoutAccess: routesWithoutAccess,
                               services: services, closeStore: opened.close, logger: logger)
    }

    /// Captured bodies are large: the queue holds at most about 256 MiB of them (each call's two
    /// bodies at their cap), and a batch about 16 MiB. More waiting than that are dropped, counted.
    static func bodyRecorderSettings(_ config: GatehouseConfig) -> GatehouseConfig.RecorderSettings {
        var settings = config.recorder
        let perCall = 2 * config.gateway.captureMaxBytes
        settings.capacity = max(1, min(config.recorder.capacity, (256 << 20) / perCall))
        settings.batchSize = max(1, min(config.recorder.batchSize, settings.capacity, (16 << 20) / perCall))
        return settings
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
    ///
    /// When the server cannot listen (the port is taken, the address is not this machine's) it
    /// throws a `ListenError` that says so, after the other services have stopped.
    public func run(handleSignals: Bool = true) async throws {
        // ServiceGroup shuts services down in reverse order: the application first, the store's
        // pool last, so the recorder's final flush still has a database. When the application
        // stops by itself (it could not bind its port, say) the others are shut down gracefully
        // too: cancelled instead, a service loop would run on and the process never exit.
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) }
                + [.init(service: application, successTerminationBehavior: .gracefullyShutdownGroup,
                         failureTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
            logger: logger))
        // Cancelling the task that runs the server shuts it down gracefully as well (the
        // recorders flush), rather than cancelling every service in the middle of its work.
        let running = Task { try await group.run() }
        do {
            try await withTaskCancellationHandler {
                try await running.value
            } onCancel: {
                Task { await group.triggerGracefulShutdown() }
            }
        } catch {
            try? await closeStoreUncancelled()
            throw ListenError(error, host: config.host, port: config.port) ?? error
        }
        try await closeStoreUncancelled()
    }

    /// Closes the store on a task of its own: a cancelled caller must not leave connections open.
    private func closeStoreUncancelled() async throws {
        let close = closeStore
        try await Task { try await close() }.value
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
