import ArgumentParser
import Foundation
import GatehouseAPI
import Rainbow

/// `gatehouse users …`: console accounts through the admin API of a running Gatehouse.
struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list and delete console accounts (needs GATEHOUSE_ADMIN_TOKEN).",
        subcommands: [Create.self, List.self, Delete.self])

    /// What an account may do in the console.
    enum Role: String, ExpressibleByArgument, CaseIterable {
        /// Sees and changes everything.
        case admin
        /// Sees everything, changes nothing.
        case viewer
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an account; without --password-stdin a password is generated and printed once.")
        @OptionGroup var connection: Keys.Connection
        @Option(help: "The person's email: their name at sign-in and in the audit log.") var email: String
        @Option(help: "admin (sees and changes everything) or viewer (sees everything, changes nothing).") var role: Role
        @Flag(help: "Read the password from the first line of standard input (at least 12 characters).") var passwordStdin = false

        func run() async throws {
            var password: String?
            if passwordStdin {
                guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                    throw CLIError("pipe the password on standard input, e.g. `printf %s \"$PASSWORD\" | gatehouse users create … --password-stdin`")
                }
                password = line
            }
            let created = try await APIClient(url: connection.url).send(
                .POST, "/api/v1/users", json: NewAccount(email: email, role: role.rawValue, password: password), as: CreatedAccount.self)
            if connection.json { return printJSON(created) }
            print("Created \(created.view.email) (\(created.view.role), \(created.view.id)).")
            if let generated = created.password {
                print("Password: ".bold + generated.green.bold)
                print("Pass it on now: Gatehouse keeps only its hash and cannot show it again.".yellow)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List accounts.")
        @OptionGroup var connection: Keys.Connection
        func run() async throws {
            let list = try await APIClient(url: connection.url).get("/api/v1/users", as: AccountList.self)
            if connection.json { return printJSON(list) }
            print(Users.table(list.data))
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an account; its console sessions end at once.")
        @OptionGroup var connection: Keys.Connection
        @Argument(help: "The account's id (usr_…) or its email.") var id: String
        func run() async throws {
            let client = APIClient(url: connection.url)
            var target = id
            if id.contains("@") {
                let accounts = try await client.get("/api/v1/users", as: AccountList.self).data
                guard let account = accounts.first(where: { $0.email == id.lowercased() }) else { throw CLIError("no account with the email \(id)") }
                target = account.id
            }
            guard let path = target.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) else {
                throw CLIError("\(id) is not an account id")
            }
            let deletion = try await client.send(.DELETE, "/api/v1/users/" + path, as: AccountDeletion.self)
            if connection.json { return printJSON(deletion) }
            print("Deleted \(deletion.deleted.email) (\(deletion.deleted.id)).")
        }
    }

    static func table(_ accounts: [AccountView]) -> String {
        guard !accounts.isEmpty else { return "(no accounts: only the admin token signs in to the console)".dim }
        let headers = ["ID", "EMAIL", "ROLE", "CREATED"]
        let rows = accounts.map { [$0.id, $0.email + ($0.disabled ? " (disabled)" : ""), $0.role, String($0.createdAt.prefix(19))] }
        let widths = headers.indices.map { i in ([headers[i]] + rows.map { $0[i] }).map(\.count).max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }
        return ([line(headers).bold] + rows.map(line)).joined(separator: "\n")
    }
}
