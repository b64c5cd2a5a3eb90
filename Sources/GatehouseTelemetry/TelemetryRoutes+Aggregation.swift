import GatehouseCore
import GatehouseHTTP
import Hummingbird

extension TelemetryRoutes {
    /// A search whose `q` ends in a stage answers its groups (`AggregationResult`); nil when `q`
    /// has no stage. On `/api/v1/issues` the stage runs over the error events, whose fields
    /// (type, release, environment, issue, user…) its filter then names.
    func aggregation(_ target: TelemetryAggregationTarget, _ params: FormParameters) async throws -> Response? {
        guard let query = try APIAggregation.query(params) else { return nil }
        if target == .errorEvents, params.get("status") != nil {
            throw GatewayError.invalidRequest("`status` is an issue's, not an event's: leave it out of an aggregation over error events",
                                              param: "status")
        }
        let outcome = try await store.aggregate(target, query)
        return APIAggregation.response(outcome, query: query, over: target.rawValue)
    }
}
