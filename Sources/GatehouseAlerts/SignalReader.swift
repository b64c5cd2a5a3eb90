import Foundation
import GatehouseCore

/// One measured value of a rule's signal, for one set of group labels.
public struct SignalValue: Sendable, Equatable {
    public var labels: [String: String]
    public var value: Double
    public init(labels: [String: String], value: Double) {
        self.labels = labels
        self.value = value
    }
}

/// Where an evaluator gets a rule's current values.
public protocol SignalSource: Sendable {
    func read(_ expression: AlertExpression, nowMicros: Int64) async throws -> [SignalValue]
}

/// Reads what rules measure from the stores and the probe monitor.
public struct SignalReader: SignalSource {
    let requests: any RequestStore
    let telemetry: any TelemetryStore
    let budgets: (any BudgetSource)?
    let probes: ProbeMonitor?
    let retention: Retention

    public init(requests: any RequestStore, telemetry: any TelemetryStore, budgets: (any BudgetSource)?, probes: ProbeMonitor?, retention: Retention) {
        self.requests = requests
        self.telemetry = telemetry
        self.budgets = budgets
        self.probes = probes
        self.retention = retention
    }

    public func read(_ e: AlertExpression, nowMicros now: Int64) async throws -> [SignalValue] {
        let from = now - (e.windowMicros ?? 0)
        let filter = try e.argument.flatMap { e.signal == .probeDown ? nil : try QueryParser.parse($0, nowMicros: now).filter }
        switch e.signal {
        case .errorRate, .requestRate, .requests, .latencyP50, .latencyP95, .latencyP99, .tokens, .spend:
            return try await requestSignal(e, filter: filter, from: from, to: now)
        case .count:
            return [SignalValue(labels: [:], value: Double(try await telemetry.countLogs(filter: filter, fromMicros: from, toMicros: now)))]
        case .slowOperations:
            let slow = QueryNode.field("slow", .equals(.text("true")))
            let combined = filter.map { QueryNode.and([slow, $0]) } ?? slow
            return [SignalValue(labels: [:], value: Double(try await telemetry.countLogs(filter: combined, fromMicros: from, toMicros: now)))]
        case .errors:
            return [SignalValue(labels: [:], value: Double(try await telemetry.countErrorEvents(filter: filter, fromMicros: from, toMicros: now)))]
        case .newIssues, .regressedIssues:
            let since = e.signal == .newIssues ? QueryNode.field("first_seen", .compare(.greaterOrEqual, .time(micros: from)))
                : .and([.field("regressed", .equals(.text("true"))), .field("last_seen", .compare(.greaterOrEqual, .time(micros: from)))])
            let combined = filter.map { QueryNode.and([since, $0]) } ?? since
            return [SignalValue(labels: [:], value: Double(try await telemetry.issues(IssueListQuery(filter: combined, limit: 1000)).count))]
        case .budgetUse:
            let uses = try await budgets?.budgetUses() ?? []
            if e.groupBy == ["budget"] {
                return uses.map { SignalValue(labels: ["budget": $0.name + ($0.value.map { "/\($0)" } ?? "")], value: $0.fraction) }
            }
            return [SignalValue(labels: [:], value: uses.map(\.fraction).max() ?? 0)]
        case .probeDown:
            let states = try await probes?.states(nowMicros: now) ?? []
            if let name = e.argument {
                return states.filter { $0.name == name }.map { SignalValue(labels: ["probe": $0.name], value: $0.up == false ? 1 : 0) }
            }
            return states.map { SignalValue(labels: ["probe": $0.name], value: $0.up == false ? 1 : 0) }
        case .storageUse:
            let uses = try await telemetry.storageUse()
            let values = uses.compactMap { use -> SignalValue? in
                guard let limit = retention.maxRows[use.kind], limit > 0 else { return nil }
                return SignalValue(labels: ["kind": use.kind.rawValue], value: Double(use.rows) / Double(limit))
            }
            if e.groupBy == ["kind"] { return values }
            return [SignalValue(labels: [:], value: values.map(\.value).max() ?? 0)]
        case .transactionP50, .transactionP95, .transactionP99:
            let p = e.signal == .transactionP50 ? 50 : e.signal == .transactionP95 ? 95 : 99
            let percentiles = try await transactionPercentiles(p, filter: filter, by: !e.groupBy.isEmpty, from: from, to: now)
            if e.groupBy.isEmpty { return [SignalValue(labels: [:], value: percentiles[nil] ?? 0)] }
            return percentiles.compactMap { name, ms in name.map { SignalValue(labels: ["transaction": $0], value: ms) } }
        case .transactionRegression:
            // Slower than the same window `against` ago (a day by default); no baseline, no value,
            // so a new transaction never reads as a regression.
            let offset = e.baselineOffsetMicros ?? TimeExpressions.microsPerDay, grouped = !e.groupBy.isEmpty
            let current = try await transactionPercentiles(95, filter: filter, by: grouped, from: from, to: now)
            let baseline = try await transactionPercentiles(95, filter: filter, by: grouped, from: from - offset, to: now - offset)
            return current.compactMap { name, ms in
                guard let before = baseline[name], before > 0 else { return nil }
                return SignalValue(labels: name.map { ["transaction": $0] } ?? [:], value: ms / before - 1)
            }
        }
    }

    /// The `p`th percentile in milliseconds of the durations of transactions (root spans) matching
    /// `filter`, over all of them (key nil) or per transaction name; through the query language's
    /// aggregation, as `is_transaction:true … | p95(duration) by transaction` would read it.
    private func transactionPercentiles(_ p: Int, filter: QueryNode?, by name: Bool, from: Int64, to: Int64) async throws -> [String?: Double] {
        let roots = QueryNode.field("is_transaction", .equals(.text("true")))
        let query = AggregationQuery(aggregation: Aggregation(function: .percentile(p, "duration"), groupBy: name ? [.field("transaction")] : []),
                                     filter: filter.map { .and([roots, $0]) } ?? roots, fromMicros: from, toMicros: to,
                                     limit: AggregationLimits.maxGroups)
        var values: [String?: Double] = [:]
        for group in try await telemetry.aggregate(.spans, query).groups where group.count > 0 {
            guard name else { values[nil] = group.value; continue }
            if case .text(let transaction) = group.key.first?.value { values[transaction] = group.value }
        }
        return values
    }

    private func requestSignal(_ e: AlertExpression, filter: QueryNode?, from: Int64, to: Int64) async throws -> [SignalValue] {
        let grouping = e.groupBy.first.flatMap(UsageGrouping.init)
        let latency: Set<AlertSignal> = [.latencyP50, .latencyP95, .latencyP99]
        let report = try await requests.usage(UsageQuery(fromMicros: from, toMicros: to, intervalMicros: nil, groupBy: grouping,
                                                          filter: RequestFilter(query: filter), includeLatency: latency.contains(e.signal)))
        func value(_ s: UsageStats) -> Double? {
            switch e.signal {
            case .errorRate: return s.requests > 0 ? Double(s.errors) / Double(s.requests) : 0
            case .requestRate: return Double(s.requests) / (Double(to - from) / 1_000_000)
            case .requests: return Double(s.requests)
            case .latencyP50: return s.latency.map { $0.p50 / 1000 }
            case .latencyP95: return s.latency.map { $0.p95 / 1000 }
            case .latencyP99: return s.latency.map { $0.p99 / 1000 }
            case .tokens: return Double(s.usage.inputTokens + s.usage.outputTokens)
            case .spend: return Double(s.cost.value) / 1_000_000
            default: return nil
            }
        }
        if let field = e.groupBy.first {
            return report.groups.compactMap { g in value(g.stats).map { SignalValue(labels: [field: g.key ?? "(none)"], value: $0) } }
        }
        return [SignalValue(labels: [:], value: value(report.totals) ?? 0)]
    }
}
