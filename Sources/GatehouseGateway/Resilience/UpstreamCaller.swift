import Foundation
import GatehouseCore
import Logging
import NIOCore

/// Sends one call upstream with retries, fallback across deployments and circuit breakers.
///
/// Decisions are made on the response head, before anything reaches the client: a retryable
/// answer is read (for its message) and dropped, so a retry never follows a byte sent to the
/// client, and a failed attempt carries no usage, so nothing is billed twice.
struct UpstreamCaller: Sendable {
    /// Every provider but the built-in mock.
    let network: any UpstreamTransport
    let mock: any UpstreamTransport
    let breakers: CircuitBreakers
    let policy: RetryPolicy

    enum Outcome {
        case response(UpstreamResponse, RoutedModel, [CallAttempt])
        case failed(any Error, RoutedModel, [CallAttempt])
        /// Every deployment's breaker is open; retry after the given seconds.
        case breakersOpen(retryAfterSeconds: Int, [CallAttempt])
    }

    func call(_ ordered: [RoutedModel], started: ContinuousClock.Instant, logger: Logger,
              makeRequest: (RoutedModel) -> UpstreamRequest) async -> Outcome {
        let deadline = started + .seconds(policy.settings.totalDeadlineSeconds)
        let maxAttempts = policy.settings.maxAttempts
        var attempts: [CallAttempt] = []
        var tries = 0
        var index = 0
        var nextDelay = 0
        var lastFailure: (error: any Error, routed: RoutedModel)?
        // Each deployment may be skipped for an open breaker; bound the loop either way.
        var visits = 0
        while tries < maxAttempts && visits < maxAttempts * ordered.count + ordered.count {
            visits += 1
            let candidate = ordered[index % ordered.count]
            index += 1
            guard breakers.allow(candidate.deploymentName) else { continue }
            if nextDelay > 0 {
                try? await Task.sleep(for: .milliseconds(nextDelay))
            }
            let delayed = nextDelay
            tries += 1
            let attemptStart = ContinuousClock.now
            func attempt(status: Int?, errorClass: ErrorClass?, message: String?) -> CallAttempt {
                CallAttempt(provider: candidate.provider.name, model: candidate.upstreamModel, status: status, errorClass: errorClass,
                            errorMessage: message.map { String(Redactor.scrubText($0).prefix(300)) },
                            latencyMicros: TimeExpressions.micros(ContinuousClock.now - attemptStart), delayMilliseconds: delayed)
            }
            // The delay before the next try: none when falling back to another deployment, backoff
            // (at least the provider's Retry-After) when coming round to the same one again.
            func delayBeforeNext(retryAfter: Double?) -> Int? {
                guard tries < maxAttempts else { return nil }
                let wraps = index % ordered.count == 0
                let delay = wraps ? policy.delayMilliseconds(retry: tries, retryAfterSeconds: retryAfter) : 0
                return ContinuousClock.now + .milliseconds(delay) < deadline ? delay : nil
            }
            do {
                let request = makeRequest(candidate)
                let response = try await (candidate.provider.kind == .mock ? mock : network).send(request)
                guard RetryPolicy.isRetryable(status: response.status) else {
                    breakers.recordSuccess(candidate.deploymentName)
                    if !attempts.isEmpty { attempts.append(attempt(status: response.status, errorClass: nil, message: nil)) }
                    return .response(response, candidate, attempts)
                }
                breakers.recordFailure(candidate.deploymentName)
                guard let delay = delayBeforeNext(retryAfter: RetryPolicy.retryAfterSeconds(response.headers)) else {
                    // Out of attempts or time: the client gets this answer as the provider gave it.
                    if !attempts.isEmpty { attempts.append(attempt(status: response.status, errorClass: Self.errorClass(status: response.status), message: nil)) }
                    return .response(response, candidate, attempts)
                }
                let message = await Self.drainMessage(response.body)
                attempts.append(attempt(status: response.status, errorClass: Self.errorClass(status: response.status), message: message))
                logger.info("retrying upstream call", metadata: ["provider": "\(candidate.provider.name)", "status": "\(response.status)", "delay_ms": "\(delay)"])
                nextDelay = delay
            } catch {
                breakers.recordFailure(candidate.deploymentName)
                let (_, errorClass) = Gateway.classify(error)
                attempts.append(attempt(status: nil, errorClass: errorClass, message: Gateway.describe(error)))
                lastFailure = (error, candidate)
                guard let delay = delayBeforeNext(retryAfter: nil) else { break }
                logger.info("retrying upstream call", metadata: ["provider": "\(candidate.provider.name)", "error": "\(Gateway.describe(error))"])
                nextDelay = delay
            }
        }
        if let lastFailure { return .failed(lastFailure.error, lastFailure.routed, attempts) }
        return .breakersOpen(retryAfterSeconds: breakers.secondsUntilProbe(ordered.map(\.deploymentName)), attempts)
    }

    static func errorClass(status: Int) -> ErrorClass {
        status == 429 ? .upstreamRateLimited : status >= 500 ? .upstreamServerError : .upstreamClientError
    }

    /// Reads a dropped error answer for its message (bounded).
    static func drainMessage(_ body: UpstreamBody) async -> String? {
        var bytes: [UInt8] = []
        do {
            for try await chunk in body where bytes.count < 65_536 { bytes += chunk.readableBytesView }
        } catch {
            return nil
        }
        return StreamRelay.errorMessage(bytes)
    }
}
