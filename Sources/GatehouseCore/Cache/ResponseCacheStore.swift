import Foundation

/// A stored answer for the response cache.
public struct CachedResponse: Sendable, Equatable {
    public var key: String
    public var status: Int
    public var contentType: String
    public var body: [UInt8]
    public var model: String
    public var provider: String
    public var usage: TokenUsage
    public var cost: MicroDollars
    public var createdAtMicros: Int64
    public var expiresAtMicros: Int64

    public init(key: String, status: Int, contentType: String, body: [UInt8], model: String, provider: String, usage: TokenUsage,
                cost: MicroDollars, createdAtMicros: Int64, expiresAtMicros: Int64) {
        self.key = key
        self.status = status
        self.contentType = contentType
        self.body = body
        self.model = model
        self.provider = provider
        self.usage = usage
        self.cost = cost
        self.createdAtMicros = createdAtMicros
        self.expiresAtMicros = expiresAtMicros
    }
}

/// Where cached answers are kept, shared by every instance.
public protocol ResponseCacheStore: Sendable {
    func cachedResponse(key: String, nowMicros: Int64) async throws -> CachedResponse?
    func storeCachedResponses(_ entries: [CachedResponse]) async throws
    func pruneCache(nowMicros: Int64) async throws
}
