import GatehouseAPI
import GatehouseHTTP
import Hummingbird
import NIOCore

/// The API's own description: `/openapi.json` (OpenAPI 3.1) and `/docs`, a reference page made
/// from the same document. Both are open: they describe routes, never data.
struct APIDocsRoutes: Sendable {
    func addRoutes(to api: APIRouter) {
        api.open.get("/openapi.json") { _, _ in
            Self.serve(OpenAPIDocument.json.map { ByteBuffer(bytes: $0) }, contentType: "application/json")
        }
        api.open.get("/docs") { _, _ in
            Self.serve(APIReferencePage.html.map { ByteBuffer(string: $0) }, contentType: "text/html; charset=utf-8")
        }
    }

    /// The built document or page; a 500 naming the defect if the embedded sources did not merge.
    static func serve(_ built: Result<ByteBuffer, OpenAPIDocument.MergeError>, contentType: String) -> Response {
        switch built {
        case .success(let body):
            return Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: body))
        case .failure(let error):
            return GatewayError.internalError("the API description could not be built: \(error)").response(dialect: .openAI)
        }
    }
}
