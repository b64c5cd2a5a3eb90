/// One budget's current window, as the admin API and alert rules see it.
public struct BudgetUse: Sendable, Equatable {
    /// The rule's name, or the key id for a key's own budget.
    public var name: String
    public var scope: String
    /// The property value or key the counter belongs to, when the budget is per value.
    public var value: String?
    public var period: String
    public var windowStartMicros: Int64
    public var windowEndMicros: Int64?
    public var limitMicros: Int64
    public var usedMicros: Int64
    public var grantedMicros: Int64
    /// Soft thresholds as fractions (0.5, 0.8, 1).
    public var softThresholds: [Double]

    public init(name: String, scope: String, value: String?, period: String, windowStartMicros: Int64, windowEndMicros: Int64?,
                limitMicros: Int64, usedMicros: Int64, grantedMicros: Int64, softThresholds: [Double]) {
        self.name = name
        self.scope = scope
        self.value = value
        self.period = period
        self.windowStartMicros = windowStartMicros
        self.windowEndMicros = windowEndMicros
        self.limitMicros = limitMicros
        self.usedMicros = usedMicros
        self.grantedMicros = grantedMicros
        self.softThresholds = softThresholds
    }

    /// Spent / limit, 0…1 and beyond.
    public var fraction: Double { limitMicros > 0 ? Double(usedMicros) / Double(limitMicros) : 0 }
}

/// Reports every budget's use (the gateway's controls implement it).
public protocol BudgetSource: Sendable {
    func budgetUses() async throws -> [BudgetUse]
}
