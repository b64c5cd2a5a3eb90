import GatehouseAlerts
import GatehouseCore
import GatehouseGateway
import GatehouseTelemetry

/// What the console reads and changes: the same stores and services the JSON API uses, so each
/// query has one implementation.
public struct ConsoleDependencies: Sendable {
    public var requests: any RequestStore
    public var telemetry: any TelemetryStore
    /// The JSON API's log routes: the console's live tail streams the same events.
    public var logRoutes: TelemetryRoutes
    /// The spans store and the JSON API's trace routes: the Performance and trace pages show the
    /// same transactions table and span tree.
    public var traces: any TraceStore
    public var traceRoutes: TraceRoutes
    public var alertStore: any AlertStore
    public var alerting: AlertService
    public var probes: ProbeMonitor
    /// The controls' store: keys, switches, the audit log, budget events and quota counters.
    public var controls: any KeyStore & SwitchStore & AuditLog & BudgetEventStore & QuotaStore
    /// The gateway's controls on this instance: a console change is applied to them at once, and
    /// budget reads settle this instance's leases first.
    public var gate: Controls
    /// The budgets of the configuration (`controls.budgets`); keys carry their own.
    public var configuredBudgets: [QuotaRule]
    public var accounts: any AccountStore
    public var adminToken: String?
    /// What the settings page shows.
    public var about: About

    public struct About: Sendable {
        public var version: String
        public var storeKind: String
        public var retention: Retention
        /// The effective configuration with secrets redacted (`RedactedConfigurationYAML`).
        public var redactedConfiguration: String
        public var publicProbes: Set<String>
        public init(version: String, storeKind: String, retention: Retention, redactedConfiguration: String, publicProbes: Set<String>) {
            self.version = version
            self.storeKind = storeKind
            self.retention = retention
            self.redactedConfiguration = redactedConfiguration
            self.publicProbes = publicProbes
        }
    }

    public init(requests: any RequestStore, telemetry: any TelemetryStore, logRoutes: TelemetryRoutes, traces: any TraceStore, traceRoutes: TraceRoutes,
                alertStore: any AlertStore, alerting: AlertService,
                probes: ProbeMonitor, controls: any KeyStore & SwitchStore & AuditLog & BudgetEventStore & QuotaStore,
                gate: Controls, configuredBudgets: [QuotaRule], accounts: any AccountStore, adminToken: String?, about: About) {
        self.requests = requests
        self.telemetry = telemetry
        self.logRoutes = logRoutes
        self.traces = traces
        self.traceRoutes = traceRoutes
        self.alertStore = alertStore
        self.alerting = alerting
        self.probes = probes
        self.controls = controls
        self.gate = gate
        self.configuredBudgets = configuredBudgets
        self.accounts = accounts
        self.adminToken = adminToken
        self.about = about
    }
}

extension ConsoleDependencies {
    /// Every budget's current window, as `GET /api/v1/budgets` reads it.
    var budgets: BudgetReporter { BudgetReporter(store: controls, controls: gate, budgets: configuredBudgets) }
    /// The admin API's operations: console changes to keys, switches and accounts go through the
    /// same checks, store writes, audit entries and reload as the API's.
    var admin: AdminRoutes { AdminRoutes(store: controls, controls: gate, budgets: configuredBudgets) }
}

extension ConsoleViewer {
    /// Who a console change is written to the audit log as: `console:<email>`, or
    /// `console:admin-token` when signed in with the admin token.
    var auditActor: String { "console:" + name }
}
