import GatehouseCore
import Hummingbird

/// Runs a read-API handler and turns what it throws into Gatehouse's error bodies: its own
/// `GatewayError`s as they are, query-language field errors and foreign cursors as 400s, a usage
/// query over too many rows as 422, and anything else (the store not answering) as 503.
public enum APIAnswer {
    public static func run(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let error as GatewayError {
            return error.response(dialect: .openAI)
        } catch let error as QueryFieldError {
            return GatewayError.invalidRequest("`q`: \(error.message)", param: "q", code: "invalid_query").response(dialect: .openAI)
        } catch let error as UsageQueryTooLarge {
            return GatewayError(status: .unprocessableContent, message: error.description, type: "invalid_request_error", code: "query_too_large")
                .response(dialect: .openAI)
        } catch StoreError.invalidCursor {
            return GatewayError.invalidRequest("`cursor` is not one this server issued", param: "cursor").response(dialect: .openAI)
        } catch {
            return GatewayError(status: .serviceUnavailable, message: "the store could not answer: \(error)", type: "api_error", code: "store_unavailable")
                .response(dialect: .openAI)
        }
    }
}
