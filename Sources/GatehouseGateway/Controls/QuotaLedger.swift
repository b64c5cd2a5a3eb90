import Foundation
import GatehouseCore
import Logging
import Synchronization

/// Counts quotas (requests, tokens, micro-dollars per window) for this instance against shared
/// counters in the store, without a database round trip per call.
///
/// Each instance *leases* units from a counter's window in the store (an atomic conditional
/// increment of `granted` that never passes the limit) and spends them locally. So the instances
/// together can never admit more than the limit; the price is that units leased by one instance
/// and not yet used are unavailable to the others, at most one lease per other instance. Leases
/// shrink as the window fills, are returned when idle, and expire with their window.
///
/// Costs and tokens are reserved before a call from an estimate and settled afterwards with the
/// real amount; a call that costs more than its reservation runs the lease into debt, which the
/// next claim repays first. Overshoot is therefore bounded by what the calls in flight at the
/// moment the limit is reached consume beyond their estimates.
public final class QuotaLedger: Sendable {
    struct Entry {
        var windowStart: Int64
        var windowEnd: Int64
        var limit: Int64
        /// Units leased to this instance and not yet reserved; negative when calls cost more
        /// than reserved.
        var lease: Int64 = 0
        /// The window's granted total at the last exchange with the store.
        var knownGranted: Int64 = 0
        var unreportedUsed: Int64 = 0
        var lastUse: Int64
        /// Until then the store said the window is spent; do not ask again on every call.
        var exhaustedUntil: Int64 = 0
        var thresholds: [Double]
        var pendingClaim: Task<Void, any Error>?
    }

    /// Units one call holds until it settles.
    public struct Reservation: Sendable {
        public var counter: String
        public var rule: QuotaRule
        public var windowStart: Int64
        public var windowEnd: Int64
        public var amount: Int64
        /// Estimate of what is left in the window after this call's reservation.
        public var remaining: Int64
    }

    /// The store could not be reached and the policy is to refuse.
    public struct StoreUnavailable: Error, Sendable {}

    public struct Exhausted: Error, Sendable {
        public var counter: String
        public var rule: QuotaRule
        public var windowEnd: Int64
        /// What the call needed (an estimate for tokens and cost).
        public var needed: Int64
        /// What this instance saw left in the window when it refused (0: spent). Less than
        /// `needed` when the call alone asked for more than was left.
        public var remaining: Int64 = 0
    }

    private let entries = Mutex<[String: Entry]>([:])
    /// Consumption and releases for windows that have already rolled over, waiting to be reported.
    private let leftovers = Mutex<[QuotaChange]>([])
    /// Budget thresholds already written, so each is written once per window per instance.
    private let crossed = Mutex<Set<String>>([])
    private let store: any QuotaStore & BudgetEventStore
    private let leaseFraction: Double
    private let failOpen: Bool
    private let logger: Logger
    /// How long a lease may sit unused before it is returned.
    private let idleMicros: Int64

    public init(store: any QuotaStore & BudgetEventStore, leaseFraction: Double, failOpen: Bool = true, idleMicros: Int64 = 2_000_000, logger: Logger) {
        self.store = store
        self.leaseFraction = leaseFraction
        self.failOpen = failOpen
        self.idleMicros = idleMicros
        self.logger = logger
    }

    private enum Step {
        case granted(Reservation)
        case rejected(windowEnd: Int64, remaining: Int64)
        /// Wait for the counter's claim in flight (started by this call or another), then look again.
        case wait(Task<Void, any Error>, windowStart: Int64, windowEnd: Int64)
    }

    /// Reserves `amount` units of `counter` under `rule`, or throws `Exhausted`.
    ///
    /// `amount` is an estimate built from numbers the caller sent; every sum and difference
    /// below saturates, and an amount above the whole limit is refused without asking the store.
    public func acquire(counter: String, rule: QuotaRule, amount: Int64) async throws -> Reservation {
        let amount = max(0, amount)
        if amount > rule.limit {
            // Can never fit, whatever the others spend: refuse at once, saying what is left.
            let now = TimeExpressions.nowMicros()
            let window = rule.window(containing: now)
            let left = entries.withLock { all in
                all[counter].flatMap { $0.windowStart == window.start ? Self.left($0) : nil } ?? max(0, rule.limit)
            }
            throw Exhausted(counter: counter, rule: rule, windowEnd: window.end, needed: amount, remaining: left)
        }
        // One claim per counter is in flight at a time; concurrent callers share its result, so
        // a burst costs one store round trip per lease, not one per call.
        for _ in 0..<16 {
            let now = TimeExpressions.nowMicros()
            let window = rule.window(containing: now)
            let step = entries.withLock { all -> Step in
                var e = all[counter] ?? Entry(windowStart: window.start, windowEnd: window.end, limit: rule.limit, lastUse: now, thresholds: rule.softThresholds)
                if e.windowStart != window.start {
                    retire(counter, e)
                    e = Entry(windowStart: window.start, windowEnd: window.end, limit: rule.limit, lastUse: now, thresholds: rule.softThresholds)
                }
                if e.limit != rule.limit {
                    // A changed limit (a key updated) is a new question for the store.
                    e.limit = rule.limit
                    e.exhaustedUntil = 0
                }
                e.lastUse = now
                defer { all[counter] = e }
                if e.lease >= amount {
                    e.lease -= amount
                    return .granted(Reservation(counter: counter, rule: rule, windowStart: e.windowStart, windowEnd: e.windowEnd, amount: amount,
                                                remaining: Self.left(e)))
                }
                if now < e.exhaustedUntil { return .rejected(windowEnd: e.windowEnd, remaining: Self.left(e)) }
                if let pending = e.pendingClaim { return .wait(pending, windowStart: e.windowStart, windowEnd: e.windowEnd) }
                let need = amount.subtractingSaturated(e.lease)
                let left = max(0, e.limit.subtractingSaturated(e.knownGranted))
                let leaseSize = max(1, min(Int64(saturating: (Double(e.limit) * leaseFraction).rounded(.down)), left / 4))
                let (windowStart, want) = (e.windowStart, max(need, leaseSize))
                // Every call waiting on this counter shares the claim, so it runs (and logs) under
                // no one request's correlation id.
                let claim = Task {
                    try await CorrelationID.$current.withValue(nil) {
                        try await self.claim(counter: counter, rule: rule, windowStart: windowStart, want: want, need: need)
                    }
                }
                e.pendingClaim = claim
                return .wait(claim, windowStart: e.windowStart, windowEnd: e.windowEnd)
            }
            switch step {
            case .granted(let r): return r
            case let .rejected(end, remaining): throw Exhausted(counter: counter, rule: rule, windowEnd: end, needed: amount, remaining: remaining)
            case let .wait(task, windowStart, windowEnd):
                do {
                    try await task.value
                } catch {
                    guard failOpen else {
                        logger.warning("quota store unreachable; refusing the call", metadata: ["counter": "\(counter)", "error": "\(error)"])
                        throw StoreUnavailable()
                    }
                    // Admit rather than take the whole gateway down with the store.
                    logger.warning("quota store unreachable; admitting the call", metadata: ["counter": "\(counter)", "error": "\(error)"])
                    return Reservation(counter: counter, rule: rule, windowStart: windowStart, windowEnd: windowEnd, amount: 0, remaining: 0)
                }
            }
        }
        // Lost the race for fresh leases too often; the counter is effectively spent.
        throw Exhausted(counter: counter, rule: rule, windowEnd: rule.window(containing: TimeExpressions.nowMicros()).end, needed: amount)
    }

    /// What this instance sees left in an entry's window: the units nobody has leased, plus its
    /// own unreserved lease (never below 0).
    private static func left(_ e: Entry) -> Int64 {
        max(0, e.limit.subtractingSaturated(e.knownGranted).addingSaturated(e.lease))
    }

    /// Claims a lease from the store and adds it to the counter's entry.
    private func claim(counter: String, rule: QuotaRule, windowStart: Int64, want: Int64, need: Int64) async throws {
        let result: (granted: Int64, total: Int64)
        do {
            result = try await store.claimQuota(counter: counter, windowStartMicros: windowStart, want: want, need: need, limit: rule.limit)
        } catch {
            entries.withLock { all in
                if all[counter]?.windowStart == windowStart { all[counter]?.pendingClaim = nil }
            }
            throw error
        }
        entries.withLock { all in
            guard var e = all[counter], e.windowStart == windowStart else {
                // The window rolled while claiming; hand the lease back with the old window.
                leftovers.withLock { $0.append(QuotaChange(counter: counter, windowStartMicros: windowStart, released: result.granted, used: 0, limit: rule.limit)) }
                return
            }
            e.pendingClaim = nil
            e.lease = e.lease.addingSaturated(result.granted)
            e.knownGranted = max(e.knownGranted, result.total)
            if result.granted == 0 { e.exhaustedUntil = min(TimeExpressions.nowMicros() + 1_000_000, e.windowEnd) }
            all[counter] = e
        }
    }

    /// Ends a reservation with what the call really consumed.
    public func settle(_ r: Reservation, actual: Int64) {
        let actual = max(0, actual)
        let applied = entries.withLock { all -> Bool in
            guard var e = all[r.counter], e.windowStart == r.windowStart else { return false }
            // `actual` comes from the provider's usage: a call far dearer than reserved runs the
            // lease into debt, saturating rather than trapping.
            e.lease = e.lease.addingSaturated(r.amount.subtractingSaturated(actual))
            e.unreportedUsed = e.unreportedUsed.addingSaturated(actual)
            all[r.counter] = e
            return true
        }
        if !applied {
            leftovers.withLock { $0.append(QuotaChange(counter: r.counter, windowStartMicros: r.windowStart, released: 0, used: actual, limit: r.rule.limit)) }
        }
    }

    /// Reports consumption, returns idle leases (all leases when `releaseAll`), and writes budget
    /// events for thresholds crossed. Called periodically and at shutdown.
    public func sync(releaseAll: Bool = false) async {
        let now = TimeExpressions.nowMicros()
        var changes = leftovers.withLock { list -> [QuotaChange] in
            defer { list.removeAll() }
            return list
        }
        var thresholds: [String: [Double]] = [:]
        entries.withLock { all in
            for (counter, var e) in all {
                var released: Int64 = 0
                let idle = now - e.lastUse >= idleMicros
                if (releaseAll || idle || now >= e.windowEnd) && e.lease > 0 {
                    released = e.lease
                    e.lease = 0
                    e.knownGranted = e.knownGranted.subtractingSaturated(released)
                }
                if released != 0 || e.unreportedUsed != 0 {
                    changes.append(QuotaChange(counter: counter, windowStartMicros: e.windowStart, released: released, used: e.unreportedUsed, limit: e.limit))
                    e.unreportedUsed = 0
                }
                if !e.thresholds.isEmpty { thresholds[counter] = e.thresholds }
                if now >= e.windowEnd && idle { all[counter] = nil } else { all[counter] = e }
            }
        }
        guard !changes.isEmpty else { return }
        do {
            let counts = try await store.settleQuota(changes)
            entries.withLock { all in
                for count in counts {
                    guard var e = all[count.counter], e.windowStart == count.windowStartMicros else { continue }
                    e.knownGranted = count.granted
                    all[count.counter] = e
                }
            }
            for count in counts {
                guard let list = thresholds[count.counter] else { continue }
                for t in list where SoftThresholds.isCrossed(t, usedMicros: count.used, limitMicros: count.limit) {
                    let percent = Int(saturating: (t * 100).rounded())
                    let id = "\(count.counter)|\(count.windowStartMicros)|\(percent)"
                    guard crossed.withLock({ $0.insert(id).inserted }) else { continue }
                    let event = BudgetEvent(counter: count.counter, windowStartMicros: count.windowStartMicros, thresholdPercent: percent,
                                            usedMicros: count.used, limitMicros: count.limit, timestampMicros: now)
                    if (try? await store.recordBudgetEvent(event)) == true {
                        logger.warning("budget threshold crossed", metadata: [
                            "counter": "\(count.counter)", "percent": "\(percent)",
                            "used_usd": "\(MicroDollars(count.used).dollarString)", "limit_usd": "\(MicroDollars(count.limit).dollarString)",
                        ])
                    }
                }
            }
        } catch {
            logger.warning("could not report quota usage; will retry", metadata: ["error": "\(error)"])
            leftovers.withLock { $0.append(contentsOf: changes) }
        }
    }

    /// Usage reported and not yet reported by this instance for `counter`'s current window.
    public func localView(counter: String) -> (lease: Int64, unreported: Int64)? {
        entries.withLock { all in all[counter].map { ($0.lease, $0.unreportedUsed) } }
    }

    private func retire(_ counter: String, _ e: Entry) {
        guard e.unreportedUsed != 0 else { return }
        leftovers.withLock { $0.append(QuotaChange(counter: counter, windowStartMicros: e.windowStart, released: 0, used: e.unreportedUsed, limit: e.limit)) }
    }
}
