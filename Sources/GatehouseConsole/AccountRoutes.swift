import Foundation
import GatehouseAPI
import GatehouseCore
import GatehouseGateway
import GatehouseHTTP
import Hummingbird

/// The admin API's console accounts: `POST|GET /api/v1/users` and `DELETE /api/v1/users/{id}`
/// (admin token). Every change is written to the audit log the way the other admin routes write
/// theirs. The console's /accounts page makes the same changes through `AccountAdmin`.
struct AccountRoutes: Sendable {
    let console: Console
    var deps: ConsoleDependencies { console.deps }

    /// An account's body is three short strings.
    static let maxBodyBytes = 16 * 1024

    func addRoutes(to api: APIRouter) {
        api.admin.post("/api/v1/users") { request, context in await APIAnswer.run { try await create(request, context) } }
        api.admin.get("/api/v1/users") { _, _ in await APIAnswer.run { try await list() } }
        api.admin.delete("/api/v1/users/{id}") { request, context in await APIAnswer.run { try await delete(request, context) } }
    }

    func create(_ request: Request, _ context: GatehouseRequestContext) async throws -> Response {
        let new = try AccountAdmin.newAccount(from: try await JSONBody.collect(request, limit: Self.maxBodyBytes))
        let (account, generated) = try await AccountAdmin.create(new, in: deps.accounts)
        try await deps.admin.audit(actor: AdminRoutes.actor(request, context), action: AccountAdmin.createAction, target: account.id,
                                   details: AccountAdmin.auditDetails(account, generated: generated != nil))
        return JSONResponse.make(CreatedAccount(view: AccountAdmin.view(account), password: generated,
                                                note: generated.map { _ in AccountAdmin.passwordNote }),
                                 status: .created)
    }

    func list() async throws -> Response {
        JSONResponse.make(AccountList(data: try await deps.accounts.allAccounts().map(AccountAdmin.view)))
    }

    func delete(_ request: Request, _ context: GatehouseRequestContext) async throws -> Response {
        let account = try await AccountAdmin.delete(id: context.parameters.get("id") ?? "", in: deps.accounts)
        try await deps.admin.audit(actor: AdminRoutes.actor(request, context), action: AccountAdmin.deleteAction, target: account.id,
                                   details: AccountAdmin.auditDetails(account, generated: nil))
        return JSONResponse.make(AccountDeletion(deleted: AccountAdmin.view(account)))
    }
}

/// Creating, showing and deleting console accounts: one implementation for the admin API and
/// the console's /accounts page. Mistakes are `GatewayError`s naming the field.
enum AccountAdmin {
    static let createAction = "account.create"
    static let deleteAction = "account.delete"
    static let passwordNote = "Store this password now: Gatehouse keeps only its hash and cannot show it again."
    /// Generated passwords leave out characters that read alike (0/O, 1/l/I).
    static let passwordAlphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789")
    static let generatedPasswordLength = 20

    static func view(_ account: Account) -> AccountView {
        AccountView(id: account.id, email: account.email, role: account.role.rawValue, disabled: account.disabled,
                    createdAt: TimeExpressions.format(micros: account.createdAtMicros))
    }

    static func auditDetails(_ account: Account, generated: Bool?) -> AccountAuditDetails {
        AccountAuditDetails(email: account.email, role: account.role.rawValue, passwordGenerated: generated)
    }

    /// The body of `POST /api/v1/users`; a field the API does not know is refused by name, as
    /// the key routes refuse theirs.
    static func newAccount(from body: Data) throws -> NewAccount {
        if body.isEmpty { return NewAccount(email: nil, role: nil) }
        let fields = try JSONBody.decode([String: JSONValue].self, from: body)
        if let unknown = fields.keys.sorted().first(where: { !NewAccount.fieldNames.contains($0) }) {
            throw GatewayError.invalidRequest("unknown field `\(unknown)` (expected one of: \(NewAccount.fieldNames.joined(separator: ", ")))",
                                              param: unknown)
        }
        return try JSONBody.decode(NewAccount.self, from: body)
    }

    /// Checks the email, role and password, hashes the password (a generated one when none is
    /// given) and stores the account. Returns it with the generated password, if any.
    static func create(_ new: NewAccount, in store: any AccountStore) async throws -> (Account, generated: String?) {
        let email = (new.email ?? "").trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        guard !email.isEmpty else { throw GatewayError.invalidRequest("`email` is required", param: "email") }
        guard Account.isValidEmail(email) else {
            throw GatewayError.invalidRequest("`email` must be an email address such as ada@example.com", param: "email")
        }
        guard let role = new.role.flatMap(AccountRole.init(rawValue:)) else {
            throw GatewayError.invalidRequest("`role` must be one of \(AccountRole.allCases.map(\.rawValue).joined(separator: ", "))", param: "role")
        }
        let generated = new.password == nil ? generatePassword() : nil
        let password = new.password ?? generated ?? ""
        guard password.count >= PasswordHasher.minPasswordCharacters, password.utf8.count <= PasswordHasher.maxPasswordBytes else {
            throw GatewayError.invalidRequest("`password` must be at least \(PasswordHasher.minPasswordCharacters) characters and at most "
                                              + "\(PasswordHasher.maxPasswordBytes) bytes; leave it out to have one generated", param: "password")
        }
        let account = Account(id: newID(), email: email, role: role, passwordHash: try await PasswordHasher.hashOffPool(password),
                              createdAtMicros: TimeExpressions.nowMicros())
        do {
            try await store.insertAccount(account)
        } catch AccountStoreError.emailTaken {
            throw GatewayError(status: .conflict, message: "an account with the email \(email) exists", type: "invalid_request_error",
                               code: "email_taken", param: "email")
        }
        return (account, generated)
    }

    /// Deletes the account and ends its sessions; returns it as it was.
    static func delete(id: String, in store: any AccountStore) async throws -> Account {
        guard id.utf8.count <= 128, let account = try await store.account(id: id), try await store.deleteAccount(id: id) else {
            throw GatewayError.notFound("no account with id \(id)")
        }
        return account
    }

    static func generatePassword() -> String {
        var rng = SystemRandomNumberGenerator()
        return String((0..<generatedPasswordLength).map { _ in passwordAlphabet[Int(rng.next(upperBound: UInt32(passwordAlphabet.count)))] })
    }

    static func newID() -> String {
        var rng = SystemRandomNumberGenerator()
        return "usr_" + String(rng.next() as UInt64, radix: 36)
    }
}
