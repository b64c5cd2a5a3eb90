import Dispatch

/// Where the CPU-heavy part of every ingest request runs: decompression, parsing, Sentry
/// grouping and masking. Not on the NIO event loops — the `gatehouse` executable runs Swift
/// concurrency on them, so a 1 MB Sentry event parsed in a handler would hold up every
/// connection of its loop (`/health` included) for as long as it takes. The work goes to a
/// Dispatch queue (its own threads, no more than the machine's cores at once) and the handler
/// resumes when it is done.
enum IngestWork {
    static let queue = DispatchQueue(label: "gatehouse.ingest", qos: .userInitiated, attributes: .concurrent)

    /// Runs `work` off the event loops and returns (or throws) what it did.
    static func run<T: Sendable, E: Error>(_ work: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        let result: Result<T, E> = await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: Result { () throws(E) -> T in try work() }) }
        }
        return try result.get()
    }
}
