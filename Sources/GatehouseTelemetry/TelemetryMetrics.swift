import GatehouseHTTP
import Metrics

/// Telemetry's series in `/metrics`: what was ingested, refused and flagged as slow.
enum TelemetryMetrics {
    /// Project labels come from the configuration (or, in open mode, the request: a header or
    /// the URL), so they are bounded: cut to this length, at most 100 distinct, then `other`.
    static let maxLabelLength = 64
    static let projectLabels = MetricLabelValues(limit: 100, maxLength: maxLabelLength)

    private struct ProjectKey: Hashable, Sendable {
        var name: String
        var project: String
    }

    private static let counters = MetricHandleCache<ProjectKey, Counter>(maxEntries: 1_000) { key in
        Counter(label: key.name, dimensions: [("project", key.project)])
    }
    private static let slow = MetricHandleCache<String, Counter>(maxEntries: 100, overflow: MetricLabelValues.other) { reason in
        Counter(label: "gatehouse_slow_operations_total", dimensions: [("reason", reason)])
    }

    static func count(_ name: String, project: String, by n: Int = 1) {
        guard n > 0 else { return }
        counters(ProjectKey(name: name, project: projectLabels(project))).increment(by: n)
    }

    static func logsIngested(_ project: String, _ n: Int) { count("gatehouse_logs_ingested_total", project: project, by: n) }
    static func logsRejected(_ project: String, _ n: Int) { count("gatehouse_logs_rejected_total", project: project, by: n) }
    static func errorEvents(_ project: String, _ n: Int) { count("gatehouse_error_events_total", project: project, by: n) }
    static func sentryTransactions(_ project: String, _ n: Int) { count("gatehouse_sentry_transactions_total", project: project, by: n) }
    static func otlpSpansAccepted(_ project: String, _ n: Int) { count("gatehouse_otlp_spans_accepted_total", project: project, by: n) }
    static func otlpSpansRejected(_ project: String, _ n: Int) { count("gatehouse_otlp_spans_rejected_total", project: project, by: n) }
    static func rateLimited(_ project: String) { count("gatehouse_ingest_rate_limited_total", project: project) }
    static func slowOperation(reason: String) { slow(reason).increment() }
    /// The OTLP exporter's spans by outcome (`sent`, `dropped`) and requests by result (`ok`, `retry`, `failed`): fixed labels.
    static func exportedSpans(_ outcome: String, _ n: Int) {
        Counter(label: "gatehouse_otlp_export_spans_total", dimensions: [("outcome", outcome)]).increment(by: n)
    }
    static func exportRequest(_ result: String) {
        Counter(label: "gatehouse_otlp_export_requests_total", dimensions: [("result", result)]).increment()
    }
}
