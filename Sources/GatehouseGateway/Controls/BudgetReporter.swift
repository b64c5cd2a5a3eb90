import GatehouseCore

/// Every budget's current window (configured budgets and keys' own), from the quota counters:
/// the admin API's `/api/v1/budgets` and the `budget_use` alert signal read it.
public struct BudgetReporter: BudgetSource {
    let store: any KeyStore & QuotaStore
    let controls: Controls
    let budgets: [QuotaRule]

    public init(store: any KeyStore & QuotaStore, controls: Controls, budgets: [QuotaRule]) {
        self.store = store
        self.controls = controls
        self.budgets = budgets
    }

    public func budgetUses() async throws -> [BudgetUse] {
        // Settle this instance's leases first, so the counters say what was really spent.
        await controls.ledger.sync()
        let now = TimeExpressions.nowMicros()
        let keys = try await store.allKeys().filter { $0.revokedAtMicros == nil }
        var rules: [(rule: QuotaRule, prefix: String, owner: String)] = budgets.map { ($0, $0.id + "|", $0.id) }
        for key in keys { for rule in key.quotaRules where rule.unit == .cost { rules.append((rule, rule.id, key.id)) } }
        // Every budget's current window in one read, not one per budget.
        let windows = rules.map { $0.rule.window(containing: now) }
        let all = try await store.quotaCounts(windows: zip(rules, windows).map { QuotaWindowQuery(counterPrefix: $0.prefix, windowStartMicros: $1.start) })
        var uses: [BudgetUse] = []
        for ((rule, prefix, owner), window) in zip(rules, windows) {
            let counts = all.filter { $0.windowStartMicros == window.start && $0.counter.hasPrefix(prefix) }
            let entries = counts.isEmpty ? [QuotaCount(counter: prefix, windowStartMicros: window.start, granted: 0, used: 0, limit: rule.limit)] : counts
            for count in entries {
                let value = count.counter.hasPrefix(prefix) && prefix.hasSuffix("|") ? String(count.counter.dropFirst(prefix.count)) : nil
                uses.append(BudgetUse(name: owner, scope: rule.scope.description, value: value, period: rule.period.rawValue,
                                      windowStartMicros: window.start, windowEndMicros: window.end == Int64.max ? nil : window.end,
                                      limitMicros: rule.limit, usedMicros: count.used, grantedMicros: count.granted, softThresholds: rule.softThresholds))
            }
        }
        return uses
    }
}
