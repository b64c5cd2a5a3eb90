import GatehouseAPI
import GatehouseCore
import GatehouseGateway
import GatehouseHTTP
import Hummingbird

/// `/accounts`: who may sign in to the console. Admins create accounts (a generated password is
/// shown once, in the answer to the form) and delete them, through `AccountAdmin`, as the admin
/// API's `/api/v1/users` does.
struct AccountsPage: Sendable {
    let console: Console
    var deps: ConsoleDependencies { console.deps }

    func addRoutes(to r: APIRouter.AccessGroup) {
        r.get("/accounts") { request, _ in await console.page(request, .accounts) { try await render($0) } }
        r.post("/accounts") { request, _ in await create(request) }
        r.post("/accounts/{id}/delete") { request, context in await delete(request, id: context.parameters.get("id") ?? "") }
    }

    struct Row {
        var id: String
        var email: String
        var role: String
        var tone: String
        var disabled: Bool
        var created: String
        var createdAt: String
        var isYou: Bool
        var historyHref: String
    }

    func render(_ input: Console.PageInput) async throws -> Console.PageOutput {
        let accounts = try await deps.accounts.allAccounts()
        let rows = accounts.map { a in
            Row(id: a.id, email: a.email, role: a.role.rawValue, tone: a.role == .admin ? "info" : "", disabled: a.disabled,
                created: Format.ago(a.createdAtMicros), createdAt: Format.dateTime(a.createdAtMicros), isYou: a.email == input.viewer.name,
                historyHref: Console.url("/audit", [("actor", "console:" + a.email)]))
        }
        return Console.PageOutput(template: "accounts", title: "Accounts", body: [
            "rows": rows, "hasRows": !rows.isEmpty, "canChange": input.viewer.canChange, "openMode": input.viewer.openMode,
            "csrfToken": input.viewer.csrfToken, "minPassword": PasswordHasher.minPasswordCharacters,
            "roles": AccountRole.allCases.map { ["value": $0.rawValue, "selected": $0 == .viewer] },
        ] as [String: Any], showsRange: false)
    }

    func create(_ request: Request) async -> Response {
        var created: (account: Account, password: String)?
        let response = await console.action(request, needsAdmin: true) { viewer, form in
            let password = form["password"].flatMap { $0.isEmpty ? nil : $0 }
            let account: Account, generated: String?
            do {
                (account, generated) = try await AccountAdmin.create(NewAccount(email: form["email"], role: form["role"], password: password),
                                                                     in: deps.accounts)
            } catch let error as GatewayError {
                return Console.url("/accounts", [("error", error.message)])
            }
            try await deps.admin.audit(actor: viewer.auditActor, action: AccountAdmin.createAction, target: account.id,
                                       details: AccountAdmin.auditDetails(account, generated: generated != nil))
            if let generated { created = (account, generated) }
            return Console.url("/accounts", [("ok", "Created \(account.email) (\(account.role.rawValue)).")])
        }
        guard let created, response.status == .seeOther else { return response }
        // A generated password is shown in this answer only: never in a URL, never again.
        return await console.page(request, .accounts) { _ in
            Console.PageOutput(template: "accounts-created", title: "Account created", body: [
                "email": created.account.email, "role": created.account.role.rawValue, "password": created.password,
            ] as [String: Any], showsRange: false)
        }
    }

    func delete(_ request: Request, id: String) async -> Response {
        await console.action(request, needsAdmin: true) { viewer, _ in
            if let account = try await deps.accounts.account(id: id), account.email == viewer.name {
                return Console.url("/accounts", [("error", "You cannot delete the account you are signed in with; another admin can.")])
            }
            let account = try await AccountAdmin.delete(id: id, in: deps.accounts)
            try await deps.admin.audit(actor: viewer.auditActor, action: AccountAdmin.deleteAction, target: account.id,
                                       details: AccountAdmin.auditDetails(account, generated: nil))
            return Console.url("/accounts", [("ok", "Deleted \(account.email); their sessions have ended.")])
        }
    }
}
