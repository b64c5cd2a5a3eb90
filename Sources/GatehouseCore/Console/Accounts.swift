import Foundation

/// What a console account may do: a viewer sees everything and changes nothing.
public enum AccountRole: String, Sendable, Codable, CaseIterable {
    case admin, viewer
}

/// A person who signs in to the console. The password is kept only as its scrypt hash.
public struct Account: Sendable, Equatable, Codable {
    public var id: String
    /// Lower-cased; unique.
    public var email: String
    public var role: AccountRole
    /// `scrypt$<log2 N>$<r>$<p>$<salt>$<hash>` (base64); never shown, logged or returned.
    public var passwordHash: String
    public var createdAtMicros: Int64
    public var disabled: Bool

    public init(id: String, email: String, role: AccountRole, passwordHash: String, createdAtMicros: Int64, disabled: Bool = false) {
        self.id = id
        self.email = email
        self.role = role
        self.passwordHash = passwordHash
        self.createdAtMicros = createdAtMicros
        self.disabled = disabled
    }

    /// The account id a session signed in with the admin token carries.
    public static let adminTokenID = "admin-token"

    /// A plausible address: one `@`, something on both sides, no spaces or controls, ≤ 254 bytes.
    public static func isValidEmail(_ email: String) -> Bool {
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        return email.utf8.count <= 254 && parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".")
            && !parts[1].hasPrefix(".") && !parts[1].hasSuffix(".")
            && email.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value != 0x7F && $0 != "<" && $0 != ">" && $0 != "\"" }
    }
}

/// A signed-in browser. The cookie holds a random token; the store keeps only its SHA-256, so a
/// copy of the database signs no one in.
public struct ConsoleSession: Sendable, Equatable {
    public var tokenHash: String
    public var accountID: String
    /// Shown as the actor in the audit log (the account's email, or `admin-token`).
    public var accountName: String
    public var role: AccountRole
    /// Sent back in every form and state-changing request; compared in constant time.
    public var csrfToken: String
    public var createdAtMicros: Int64
    public var lastSeenMicros: Int64
    /// The absolute end, whatever the activity.
    public var expiresAtMicros: Int64

    public init(tokenHash: String, accountID: String, accountName: String, role: AccountRole, csrfToken: String,
                createdAtMicros: Int64, lastSeenMicros: Int64, expiresAtMicros: Int64) {
        self.tokenHash = tokenHash
        self.accountID = accountID
        self.accountName = accountName
        self.role = role
        self.csrfToken = csrfToken
        self.createdAtMicros = createdAtMicros
        self.lastSeenMicros = lastSeenMicros
        self.expiresAtMicros = expiresAtMicros
    }
}

/// Console accounts and sessions, shared by every instance (SQLite or PostgreSQL).
public protocol AccountStore: Sendable {
    /// Throws `AccountStoreError.emailTaken` when the email exists.
    func insertAccount(_ account: Account) async throws
    func account(email: String) async throws -> Account?
    func account(id: String) async throws -> Account?
    func allAccounts() async throws -> [Account]
    /// Deletes the account and its sessions; false when there is none.
    func deleteAccount(id: String) async throws -> Bool

    func insertSession(_ session: ConsoleSession) async throws
    func session(tokenHash: String) async throws -> ConsoleSession?
    func touchSession(tokenHash: String, lastSeenMicros: Int64) async throws
    func deleteSession(tokenHash: String) async throws
    /// Removes sessions whose absolute end or idle limit has passed.
    func pruneSessions(nowMicros: Int64, idleMicros: Int64) async throws
}

public enum AccountStoreError: Error, Equatable, CustomStringConvertible {
    case emailTaken
    public var description: String { "an account with that email exists" }
}
