import GatehouseCore
import Hummingbird
import Logging

/// Runs an API handler and turns what it throws into Gatehouse's error bodies: its own
/// `GatewayError`s as they are, query-language field errors and foreign cursors as 400s, a usage
/// query over too many rows as 422, and anything else (the store not answering) as 503. The
/// store's own error is logged (scrubbed), never sent: it can quote the data it choked on.
public enum APIAnswer {
    static let logger = Logger(label: "gatehouse.api")

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
            logger.error("API request failed in the store", metadata: ["error": "\(Redactor.scrubText(String(describing: error)))"])
            return GatewayError(status: .serviceUnavailable, message: "the store could not answer; nothing was changed, try again",
                                type: "api_error", code: "store_unavailable").response(dialect: .openAI)
        }
    }
}
