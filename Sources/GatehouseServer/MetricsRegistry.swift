import Metrics
import Prometheus
import Synchronization

/// The process-wide Prometheus registry behind swift-metrics. `MetricsSystem` can be
/// bootstrapped once per process, so every application built in it (tests build several)
/// shares this registry.
public enum MetricsRegistry {
    private static let shared: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        let fast: [Duration] = [.microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10),
                                .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                                .seconds(1), .seconds(2.5), .seconds(5), .seconds(10)]
        let slow: [Duration] = [.milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2),
                                .seconds(5), .seconds(10), .seconds(20), .seconds(30), .seconds(60), .seconds(120), .seconds(300)]
        factory.defaultDurationHistogramBuckets = fast
        factory.durationHistogramBuckets = [
            "gatehouse_ai_request_duration_seconds": slow,
            "gatehouse_ai_time_to_first_token_seconds": slow,
        ]
        MetricsSystem.bootstrap(factory)
        return registry
    }()

    /// Bootstraps swift-metrics on first use; later calls return the same registry.
    public static func bootstrap() -> PrometheusCollectorRegistry { shared }

    /// Help text per metric. swift-metrics carries none, and `promtool check metrics` wants it.
    /// A test checks that every metric name in the sources has an entry here.
    public static let help: [String: String] = [
        "gatehouse_http_requests_total": "HTTP requests served, by route pattern, method and status.",
        "gatehouse_http_request_duration_seconds": "Time to produce the HTTP response head, by route pattern and method.",
        "gatehouse_ai_requests_total": "AI calls through the gateway, by provider, model, route, status and error class.",
        "gatehouse_ai_tokens_total": "Tokens metered, by provider, model and type (input, output, cached_input, cache_creation_input, reasoning).",
        "gatehouse_ai_cost_microdollars_total": "Cost of AI calls in micro-dollars (1e-6 USD), from the price table.",
        "gatehouse_ai_request_duration_seconds": "Whole AI call duration including streaming, by provider and model.",
        "gatehouse_ai_time_to_first_token_seconds": "Time from request to the first response byte from the provider.",
        "gatehouse_recorder_queue_depth": "Records waiting in a recorder queue, by kind (requests, bodies, logs, errors, spans, otlp_export).",
        "gatehouse_tls_reloads_total": "Certificate reloads on SIGHUP, by result (ok, failed: the previous certificate stays in use).",
        "gatehouse_tls_certificate_expiry_timestamp_seconds": "When the certificate being served expires (Unix time).",
        "gatehouse_recorder_dropped_records_total": "Records dropped because their recorder queue was full, by kind.",
        "gatehouse_recorder_written_records_total": "Records a recorder wrote (to the store; otlp_export: handed to the exporter), by kind.",
        "gatehouse_recorder_write_failures_total": "Failed batch writes of a recorder (each retried), by kind.",
        "gatehouse_logs_ingested_total": "Log lines accepted, by project.",
        "gatehouse_logs_rejected_total": "Log lines refused (malformed, too large, over quota), by project.",
        "gatehouse_error_events_total": "Sentry error events accepted, by project.",
        "gatehouse_sentry_transactions_total": "Sentry transactions (envelope `transaction` items) queued as trace spans, by project.",
        "gatehouse_otlp_spans_accepted_total": "OTLP/HTTP spans (POST /v1/traces) queued for the store, by project.",
        "gatehouse_otlp_spans_rejected_total": "OTLP/HTTP spans refused (bad ids, too large, queue full), by project.",
        "gatehouse_otlp_export_spans_total": "Spans sent on by the OTLP exporter (telemetry.otlp_export), by outcome (sent; dropped: refused, or every try failed).",
        "gatehouse_otlp_export_requests_total": "Export requests to the OTLP endpoint, by result (ok, retry, failed).",
        "gatehouse_ingest_rate_limited_total": "Ingest requests refused by a project's rate limit, by project.",
        "gatehouse_slow_operations_total": "Log lines flagged as slow operations, by reason.",
        "gatehouse_retention_deleted_rows_total": "Rows deleted by retention, by kind (logs, error events, requests).",
        "gatehouse_alert_evaluations_total": "Alert rule evaluation rounds.",
        "gatehouse_alerts": "Active alerts, by state (pending, firing).",
        "gatehouse_alert_notifications_total": "Notification deliveries, by receiver and outcome.",
        "gatehouse_probe_up": "1 when the probe's last check succeeded, 0 when it failed.",
        "gatehouse_probe_duration_seconds": "Duration of the probe's last check.",
        "gatehouse_probe_checks_total": "Probe checks, by probe and result.",
        "gatehouse_heartbeat_up": "1 while the heartbeat arrives on time, 0 once it is late.",
        "gatehouse_backups_total": "Scheduled backups, by result (success, failure).",
        "gatehouse_backup_last_success_timestamp_seconds": "Unix time of the last scheduled backup written.",
    ]

    /// The exposition text with `# HELP` lines added before each known metric's `# TYPE`.
    public static func exposition() -> String {
        let text = shared.emitToString()
        var out = ""
        out.reserveCapacity(text.utf8.count + 2048)
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE ") {
                let name = line.dropFirst("# TYPE ".count).prefix { $0 != " " }
                if let help = help[String(name)] { out += "# HELP \(name) \(help)\n" }
            }
            out += line
            out += "\n"
        }
        while out.hasSuffix("\n\n") { out.removeLast() }
        return out
    }
}
