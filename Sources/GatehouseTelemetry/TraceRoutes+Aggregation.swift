import GatehouseCore
import GatehouseHTTP
import Hummingbird

extension TraceRoutes {
    /// `GET /api/v1/spans` whose `q` ends in a stage (`op:db | p95(duration) by name`): the
    /// groups (`AggregationResult`) over the spans. Nil when `q` has no stage.
    func spanAggregation(_ request: Request) async throws -> Response? {
        let params = FormParameters(query: request.uri.query)
        guard let query = try APIAggregation.query(params) else { return nil }
        let outcome = try await telemetry.aggregate(.spans, query)
        return APIAggregation.response(outcome, query: query, over: TelemetryAggregationTarget.spans.rawValue)
    }
}
