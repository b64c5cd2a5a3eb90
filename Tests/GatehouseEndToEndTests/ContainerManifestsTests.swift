import Foundation
import GatehouseTestSupport
import Testing
import Yams

/// The container, Compose and Kubernetes files in `deploy/`, checked as far as a machine without
/// a Docker engine or a cluster allows: every file parses; every command and flag they give
/// `gatehouse` is one it has; every variable they set is one it reads, with values it accepts;
/// the Kubernetes objects pass the Kubernetes JSON schemas (kubernetes-validate, strict); the
/// Dockerfile passes hadolint; and the Compose shape (two instances behind nginx on one
/// PostgreSQL, migrated first) is run for real with these files' nginx.conf and commands.
@Suite struct ContainerManifestsTests {
    static let root = TestEnvironment.repositoryRoot
    static let deploy = root.appendingPathComponent("deploy")
    static var binary: String { TestEnvironment.gatehouseBinary }

    static func text(_ path: String) throws -> String { try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8) }

    /// Stand-ins for the secrets, valid in form (the placeholders in the examples are not).
    static let stubSecrets = [
        "GATEHOUSE_ADMIN_TOKEN": "stub-admin-token-0123456789abcdef",
        "GATEHOUSE_ENCRYPTION_KEY": Data(repeating: 7, count: 32).base64EncodedString(),
        "POSTGRES_PASSWORD": "stubpassword",
        // Gatehouse checks the form: an OpenAI key starts with "sk-", an Anthropic one with "sk-ant-".
        "OPENAI_API_KEY": "sk-stub-not-a-real-key",
        "ANTHROPIC_API_KEY": "sk-ant-stub-not-a-real-key",
        "GATEHOUSE_IMAGE": "gatehouse:0.1.0",
    ]

    /// A tool from the test venv (Tests/Support/requirements.txt).
    static func venvTool(_ name: String) throws -> String {
        URL(fileURLWithPath: try TestEnvironment.python).deletingLastPathComponent().appendingPathComponent(name).path
    }

    // MARK: - Commands and flags

    /// `gatehouse WORDS…` names a subcommand it has, and each `--flag` is in that subcommand's help.
    static func expectRealCommand(_ words: [String], _ source: String) async throws {
        let subcommand = try #require(words.first, "\(source): no command")
        let help = try await ProcessRunner.runAsync(binary, [subcommand, "--help"])
        #expect(help.status == 0 && help.output.contains("USAGE: gatehouse \(subcommand)"), "\(source): gatehouse has no subcommand \(subcommand)")
        for flag in words.dropFirst() where flag.hasPrefix("--") {
            #expect(help.output.contains(flag + " ") || help.output.contains(flag + "\n"), "\(source): gatehouse \(subcommand) has no \(flag)")
        }
    }

    /// Every variable name is read by `gatehouse` (the configuration loader or the CLI), or is a
    /// provider's standard key variable.
    static func expectReadVariables(_ names: some Sequence<String>, _ source: String) throws {
        let sources = try FileManager.default.subpathsOfDirectory(atPath: root.appendingPathComponent("Sources").path)
            .filter { $0.hasSuffix(".swift") }
            .map { try text("Sources/" + $0) }.joined()
        for name in names where name.hasPrefix("GATEHOUSE_") || name.hasSuffix("_API_KEY") {
            #expect(sources.contains("\"\(name)\""), "\(source): \(name) is read nowhere in Sources/")
        }
    }

    /// `check-config` with exactly this environment (and file): it must pass.
    static func checkConfig(_ environment: [String: String], config: String? = nil, _ source: String) async throws -> String {
        var arguments = ["check-config"]
        if let config {
            let file = try TestEnvironment.temporaryDirectory().appendingPathComponent("gatehouse.yaml")
            try config.write(to: file, atomically: true, encoding: .utf8)
            arguments += ["--config", file.path]
        }
        let result = try await CLIEndToEndTests.run(arguments, environment: environment)
        #expect(result.status == 0, "\(source): check-config refused it:\n\(result.output)")
        return result.output
    }

    // MARK: - Compose

    static func compose() throws -> [String: Any] {
        try #require(try Yams.load(yaml: text("deploy/compose/compose.yaml")) as? [String: Any])
    }

    /// `${NAME:?message}`, `${NAME:-default}` and `${NAME}` replaced as Compose would, from `values`.
    static func interpolate(_ text: String, _ values: [String: String]) -> String {
        var out = text
        while let match = out.firstMatch(of: /\$\{([A-Z0-9_]+)(?::([?-])([^}]*))?\}/) {
            let name = String(match.1)
            let value = values[name] ?? (match.2 == "-" ? String(match.3 ?? "") : "")
            out.replaceSubrange(match.range, with: value)
        }
        return out
    }

    /// The `.env.example` file's names and values.
    static func envExample() throws -> [String: String] {
        var values: [String: String] = [:]
        for line in try text("deploy/compose/.env.example").split(separator: "\n") where !line.hasPrefix("#") {
            // `NAME=` (an optional variable left empty) is a name with an empty value.
            let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2 { values[String(parts[0])] = String(parts[1]) }
        }
        return values
    }

    /// The services that run the Gatehouse image.
    static func gatehouseServices(_ compose: [String: Any]) throws -> [String: [String: Any]] {
        let services = try #require(compose["services"] as? [String: Any])
        return services.compactMapValues { $0 as? [String: Any] }.filter { ($0.value["image"] as? String)?.contains("GATEHOUSE_IMAGE") == true }
    }

    @Test func everyYAMLFileParses() throws {
        let files = ["deploy/compose/compose.yaml"] + (try FileManager.default.contentsOfDirectory(atPath: Self.deploy.appendingPathComponent("kubernetes").path))
            .filter { $0.hasSuffix(".yaml") }.map { "deploy/kubernetes/" + $0 }
        #expect(files.count >= 8)
        for file in files {
            let documents = Array(try Yams.load_all(yaml: Self.text(file)))
            #expect(!documents.isEmpty && documents.allSatisfy { $0 is [String: Any] }, "\(file)")
        }
    }

    /// Two servers (`serve --no-migrate`) after a one-shot `migrate`, after a healthy
    /// PostgreSQL 15 with a volume; nginx in front of exactly those two, once both are ready.
    @Test func composeIsTwoInstancesBehindNginxOnOnePostgres() async throws {
        let compose = try Self.compose()
        let services = try #require(compose["services"] as? [String: [String: Any]])
        let gatehouse = try Self.gatehouseServices(compose)
        #expect(Set(gatehouse.keys) == ["migrate", "gatehouse-1", "gatehouse-2"])

        let migrate = try #require(gatehouse["migrate"])
        #expect(migrate["command"] as? [String] == ["migrate"] && migrate["restart"] as? String == "no")
        #expect((migrate["depends_on"] as? [String: [String: String]])?["postgres"]?["condition"] == "service_healthy")
        for name in ["gatehouse-1", "gatehouse-2"] {
            let server = try #require(gatehouse[name])
            #expect(server["command"] as? [String] == ["serve", "--no-migrate"], "\(name)")
            let dependsOn = try #require(server["depends_on"] as? [String: [String: String]])
            #expect(dependsOn["migrate"]?["condition"] == "service_completed_successfully", "\(name)")
            let check = try #require((server["healthcheck"] as? [String: Any])?["test"] as? [String])
            #expect(check.first == "CMD" && check.dropFirst().first == "gatehouse" && check.contains("/ready"), "\(name): \(check)")
        }

        let postgres = try #require(services["postgres"])
        #expect(postgres["image"] as? String == "postgres:15")
        #expect((postgres["volumes"] as? [String])?.contains { $0.hasSuffix(":/var/lib/postgresql/data") } == true)
        #expect(((postgres["healthcheck"] as? [String: Any])?["test"] as? [String])?.joined(separator: " ").contains("pg_isready") == true)
        #expect((compose["volumes"] as? [String: Any])?.keys.contains("postgres-data") == true)

        let nginx = try #require(services["nginx"])
        #expect((nginx["image"] as? String)?.hasPrefix("nginx:") == true)
        // Published on the host's loopback only unless GATEHOUSE_PUBLISH says otherwise: the
        // port is plain HTTP, meant for a TLS load balancer or proxy on the same host.
        let published = try #require((nginx["ports"] as? [String])?.first)
        #expect(Self.interpolate(published, [:]) == "127.0.0.1:8080:8080", "\(published)")
        #expect((nginx["volumes"] as? [String])?.contains("./nginx.conf:/etc/nginx/nginx.conf:ro") == true)
        let nginxDepends = try #require(nginx["depends_on"] as? [String: [String: String]])
        #expect(nginxDepends.mapValues { $0["condition"] } == ["gatehouse-1": "service_healthy", "gatehouse-2": "service_healthy"])
        let conf = try Self.text("deploy/compose/nginx.conf")
        let upstreams = conf.matches(of: /server\s+([a-z0-9-]+):(\d+)/).map { "\($0.1):\($0.2)" }
        #expect(upstreams == ["gatehouse-1:8080", "gatehouse-2:8080"])
        // A recreated container gets a new address: nginx must look the names up again (Docker's
        // DNS at 127.0.0.11; `resolve` needs a shared-memory zone and nginx 1.27.3 or newer).
        #expect(conf.contains("resolver 127.0.0.11 valid=10s;"))
        #expect(conf.firstMatch(of: /upstream gatehouse \{[^}]*\n\s*zone gatehouse \d+k;/) != nil, "the upstream has a zone")
        #expect(conf.matches(of: /\n\s*server gatehouse-\d:8080 resolve\s/).count == 2, "each server line has `resolve`")
        let tag = try #require((nginx["image"] as? String)?.split(separator: ":").last)
        let version = tag.split(separator: ".").compactMap { Int($0) }
        #expect(version.count >= 2 && version.lexicographicallyPrecedes([1, 27, 3]) == false, "nginx \(tag) has no `resolve` in upstreams")
        for directive in ["proxy_buffering off;", "proxy_read_timeout 660s;", "proxy_http_version 1.1;"] {
            #expect(conf.contains(directive), "\(directive)")
        }
    }

    /// Docker's default json-file driver keeps every line forever: each service caps its logs.
    @Test func composeLogsAreRotated() throws {
        let services = try #require(try Self.compose()["services"] as? [String: [String: Any]])
        #expect(services.count == 5)
        for (name, service) in services {
            let logging = try #require(service["logging"] as? [String: Any], "\(name) has no logging:")
            let options = logging["options"] as? [String: String] ?? [:]
            #expect(logging["driver"] as? String == "json-file" && options["max-size"] != nil && options["max-file"] != nil, "\(name): \(logging)")
        }
    }

    /// The access log leaves out query strings (Sentry SDKs send `?sentry_key=…`, heartbeat pings
    /// `?token=…`), and X-Forwarded-Proto keeps an outer load balancer's `https`.
    @Test func nginxLogsNoQueryStringsAndKeepsAnOuterHTTPS() throws {
        let conf = try Self.text("deploy/compose/nginx.conf")
        let format = try #require(conf.firstMatch(of: /log_format\s+(\w+)\s+([^;]*);/), "a log_format")
        for variable in ["$request_uri", "$args", "$query_string", "$arg_", "$is_args"] {
            #expect(!format.2.contains(variable), "the log format has \(variable)")
        }
        #expect(format.2.firstMatch(of: /\$request(?![_a-z])/) == nil, "$request is the whole request line, query included")
        #expect(format.2.contains("$uri"))
        let accessLogs = conf.matches(of: /access_log\s+([^;]*);/).map { String($0.1) }
        #expect(!accessLogs.isEmpty && accessLogs.allSatisfy { $0.hasSuffix(" " + format.1) }, "\(accessLogs)")
        #expect(conf.contains("proxy_set_header X-Forwarded-Proto $forwarded_proto;"))
    }

    /// Each Gatehouse service's command and health check are real subcommands and flags.
    @Test func composeCommandsAreOnesGatehouseHas() async throws {
        for (name, service) in try Self.gatehouseServices(try Self.compose()) {
            try await Self.expectRealCommand(try #require(service["command"] as? [String]), "compose \(name)")
            if let check = (service["healthcheck"] as? [String: Any])?["test"] as? [String] {
                try await Self.expectRealCommand(Array(check.dropFirst(2)), "compose \(name) healthcheck")
            }
        }
    }

    /// The variables the services set are ones Gatehouse reads, `.env.example` defines every
    /// secret the file needs (with placeholders, not secrets), and the resulting environment,
    /// with stand-in secrets, is a configuration `check-config` accepts: PostgreSQL at `postgres`.
    @Test func composeEnvironmentIsOneGatehouseAccepts() async throws {
        let compose = try Self.compose()
        let composeText = try Self.text("deploy/compose/compose.yaml")
        let required = Set(composeText.matches(of: /\$\{([A-Z0-9_]+):\?/).map { String($0.1) })
        let example = try Self.envExample()
        #expect(required.isSubset(of: Set(example.keys)), "missing from .env.example: \(required.subtracting(example.keys))")
        #expect(Set(example.keys) == ["GATEHOUSE_IMAGE", "GATEHOUSE_ADMIN_TOKEN", "GATEHOUSE_ENCRYPTION_KEY", "POSTGRES_PASSWORD", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"])
        // Required secrets are visible placeholders; optional ones are empty (unset).
        for name in ["GATEHOUSE_ADMIN_TOKEN", "POSTGRES_PASSWORD"] {
            #expect(example[name]?.hasPrefix("replace-with-") == true, "\(name) in .env.example must be a visible placeholder")
        }
        for name in ["GATEHOUSE_ENCRYPTION_KEY", "ANTHROPIC_API_KEY"] { #expect(example[name] == "", "\(name) is optional") }
        #expect(example.values.allSatisfy { !$0.contains("sk-") })
        // The image is tagged by version, so an upgrade's build keeps the old image to go back to.
        #expect(composeText.contains("image: ${GATEHOUSE_IMAGE:?"), "GATEHOUSE_IMAGE is required")
        #expect(example["GATEHOUSE_IMAGE"]?.firstMatch(of: /^gatehouse:\d+\.\d+\.\d+$/) != nil, "\(example["GATEHOUSE_IMAGE"] ?? "")")

        // The servers get the secrets; the migration only the database (and log format).
        let services = try Self.gatehouseServices(compose)
        let migrateEnvironment = try #require(services["migrate"]?["environment"] as? [String: String])
        #expect(Set(migrateEnvironment.keys).isSubset(of: ["GATEHOUSE_DATABASE_URL", "GATEHOUSE_LOG_FORMAT"]), "\(migrateEnvironment.keys.sorted())")
        for name in ["gatehouse-1", "gatehouse-2"] {
            let environment = try #require(services[name]?["environment"] as? [String: String])
            #expect(environment["ANTHROPIC_API_KEY"] == "${ANTHROPIC_API_KEY:-}" && environment["OPENAI_API_KEY"] == "${OPENAI_API_KEY:-}", "\(name)")
            // Only for `enc:v1:` values in a mounted configuration file: optional.
            #expect(environment["GATEHOUSE_ENCRYPTION_KEY"] == "${GATEHOUSE_ENCRYPTION_KEY:-}", "\(name)")
            // .env.example copied and not edited: refused, naming the placeholder.
            let unedited = environment.mapValues { Self.interpolate($0, example) }
            let refused = try await CLIEndToEndTests.run(["check-config"], environment: unedited)
            #expect(refused.status != 0 && refused.output.contains("admin_token") && refused.output.contains("placeholder"), "\(refused.output)")
        }

        for (name, service) in services {
            let environment = try #require(service["environment"] as? [String: String], "\(name)")
            try Self.expectReadVariables(environment.keys, "compose \(name)")
            let resolved = environment.mapValues { Self.interpolate($0, Self.stubSecrets) }
            let output = try await Self.checkConfig(resolved, "compose \(name)")
            #expect(output.contains("postgres://gatehouse:") && output.contains("@postgres:5432/gatehouse"), "\(name): \(output)")
            #expect(!output.contains(Self.stubSecrets["POSTGRES_PASSWORD"]!) && !output.contains(Self.stubSecrets["GATEHOUSE_ADMIN_TOKEN"]!))
        }
    }

    /// nginx accepts the file (`nginx -t`), and the Compose shape works with it for real: two
    /// `serve --no-migrate` instances on one PostgreSQL that `gatehouse migrate` prepared, behind
    /// nginx with this nginx.conf (only the names, `resolve`, the listen address and the log's
    /// destination changed for this machine). Calls reach both instances, a stream comes through
    /// whole, the access log has no query string, an outer `https` reaches the console, and one
    /// instance stopping is not an outage.
    @Test func theComposeShapeRunsWithThisNginxConf() async throws {
        let database = try TestEnvironment.freshPostgresDatabase()
        let migrated = try await CLIEndToEndTests.run(["migrate", "--database-url", database], seconds: 60)
        #expect(migrated.status == 0, "\(migrated.output)")
        // As docs/deployment.md says to run them behind this nginx.
        let behindNginx = "gateway:\n  trust_forwarded_for: true\n"
        let first = try await GatehouseProcess.start(yaml: behindNginx, databaseURL: database, extraArguments: ["--no-migrate"])
        let second = try await GatehouseProcess.start(yaml: behindNginx, databaseURL: database, extraArguments: ["--no-migrate"])

        let directory = try TestEnvironment.temporaryDirectory()
        let port = try CLIEndToEndTests.closedPort()
        // Debian's nginx 1.22 has no `resolve` (1.27.3) and no Docker DNS: the local run takes
        // both out, with the names, the listen address and the log's destination.
        let accessLog = directory.appendingPathComponent("access.log")
        let conf = try Self.text("deploy/compose/nginx.conf")
            .replacing(/\n\s*resolver [^;]*;/, with: "")
            .replacingOccurrences(of: "server gatehouse-1:8080 resolve", with: "server 127.0.0.1:\(first.port)")
            .replacingOccurrences(of: "server gatehouse-2:8080 resolve", with: "server 127.0.0.1:\(second.port)")
            .replacingOccurrences(of: "listen 8080;", with: "listen 127.0.0.1:\(port);")
            .replacingOccurrences(of: "/tmp/", with: directory.path + "/")
            .replacingOccurrences(of: "access_log /dev/stdout", with: "access_log \(accessLog.path)")
        #expect(!conf.contains("server gatehouse-") && !conf.contains(" resolve ") && !conf.contains("resolver "), "the swap covered every server line")
        let file = directory.appendingPathComponent("nginx.conf")
        try conf.write(to: file, atomically: true, encoding: .utf8)
        let nginxBinary = "/usr/sbin/nginx"
        let check = try await ProcessRunner.runAsync(nginxBinary, ["-t", "-c", file.path, "-p", directory.path])
        #expect(check.status == 0 && check.output.contains("test is successful"), "\(check.output)")

        let nginx = try ChildProcess(executable: nginxBinary, arguments: ["-c", file.path, "-p", directory.path, "-g", "daemon off;"])
        let base = "http://127.0.0.1:\(port)"
        try await Poll.until("nginx to answer /ready", timeout: .seconds(20)) { (try? await HTTP.get(base + "/ready"))?.0 == 200 }

        let body = #"{"model":"mock/gpt-4o-mini","messages":[{"role":"user","content":"through nginx"}]}"#
        for _ in 0..<6 {
            #expect(try await HTTP.post(base + "/v1/chat/completions", json: body).status == 200)
        }
        #expect(accessLogCount(first, path: "/v1/chat/completions") > 0 && accessLogCount(second, path: "/v1/chat/completions") > 0, "both instances served")

        // A query-string secret reaches Gatehouse but not nginx's log.
        #expect(try await HTTP.get(base + "/health?sentry_key=query-secret-0123").0 == 200)
        let logged = try String(contentsOf: accessLog, encoding: .utf8)
        #expect(logged.contains("GET /health 200") && !logged.contains("query-secret"), "\(logged.suffix(400))")

        // Secure cookies: an outer load balancer's X-Forwarded-Proto: https reaches the console.
        let overTLS = try await HTTP.send(base + "/", method: .GET, headers: [("X-Forwarded-Proto", "https")], body: nil)
        #expect(overTLS.header("set-cookie")?.contains("Secure") == true, "\(overTLS.status) \(overTLS.headers)")
        let plain = try await HTTP.send(base + "/", method: .GET, headers: [("X-Forwarded-Proto", "ftp")], body: nil)
        #expect(plain.header("set-cookie").map { !$0.contains("Secure") } == true, "\(plain.status) \(plain.headers)")

        let stream = try await HTTP.post(base + "/v1/chat/completions",
                                         json: #"{"model":"mock/gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"stream through nginx"}]}"#)
        #expect(stream.status == 200 && stream.header("content-type")?.hasPrefix("text/event-stream") == true)
        let events = String(decoding: stream.body, as: UTF8.self)
        #expect(events.contains("data: [DONE]") && events.components(separatedBy: "data: ").count > 3, "\(events.prefix(400))")

        // One instance goes (a rollout, a crash): nginx sends every call to the other.
        #expect(try await first.stop() == 0)
        for _ in 0..<4 {
            #expect(try await HTTP.post(base + "/v1/chat/completions", json: body).status == 200)
        }
        _ = try await nginx.stop(signal: SIGQUIT)
        #expect(try await second.stop() == 0)
    }

    // MARK: - Dockerfile

    /// The Dockerfile's instructions, continuation lines joined, comments dropped.
    static func dockerfile() throws -> [(keyword: String, arguments: String)] {
        var instructions: [(String, String)] = []
        var pending = ""
        for line in try text("deploy/docker/Dockerfile").split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("#") || (trimmed.isEmpty && pending.isEmpty) { continue }
            if trimmed.hasSuffix("\\") {
                pending += trimmed.dropLast() + " "
                continue
            }
            let whole = pending + trimmed
            pending = ""
            guard let space = whole.firstIndex(of: " ") else { continue }
            instructions.append((whole[..<space].uppercased(), whole[whole.index(after: space)...].trimmingCharacters(in: .whitespaces)))
        }
        return instructions
    }

    @Test func theDockerfilePassesHadolint() async throws {
        let hadolint = try Self.venvTool("hadolint")
        let result = try await ProcessRunner.runAsync(hadolint, [Self.deploy.appendingPathComponent("docker/Dockerfile").path])
        #expect(result.status == 0 && result.output.isEmpty, "\(result.output)")
    }

    /// Multi-stage from the Swift image to Debian slim; the release build is scripts/package.sh's
    /// (static Swift runtime); a fixed non-root user; data in a volume; port 8080; SIGTERM; a
    /// health check on /health with a command the binary has; an environment `check-config` accepts.
    @Test func theDockerfileHasTheProductionShape() async throws {
        let instructions = try Self.dockerfile()
        func all(_ keyword: String) -> [String] { instructions.filter { $0.keyword == keyword }.map(\.arguments) }
        let stages = all("FROM")
        #expect(stages.count == 2 && stages[0].hasPrefix("swift:6.3") && stages[0].hasSuffix(" AS build") && stages[1] == "debian:bookworm-slim", "\(stages)")
        #expect(all("RUN").contains { $0.contains("scripts/package.sh") }, "the image's binary is the release tarball's")
        let package = try Self.text("scripts/package.sh")
        let build = try #require(package.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("build=(swift build") })
        for flag in ["-c release", "--product gatehouse", "--static-swift-stdlib"] { #expect(build.contains(flag), "package.sh builds with \(flag)") }

        let lastFrom = try #require(instructions.lastIndex { $0.keyword == "FROM" })
        let runtime = instructions[lastFrom...]
        let user = try #require(runtime.last { $0.keyword == "USER" }?.arguments)
        let uid = try #require(Int(user.split(separator: ":").first ?? ""), "USER is numeric (Kubernetes' runAsNonRoot checks it): \(user)")
        #expect(uid >= 1000)
        #expect(runtime.contains { $0.keyword == "RUN" && $0.arguments.contains("--uid \(uid)") })
        #expect(all("VOLUME") == [#"["/var/lib/gatehouse"]"#])
        #expect(all("EXPOSE") == ["8080"])
        #expect(all("STOPSIGNAL") == ["SIGTERM"])
        #expect(all("ENTRYPOINT") == [#"["gatehouse"]"#] && all("CMD") == [#"["serve"]"#])
        let healthcheck = try #require(all("HEALTHCHECK").first)
        let command = try #require(healthcheck.firstMatch(of: /CMD (\[.*\])/).map { String($0.1) })
        let words = try #require(try JSONSerialization.jsonObject(with: Data(command.utf8)) as? [String])
        #expect(words.first == "gatehouse" && words.contains("/health"), "\(words)")
        try await Self.expectRealCommand(Array(words.dropFirst()), "HEALTHCHECK")
        try await Self.expectRealCommand(["serve"], "CMD")

        var environment: [String: String] = [:]
        for env in all("ENV") {
            for pair in env.split(separator: " ") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { environment[String(parts[0])] = String(parts[1]) }
            }
        }
        #expect(environment["GATEHOUSE_HOST"] == "0.0.0.0" && environment["GATEHOUSE_DATA_DIR"] == "/var/lib/gatehouse")
        try Self.expectReadVariables(environment.keys, "Dockerfile ENV")
        let output = try await Self.checkConfig(environment, "Dockerfile ENV")
        #expect(output.contains(#"host: "0.0.0.0""#) && output.contains("sqlite:///var/lib/gatehouse/gatehouse.sqlite"), "\(output)")

        // The build context keeps what package.sh packs and leaves out build output and state.
        let ignored = try Self.text(".dockerignore").split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.isEmpty }
        for needed in ["Package.swift", "Sources", "scripts", "examples", "deploy", "Tests"] {
            #expect(!ignored.contains { needed.hasPrefix($0) }, "\(needed) is in the build context")
        }
        for left in [".git", ".build", ".venv", ".ci", "dist", "**/*.dump", "**/*.sqlite*", "**/*.gz", "**/.env*", "**/*.pem", "**/*.key", "gatehouse.yaml"] {
            #expect(ignored.contains(Substring(left)), "\(left) is left out")
        }
    }

    /// The health check, as the image runs it (GATEHOUSE_PORT, no URL), against a real server.
    @Test func theHealthcheckCommandAnswersFromARealServer() async throws {
        let gatehouse = try await GatehouseProcess.start()
        let health = try await CLIEndToEndTests.run(["healthcheck", "--path", "/health"], environment: ["GATEHOUSE_PORT": "\(gatehouse.port)"])
        #expect(health.status == 0 && health.output.contains("/health answered 200"), "\(health.output)")
        let ready = try await CLIEndToEndTests.run(["healthcheck", "--url", gatehouse.baseURL, "--path", "/ready"])
        #expect(ready.status == 0, "\(ready.output)")
        let missing = try await CLIEndToEndTests.run(["healthcheck", "--url", gatehouse.baseURL, "--path", "/no-such-path"])
        #expect(missing.status == 1 && missing.output.contains("answered 404"), "\(missing.output)")
        try await gatehouse.stop()
        let down = try await CLIEndToEndTests.run(["healthcheck", "--url", gatehouse.baseURL])
        #expect(down.status == 1 && down.output.contains("error: "), "\(down.output)")
    }

    // MARK: - Kubernetes

    /// `kubectl kustomize deploy/kubernetes`: the objects as `kubectl apply -k` would send them.
    static func kustomized() async throws -> (text: String, objects: [[String: Any]]) {
        let result = try await ProcessRunner.runAsync("/usr/bin/env", ["kubectl", "kustomize", Self.deploy.appendingPathComponent("kubernetes").path])
        #expect(result.status == 0, "\(result.output)")
        return (result.output, Array(try Yams.load_all(yaml: result.output)).compactMap { $0 as? [String: Any] })
    }

    static func object(_ objects: [[String: Any]], _ kind: String) throws -> [String: Any] {
        try #require(objects.first { $0["kind"] as? String == kind }, "no \(kind)")
    }

    /// Every object, the example Secret included, passes the Kubernetes 1.37 JSON schemas with
    /// unknown fields refused; a misspelt field in a copy fails (the checker does check).
    @Test func theManifestsPassTheKubernetesSchemas() async throws {
        let validate = try Self.venvTool("kubernetes-validate")
        let (text, objects) = try await Self.kustomized()
        #expect(Set(objects.compactMap { $0["kind"] as? String }) == ["ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "Job"])
        #expect(objects.allSatisfy { ($0["metadata"] as? [String: Any])?["namespace"] == nil }, "namespace-agnostic")
        let directory = try TestEnvironment.temporaryDirectory()
        let built = directory.appendingPathComponent("built.yaml")
        try text.write(to: built, atomically: true, encoding: .utf8)
        let secret = Self.deploy.appendingPathComponent("kubernetes/secret.example.yaml").path
        let result = try await ProcessRunner.runAsync(validate, ["--strict", built.path, secret])
        #expect(result.status == 0 && result.output.components(separatedBy: " passed for resource ").count == 7, "\(result.output)")

        let broken = directory.appendingPathComponent("broken.yaml")
        try text.replacingOccurrences(of: "  replicas: 2\n", with: "  replica: 2\n").write(to: broken, atomically: true, encoding: .utf8)
        let refused = try await ProcessRunner.runAsync(validate, ["--strict", broken.path])
        #expect(refused.status != 0 && refused.output.contains("replica"), "\(refused.output)")
    }

    /// The fields the deployment depends on: probes on the right paths and port, the security
    /// context, Secret references that the example Secret provides, selectors that select the
    /// pods, the migration Job with the same image, a command and configuration Gatehouse accepts.
    @Test func theManifestsHaveTheFieldsTheDeploymentNeeds() async throws {
        let (_, objects) = try await Self.kustomized()
        let deployment = try Self.object(objects, "Deployment")
        let spec = try #require(deployment["spec"] as? [String: Any])
        #expect(spec["replicas"] as? Int == 2)
        let template = try #require(spec["template"] as? [String: Any])
        let podLabels = try #require((template["metadata"] as? [String: Any])?["labels"] as? [String: String])
        #expect((spec["selector"] as? [String: Any])?["matchLabels"] as? [String: String] == podLabels.filter { $0.key != "app.kubernetes.io/part-of" })
        let pod = try #require(template["spec"] as? [String: Any])
        let podSecurity = try #require(pod["securityContext"] as? [String: Any])
        #expect(podSecurity["runAsNonRoot"] as? Bool == true && podSecurity["runAsUser"] as? Int == 10001, "the image's USER")
        let container = try #require((pod["containers"] as? [[String: Any]])?.first)
        let port = try #require((container["ports"] as? [[String: Any]])?.first)
        #expect(port["name"] as? String == "http" && port["containerPort"] as? Int == 8080)
        func probe(_ name: String) -> (path: String?, port: String?) {
            let get = (container[name] as? [String: Any])?["httpGet"] as? [String: Any]
            return (get?["path"] as? String, get?["port"] as? String)
        }
        #expect(probe("readinessProbe") == ("/ready", "http"))
        #expect(probe("livenessProbe") == ("/health", "http"))
        #expect(probe("startupProbe") == ("/health", "http"))
        let security = try #require(container["securityContext"] as? [String: Any])
        #expect(security["readOnlyRootFilesystem"] as? Bool == true && security["allowPrivilegeEscalation"] as? Bool == false)
        #expect((security["capabilities"] as? [String: Any])?["drop"] as? [String] == ["ALL"])
        let resources = try #require(container["resources"] as? [String: Any])
        #expect(resources["requests"] != nil && resources["limits"] != nil)

        // Secret references: each names the example Secret and one of its keys.
        let exampleSecret = try #require(try Yams.load(yaml: Self.text("deploy/kubernetes/secret.example.yaml")) as? [String: Any])
        let secretName = try #require((exampleSecret["metadata"] as? [String: Any])?["name"] as? String)
        let secretValues = try #require(exampleSecret["stringData"] as? [String: String])
        var environment: [String: String] = [:]
        var fromSecret: [String: String] = [:]
        var optionalFromSecret: Set<String> = []
        for variable in try #require(container["env"] as? [[String: Any]]) {
            let name = try #require(variable["name"] as? String)
            if let value = variable["value"] as? String { environment[name] = value }
            if let ref = (variable["valueFrom"] as? [String: Any])?["secretKeyRef"] as? [String: Any] {
                #expect(ref["name"] as? String == secretName, "\(name)")
                let key = try #require(ref["key"] as? String)
                #expect(secretValues[key] != nil, "\(name): the example Secret has no \(key)")
                fromSecret[name] = key
                if ref["optional"] as? Bool == true { optionalFromSecret.insert(name) }
            }
        }
        #expect(Set(fromSecret.keys).isSuperset(of: ["GATEHOUSE_ADMIN_TOKEN", "GATEHOUSE_ENCRYPTION_KEY", "GATEHOUSE_DATABASE_URL", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"]))
        // Required: the admin token and the database. The encryption key (only for `enc:v1:`
        // values in the ConfigMap) and the provider keys may be left out of the Secret.
        #expect(optionalFromSecret == ["GATEHOUSE_ENCRYPTION_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"])
        #expect(secretValues.values.allSatisfy { $0.contains("replace-with-") }, "the example Secret holds placeholders only")
        try Self.expectReadVariables(Array(environment.keys) + Array(fromSecret.keys), "Deployment env")

        // The command, and the configuration it reads (the ConfigMap at the path given).
        let arguments = try #require(container["args"] as? [String])
        #expect(arguments.starts(with: ["serve", "--no-migrate"]))
        try await Self.expectRealCommand(arguments, "Deployment args")
        let configPath = try #require(arguments.firstIndex(of: "--config").map { arguments[$0 + 1] })
        let mount = try #require((container["volumeMounts"] as? [[String: Any]])?.first { configPath.hasPrefix(($0["mountPath"] as? String ?? "?") + "/") })
        let volume = try #require((pod["volumes"] as? [[String: Any]])?.first { $0["name"] as? String == mount["name"] as? String })
        let configMap = try Self.object(objects, "ConfigMap")
        #expect((volume["configMap"] as? [String: Any])?["name"] as? String == (configMap["metadata"] as? [String: Any])?["name"] as? String)
        let file = try #require((configMap["data"] as? [String: String])?[(configPath as NSString).lastPathComponent])
        var resolved = environment
        for (name, key) in fromSecret {
            resolved[name] = name == "GATEHOUSE_DATABASE_URL" ? secretValues[key] : (Self.stubSecrets[name] ?? "stub")
        }
        let output = try await Self.checkConfig(resolved, config: file, "Deployment env + ConfigMap")
        #expect(output.contains(#"host: "0.0.0.0""#) && output.contains("postgres://gatehouse:"), "\(output)")

        // Service and PodDisruptionBudget select these pods.
        let service = try #require(Self.object(objects, "Service")["spec"] as? [String: Any])
        let serviceSelector = try #require(service["selector"] as? [String: String])
        #expect(serviceSelector.allSatisfy { podLabels[$0.key] == $0.value })
        #expect((service["ports"] as? [[String: Any]])?.first?["targetPort"] as? String == "http")
        let budget = try #require(Self.object(objects, "PodDisruptionBudget")["spec"] as? [String: Any])
        #expect(budget["minAvailable"] as? Int == 1)
        let budgetSelector = try #require((budget["selector"] as? [String: Any])?["matchLabels"] as? [String: String])
        #expect(!budgetSelector.isEmpty && budgetSelector.allSatisfy { podLabels[$0.key] == $0.value })

        // The migration: once, the same image, `gatehouse migrate` with the database URL only.
        let job = try #require(Self.object(objects, "Job")["spec"] as? [String: Any])
        let jobPod = try #require((job["template"] as? [String: Any])?["spec"] as? [String: Any])
        #expect(jobPod["restartPolicy"] as? String == "Never")
        let jobContainer = try #require((jobPod["containers"] as? [[String: Any]])?.first)
        #expect(jobContainer["image"] as? String == container["image"] as? String)
        let jobArguments = try #require(jobContainer["args"] as? [String])
        #expect(jobArguments == ["migrate"])
        try await Self.expectRealCommand(jobArguments, "Job args")
        let jobSecrets = (jobContainer["env"] as? [[String: Any]] ?? []).compactMap { ($0["valueFrom"] as? [String: Any])?["secretKeyRef"] as? [String: Any] }
        #expect(jobSecrets.map { $0["key"] as? String } == ["database-url"] && jobSecrets.allSatisfy { $0["name"] as? String == secretName })
        #expect((jobContainer["securityContext"] as? [String: Any])?["readOnlyRootFilesystem"] as? Bool == true)
    }
}
