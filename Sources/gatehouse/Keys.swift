import ArgumentParser
import Foundation
import GatehouseAPI
import GatehouseCore
import Rainbow

/// `gatehouse keys …`: virtual keys through the admin API of a running Gatehouse.
struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Issue and manage virtual keys (needs GATEHOUSE_ADMIN_TOKEN).",
        subcommands: [Create.self, List.self, Show.self, Update.self, Revoke.self, Rotate.self])

    struct Connection: ParsableArguments {
        @Option(help: "Gatehouse base URL (GATEHOUSE_URL). Default http://127.0.0.1:8080.")
        var url: String?
        @Flag(help: "Print the API's JSON.")
        var json = false
    }

    /// The settings shared by `create` and `update`; only the ones given are sent.
    struct Settings: ParsableArguments {
        @Option(help: "A name for the key.") var alias: String?
        @Option(help: "Models it may call, comma-separated (prefix* allowed).") var models: String?
        @Option(help: "Routes it may call, comma-separated (/v1/chat/completions,…).") var routes: String?
        @Option(help: "Requests per minute.") var rpm: Int?
        @Option(help: "Tokens per minute.") var tpm: Int?
        @Option(help: "Requests per day.") var rpd: Int?
        @Option(help: "Calls in flight at once (per instance).") var maxParallel: Int?
        @Option(help: "Budget in dollars, e.g. 25 or 0.50.") var budget: String?
        @Option(help: "Budget period: day, week, month or total.") var period: String?
        @Option(help: "Soft thresholds in percent, comma-separated (default 50,80,100).") var thresholds: String?
        @Option(help: "Expiry: RFC 3339 or a duration from now such as +30d.") var expires: String?
        @Option(help: "Metadata as key=value, repeatable.") var metadata: [String] = []
        @Option(help: "Tags, comma-separated.") var tags: String?
        @Option(help: "Block (true) or unblock (false) the key.") var blocked: Bool?
        @Option(help: "Keep this key's request and response bodies: on, off, or default (follow gateway.capture_bodies).")
        var captureBodies: String?

        func body() throws -> KeyChanges {
            func list(_ s: String?) -> [String]? { s.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } }
            var changes = KeyChanges()
            if let alias { changes.alias = .set(alias) }
            changes.models = list(models)
            changes.routes = list(routes)
            if let rpm { changes.rpm = .set(Int64(rpm)) }
            if let tpm { changes.tpm = .set(Int64(tpm)) }
            if let rpd { changes.rpd = .set(Int64(rpd)) }
            if let maxParallel { changes.maxParallel = .set(maxParallel) }
            if let budget {
                changes.budget = .set(KeyBudgetChanges(amountUSD: budget, period: period ?? "month",
                                                       softThresholds: list(thresholds).map { $0.compactMap(Double.init) }))
            } else if period != nil || thresholds != nil {
                throw ValidationError("--period and --thresholds go with --budget")
            }
            if let expires { changes.expiresAt = .set(expires) }
            switch captureBodies?.lowercased() {
            case nil: break
            case "on", "true": changes.captureBodies = .set(true)
            case "off", "false": changes.captureBodies = .set(false)
            case "default": changes.captureBodies = .clear
            default: throw ValidationError("--capture-bodies takes on, off or default")
            }
            if !metadata.isEmpty {
                var m: [String: String] = [:]
                for pair in metadata {
                    let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                    guard parts.count == 2 else { throw ValidationError("--metadata takes key=value, got \(pair)") }
                    m[parts[0]] = parts[1]
                }
                changes.metadata = m
            }
            changes.tags = list(tags)
            changes.blocked = blocked
            return changes
        }
    }

    static func output(_ key: KeyView, json: Bool) {
        if json { return printJSON(key) }
        print(KeyTable.describe(key))
    }

    static func output(_ issued: IssuedKey, json: Bool) {
        if json { return printJSON(issued) }
        print("Key:    ".bold + issued.key.green.bold)
        print("Store it now: Gatehouse keeps only its hash and cannot show it again.".yellow)
        print(KeyTable.describe(issued.view))
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key; its secret is printed once.")
        @OptionGroup var connection: Connection
        @OptionGroup var settings: Settings
        func run() async throws {
            let issued = try await APIClient(url: connection.url).send(.POST, "/api/v1/keys", json: try settings.body(), as: IssuedKey.self)
            Keys.output(issued, json: connection.json)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys.")
        @OptionGroup var connection: Connection
        func run() async throws {
            let list = try await APIClient(url: connection.url).get("/api/v1/keys", as: KeyList.self)
            if connection.json { return printJSON(list) }
            print(KeyTable.render(list.data))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one key.")
        @OptionGroup var connection: Connection
        @Argument(help: "The key's id (key_…).") var id: String
        func run() async throws {
            Keys.output(try await APIClient(url: connection.url).get("/api/v1/keys/\(id)", as: KeyView.self), json: connection.json)
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a key's settings.")
        @OptionGroup var connection: Connection
        @Argument(help: "The key's id (key_…).") var id: String
        @OptionGroup var settings: Settings
        func run() async throws {
            let body = try settings.body()
            guard body != KeyChanges() else { throw ValidationError("give at least one setting to change") }
            Keys.output(try await APIClient(url: connection.url).send(.PATCH, "/api/v1/keys/\(id)", json: body, as: KeyView.self), json: connection.json)
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key; calls with it get 401 at once, on every instance within a second.")
        @OptionGroup var connection: Connection
        @Argument(help: "The key's id (key_…).") var id: String
        func run() async throws {
            Keys.output(try await APIClient(url: connection.url).send(.POST, "/api/v1/keys/\(id)/revoke", as: KeyView.self), json: connection.json)
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give a key a new secret (same id, limits and history); the old secret stops working.")
        @OptionGroup var connection: Connection
        @Argument(help: "The key's id (key_…).") var id: String
        func run() async throws {
            Keys.output(try await APIClient(url: connection.url).send(.POST, "/api/v1/keys/\(id)/rotate", as: IssuedKey.self), json: connection.json)
        }
    }
}

enum KeyTable {
    static func limits(_ key: KeyView) -> String {
        key.limits.map { l in
            let unit = l.requests != nil ? "req" : "tok"
            return "\((l.requests ?? l.tokens).map { "\($0)" } ?? "?") \(unit)/\(l.per)"
        }.joined(separator: ", ")
    }

    static func budget(_ key: KeyView) -> String {
        guard let b = key.budget else { return "-" }
        return "$\(b.amountUSD)/\(b.period)"
    }

    static func render(_ keys: [KeyView]) -> String {
        let headers = ["ID", "ALIAS", "PREFIX", "STATUS", "LIMITS", "BUDGET", "CREATED"]
        let rows = keys.map { k in
            [k.id, k.alias ?? "-", k.prefix, k.status, limits(k).isEmpty ? "-" : limits(k), budget(k), String(k.createdAt.prefix(19))]
        }
        guard !rows.isEmpty else { return "(no keys: the gateway is in open mode)".dim }
        var widths = headers.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }
        return ([line(headers).bold] + rows.map { r in
            let text = line(r)
            return r[3] == "active" ? text : text.dim
        }).joined(separator: "\n")
    }

    static func describe(_ k: KeyView) -> String {
        func list(_ values: [String]) -> String { values.isEmpty ? "any" : values.joined(separator: ", ") }
        return [
            "ID:      \(k.id)", "Alias:   \(k.alias ?? "-")", "Prefix:  \(k.prefix)",
            "Status:  \(k.status)", "Models:  \(list(k.models))", "Routes:  \(list(k.routes))",
            "Limits:  \(limits(k).isEmpty ? "none" : limits(k))", "Budget:  \(budget(k))",
            "Expires: \(k.expiresAt ?? "never")",
        ].joined(separator: "\n")
    }
}

/// `gatehouse encrypt-secret`: a provider key encrypted for the configuration file.
struct EncryptSecret: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encrypt-secret",
        abstract: "Encrypt a provider key (read from standard input) with GATEHOUSE_ENCRYPTION_KEY, for `api_key: enc:v1:…` in the config.")

    func run() async throws {
        guard let text = ProcessInfo.processInfo.environment["GATEHOUSE_ENCRYPTION_KEY"], let key = EncryptionKeyParser.parse(text) else {
            throw CLIError("set GATEHOUSE_ENCRYPTION_KEY to 32 bytes (44 base64 or 64 hex characters), e.g. `openssl rand -base64 32`")
        }
        guard let line = readLine(strippingNewline: true)?.trimmingCharacters(in: .whitespaces), !line.isEmpty else {
            throw CLIError("pipe the secret on standard input, e.g. `printf %s \"$OPENAI_API_KEY\" | gatehouse encrypt-secret`")
        }
        print(try SecretBox.encrypt(line, key: key))
    }
}
