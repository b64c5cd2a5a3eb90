import GatehouseCore
import GatehouseHTTP
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// A streamed response body is written after the handler returned, outside the middleware's
/// scope; what runs while it is written (usage settlement, recorder, logs) must still know the request.
@Suite struct CorrelationMiddlewareTests {
    @Test func aStreamedBodyIsWrittenUnderItsRequestsCorrelationID() async throws {
        let router = Router(context: GatehouseRequestContext.self)
        router.add(middleware: CorrelationMiddleware())
        router.get("/stream") { _, _ in
            Response(status: .ok, body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: CorrelationID.current ?? "none"))
                try await writer.finish(nil)
            })
        }
        router.get("/buffered") { _, _ in CorrelationID.current ?? "none" }
        try await Application(router: router).test(.live) { client in
            let streamed = try await client.execute(uri: "/stream", method: .get, headers: [.xRequestID: "req-123"])
            #expect(String(buffer: streamed.body) == "req-123")
            let buffered = try await client.execute(uri: "/buffered", method: .get, headers: [.xRequestID: "req-456"])
            #expect(String(buffer: buffered.body) == "req-456")
        }
    }
}
