import GatehouseCore
import GatehouseHTTP

extension RequestsPage {
    /// `/requests?q=| sum(cost) by property.customer`: the groups over the calls the page's other
    /// filters select, instead of the list; nil when `q` has no stage.
    func aggregation(_ parameters: [String: String], range: TimeRange) async throws -> AggregationView? {
        guard let query = try AggregationView.query(parameters["q"] ?? "", range: range) else { return nil }
        var others = parameters
        others["q"] = nil
        let outcome = try await deps.requests.aggregate(query, filter: try Self.filter(others))
        return AggregationView(outcome, query: query, over: "requests")
    }
}
