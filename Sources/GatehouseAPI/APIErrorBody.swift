/// The body of every error Gatehouse's own API returns (OpenAI's shape):
/// `{"error": {"message": …, "type": …, "param": …, "code": …}}`.
public struct APIErrorBody: Codable, Sendable, Equatable {
    public struct Detail: Codable, Sendable, Equatable {
        public var message: String
        /// `invalid_request_error`, `not_found_error`, `permission_error`, `rate_limit_error`, `api_error`, …
        public var type: String
        /// The request field or parameter at fault, when there is one.
        @Nullable public var param: String?
        /// A stable machine-readable reason (`invalid_admin_token`, `invalid_query`, …).
        @Nullable public var code: String?

        public init(message: String, type: String, param: String? = nil, code: String? = nil) {
            self.message = message
            self.type = type
            self.param = param
            self.code = code
        }
    }

    public var error: Detail

    public init(_ error: Detail) { self.error = error }
}
