import GatehouseCore
import GatehouseHTTP
import Hummingbird

extension UsageRoutes {
    /// `GET /api/v1/requests` whose `q` ends in a stage (`| sum(cost) by model`): the groups
    /// (`AggregationResult`) over the calls the list's other parameters (model, key, property.…)
    /// select. Nil when `q` has no stage.
    func aggregation(_ params: FormParameters) async throws -> Response? {
        guard let query = try APIAggregation.query(params) else { return nil }
        let filter = try Self.filter(params.removing("q"))
        let outcome = try await store.aggregate(query, filter: filter)
        return APIAggregation.response(outcome, query: query, over: "requests")
    }
}
