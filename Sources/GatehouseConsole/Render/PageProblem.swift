import GatehouseCore
import GatehouseHTTP
import HTTPTypes

/// A filter, query or page link the user can fix, as the message a page shows in place of its
/// results and the status it answers with. Every page that runs a query the user typed reads
/// its errors here, so one mistake reads the same on each.
struct PageProblem {
    var status: HTTPResponse.Status
    var message: String

    /// Nil for anything else (the store is down): the console turns that into its 503 page.
    init?(_ error: any Error) {
        switch error {
        case let error as GatewayError: (status, message) = (error.status, error.message)
        case let error as QueryFieldError: (status, message) = (.badRequest, "`q`: " + error.message)
        // As the API's 422: the range is readable, only too large to rank on SQLite. Pages that show
        // latency ask again without it (`OverviewPage.usage`); this is for any that does not.
        case let error as UsageQueryTooLarge: (status, message) = (.unprocessableContent, error.description)
        case StoreError.invalidCursor:
            (status, message) = (.badRequest, "This page link is out of date or damaged (it belongs to another sort order, or this server did not issue it). Start again from the first page.")
        default: return nil
        }
    }
}
