import Foundation
import GatehouseCore

/// A budget's use as every page draws it (the overview, the keys and the spend page): spent
/// against the limit, its meter amber from the budget's first soft threshold and red from its
/// last one below the limit, and flagged once it crosses the first (or its limit). A budget
/// warns at its own thresholds (`SoftThresholds`, 50/80/100% unless configured), so one budget
/// reads the same on each page.
struct BudgetBar {
    struct Threshold {
        var label: String
        var crossed: Bool
    }

    var name: String
    var window: String
    var used: String
    var limit: String
    var percent: String
    /// Spent / limit for the meter, at most 1.2 so an overspent budget still shows as full.
    var fraction: String
    /// The meter's amber and red marks.
    var low: String
    var high: String
    /// Each soft threshold, crossed or not (not `thresholds`: the key page's own text of them must not be shadowed).
    var thresholdMarks: [Threshold]
    var warn: Bool
    var exhausted: Bool

    init(name: String, window: String, usedMicros: Int64, limitMicros: Int64, softThresholds: [Double]) {
        let use = limitMicros > 0 ? Double(usedMicros) / Double(limitMicros) : 0
        let sorted = softThresholds.sorted()
        self.name = name
        self.window = window
        used = Format.dollars(MicroDollars(usedMicros))
        limit = Format.dollars(MicroDollars(limitMicros))
        percent = Format.percent(use)
        fraction = String(format: "%.4f", min(use, 1.2))
        low = String(format: "%.2f", sorted.first ?? 0.5)
        high = String(format: "%.2f", sorted.last(where: { $0 < 1 }) ?? 0.8)
        func crossed(_ threshold: Double) -> Bool { SoftThresholds.isCrossed(threshold, usedMicros: usedMicros, limitMicros: limitMicros) }
        thresholdMarks = sorted.map { Threshold(label: Format.percent($0), crossed: crossed($0)) }
        exhausted = limitMicros > 0 && usedMicros >= limitMicros
        warn = exhausted || sorted.first.map(crossed) ?? false
    }

    /// `use` as reported by the controls, under `name` and `window`.
    init(_ use: BudgetUse, name: String, window: String) {
        self.init(name: name, window: window, usedMicros: use.usedMicros, limitMicros: use.limitMicros, softThresholds: use.softThresholds)
    }
}
