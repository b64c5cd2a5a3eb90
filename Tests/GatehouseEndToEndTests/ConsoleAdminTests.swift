import Foundation
import GatehouseAPI
import GatehouseTestSupport
import Testing

/// The console's Manage pages as people use them: keys (a secret shown once), kill switches,
/// the audit log and accounts; the accounts API and `gatehouse users`. Every change is checked
/// where it takes effect (the gateway, the admin API, the audit log), and every refusal (viewer,
/// no CSRF token, open console) is checked to have changed nothing.
@Suite("Console keys, switches, audit and accounts")
struct ConsoleAdminTests {
    static let token = "console-admin-pages-token-0123456789"

    static func start(_ backend: Backend = .sqlite, token: String? = ConsoleAdminTests.token) async throws -> GatehouseProcess {
        try await GatehouseProcess.start(databaseURL: try backend.databaseURL(), environment: token.map { ["GATEHOUSE_ADMIN_TOKEN": $0] } ?? [:])
    }

    static func admin(_ gatehouse: GatehouseProcess) async throws -> ConsoleClient {
        let browser = ConsoleClient(port: gatehouse.port)
        let signedIn = try await browser.signIn(password: token)
        #expect(signedIn.status == 303, "sign-in with the admin token")
        return browser
    }

    static func chat(_ gatehouse: GatehouseProcess, secret: String? = nil, model: String = "mock/gpt-4o-mini") async throws -> HTTP.Reply {
        try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: chatBody(model, maxTokens: 8),
                            headers: secret.map { [("Authorization", "Bearer \($0)")] } ?? [])
    }

    static func auditEntries(_ gatehouse: GatehouseProcess) async throws -> [AuditRecord] {
        let (status, body) = try await HTTP.get(gatehouse.baseURL + "/api/v1/audit?limit=1000", headers: [("Authorization", "Bearer \(token)")])
        #expect(status == 200)
        return try APIJSON.decode(AuditPage.self, from: body).data
    }

    /// The first match of `pattern` in `text`: its first capture group when it has one.
    static func match(_ pattern: String, in text: String) throws -> String? {
        guard let found = text.firstMatch(of: try Regex(pattern)) else { return nil }
        let output = found.output
        return (output.count > 1 ? output[1].substring : output[0].substring).map(String.init)
    }

    static func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

    /// What a browser sends from the key form: every field, as filled in.
    static func keyForm(alias: String, models: String = "mock/*", rpm: String, budget: String, blocked: Bool = false) -> [(String, String)] {
        var form = [("alias", alias), ("models", models), ("limit_0", rpm), ("limit_unit_0", "requests"), ("limit_per_0", "minute"),
                    ("limit_1", ""), ("limit_unit_1", "requests"), ("limit_per_1", "minute"), ("max_parallel", ""),
                    ("budget_usd", budget), ("budget_period", "month"), ("budget_thresholds", "50, 80, 100"), ("expires_at", ""), ("tags", "")]
        if blocked { form.append(("blocked", "on")) }
        return form
    }

    @Test("keys: create shows the secret once, edit, block, rotate and revoke take effect at the gateway and are audited", arguments: Backend.allCases)
    func keyLifecycle(_ backend: Backend) async throws {
        let gatehouse = try await Self.start(backend)
        defer { Task { _ = try? await gatehouse.stop() } }
        let browser = try await Self.admin(gatehouse)

        let empty = try await browser.get("/keys")
        #expect(empty.status == 200 && empty.html.contains("No virtual keys yet") && empty.html.contains("href=\"/keys/new\""))
        #expect(try await browser.get("/keys/new").html.contains("action=\"/keys\""))

        let created = try await browser.post("/keys", form: Self.keyForm(alias: "web-frontend", rpm: "60", budget: "25"), csrfFrom: "/keys/new")
        #expect(created.status == 200 && created.html.contains("Key created"), "the answer to the form is the page with the secret")
        let secret = try #require(try Self.match("gh-[0-9A-Za-z]{40}", in: created.html))
        let id = try #require(try Self.match("href=\"/keys/(key_[0-9a-z]+)\"", in: created.html))
        #expect(Self.count(secret, in: created.html) == 1, "shown once")
        #expect(try await Self.chat(gatehouse, secret: secret).status == 200, "the new key works at once")
        #expect(try await Self.chat(gatehouse).status == 401, "once a key exists, calls need one")

        let stored = try await TypedAPI(baseURL: gatehouse.baseURL, adminToken: Self.token).get("/api/v1/keys/\(id)", as: KeyView.self)
        #expect(stored.alias == "web-frontend" && stored.models == ["mock/*"] && stored.limits == [KeyRateLimit(requests: 60, per: "minute")])
        #expect(stored.budget == KeyBudgetView(amountUSD: "25.000000", period: "month", softThresholds: [0.5, 0.8, 1.0]))

        let list = try await browser.get("/keys")
        #expect(list.html.contains("web-frontend") && list.html.contains(String(secret.prefix(7)) + "…") && list.html.contains("60 req/minute"))
        #expect(list.html.contains("$25") && list.html.contains("<span class=\"pill good\">active</span>"))
        let page = try await browser.get("/keys/\(id)")
        #expect(page.status == 200 && page.html.contains("value=\"web-frontend\"") && page.html.contains("action=\"/keys/\(id)/rotate\""))
        #expect(page.html.contains("href=\"/requests?key=\(id)"), "a key links to its requests")
        for html in [list.html, page.html] { #expect(!html.contains(secret), "the secret is never shown again") }

        // An edit sends every field; only what changed is saved and audited.
        let edited = try await browser.post("/keys/\(id)", form: Self.keyForm(alias: "web-frontend", rpm: "120", budget: "30"), csrfFrom: "/keys/\(id)")
        #expect(edited.status == 303 && edited.location?.hasPrefix("/keys/\(id)?ok=Saved") == true, "\(edited.location ?? "")")
        #expect(try await browser.get(edited.location ?? "/").html.contains("Saved: limits, budget."))
        let unchanged = try await browser.post("/keys/\(id)", form: Self.keyForm(alias: "web-frontend", rpm: "120", budget: "30"), csrfFrom: "/keys/\(id)")
        #expect(unchanged.location == "/keys/\(id)?ok=Nothing%20changed.")
        let mistake = try await browser.post("/keys/\(id)", form: Self.keyForm(alias: "web-frontend", rpm: "120", budget: "-5"), csrfFrom: "/keys/\(id)")
        #expect(mistake.status == 303 && mistake.location?.contains("error=") == true)
        let after = try await TypedAPI(baseURL: gatehouse.baseURL, adminToken: Self.token).get("/api/v1/keys/\(id)", as: KeyView.self)
        #expect(after.limits == [KeyRateLimit(requests: 120, per: "minute")] && after.budget?.amountUSD == "30.000000", "a refused edit changed nothing")

        _ = try await browser.post("/keys/\(id)", form: Self.keyForm(alias: "web-frontend", rpm: "120", budget: "30", blocked: true), csrfFrom: "/keys/\(id)")
        #expect(try await Self.chat(gatehouse, secret: secret).status == 403, "blocked in the console, refused at the gateway")
        _ = try await browser.post("/keys/\(id)", form: Self.keyForm(alias: "web-frontend", rpm: "120", budget: "30"), csrfFrom: "/keys/\(id)")
        #expect(try await Self.chat(gatehouse, secret: secret).status == 200)

        let rotated = try await browser.post("/keys/\(id)/rotate", form: [], csrfFrom: "/keys/\(id)")
        #expect(rotated.status == 200 && rotated.html.contains("New secret for web-frontend"))
        let newSecret = try #require(try Self.match("gh-[0-9A-Za-z]{40}", in: rotated.html))
        #expect(newSecret != secret)
        #expect(try await Self.chat(gatehouse, secret: secret).status == 401, "the old secret stops at once")
        #expect(try await Self.chat(gatehouse, secret: newSecret).status == 200)

        let revoked = try await browser.post("/keys/\(id)/revoke", form: [], csrfFrom: "/keys/\(id)")
        #expect(revoked.status == 303 && revoked.location?.hasPrefix("/keys/\(id)?ok=Revoked") == true)
        #expect(try await Self.chat(gatehouse, secret: newSecret).status == 401)
        let revokedPage = try await browser.get("/keys/\(id)")
        #expect(revokedPage.html.contains("This key is revoked") && !revokedPage.html.contains("action=\"/keys/\(id)/rotate\""))
        #expect(try await browser.get("/keys?status=revoked").html.contains("<span class=\"pill bad\">revoked</span>"))
        #expect(try await browser.get("/keys?status=active").html.contains("No active keys."))

        let missing = try await browser.get("/keys/key_doesnotexist")
        #expect(missing.status == 404 && missing.html.contains("no key with id key_doesnotexist"))
        #expect(try await browser.post("/keys/key_doesnotexist/revoke", form: [], csrfFrom: "/keys").status == 404)

        let audit = try await Self.auditEntries(gatehouse)
        #expect(audit.map(\.action) == ["key.revoke", "key.rotate", "key.update", "key.update", "key.update", "key.create"])
        #expect(audit.allSatisfy { $0.actor == "console:admin-token" && $0.target == id })
        let firstEdit = try #require(audit.last { $0.action == "key.update" })
        guard case .object(let details) = firstEdit.details, case .object(let changes)? = details["changes"] else {
            Issue.record("key.update details: \(firstEdit.details)")
            return
        }
        #expect(changes.keys.sorted() == ["budget", "limits"], "only what changed is recorded")
        let auditText = String(decoding: try APIJSON.encode(audit), as: UTF8.self)
        #expect(!auditText.contains(secret) && !auditText.contains(newSecret))
    }

    @Test("kill switches: set with a reason and lift from the console, applied at once and audited", arguments: Backend.allCases)
    func switches(_ backend: Backend) async throws {
        let gatehouse = try await Self.start(backend)
        defer { Task { _ = try? await gatehouse.stop() } }
        let browser = try await Self.admin(gatehouse)
        #expect(try await browser.get("/switches").html.contains("No kill switch is set"))

        let set = try await browser.post("/switches", form: [("kind", "model"), ("value", "mock/gpt-4o-mini"), ("reason", "provider incident #42"),
                                                              ("retry_after", "")], csrfFrom: "/switches")
        #expect(set.status == 303 && set.location?.hasPrefix("/switches?ok=") == true, "\(set.location ?? "")")
        let refused = try await Self.chat(gatehouse)
        #expect(refused.status == 403 && String(decoding: refused.body, as: UTF8.self).contains("provider incident #42"))
        let page = try await browser.get("/switches")
        #expect(page.html.contains("mock/gpt-4o-mini") && page.html.contains("provider incident #42") && page.html.contains("action=\"/switches/lift\""))
        let listed = try await TypedAPI(baseURL: gatehouse.baseURL, adminToken: Self.token).get("/api/v1/switches", as: SwitchList.self).data
        #expect(listed.map(\.kind) == ["model"] && listed.first?.reason == "provider incident #42")

        let lifted = try await browser.post("/switches/lift", form: [("kind", "model"), ("value", "mock/gpt-4o-mini")], csrfFrom: "/switches")
        #expect(lifted.status == 303 && lifted.location?.hasPrefix("/switches?ok=Lifted") == true)
        #expect(try await Self.chat(gatehouse).status == 200)
        let again = try await browser.post("/switches/lift", form: [("kind", "model"), ("value", "mock/gpt-4o-mini")], csrfFrom: "/switches")
        #expect(again.location?.contains("error=") == true, "lifting what is not set says so")

        _ = try await browser.post("/switches", form: [("kind", "maintenance"), ("value", ""), ("reason", "database upgrade"), ("retry_after", "120")],
                                   csrfFrom: "/switches")
        let maintenance = try await Self.chat(gatehouse)
        #expect(maintenance.status == 503 && maintenance.header("retry-after") == "120")
        #expect(try await browser.get("/switches").html.contains("Maintenance is on"))
        _ = try await browser.post("/switches/lift", form: [("kind", "maintenance"), ("value", "")], csrfFrom: "/switches")
        #expect(try await Self.chat(gatehouse).status == 200)

        for (form, why) in [([("kind", "laser"), ("value", "x")], "unknown kind"), ([("kind", "property"), ("value", "acme")], "property without name="),
                            ([("kind", "maintenance"), ("retry_after", "0")], "Retry-After out of range"), ([("kind", "model"), ("value", "")], "no value")] {
            let mistake = try await browser.post("/switches", form: form, csrfFrom: "/switches")
            #expect(mistake.status == 303 && mistake.location?.contains("error=") == true, "\(why): \(mistake.location ?? "")")
        }
        #expect(try await TypedAPI(baseURL: gatehouse.baseURL, adminToken: Self.token).get("/api/v1/switches", as: SwitchList.self).data.isEmpty)

        // "Switch off…" from a key's page fills the form in.
        let prefilled = try await browser.get("/switches?kind=key&value=key_abc123")
        #expect(prefilled.html.contains("<option value=\"key\" selected>") && prefilled.html.contains("value=\"key_abc123\""))

        let audit = try await Self.auditEntries(gatehouse)
        #expect(audit.map(\.action) == ["switch.remove", "switch.set", "switch.remove", "switch.set"])
        #expect(audit.map(\.target) == ["maintenance:", "maintenance:", "model:mock/gpt-4o-mini", "model:mock/gpt-4o-mini"])
        #expect(audit.allSatisfy { $0.actor == "console:admin-token" })
    }

    @Test("the audit log: newest first, filters by actor, action and target in the URL, pages by id")
    func auditLog() async throws {
        let gatehouse = try await Self.start()
        defer { Task { _ = try? await gatehouse.stop() } }
        let api = TypedAPI(baseURL: gatehouse.baseURL, adminToken: Self.token)
        for i in 0..<55 {
            _ = try await postExpecting(api, "/api/v1/switches", body: SwitchChange(kind: "model", value: "model-\(i)"), status: 201, as: SwitchView.self)
        }
        let browser = try await Self.admin(gatehouse)
        _ = try await browser.post("/switches", form: [("kind", "provider"), ("value", "upstream-x"), ("reason", "from the console")], csrfFrom: "/switches")
        let rows = "<td title="

        let all = try await browser.get("/audit")
        #expect(all.status == 200 && Self.count(rows, in: all.html) == 50)
        let consoleRow = try #require(all.html.range(of: "provider:upstream-x")), apiRow = try #require(all.html.range(of: "model:model-54"))
        #expect(consoleRow.lowerBound < apiRow.lowerBound, "newest first")
        #expect(all.html.contains("console:admin-token") && all.html.contains("admin-token:"), "who: the console account and the API token")
        #expect(all.html.contains("href=\"/switches\""), "a target links to its page")

        let byActor = try await browser.get("/audit?actor=console%3A")
        #expect(Self.count(rows, in: byActor.html) == 1 && byActor.html.contains("value=\"console:\"") && byActor.html.contains("provider:upstream-x"))

        let firstPage = try await browser.get("/audit?action=switch.set&actor=admin-token%3A")
        #expect(Self.count(rows, in: firstPage.html) == 50 && !firstPage.html.contains("provider:upstream-x"))
        let older = try #require(try Self.match("href=\"(/audit\\?[^\"]*before=[0-9]+[^\"]*)\"", in: firstPage.html))
        #expect(older.contains("actor=admin-token%3A") && older.contains("action=switch.set"), "paging keeps the filters: \(older)")
        let secondPage = try await browser.get(older.replacingOccurrences(of: "&amp;", with: "&"))
        #expect(Self.count(rows, in: secondPage.html) == 5 && secondPage.html.contains("model:model-0") && secondPage.html.contains("← Newest"))
        #expect(!secondPage.html.contains("Older →"))

        let byTarget = try await browser.get("/audit?target=model-7")
        #expect(Self.count(rows, in: byTarget.html) == 1 && byTarget.html.contains("model:model-7"))
        let none = try await browser.get("/audit?action=account.")
        #expect(Self.count(rows, in: none.html) == 0 && none.html.contains("No audit entries match these filters"))
    }

    /// Regression: `AuditRecord.action` was an enum of the six key and switch actions, so the
    /// audit API broke its own contract as soon as an account or a console change was logged.
    @Test("the audit API answers account and console changes within its contract")
    func auditAPIKeepsItsContractForEveryAction() async throws {
        let gatehouse = try await Self.start()
        defer { Task { _ = try? await gatehouse.stop() } }
        let api = TypedAPI(baseURL: gatehouse.baseURL, adminToken: Self.token)
        _ = try await postExpecting(api, "/api/v1/users", body: NewAccount(email: "ada@example.com", role: "viewer"), status: 201, as: CreatedAccount.self)
        let browser = try await Self.admin(gatehouse)
        _ = try await browser.post("/switches", form: [("kind", "model"), ("value", "mock/old"), ("reason", "retired")], csrfFrom: "/switches")

        let entries = try await api.get("/api/v1/audit", as: AuditPage.self).data
        #expect(entries.map(\.action) == ["switch.set", "account.create"])
        #expect(entries.map(\.actor).first == "console:admin-token" && entries.last?.actor.hasPrefix("admin-token:") == true)

        // The API filters as the console's /audit does: actor and target contain, action starts with.
        func actions(_ query: String) async throws -> [String] { try await api.get("/api/v1/audit?" + query, as: AuditPage.self).data.map(\.action) }
        #expect(try await actions("actor=CONSOLE%3A") == ["switch.set"])
        #expect(try await actions("actor=admin-token") == ["switch.set", "account.create"], "both actors hold the text")
        #expect(try await actions("action=account.") == ["account.create"])
        #expect(try await actions("action=create").isEmpty, "an action matches from its start")
        #expect(try await actions("target=mock%2Fold&action=switch") == ["switch.set"])
        #expect(try await actions("target=%25").isEmpty, "% is matched literally")
        let filteredPage = try await api.get("/api/v1/audit?limit=1&actor=admin-token", as: AuditPage.self)
        #expect(filteredPage.data.map(\.action) == ["switch.set"] && filteredPage.nextBefore == filteredPage.data.first?.id)
        #expect(try await actions("actor=admin-token&before=\(filteredPage.nextBefore ?? 0)") == ["account.create"], "pages within the matches")
        let tooLong = try await api.failure(.GET, "/api/v1/audit?target=" + String(repeating: "x", count: 201))
        #expect(tooLong.status == 400 && tooLong.error.error.param == "target")
        try await api.verifyContract()

        // The console's page reads the same filters from the store.
        let page = try await browser.get("/audit?action=ACCOUNT.")
        #expect(page.html.contains("account.create") && !page.html.contains("mock/old") && page.html.contains("href=\"/accounts\""))
    }

    @Test("the accounts API: create (password generated once), list, delete; emails checked and unique; every change audited", arguments: Backend.allCases)
    func accountsAPI(_ backend: Backend) async throws {
        let gatehouse = try await Self.start(backend)
        defer { Task { _ = try? await gatehouse.stop() } }
        let api = TypedAPI(baseURL: gatehouse.baseURL, adminToken: Self.token)

        let created = try await postExpecting(api, "/api/v1/users", body: NewAccount(email: " Ada@Example.COM ", role: "viewer"), status: 201,
                                              as: CreatedAccount.self)
        #expect(created.view.email == "ada@example.com" && created.view.role == "viewer" && !created.view.disabled && created.view.id.hasPrefix("usr_"))
        let password = try #require(created.password)
        #expect(password.count == 20 && created.note != nil)
        let chosen = try await postExpecting(api, "/api/v1/users", body: NewAccount(email: "grace@example.com", role: "admin", password: "correct horse battery"),
                                             status: 201, as: CreatedAccount.self)
        #expect(chosen.password == nil && chosen.note == nil, "a password given is never echoed")

        let mistakes: [(body: String, status: Int, param: String?)] = [
            (#"{"email":"ADA@example.com","role":"admin"}"#, 409, "email"),
            (#"{"email":"not-an-email","role":"viewer"}"#, 400, "email"),
            (#"{"role":"viewer"}"#, 400, "email"),
            (#"{"email":"bob@example.com","role":"owner"}"#, 400, "role"),
            (#"{"email":"bob@example.com","role":"viewer","password":"short"}"#, 400, "password"),
            (#"{"email":"bob@example.com","role":"viewer","admin":true}"#, 400, "admin"),
            (#"{"email":42,"role":"viewer"}"#, 400, "email"),
            (#"["bob@example.com"]"#, 400, nil),
        ]
        for mistake in mistakes {
            let refused = try await api.failure(.POST, "/api/v1/users", body: Data(mistake.body.utf8))
            #expect(refused.status == mistake.status && refused.error.error.param == mistake.param, "\(mistake.body): \(refused.error.error)")
        }
        #expect(try await api.failure(.POST, "/api/v1/users", body: Data(#"{"email":"ADA@example.com","role":"admin"}"#.utf8)).error.error.code == "email_taken")
        let listed = try await api.get("/api/v1/users", as: AccountList.self).data
        #expect(listed.map(\.email) == ["ada@example.com", "grace@example.com"])
        let listText = String(decoding: try await api.raw(.GET, "/api/v1/users").body, as: UTF8.self)
        #expect(!listText.contains("scrypt") && !listText.contains(password) && !listText.contains("correct horse"))

        // The generated password signs in to the console, as a viewer.
        let ada = ConsoleClient(port: gatehouse.port)
        #expect(try await ada.signIn(email: "ada@example.com", password: password).status == 303)
        #expect(try await ada.get("/").html.contains("ada@example.com · viewer"))

        let deleted = try await api.send(.DELETE, "/api/v1/users/\(created.view.id)", as: AccountDeletion.self)
        #expect(deleted.deleted.email == "ada@example.com")
        #expect(try await ada.get("/").status == 303, "deleting an account ends its sessions")
        #expect(try await api.failure(.DELETE, "/api/v1/users/\(created.view.id)").status == 404)
        #expect(try await TypedAPI(baseURL: gatehouse.baseURL).failure(.GET, "/api/v1/users").status == 401, "the admin token is needed")
        #expect(try await TypedAPI(baseURL: gatehouse.baseURL, adminToken: "wrong").failure(.POST, "/api/v1/users",
                                                                                           body: Data(#"{"email":"eve@example.com","role":"admin"}"#.utf8)).status == 401)
        #expect(try await api.get("/api/v1/users", as: AccountList.self).data.map(\.email) == ["grace@example.com"])
        try await api.verifyContract()

        let audit = try await Self.auditEntries(gatehouse)
        #expect(audit.map(\.action) == ["account.delete", "account.create", "account.create"])
        #expect(audit.allSatisfy { $0.actor.hasPrefix("admin-token:") })
        #expect(audit.last?.details == .object(["email": .string("ada@example.com"), "role": .string("viewer"), "password_generated": .bool(true)]))
        #expect(!String(decoding: try APIJSON.encode(audit), as: UTF8.self).contains(password))
    }

    @Test("accounts page: an admin creates and deletes accounts; a viewer sees no forms and is refused; no CSRF token changes nothing")
    func accountsPageAndRoles() async throws {
        let gatehouse = try await Self.start()
        defer { Task { _ = try? await gatehouse.stop() } }
        let browser = try await Self.admin(gatehouse)
        #expect(try await browser.get("/accounts").html.contains("No accounts yet"))

        let created = try await browser.post("/accounts", form: [("email", "Lin@Example.com"), ("role", "admin"), ("password", "")], csrfFrom: "/accounts")
        #expect(created.status == 200 && created.html.contains("Account created") && created.html.contains("lin@example.com"))
        let password = try #require(try Self.match("id=\"account-password\">([A-Za-z0-9]{20})<", in: created.html))
        let viewerCreated = try await browser.post("/accounts", form: [("email", "vic@example.com"), ("role", "viewer"), ("password", "a long viewer passphrase")],
                                                   csrfFrom: "/accounts")
        #expect(viewerCreated.status == 303 && viewerCreated.location?.hasPrefix("/accounts?ok=Created") == true)
        let duplicate = try await browser.post("/accounts", form: [("email", "vic@example.com"), ("role", "admin"), ("password", "")], csrfFrom: "/accounts")
        #expect(duplicate.location?.contains("error=") == true && duplicate.location?.contains("exists") == true)
        let list = try await browser.get("/accounts")
        #expect(list.html.contains("lin@example.com") && list.html.contains("vic@example.com") && !list.html.contains(password))

        // The new admin signs in with the generated password; their changes carry their name.
        let lin = ConsoleClient(port: gatehouse.port)
        #expect(try await lin.signIn(email: "lin@example.com", password: password).status == 303)
        _ = try await lin.post("/switches", form: [("kind", "model"), ("value", "mock/old-model"), ("reason", "retired")], csrfFrom: "/switches")
        #expect(try await Self.auditEntries(gatehouse).first?.actor == "console:lin@example.com")
        let api = TypedAPI(baseURL: gatehouse.baseURL, adminToken: Self.token)
        let ids = Dictionary(uniqueKeysWithValues: try await api.get("/api/v1/users", as: AccountList.self).data.map { ($0.email, $0.id) })
        let linID = try #require(ids["lin@example.com"]), vicID = try #require(ids["vic@example.com"])
        #expect(try await lin.get("/accounts").html.contains("lin@example.com <span class=\"pill\">you</span>"))
        let selfDelete = try await lin.post("/accounts/\(linID)/delete", form: [], csrfFrom: "/accounts")
        #expect(selfDelete.location?.contains("error=") == true, "nobody deletes the account they are signed in with")

        // A viewer sees the pages without forms, and the server refuses their posts.
        let vic = ConsoleClient(port: gatehouse.port)
        #expect(try await vic.signIn(email: "vic@example.com", password: "a long viewer passphrase").status == 303)
        for path in ["/keys", "/switches", "/accounts", "/keys/new"] {
            let page = try await vic.get(path)
            #expect(page.status == 200 && !page.html.contains("method=\"post\" action=\"/keys\"") && !page.html.contains("action=\"/switches\"")
                    && !page.html.contains("action=\"/accounts\""), "\(path) shows a viewer no forms")
        }
        #expect(try await vic.get("/keys").html.contains("An admin can create one here"))
        var refusals: [Int] = []
        refusals.append(try await vic.post("/keys", form: Self.keyForm(alias: "sneaky", rpm: "", budget: ""), csrfFrom: "/keys").status)
        refusals.append(try await vic.post("/switches", form: [("kind", "maintenance")], csrfFrom: "/switches").status)
        refusals.append(try await vic.post("/accounts", form: [("email", "eve@example.com"), ("role", "admin")], csrfFrom: "/accounts").status)
        refusals.append(try await vic.post("/accounts/\(linID)/delete", form: [], csrfFrom: "/accounts").status)
        // An admin's forms without their CSRF token.
        refusals.append(try await browser.post("/switches", form: [("kind", "maintenance")], includeCSRF: false).status)
        refusals.append(try await browser.post("/accounts", form: [("email", "eve@example.com"), ("role", "admin")], includeCSRF: false).status)
        #expect(refusals == [403, 403, 403, 403, 403, 403])
        #expect(try await api.get("/api/v1/keys", as: KeyList.self).data.isEmpty)
        #expect(try await api.get("/api/v1/switches", as: SwitchList.self).data.map(\.value) == ["mock/old-model"])
        #expect(try await api.get("/api/v1/users", as: AccountList.self).data.map(\.email) == ["lin@example.com", "vic@example.com"])

        let deleted = try await browser.post("/accounts/\(vicID)/delete", form: [], csrfFrom: "/accounts")
        #expect(deleted.status == 303 && deleted.location?.hasPrefix("/accounts?ok=Deleted") == true)
        #expect(try await vic.get("/keys").status == 303, "the deleted viewer is signed out")
        #expect(try await browser.post("/accounts/usr_nope/delete", form: [], csrfFrom: "/accounts").status == 404)
        let audit = try await Self.auditEntries(gatehouse)
        #expect(audit.map(\.action) == ["account.delete", "switch.set", "account.create", "account.create"])
        #expect(audit[0].actor == "console:admin-token" && audit[0].target == vicID)
    }

    @Test("without an admin token the pages are read-only, say so, and refuse changes")
    func openConsoleIsReadOnly() async throws {
        let gatehouse = try await Self.start(token: nil)
        defer { Task { _ = try? await gatehouse.stop() } }
        let browser = ConsoleClient(port: gatehouse.port)
        // Keys, accounts and the audit log stay behind the token, as the admin API does without one.
        for path in ["/keys", "/audit", "/accounts", "/keys/new"] {
            let page = try await browser.get(path)
            #expect(page.status == 403 && page.html.contains("GATEHOUSE_ADMIN_TOKEN"), "\(path)")
        }
        for path in ["/switches"] {
            let page = try await browser.get(path)
            #expect(page.status == 200 && page.html.contains("Open console.") && page.html.contains("GATEHOUSE_ADMIN_TOKEN"), "\(path)")
            #expect(!page.html.contains("action=\"/switches\"") && !page.html.contains("action=\"/accounts\"") && !page.html.contains("Create key</button>"),
                    "\(path) shows no forms")
        }
        // The open console's forms carry the double-submit token its cookie holds.
        let csrf = try #require(browser.cookie("gatehouse-csrf"))
        let refused = try await browser.post("/switches", form: [("kind", "maintenance"), ("_csrf", csrf)])
        #expect(refused.status == 403 && refused.html.contains("admin token"))
        #expect(try await browser.post("/keys", form: Self.keyForm(alias: "x", rpm: "", budget: "") + [("_csrf", csrf)]).status == 403)
        #expect(try await Self.chat(gatehouse).status == 200, "no switch was set, no key was created")
    }

    @Test("gatehouse users create, list and delete through the admin API")
    func usersCLI() async throws {
        let gatehouse = try await Self.start()
        defer { Task { _ = try? await gatehouse.stop() } }
        var environment = ProcessInfo.processInfo.environment
        environment["GATEHOUSE_ADMIN_TOKEN"] = Self.token
        environment["GATEHOUSE_URL"] = gatehouse.baseURL
        environment["NO_COLOR"] = "1"
        func users(_ arguments: [String], input: String? = nil) async throws -> (status: Int32, output: String) {
            try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["users"] + arguments, environment: environment, input: input.map { Data($0.utf8) })
        }

        let generated = try await users(["create", "--email", "Kim@Example.com", "--role", "admin"])
        #expect(generated.status == 0 && generated.output.contains("Created kim@example.com (admin"), "\(generated.output)")
        let password = try #require(try Self.match("Password: ([A-Za-z0-9]{20})", in: generated.output))
        let kim = ConsoleClient(port: gatehouse.port)
        #expect(try await kim.signIn(email: "kim@example.com", password: password).status == 303, "the printed password signs in")

        let piped = try await users(["create", "--email", "lee@example.com", "--role", "viewer", "--password-stdin"], input: "a piped passphrase here\n")
        #expect(piped.status == 0 && !piped.output.contains("Password:"), "\(piped.output)")
        #expect(try await ConsoleClient(port: gatehouse.port).signIn(email: "lee@example.com", password: "a piped passphrase here").status == 303)

        let duplicate = try await users(["create", "--email", "lee@example.com", "--role", "admin"])
        #expect(duplicate.status == 1 && duplicate.output.contains("error: Gatehouse answered 409: an account with the email lee@example.com exists"))
        let badRole = try await users(["create", "--email", "x@example.com", "--role", "owner"])
        #expect(badRole.status != 0)

        let list = try await users(["list"])
        #expect(list.status == 0 && list.output.contains("kim@example.com") && list.output.contains("lee@example.com") && list.output.contains("viewer"))
        let deleted = try await users(["delete", "lee@example.com"])
        #expect(deleted.status == 0 && deleted.output.contains("Deleted lee@example.com"), "\(deleted.output)")
        let json = try await users(["list", "--json"])
        let accounts = try APIJSON.decode(AccountList.self, from: Data(json.output.utf8)).data
        #expect(accounts.map(\.email) == ["kim@example.com"])
        let gone = try await users(["delete", "usr_nope"])
        #expect(gone.status == 1 && gone.output.contains("404"))

        environment["GATEHOUSE_URL"] = "http://127.0.0.1:\(try CLIEndToEndTests.closedPort())"
        let unreachable = try await users(["list"])
        #expect(unreachable.status == 1 && unreachable.output.contains("is not reachable at"), "\(unreachable.output)")
    }
}
