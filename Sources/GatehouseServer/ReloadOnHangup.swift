import Logging
import ServiceLifecycle
import UnixSignals

/// Rereads the certificate and key on SIGHUP (what a renewal hook or `systemctl reload` sends).
/// Without TLS there is nothing to reread, but SIGHUP is still taken: a reload must never stop
/// the server (SIGHUP's default action, and a "clean" exit systemd would not restart).
struct ReloadOnHangup: Service {
    let tls: ReloadableTLSContext?
    /// Made when the server is built, so a SIGHUP that comes before this service runs waits in
    /// the sequence instead of ending the process.
    let hangups: UnixSignalsSequence
    let logger: Logger

    func run() async throws {
        for await _ in hangups.cancelOnGracefulShutdown() {
            if let tls { tls.reload() } else { logger.notice("SIGHUP: nothing to reload (no tls_cert_file)") }
        }
    }
}
