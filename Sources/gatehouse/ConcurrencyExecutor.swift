import CConcurrencyHook
import Foundation
import NIOCore
import NIOPosix

/// Where Swift concurrency's jobs run: on NIO's event loops when the takeover worked, so a
/// request's handler, its upstream call and its response writes stay on one thread instead of
/// hopping to Dispatch's pool and back.
///
/// NIO's own takeover (`unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor`)
/// finds the runtime's hook with dlsym, which fails without a word in the release binary (the
/// Swift runtime linked in statically, its symbols hidden): every proxied call then hopped to
/// Dispatch's threads and back, about a third of its CPU (docs/benchmarks.md). So the hook is
/// set here through a C reference the linker resolves, with the same job routing as NIO's.
enum ConcurrencyExecutor {
    /// The runtime's hook type (swift/Runtime/Concurrency.h), as NIO spells it.
    private typealias Original = @convention(thin) (UnownedJob) -> Void
    private typealias Hook = @convention(thin) (UnownedJob, Original) -> Void

    /// Installed on first use, which `main.swift` makes before any task starts.
    static let onEventLoops: Bool = {
        guard !turnedOff else { return false }
        let hook: Hook = { job, _ in
            // `any()` is the current event loop when called on one: a job stays on its thread.
            MultiThreadedEventLoopGroup.singleton.any().executor.enqueue(ExecutorJob(job))
        }
        return gatehouse_install_enqueue_global_hook(unsafeBitCast(hook, to: UnsafeMutableRawPointer.self))
    }()

    /// `GATEHOUSE_NIO_EXECUTOR=0` keeps Swift concurrency on its default executor.
    static var turnedOff: Bool { ProcessInfo.processInfo.environment["GATEHOUSE_NIO_EXECUTOR"] == "0" }

    /// For the startup line.
    static var name: String { onEventLoops ? "nio-event-loops" : "dispatch" }
}
