import Foundation
import NIOCore
import NIOPosix

// Run Swift concurrency on NIO's event loops: a request's handler, the upstream call and the
// response writes hop between fewer threads. Measured here (Benchmarks/load): added p99 at
// 1000 req/s fell from 2.2 ms to 0.7 ms and peak throughput rose from 8.2k to 9.5k req/s.
// GATEHOUSE_NIO_EXECUTOR=0 turns it off.
if ProcessInfo.processInfo.environment["GATEHOUSE_NIO_EXECUTOR"] != "0" {
    NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
}
/// An async function, so overload resolution picks AsyncParsableCommand's async `main`.
func runCommand() async { await Gatehouse.main() }
await runCommand()
