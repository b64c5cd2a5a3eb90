import Foundation
import NIOCore
import NIOPosix

// Run Swift concurrency on NIO's event loops: a request's handler, the upstream call and the
// response writes then stay on one thread instead of hopping between NIO's threads and the
// concurrency pool, which measured as most of the added latency at low request rates.
// GATEHOUSE_NIO_EXECUTOR=0 turns it off.
if ProcessInfo.processInfo.environment["GATEHOUSE_NIO_EXECUTOR"] != "0" {
    NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
}
/// An async function, so overload resolution picks AsyncParsableCommand's async `main`.
func runCommand() async { await Gatehouse.main() }
await runCommand()
