import GatehouseCore

extension SQLRequestStore {
    /// Always over the calls themselves: the rollups keep fixed sums by fixed keys, which a stage
    /// over any field, filter and function cannot be read from.
    public func aggregate(_ query: AggregationQuery, filter: RequestFilter) async throws -> AggregationOutcome {
        try await driver.aggregate(query, table: "requests", schema: .requests) { try filterConditions(filter, &$0) }
    }
}
