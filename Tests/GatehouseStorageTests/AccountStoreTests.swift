import Foundation
import GatehouseCore
import Logging
import Testing
@testable import GatehouseStorage

/// Console accounts and sessions on both databases.
@Suite struct AccountStoreTests {
    func withAccounts(_ backend: Backend, _ body: @Sendable (SQLAccountStore) async throws -> Void) async throws {
        try await StoreFactory.withOpenedStore(databaseURL: try backend.databaseURL(), logger: Logger(label: "test")) { try await body($0.accounts) }
    }

    @Test(arguments: Backend.allCases)
    func accountsAreUniqueByEmailAndTakeTheirSessionsWithThem(_ backend: Backend) async throws {
        try await withAccounts(backend) { store in
            let ada = Account(id: "acc_1", email: "ada@example.com", role: .admin, passwordHash: "scrypt$x", createdAtMicros: 1)
            try await store.insertAccount(ada)
            #expect(try await store.account(email: "ada@example.com") == ada)
            #expect(try await store.account(id: "acc_1") == ada)
            await #expect(throws: AccountStoreError.emailTaken) {
                try await store.insertAccount(Account(id: "acc_2", email: "ada@example.com", role: .viewer, passwordHash: "h", createdAtMicros: 2))
            }
            #expect(try await store.allAccounts().map(\.id) == ["acc_1"])

            let session = ConsoleSession(tokenHash: "t1", accountID: "acc_1", accountName: "ada@example.com", role: .admin, csrfToken: "c",
                                         createdAtMicros: 10, lastSeenMicros: 10, expiresAtMicros: 1_000)
            try await store.insertSession(session)
            #expect(try await store.session(tokenHash: "t1") == session)
            try await store.touchSession(tokenHash: "t1", lastSeenMicros: 20)
            #expect(try await store.session(tokenHash: "t1")?.lastSeenMicros == 20)
            #expect(try await store.deleteAccount(id: "acc_1"))
            #expect(try await store.session(tokenHash: "t1") == nil, "deleting an account ends its sessions")
            #expect(try await store.deleteAccount(id: "acc_1") == false)
        }
    }

    @Test(arguments: Backend.allCases)
    func pruningRemovesExpiredAndIdleSessionsOnly(_ backend: Backend) async throws {
        try await withAccounts(backend) { store in
            func session(_ hash: String, seen: Int64, expires: Int64) -> ConsoleSession {
                ConsoleSession(tokenHash: hash, accountID: "admin-token", accountName: "admin-token", role: .admin, csrfToken: "c",
                               createdAtMicros: 0, lastSeenMicros: seen, expiresAtMicros: expires)
            }
            try await store.insertSession(session("live", seen: 900, expires: 5_000))
            try await store.insertSession(session("expired", seen: 900, expires: 1_000))
            try await store.insertSession(session("idle", seen: 100, expires: 5_000))
            try await store.pruneSessions(nowMicros: 1_000, idleMicros: 500)
            #expect(try await store.session(tokenHash: "live") != nil)
            #expect(try await store.session(tokenHash: "expired") == nil)
            #expect(try await store.session(tokenHash: "idle") == nil)
        }
    }
}
