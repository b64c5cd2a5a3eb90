import Foundation
@testable import GatehouseStorage
import GatehouseTestSupport
import Testing

/// `gatehouse migrate` and `serve --no-migrate` as a rollout uses them (a Kubernetes Job or a
/// Compose one-shot before the servers), through the real binary, on SQLite and PostgreSQL.
@Suite struct MigrateEndToEndTests {
    enum Store: String, CaseIterable, CustomTestStringConvertible {
        case sqlite, postgres
        var testDescription: String { rawValue }

        /// A new, empty store of this kind.
        func fresh() throws -> String {
            switch self {
            case .sqlite: "sqlite://" + (try TestEnvironment.temporaryDirectory().appendingPathComponent("data/gatehouse.sqlite").path)
            case .postgres: try TestEnvironment.freshPostgresDatabase()
            }
        }
    }

    static func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, output: String) {
        let result = try await CLIEndToEndTests.run(arguments, environment: environment, seconds: 60)
        #expect(result.finished, "gatehouse \(arguments.joined(separator: " ")) still running")
        return (result.status, result.output)
    }

    /// `migrate --json`'s answer.
    struct Run: Decodable, Equatable {
        var from: Int64
        var to: Int64
        var applied: [Int]
    }

    static func decode(_ output: String) throws -> Run {
        // The JSON object is the last thing printed; progress lines go before it (stderr).
        guard let start = output.range(of: "{\n", options: .backwards)?.lowerBound else {
            throw ProcessRunner.Failure(message: "no JSON in:\n\(output)")
        }
        return try JSONDecoder().decode(Run.self, from: Data(output[start...].utf8))
    }

    /// Runs `sql` on the store with its own command-line client.
    static func execute(_ sql: String, on url: String) async throws {
        let result = url.hasPrefix("sqlite://")
            ? try await ProcessRunner.runAsync("/usr/bin/env", ["sqlite3", String(url.dropFirst("sqlite://".count)), sql])
            : try await ProcessRunner.runAsync("/usr/bin/env", ["psql", url, "-v", "ON_ERROR_STOP=1", "-qc", sql])
        guard result.status == 0 else { throw ProcessRunner.Failure(message: "\(sql) failed: \(result.output)") }
    }

    /// A server told not to migrate refuses a store it would have to migrate, and says what to
    /// run; `migrate` brings it up to date (and is a no-op the second time); then the server
    /// starts without migrating and serves. A store newer than the binary is refused by both.
    @Test(arguments: Store.allCases)
    func migrateThenServeWithoutMigrating(_ store: Store) async throws {
        let url = try store.fresh()
        let newest = Migrations.newestVersion

        for (arguments, environment) in [(["--no-migrate"], [String: String]()), ([], ["GATEHOUSE_MIGRATE": "false"])] {
            let refused = try await Self.run(["serve", "--port", "0", "--database-url", url] + arguments, environment: environment)
            #expect(refused.status == 1, "\(refused.output)")
            #expect(refused.output.contains("refusing to start: the database is at schema version 0 and this Gatehouse needs \(newest)")
                && refused.output.contains("run `gatehouse migrate`"), "\(refused.output)")
            #expect(!refused.output.contains("gatehouse is listening"))
        }

        let migrated = try await Self.run(["migrate", "--database-url", url, "--json"])
        #expect(migrated.status == 0, "\(migrated.output)")
        #expect(try Self.decode(migrated.output) == Run(from: 0, to: newest, applied: Array(1...Int(newest))), "the refusals changed nothing")
        let again = try await Self.run(["migrate", "--database-url", url])
        #expect(again.status == 0 && again.output.contains("schema is current at version \(newest); nothing to apply"), "\(again.output)")

        let server = try await GatehouseProcess.start(databaseURL: url, extraArguments: ["--no-migrate"])
        let ready = try await HTTP.get(server.baseURL + "/ready")
        #expect(ready.0 == 200)
        let call = try await HTTP.post(server.baseURL + "/v1/chat/completions", json: #"{"model":"mock/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#)
        #expect(call.status == 200)
        #expect(try await server.stop() == 0)

        // A store a newer Gatehouse migrated: neither command touches it.
        try await Self.execute("INSERT INTO gatehouse_migrations (version, name, applied_at) VALUES (\(newest + 1), 'from the future', 0)", on: url)
        let newer = try await Self.run(["serve", "--port", "0", "--no-migrate", "--database-url", url])
        #expect(newer.status == 1 && newer.output.contains("schema version \(newest + 1), newer than this Gatehouse knows"), "\(newer.output)")
        let refusedMigration = try await Self.run(["migrate", "--database-url", url])
        #expect(refusedMigration.status == 1 && refusedMigration.output.contains("newer than this Gatehouse knows"), "\(refusedMigration.output)")
    }

    /// Several `migrate` runs at once (a Job retried while its first pod still runs, two
    /// operators): every one exits 0, each version is applied exactly once, all report the end.
    @Test(arguments: Store.allCases)
    func concurrentMigrationsApplyEachVersionOnce(_ store: Store) async throws {
        let url = try store.fresh()
        let runs = try await withThrowingTaskGroup(of: (status: Int32, output: String).self) { group in
            for _ in 0..<4 { group.addTask { try await Self.run(["migrate", "--database-url", url, "--json"]) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        var applied: [Int] = []
        for run in runs {
            #expect(run.status == 0, "\(run.output)")
            let decoded = try Self.decode(run.output)
            #expect(decoded.to == Migrations.newestVersion, "\(run.output)")
            applied += decoded.applied
        }
        #expect(applied.sorted() == Array(1...Int(Migrations.newestVersion)), "\(runs.map(\.output))")
    }

    /// Whether some session holds an advisory lock in `url`'s database.
    static func advisoryLockHeld(_ url: String) async throws -> Bool {
        let result = try await ProcessRunner.runAsync("/usr/bin/env", ["psql", url, "-tAc",
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"])
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines) != "0"
    }

    /// A migration that takes long (a big store's partition copy) holds the lock; another
    /// `migrate` says it waits and waits for it, with no deadline of its own unless given
    /// `--timeout-seconds`, and reports which migrations it applies.
    @Test func migrateWaitsForAnotherMigrationWithoutADeadline() async throws {
        let url = try TestEnvironment.freshPostgresDatabase()
        // Another migration's session: the migration lock's key, held for 10 s.
        let holder = try ChildProcess(executable: "/usr/bin/env", arguments: [
            "psql", url, "-v", "ON_ERROR_STOP=1", "-c", "SELECT pg_advisory_lock(7263591034)", "-c", "SELECT pg_sleep(10)"])
        defer { Task { _ = try? await holder.stop(signal: SIGKILL) } }
        try await Poll.until("the test to hold the migration lock", timeout: .seconds(10)) { try await Self.advisoryLockHeld(url) }
        let held = ContinuousClock.now

        async let bounded = CLIEndToEndTests.run(["migrate", "--database-url", url, "--timeout-seconds", "2"], seconds: 30)
        async let patient = CLIEndToEndTests.run(["migrate", "--database-url", url, "--json"], seconds: 60)
        let (cutOff, waited) = try await (bounded, patient)

        #expect(cutOff.finished && cutOff.status == 1, "\(cutOff.output)")
        #expect(cutOff.output.contains("waiting for another migration") && cutOff.output.contains("within 2 seconds"), "\(cutOff.output)")
        #expect(cutOff.elapsed < .seconds(8), "--timeout-seconds 2 gave up after \(cutOff.elapsed)")

        #expect(waited.finished && waited.status == 0, "\(waited.output)")
        #expect(ContinuousClock.now - held > .seconds(9), "migrate finished before the lock was released")
        #expect(waited.output.contains("waiting for another migration"), "\(waited.output)")
        #expect(waited.output.contains("applying a database migration") && waited.output.contains("\"version\":\"\(Migrations.newestVersion)\""),
                "each migration is named as it starts: \(waited.output)")
        #expect(try Self.decode(waited.output) == Run(from: 0, to: Migrations.newestVersion, applied: Array(1...Int(Migrations.newestVersion))))
    }

    /// A TCP port that refuses connections for `delay` seconds, then forwards them to `target`:
    /// a PostgreSQL that comes up after the pods (a failover, a cluster starting).
    static let lateForwarder = """
        import socket, sys, threading, time
        delay, target = float(sys.argv[1]), int(sys.argv[2])
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        print("port", port, flush=True)
        time.sleep(delay)
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen(64)
        print("forwarding", flush=True)
        def pipe(source, sink):
            try:
                while True:
                    data = source.recv(65536)
                    if not data:
                        break
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                for s in (source, sink):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
        while True:
            client, _ = server.accept()
            upstream = socket.create_connection(("127.0.0.1", target))
            threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        """

    /// `serve --no-migrate` waits for its database as long as a migrating start does, instead of
    /// exiting after the ordinary 5 s connection wait (pods of a rollout during a failover).
    @Test func serveWithoutMigratingWaitsForTheDatabase() async throws {
        let direct = try TestEnvironment.freshPostgresDatabase()
        #expect(try await Self.run(["migrate", "--database-url", direct]).status == 0)
        guard var components = URLComponents(string: direct), let target = components.port else { throw ProcessRunner.Failure(message: "bad URL \(direct)") }
        let forwarder = try ChildProcess(executable: try TestEnvironment.python, arguments: ["-c", Self.lateForwarder, "8", "\(target)"])
        defer { Task { _ = try? await forwarder.stop(signal: SIGKILL) } }
        let line = try await forwarder.waitForLine(timeout: .seconds(20)) { $0.hasPrefix("port ") }
        components.port = Int(line.dropFirst("port ".count))
        let started = ContinuousClock.now
        let server = try await GatehouseProcess.start(databaseURL: components.string!, extraArguments: ["--no-migrate"])
        #expect(ContinuousClock.now - started > .seconds(7), "listened before the database was reachable")
        #expect(try await HTTP.get(server.baseURL + "/ready").0 == 200)
        #expect(try await server.stop() == 0)
    }

    /// A store a newer Gatehouse migrated is refused by every way of starting, and the refusal
    /// names both versions and the way back (restore the pre-upgrade backup).
    @Test(arguments: Store.allCases)
    func aNewerSchemaIsRefusedWithBothVersionsAndTheWayBack(_ store: Store) async throws {
        let url = try store.fresh()
        let newest = Migrations.newestVersion
        #expect(try await Self.run(["migrate", "--database-url", url]).status == 0)
        try await Self.execute("INSERT INTO gatehouse_migrations (version, name, applied_at) VALUES (\(newest + 1), 'from the future', 0)", on: url)
        for arguments in [["serve", "--port", "0", "--no-migrate"], ["serve", "--port", "0"], ["migrate"]] {
            let refused = try await Self.run(arguments + ["--database-url", url])
            #expect(refused.status == 1, "\(arguments): \(refused.output)")
            #expect(refused.output.contains("the database is at schema version \(newest + 1), newer than this Gatehouse knows (\(newest))")
                && refused.output.contains("docs/deployment.md"), "\(arguments): \(refused.output)")
            #expect(!refused.output.contains("gatehouse is listening"))
        }
    }

    /// Commands that only open the store offer only the store's options.
    @Test func storeCommandsOfferOnlyTheStoreOptions() async throws {
        for command in ["migrate", "backup"] {
            let help = try await Self.run([command, "--help"])
            #expect(help.status == 0)
            for option in ["--data-dir", "--database-url", "--config"] { #expect(help.output.contains(option), "\(command) --help lacks \(option)") }
            for option in ["--host", "--port", "Address to listen on"] { #expect(!help.output.contains(option), "\(command) --help offers \(option)") }
        }
        let serve = try await Self.run(["serve", "--help"])
        for option in ["--host", "--port", "--data-dir", "--database-url", "--config", "--no-migrate"] { #expect(serve.output.contains(option)) }
    }

    /// The store location comes from the same places as `serve`'s, and nothing else is needed:
    /// a data directory from GATEHOUSE_DATA_DIR, with no admin token or encryption key.
    @Test func migrateReadsTheStoreLocationLikeServe() async throws {
        let directory = try TestEnvironment.temporaryDirectory().appendingPathComponent("data")
        let result = try await Self.run(["migrate"], environment: ["GATEHOUSE_DATA_DIR": directory.path])
        #expect(result.status == 0 && result.output.contains("schema migrated from version 0 to \(Migrations.newestVersion)"), "\(result.output)")
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("gatehouse.sqlite").path))
        let unusable = try await Self.run(["migrate", "--database-url", "mysql://gatehouse:hunter2-secret@127.0.0.1/gatehouse"])
        #expect(unusable.status == 1 && unusable.output.contains("error: refusing to migrate") && !unusable.output.contains("hunter2-secret"), "\(unusable.output)")
    }
}
