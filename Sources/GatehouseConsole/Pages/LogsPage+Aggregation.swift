import GatehouseCore
import Hummingbird

extension LogsPage {
    /// `/logs?q=level:error | count by function`: the groups instead of the lines; nil when `q`
    /// has no stage. A stage that cannot run shows why, as a search that cannot run does.
    func aggregation(_ q: String, range: TimeRange) async throws -> Console.PageOutput? {
        var body: [String: Any] = [
            "q": q, "rangeFields": range.parameters.map { Nav.Hidden(name: $0.0, value: $0.1) }, "rangeLabel": range.label,
            "lines": [LogRow](), "hasLines": true, "searched": true,
        ]
        var status: HTTPResponse.Status = .ok
        do {
            guard let query = try AggregationView.query(q, range: range) else { return nil }
            let outcome = try await deps.telemetry.aggregate(.logs, query)
            body["aggregation"] = AggregationView(outcome, query: query, over: TelemetryAggregationTarget.logs.rawValue)
        } catch {
            guard let problem = PageProblem(error) else { throw error }
            status = problem.status
            body["queryError"] = problem.message
        }
        return Console.PageOutput(template: "logs", title: "Logs", body: body, status: status)
    }
}
