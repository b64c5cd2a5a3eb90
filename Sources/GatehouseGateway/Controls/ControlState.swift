import Foundation
import GatehouseCore
import Logging
import Synchronization

/// Keys and kill switches held in memory for the hot path, reloaded from the store when another
/// instance (or this one) changes them. Each instance polls one version number per kind.
public final class ControlState: Sendable {
    struct Snapshot {
        var keysByHash: [String: VirtualKey] = [:]
        /// Each key's quota rules with their counter names, built once per reload.
        var rulesByKeyID: [String: [(counter: String, rule: QuotaRule)]] = [:]
        var keysVersion = ""
        var switches: Set<SwitchID> = []
        var switchDetails: [SwitchID: KillSwitch] = [:]
        var switchesVersion = ""
        var loaded = false
    }

    struct SwitchID: Hashable {
        var kind: KillSwitch.Kind
        var value: String
    }

    private let snapshot = Mutex(Snapshot())
    /// Calls in flight per key on this instance, for `max_parallel`.
    private let inFlight = Mutex<[String: Int]>([:])
    private let openModeLogged = Atomic<Bool>(false)
    let store: any KeyStore & SwitchStore
    let logger: Logger

    public init(store: any KeyStore & SwitchStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    /// Reloads keys and switches when their version changed (or always with `force`).
    public func refresh(force: Bool = false) async throws {
        let keysVersion = try await store.keysVersion()
        let switchesVersion = try await store.switchesVersion()
        let current = snapshot.withLock { ($0.keysVersion, $0.switchesVersion, $0.loaded) }
        if force || !current.2 || keysVersion != current.0 {
            let keys = try await store.allKeys()
            let byHash = Dictionary(keys.map { ($0.hash, $0) }, uniquingKeysWith: { _, last in last })
            let rules = Dictionary(keys.map { key in (key.id, key.quotaRules.map { (counter: $0.id, rule: $0) }) }, uniquingKeysWith: { _, last in last })
            snapshot.withLock {
                $0.keysByHash = byHash
                $0.rulesByKeyID = rules
                $0.keysVersion = keysVersion
            }
            let active = keys.filter { $0.revokedAtMicros == nil }.count
            if active == 0, !openModeLogged.exchange(true, ordering: .relaxed) {
                logger.notice("no virtual keys exist: the gateway runs in open mode and accepts calls without a Gatehouse key; create a key to require one")
            } else if active > 0 {
                openModeLogged.store(false, ordering: .relaxed)
            }
        }
        if force || !current.2 || switchesVersion != current.1 {
            let switches = try await store.allSwitches()
            snapshot.withLock {
                $0.switchDetails = Dictionary(switches.map { (SwitchID(kind: $0.kind, value: $0.value), $0) }, uniquingKeysWith: { _, last in last })
                $0.switches = Set($0.switchDetails.keys)
                $0.switchesVersion = switchesVersion
            }
        }
        snapshot.withLock { $0.loaded = true }
    }

    /// True once any key has been created (revoked ones included): from then on calls need a key.
    public var keysExist: Bool { snapshot.withLock { !$0.keysByHash.isEmpty } }

    public func key(forSecret secret: String) -> VirtualKey? {
        let hash = KeyMint.hash(secret)
        return snapshot.withLock { $0.keysByHash[hash] }
    }

    func quotaRules(forKeyID id: String) -> [(counter: String, rule: QuotaRule)] {
        snapshot.withLock { $0.rulesByKeyID[id] ?? [] }
    }

    public func killSwitch(_ kind: KillSwitch.Kind, _ value: String) -> KillSwitch? {
        snapshot.withLock { s in
            s.switches.isEmpty ? nil : s.switchDetails[SwitchID(kind: kind, value: value)]
        }
    }

    var hasSwitches: Bool { snapshot.withLock { !$0.switches.isEmpty } }

    /// Takes a parallel-call slot for `keyID`, or returns false at the limit.
    func enter(keyID: String, limit: Int) -> Bool {
        inFlight.withLock { counts in
            let n = counts[keyID, default: 0]
            guard n < limit else { return false }
            counts[keyID] = n + 1
            return true
        }
    }

    func leave(keyID: String) {
        inFlight.withLock { counts in
            let n = counts[keyID, default: 1] - 1
            counts[keyID] = n <= 0 ? nil : n
        }
    }
}
