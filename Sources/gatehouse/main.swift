import Foundation
import NIOCore
import NIOPosix

// Run Swift concurrency on NIO's event loops: a request's handler, the upstream call and the
// response writes hop between fewer threads (ConcurrencyExecutor). GATEHOUSE_NIO_EXECUTOR=0
// turns it off.
_ = ConcurrencyExecutor.onEventLoops
/// An async function, so overload resolution picks AsyncParsableCommand's async `main`.
func runCommand() async { await Gatehouse.main() }
await runCommand()
