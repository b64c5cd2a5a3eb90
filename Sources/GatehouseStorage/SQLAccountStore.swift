import Foundation
import GatehouseCore

/// Console accounts and sessions on SQLite or PostgreSQL.
public final class SQLAccountStore: AccountStore {
    let driver: any SQLDriver
    private var d: any SQLDialect { driver.dialect }
    private func p(_ i: Int) -> String { d.placeholder(i) }

    init(driver: any SQLDriver) { self.driver = driver }

    public func insertAccount(_ account: Account) async throws {
        // ON CONFLICT DO NOTHING, then read back: portable, and no driver error text to parse.
        _ = try await driver.query("""
            INSERT INTO console_accounts (id, email, role, password_hash, created_at, disabled)
            VALUES (\(p(1)), \(p(2)), \(p(3)), \(p(4)), \(p(5)), \(p(6))) ON CONFLICT (email) DO NOTHING
            """, [.text(account.id), .text(account.email), .text(account.role.rawValue), .text(account.passwordHash),
                  .int(account.createdAtMicros), .int(account.disabled ? 1 : 0)])
        guard try await self.account(email: account.email)?.id == account.id else { throw AccountStoreError.emailTaken }
    }

    public func account(email: String) async throws -> Account? {
        try await driver.query("SELECT * FROM console_accounts WHERE email = \(p(1))", [.text(email)]).first.map(Self.account)
    }

    public func account(id: String) async throws -> Account? {
        try await driver.query("SELECT * FROM console_accounts WHERE id = \(p(1))", [.text(id)]).first.map(Self.account)
    }

    public func allAccounts() async throws -> [Account] {
        try await driver.query("SELECT * FROM console_accounts ORDER BY email", []).map(Self.account)
    }

    public func deleteAccount(id: String) async throws -> Bool {
        guard try await account(id: id) != nil else { return false }
        try await driver.transaction([
            SQLStatement("DELETE FROM console_sessions WHERE account_id = \(p(1))", [.text(id)]),
            SQLStatement("DELETE FROM console_accounts WHERE id = \(p(1))", [.text(id)]),
        ])
        return true
    }

    static func account(_ row: SQLRow) throws -> Account {
        guard let id = row["id"].text, let email = row["email"].text, let role = row["role"].text.flatMap(AccountRole.init(rawValue:)),
              let hash = row["password_hash"].text, let created = row["created_at"].int else {
            throw StoreError.corrupt("console account")
        }
        return Account(id: id, email: email, role: role, passwordHash: hash, createdAtMicros: created, disabled: (row["disabled"].int ?? 0) != 0)
    }

    public func insertSession(_ s: ConsoleSession) async throws {
        _ = try await driver.query("""
            INSERT INTO console_sessions (token_hash, account_id, account_name, role, csrf_token, created_at, last_seen, expires_at)
            VALUES (\(p(1)), \(p(2)), \(p(3)), \(p(4)), \(p(5)), \(p(6)), \(p(7)), \(p(8)))
            """, [.text(s.tokenHash), .text(s.accountID), .text(s.accountName), .text(s.role.rawValue), .text(s.csrfToken),
                  .int(s.createdAtMicros), .int(s.lastSeenMicros), .int(s.expiresAtMicros)])
    }

    public func session(tokenHash: String) async throws -> ConsoleSession? {
        guard let row = try await driver.query("SELECT * FROM console_sessions WHERE token_hash = \(p(1))", [.text(tokenHash)]).first else { return nil }
        guard let accountID = row["account_id"].text, let name = row["account_name"].text,
              let role = row["role"].text.flatMap(AccountRole.init(rawValue:)), let csrf = row["csrf_token"].text,
              let created = row["created_at"].int, let seen = row["last_seen"].int, let expires = row["expires_at"].int else {
            throw StoreError.corrupt("console session")
        }
        return ConsoleSession(tokenHash: tokenHash, accountID: accountID, accountName: name, role: role, csrfToken: csrf,
                              createdAtMicros: created, lastSeenMicros: seen, expiresAtMicros: expires)
    }

    public func touchSession(tokenHash: String, lastSeenMicros: Int64) async throws {
        _ = try await driver.query("UPDATE console_sessions SET last_seen = \(p(1)) WHERE token_hash = \(p(2))",
                                   [.int(lastSeenMicros), .text(tokenHash)])
    }

    public func deleteSession(tokenHash: String) async throws {
        _ = try await driver.query("DELETE FROM console_sessions WHERE token_hash = \(p(1))", [.text(tokenHash)])
    }

    public func pruneSessions(nowMicros: Int64, idleMicros: Int64) async throws {
        _ = try await driver.query("DELETE FROM console_sessions WHERE expires_at <= \(p(1)) OR last_seen <= \(p(2))",
                                   [.int(nowMicros), .int(nowMicros.subtractingSaturated(idleMicros))])
    }
}
