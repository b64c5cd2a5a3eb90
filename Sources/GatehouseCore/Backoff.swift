/// Exponential backoff: `initial`, doubling after each wait, never above `maximum`. The one
/// rule behind the recorder's store retries, alert delivery retries and the gateway's
/// upstream retries (which add jitter on top of `ceiling`).
public struct Backoff: Sendable {
    public let initial: Duration
    public let maximum: Duration
    /// The wait `next()` gives now.
    public private(set) var current: Duration

    public init(initial: Duration, maximum: Duration) {
        self.initial = initial
        self.maximum = max(initial, maximum)
        self.current = initial
    }

    /// The wait before the next try; the one after is twice as long (up to `maximum`).
    public mutating func next() -> Duration {
        defer { current = min(current * 2, maximum) }
        return current
    }

    /// After a success: the next failure waits `initial` again.
    public mutating func reset() { current = initial }

    /// The `retry`-th wait (from 1) in milliseconds without stepping through the others:
    /// initial × 2^(retry−1), at most `maximum`. Saturates instead of overflowing.
    public static func ceilingMilliseconds(initial: Int, maximum: Int, retry: Int) -> Double {
        guard initial > 0 else { return 0 }
        let doublings = Double(max(0, retry.subtractingSaturated(1)))
        return min(Double(maximum), Double(initial) * pow2(doublings))
    }

    private static func pow2(_ n: Double) -> Double { n >= 1024 ? .infinity : Double(sign: .plus, exponent: Int(n), significand: 1) }
}
