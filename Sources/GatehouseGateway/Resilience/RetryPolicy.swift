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
    func delayMilliseconds(retry: Int, retryAfterSeconds: Double?, random: Double = Double.random(in: 0...1)) -> Int {
        let ceiling = min(Double(settings.maxBackoffMilliseconds), Double(settings.initialBackoffMilliseconds) * pow(2, Double(max(0, retry - 1))))
        let jittered = Int(ceiling * random)
        guard let retryAfterSeconds else { return jittered }
        return max(jittered, Int(retryAfterSeconds * 1000))
    }

    /// `Retry-After` as seconds or an HTTP date, and OpenAI's `retry-after-ms`.
    static func retryAfterSeconds(_ headers: [(name: String, value: String)]) -> Double? {
        for (name, value) in headers where name.lowercased() == "retry-after-ms" {
            if let ms = Double(value.trimmingCharacters(in: .whitespaces)), ms >= 0 { return ms / 1000 }
        }
        for (name, value) in headers where name.lowercased() == "retry-after" {
            let text = value.trimmingCharacters(in: .whitespaces)
            if let seconds = Double(text), seconds >= 0 { return seconds }
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
            if let date = formatter.date(from: text) { return max(0, date.timeIntervalSinceNow) }
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
