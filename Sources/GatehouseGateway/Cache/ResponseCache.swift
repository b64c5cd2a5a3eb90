import Crypto
import Foundation
import GatehouseCore
import Synchronization

/// Exact-match response cache: the same route, model and request body (keys sorted, whitespace
/// ignored) gets the stored answer. Held in memory (bounded by entries and bytes, least recently
/// used evicted first) and written through to the store, so restarts and other instances share it.
public final class ResponseCache: Sendable {
    struct Slot {
        var entry: CachedResponse
        var lastUse: UInt64
    }

    struct Memory {
        var slots: [String: Slot] = [:]
        var bytes = 0
        var clock: UInt64 = 0
    }

    private let memory = Mutex(Memory())
    private let pendingWrites = Mutex<[CachedResponse]>([])
    let settings: CacheSettings
    let store: any ResponseCacheStore

    public init(settings: CacheSettings, store: any ResponseCacheStore) {
        self.settings = settings
        self.store = store
    }

    /// Whether this call uses the cache, and for how long it keeps a new answer: by header
    /// (`Gatehouse-Cache`, `Helicone-Cache-Enabled`, `Cache-Control: max-age=N | no-store`), else
    /// by configuration.
    func decision(route: GatewayRoute, headers: [(name: String, value: String)]) -> Int? {
        var enabled: Bool? = nil
        var ttl = settings.ttlSeconds
        for (name, value) in headers {
            let lower = name.lowercased()
            // Only the cache headers' values are read (trimming every header cost each call).
            if lower == "gatehouse-cache" || lower == "helicone-cache-enabled" {
                let v = value.trimmingCharacters(in: .whitespaces).lowercased()
                enabled = v == "true" || v == "1" || v == "yes"
            } else if lower == "cache-control" {
                let v = value.trimmingCharacters(in: .whitespaces).lowercased()
                for directive in v.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                    if directive == "no-store" || directive == "no-cache" { enabled = false }
                    if directive.hasPrefix("max-age="), let seconds = Int(directive.dropFirst(8)), seconds > 0 {
                        ttl = min(seconds, 365 * 86_400)
                        if enabled == nil { enabled = true }
                    }
                }
            }
        }
        let on = enabled ?? (settings.enabled || settings.routes.contains(route.rawValue))
        return on && route != .models ? ttl : nil
    }

    /// The cache key: SHA-256 over the route, an optional seed and the canonical body, which
    /// leaves out `stream_options` (replay adds or drops the usage chunk per caller).
    static func key(route: GatewayRoute, body: [UInt8], seed: String?) -> String? {
        guard var object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return nil }
        object["stream_options"] = nil
        guard let canonical = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return nil }
        var hasher = SHA256()
        hasher.update(data: Data(route.rawValue.utf8))
        hasher.update(data: Data([0]))
        hasher.update(data: Data((seed ?? "").utf8))
        hasher.update(data: Data([0]))
        hasher.update(data: canonical)
        return Hex.encode(hasher.finalize())
    }

    func lookup(_ key: String) async -> CachedResponse? {
        let now = TimeExpressions.nowMicros()
        let local = memory.withLock { m -> CachedResponse? in
            guard var slot = m.slots[key] else { return nil }
            guard slot.entry.expiresAtMicros > now else {
                m.bytes -= slot.entry.body.count
                m.slots[key] = nil
                return nil
            }
            m.clock += 1
            slot.lastUse = m.clock
            m.slots[key] = slot
            return slot.entry
        }
        if let local { return local }
        guard let stored = try? await store.cachedResponse(key: key, nowMicros: now) else { return nil }
        remember(stored)
        return stored
    }

    func insert(_ entry: CachedResponse) {
        guard entry.body.count <= settings.maxEntryBytes else { return }
        remember(entry)
        pendingWrites.withLock { $0.append(entry) }
    }

    private func remember(_ entry: CachedResponse) {
        memory.withLock { m in
            if let old = m.slots[entry.key] { m.bytes -= old.entry.body.count }
            m.clock += 1
            m.slots[entry.key] = Slot(entry: entry, lastUse: m.clock)
            m.bytes += entry.body.count
            guard m.slots.count > settings.maxEntries || m.bytes > settings.maxMemoryBytes else { return }
            // Evict the least recently used tenth at once, so eviction's sort is rare.
            let victims = m.slots.sorted { $0.value.lastUse < $1.value.lastUse }.prefix(max(1, m.slots.count / 10))
            for (key, slot) in victims {
                m.slots[key] = nil
                m.bytes -= slot.entry.body.count
            }
        }
    }

    /// Writes new entries to the store; run by the control sync loop.
    public func flush() async {
        let batch = pendingWrites.withLock { list -> [CachedResponse] in
            defer { list.removeAll() }
            return list
        }
        guard !batch.isEmpty else { return }
        do { try await store.storeCachedResponses(batch) } catch {
            pendingWrites.withLock { $0.insert(contentsOf: batch.prefix(1000), at: 0) }
        }
    }

    /// Deletes expired entries from the store; run by the control sync loop every minute.
    public func pruneStore() async {
        try? await store.pruneCache(nowMicros: TimeExpressions.nowMicros())
    }

    var entryCount: Int { memory.withLock { $0.slots.count } }
}
