import Foundation
import GatehouseCore

/// When and how long to wait before trying a call again.
struct RetryPolicy: Sendable {
    let settings: RetrySettings

    /// Statuses worth another try: timeouts, conflicts, rate limits and transient server errors.
    static func isRetryable(status: Int) -> Bool {
        [408, 409, 429, 500, 502, 503, 504, 529].contains(status)
    }

    /// Exponential backoff with full jitter (AWS's recommendation): a random wait between zero and
    /// `initial * 2^retry`, capped, and never shorter than the provider's `Retry-After`.
    ///
    /// `retryAfterSeconds` comes from the provider (any number, infinity included): it is limited
    /// to `maximumRetryAfterSeconds`, and every conversion saturates, so no header can trap.
    func delayMilliseconds(retry: Int, retryAfterSeconds: Double?, random: Double = Double.random(in: 0...1)) -> Int {
        let ceiling = Backoff.ceilingMilliseconds(initial: settings.initialBackoffMilliseconds, maximum: settings.maxBackoffMilliseconds, retry: retry)
        let jittered = max(0, Int(saturating: ceiling * random.clamped01))
        guard let retryAfterSeconds, !retryAfterSeconds.isNaN else { return jittered }
        return max(jittered, Int(saturating: min(max(0, retryAfterSeconds), Self.maximumRetryAfterSeconds) * 1000))
    }

    /// The longest `Retry-After` taken as it is; longer ones are read as this (a day). Such a
    /// wait is past any call's deadline, so the call is simply not retried.
    static let maximumRetryAfterSeconds: Double = 86_400

    /// `Retry-After` as seconds or an HTTP date, and OpenAI's `retry-after-ms`.
    static func retryAfterSeconds(_ headers: [(name: String, value: String)]) -> Double? {
        // NaN fails `>= 0`; infinity and 1e300 are limited to a day.
        for (name, value) in headers where name.lowercased() == "retry-after-ms" {
            if let ms = Double(value.trimmingCharacters(in: .whitespaces)), ms >= 0 { return min(ms / 1000, maximumRetryAfterSeconds) }
        }
        for (name, value) in headers where name.lowercased() == "retry-after" {
            let text = value.trimmingCharacters(in: .whitespaces)
            if let seconds = Double(text), seconds >= 0 { return min(seconds, maximumRetryAfterSeconds) }
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
            if let date = formatter.date(from: text) { return min(max(0, date.timeIntervalSinceNow), maximumRetryAfterSeconds) }
        }
        return nil
    }
}

/// The deployments one call may use, in the order to try them: by priority tier; within a tier
/// a weighted random order, so load spreads by weight and the rest are fallbacks.
enum DeploymentOrder {
    static func order(_ candidates: [RoutedModel], using rng: inout some RandomNumberGenerator) -> [RoutedModel] {
        let tiers = Dictionary(grouping: candidates, by: \.priority).sorted { $0.key < $1.key }
        var result: [RoutedModel] = []
        for (_, tier) in tiers {
            // Efraimidis–Spirakis: sorting by u^(1/w) draws a weighted order without replacement.
            let keyed = tier.map { c -> (Double, RoutedModel) in
                let u = Double.random(in: Double.leastNonzeroMagnitude..<1, using: &rng)
                return (pow(u, 1 / Double(max(1, c.weight))), c)
            }
            result += keyed.sorted { $0.0 > $1.0 }.map(\.1)
        }
        return result
    }
}

private extension Double {
    /// The jitter factor, kept in 0...1 (NaN as 0).
    var clamped01: Double { isNaN ? 0 : Swift.min(1, Swift.max(0, self)) }
}
