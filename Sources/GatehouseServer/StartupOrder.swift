import GatehouseStorage
import ServiceLifecycle
import Synchronization

/// Opens once: when the store's migrations have finished. Everything that touches the store
/// waits for it, so a fresh data directory never sees "no such table".
final class MigrationGate: Sendable {
    private enum State {
        case waiting([Int: CheckedContinuation<Bool, Never>])
        case open
        /// The migrations failed or were abandoned at shutdown: nothing waiting may start.
        case abandoned
    }
    private let state = Mutex(State.waiting([:]))
    private let nextWaiter = Atomic<Int>(0)

    func open() { settle(.open) }
    func abandon() { settle(.abandoned) }

    private func settle(_ final: State) {
        let waiters = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            guard case .waiting(let list) = state else { return [] }
            state = final
            return Array(list.values)
        }
        let opened = if case .open = final { true } else { false }
        for waiter in waiters { waiter.resume(returning: opened) }
    }

    /// Whether the gate opened; false when it was abandoned or the waiting task was cancelled.
    func wait() async -> Bool {
        let id = nextWaiter.wrappingAdd(1, ordering: .relaxed).oldValue
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let answer = state.withLock { state -> Bool? in
                    switch state {
                    case .waiting(var list):
                        if Task.isCancelled { return false }
                        list[id] = continuation
                        state = .waiting(list)
                        return nil
                    case .open: return true
                    case .abandoned: return false
                    }
                }
                if let answer { continuation.resume(returning: answer) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                guard case .waiting(var list) = state, let waiter = list.removeValue(forKey: id) else { return nil }
                state = .waiting(list)
                return waiter
            }
            waiter?.resume(returning: false)
        }
    }
}

/// Runs the migrations once the database pool is up, opens the gate, then idles until shutdown.
/// A shutdown during the migrations abandons them (each version is its own transaction).
struct MigrationService: Service {
    let migrate: @Sendable () async throws -> Void
    let gate: MigrationGate

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await migrate() }
        } catch is CancellationError {
            gate.abandon()
            return
        } catch {
            gate.abandon()
            throw error
        }
        gate.open()
        try? await gracefulShutdown()
    }
}

/// Starts `service` only after the migrations. If its own shutdown comes first, or the
/// migrations are abandoned, it ends unstarted — but only when its own turn to shut down comes,
/// so the group still stops its services one at a time, in reverse order.
struct AfterMigrations: Service {
    let service: any Service
    let gate: MigrationGate

    func run() async throws {
        let opened = await cancelWhenGracefulShutdown { await gate.wait() }
        guard opened else {
            try? await gracefulShutdown()
            return
        }
        try await service.run()
    }
}
