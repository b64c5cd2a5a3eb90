import Foundation

// Console accounts (`/api/v1/users…`, admin API), described in OpenAPI/accounts.yaml.

/// A console account as the API shows it: never its password or the password's hash.
public struct AccountView: Codable, Sendable, Equatable {
    public var id: String
    /// Lower-cased; unique.
    public var email: String
    /// `admin` (sees and changes everything) or `viewer` (sees everything, changes nothing).
    public var role: String
    /// A disabled account cannot sign in.
    public var disabled: Bool
    public var createdAt: String

    public init(id: String, email: String, role: String, disabled: Bool, createdAt: String) {
        self.id = id
        self.email = email
        self.role = role
        self.disabled = disabled
        self.createdAt = createdAt
    }

    enum CodingKeys: String, CodingKey {
        case id, email, role, disabled
        case createdAt = "created_at"
    }
}

/// `GET /api/v1/users`: every account, by email.
public struct AccountList: Codable, Sendable, Equatable {
    public var data: [AccountView]
    public init(data: [AccountView]) { self.data = data }
    enum CodingKeys: String, CodingKey { case data }
}

/// The body of `POST /api/v1/users`. Every field is optional on the wire so the server can name
/// what is missing; `email` and `role` are needed, and a password is generated when none is given.
public struct NewAccount: Codable, Sendable, Equatable {
    public var email: String?
    /// `admin` or `viewer`.
    public var role: String?
    /// At least 12 characters and at most 1024 bytes; left out, the server generates one.
    public var password: String?

    public init(email: String?, role: String?, password: String? = nil) {
        self.email = email
        self.role = role
        self.password = password
    }

    public enum CodingKeys: String, CodingKey, CaseIterable { case email, role, password }

    /// Every field the body may carry, sorted.
    public static var fieldNames: [String] { CodingKeys.allCases.map(\.rawValue).sorted() }
}

/// The answer of `POST /api/v1/users`: the account's own fields, plus the generated password
/// (and a note) when the request gave none. The password is shown this once.
public struct CreatedAccount: Codable, Sendable, Equatable {
    public var view: AccountView
    public var password: String?
    public var note: String?

    public init(view: AccountView, password: String? = nil, note: String? = nil) {
        self.view = view
        self.password = password
        self.note = note
    }

    enum CodingKeys: String, CodingKey { case password, note }

    public init(from decoder: any Decoder) throws {
        view = try AccountView(from: decoder)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        password = try container.decodeIfPresent(String.self, forKey: .password)
        note = try container.decodeIfPresent(String.self, forKey: .note)
    }

    public func encode(to encoder: any Encoder) throws {
        try view.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(password, forKey: .password)
        try container.encodeIfPresent(note, forKey: .note)
    }
}

/// The answer of `DELETE /api/v1/users/{id}`: the account as it was.
public struct AccountDeletion: Codable, Sendable, Equatable {
    public var deleted: AccountView
    public init(deleted: AccountView) { self.deleted = deleted }
    enum CodingKeys: String, CodingKey { case deleted }
}

/// The `details` of an `account.create` audit entry (never the password).
public struct AccountAuditDetails: Codable, Sendable, Equatable {
    public var email: String
    public var role: String
    /// Whether Gatehouse generated the password (shown once to whoever created the account).
    public var passwordGenerated: Bool?

    public init(email: String, role: String, passwordGenerated: Bool? = nil) {
        self.email = email
        self.role = role
        self.passwordGenerated = passwordGenerated
    }

    enum CodingKeys: String, CodingKey {
        case email, role
        case passwordGenerated = "password_generated"
    }
}
