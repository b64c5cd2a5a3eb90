import AsyncHTTPClient
import Foundation
import GatehouseAPI
import GatehouseTestSupport
import NIOCore
import Synchronization
import Testing

/// Three `gatehouse serve` processes with one configuration on one PostgreSQL database, under
/// concurrent load spread over all three, one of them stopped (SIGTERM) in the middle: the
/// production shape of docs/scaling.md. What is shared holds to its documented bound
/// (docs/controls/multi-instance.md, docs/controls/budgets.md, docs/alerts.md), and the store
/// keeps every answered call exactly once.
@Suite(.serialized) struct MultiInstanceEndToEndTests {
    /// A key's requests per day; leases are 5% of it (5 units), so with 3 instances the shared
    /// count may stop early by at most (3 − 1) × (5 − 1) = 8, never late.
    static let keyRequestsPerDay = 100
    static let budgetMicros = 900
    static let clientsPerInstance = 4

    @Test func threeInstancesShareLimitsBudgetsAndAlertsAndStoreEveryAnsweredCallOnce() async throws {
        try await Self.awayFromMidnightUTC()
        let database = try TestEnvironment.freshPostgresDatabase()
        let receiver = try await Receiver.start()
        let yaml = """
            recorder: {flush_interval_ms: 20}
            budgets:
              - name: customer
                scope: property.customer
                amount_usd: "0.\(String(format: "%06d", Self.budgetMicros))"
                period: day
            alerts:
              evaluation_interval_seconds: 1
              group_wait_seconds: 0
              group_interval_seconds: 1
              repeat_interval_seconds: 3600
              receivers:
                - {name: hook, webhook: {url: "\(receiver.baseURL)/hook"}}
              default_receiver: hook
              rules:
                - name: LoadArrived
                  expr: requests over 1m > 60
                  severity: low
            """
        let environment = ["GATEHOUSE_ADMIN_TOKEN": adminToken]
        // The first instance takes the alerts lease at its first round; keys exist before the
        // others start, so every instance knows them from its first call.
        let first = try await GatehouseProcess.start(yaml: yaml, databaseURL: database, environment: environment)
        let admin = TypedAPI(baseURL: first.baseURL, adminToken: adminToken)
        let limited = try await postExpecting(admin, "/api/v1/keys", body: KeyChanges(alias: .set("limited"), rpd: .set(Int64(Self.keyRequestsPerDay))),
                                              status: 201, as: IssuedKey.self)
        let spender = try await postExpecting(admin, "/api/v1/keys", body: KeyChanges(alias: .set("spender")), status: 201, as: IssuedKey.self)
        let instances = [first,
                         try await GatehouseProcess.start(yaml: yaml, databaseURL: database, environment: environment),
                         try await GatehouseProcess.start(yaml: yaml, databaseURL: database, environment: environment)]
        let limitedBody = chatBody("mock/gpt-4o-mini", maxTokens: 8)
        let spenderBody = chatBody("mock/gpt-4o-mini", maxTokens: 8, text: "spend")

        let tally = LoadTally()
        let started = ContinuousClock.now
        // Every client alternates the rate-limited key and the budgeted one, so both run out
        // while all three instances are busy.
        let clients = (0..<instances.count).flatMap { index in
            (0..<Self.clientsPerInstance).map { client in
                Task {
                    var n = client
                    while !tally.stopped {
                        n += 1
                        let isLimited = n % 2 == 0
                        let headers = isLimited
                            ? [("Authorization", "Bearer \(limited.key)")]
                            : [("Authorization", "Bearer \(spender.key)"), ("Gatehouse-Property-Customer", "big")]
                        do {
                            let (status, recordID) = try await Self.call(instances[index].baseURL, body: isLimited ? limitedBody : spenderBody, headers: headers)
                            tally.answer(instance: index, status: status, recordID: recordID)
                            if status != 200 && status != 429 { break }
                        } catch {
                            // The stopped instance closes its port: this client is done.
                            tally.fail(instance: index)
                            break
                        }
                    }
                }
            }
        }

        let victim: Int
        let notifiedAt: ContinuousClock.Instant
        var progress = ""
        do {
            // Mid-load: the alert has fired (so we know which instance leads) and calls keep coming.
            try await Poll.until("the alert's notification and 150 answers", timeout: .seconds(40)) {
                try await !receiver.received("/hook").isEmpty && tally.answeredCount >= 150
            }
            notifiedAt = .now
            progress = "notified after \(notifiedAt - started) and \(tally.answeredCount) answers"
            var leaders: [Int] = []
            for (index, instance) in instances.enumerated() {
                let rules = try await TypedAPI(baseURL: instance.baseURL, adminToken: adminToken).get("/api/v1/alerts/rules", as: AlertRulesAnswer.self)
                if rules.data.contains(where: { $0.state == .firing }) { leaders.append(index) }
            }
            #expect(leaders.count == 1, "one instance evaluates the rules: \(leaders)")
            // Stopping the leader hands the alert to a new evaluator with no memory of it, which
            // would notify again: that failover is not what this test is about.
            victim = try #require((0..<instances.count).last { !leaders.contains($0) })
            let exit = try await instances[victim].stop()
            #expect(exit == 0, "a stopped instance exits cleanly")
            let atStop = tally.answeredCount
            progress += ", instance \(victim + 1) stopped after \(ContinuousClock.now - started) and \(atStop) answers"
            try await Poll.until("150 more answers from the instances left", timeout: .seconds(40)) { tally.answeredCount >= atStop + 150 }
        } catch {
            tally.stop()
            let statuses = Dictionary(grouping: tally.answers.map(\.status)) { $0 }.mapValues(\.count)
            let notified = (try? await receiver.received("/hook").count) ?? -1
            let lines = first.child.output.suffix(15).joined(separator: "\n")
            Issue.record("load: answers \(statuses), \(tally.failures.count) without an answer; \(notified) notifications; the first instance's last lines:\n\(lines)")
            throw error
        }
        tally.stop()
        for client in clients { await client.value }
        let loadSeconds = Double((ContinuousClock.now - started).components.seconds)

        // Nobody else notifies: three more evaluation rounds on every instance after the first.
        try await Task.sleep(until: notifiedAt + .seconds(3))
        let notifications = try await receiver.received("/hook")
        #expect(notifications.count == 1, "one notification, not one per instance: \(notifications.count)")
        for (index, instance) in instances.enumerated() where index != victim {
            #expect(try await instance.stop() == 0)
        }
        try await receiver.stop()

        // The store after every instance has flushed.
        let rows = try await Self.storedCalls(database)
        let answers = tally.answers
        let failures = tally.failures
        let ids = rows.map(\.id)
        #expect(Set(ids).count == ids.count, "no call is stored twice: \(ids.count) rows, \(Set(ids).count) ids")
        #expect(Set(answers.map(\.status)).isSubset(of: [200, 429]), "\(Dictionary(grouping: answers.map(\.status)) { $0 }.mapValues(\.count))")
        let byID = Dictionary(rows.map { ($0.id, $0) }) { a, _ in a }
        let acknowledged = answers.filter { $0.status == 200 }
        #expect(acknowledged.allSatisfy { $0.recordID.flatMap { byID[$0] }?.status == 200 },
                "every acknowledged call is stored: \(acknowledged.filter { $0.recordID.flatMap { byID[$0] } == nil }.count) missing")
        let refused = answers.filter { $0.status == 429 }
        #expect(refused.allSatisfy { $0.recordID.flatMap { byID[$0] }?.status == 429 }, "refused calls are stored as refused")
        // A call the stopped instance took but whose answer never arrived may be stored: at most
        // one per client that lost its connection.
        #expect(rows.count >= answers.count && rows.count <= answers.count + failures.count,
                "\(rows.count) rows for \(answers.count) answers and \(failures.count) calls without an answer")
        let victimAcknowledged = acknowledged.filter { $0.instance == victim }
        #expect(!victimAcknowledged.isEmpty && victimAcknowledged.allSatisfy { $0.recordID.flatMap { byID[$0] } != nil },
                "the stopped instance lost none of its \(victimAcknowledged.count) acknowledged calls")

        // The key's limit: what PostgreSQL holds, across instances, never over; early by at most
        // (N − 1) × (lease − 1).
        let admitted = rows.filter { $0.keyID == limited.view.id && $0.status == 200 }.count
        #expect(admitted <= Self.keyRequestsPerDay && admitted >= Self.keyRequestsPerDay - 2 * 4,
                "admitted \(admitted) of \(Self.keyRequestsPerDay) across three instances")
        #expect(rows.contains { $0.keyID == limited.view.id && $0.status == 429 })

        // The budget: every call sets max_tokens, so it is never exceeded; it stops early by at
        // most (N − 1) leases (5% of it) plus one reservation per call in flight.
        let spent = rows.filter { $0.customer == "big" && $0.status == 200 }.map(\.costMicros).reduce(0, +)
        let reservation = Int((Double(spenderBody.utf8.count / 4) * 0.15 + 8 * 0.60).rounded(.up))
        let earlyBound = 2 * Self.budgetMicros / 20 + instances.count * Self.clientsPerInstance * reservation
        #expect(spent <= Self.budgetMicros && spent >= Self.budgetMicros - earlyBound,
                "spent \(spent) µ$ of \(Self.budgetMicros) (may stop \(earlyBound) early)")
        #expect(rows.contains { $0.customer == "big" && $0.status == 429 })
        print("multi-instance load: \(answers.count) answers (\(acknowledged.count) 2xx) and \(failures.count) cut off in \(loadSeconds) s (\(progress));",
              "key admitted \(admitted)/\(Self.keyRequestsPerDay); budget spent \(spent)/\(Self.budgetMicros) µ$")
    }

    /// One gateway call with a short deadline (a call takes milliseconds here): a call queued for
    /// a connection to the stopped instance would otherwise wait out a long deadline while the
    /// client retries the refused connect.
    static func call(_ baseURL: String, body: String, headers: [(String, String)]) async throws -> (status: Int, recordID: String?) {
        var request = HTTPClientRequest(url: baseURL + "/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(3))
        _ = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), response.headers.first(name: "Gatehouse-Record-Id"))
    }

    struct StoredCall {
        var id: String
        var status: Int
        var keyID: String
        var costMicros: Int
        var customer: String
    }

    /// Every row of `requests`, read straight from PostgreSQL (partitioned or not, the parent
    /// table answers for all its rows).
    static func storedCalls(_ database: String) async throws -> [StoredCall] {
        let query = "SELECT id, status, COALESCE(key_id, ''), cost_micros, COALESCE(properties->>'customer', '') FROM requests"
        let result = try await ProcessRunner.runAsync("/usr/bin/env", ["psql", database, "-v", "ON_ERROR_STOP=1", "-tA", "-F", "\t", "-c", query])
        guard result.status == 0 else { throw ProcessRunner.Failure(message: "reading requests failed: \(result.output)") }
        return try result.output.split(separator: "\n").map { line in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 5, let status = Int(f[1]), let cost = Int(f[3]) else { throw ProcessRunner.Failure(message: "unexpected row \(line)") }
            return StoredCall(id: f[0], status: status, keyID: f[2], costMicros: cost, customer: f[4])
        }
    }

    /// The limits here count per UTC day: a run that straddled midnight would count in two windows.
    static func awayFromMidnightUTC() async throws {
        let intoDay = Date().timeIntervalSince1970.truncatingRemainder(dividingBy: 86_400)
        if intoDay > 86_400 - 120 { try await Task.sleep(for: .seconds(86_400 - intoDay + 1)) }
    }
}

/// What the load's clients saw, shared between their tasks.
final class LoadTally: Sendable {
    struct Answer {
        var instance: Int
        var status: Int
        var recordID: String?
    }
    struct State {
        var answers: [Answer] = []
        var failures: [Int] = []
        var stopped = false
    }
    private let state = Mutex(State())

    func answer(instance: Int, status: Int, recordID: String?) {
        state.withLock { $0.answers.append(Answer(instance: instance, status: status, recordID: recordID)) }
    }
    func fail(instance: Int) { state.withLock { $0.failures.append(instance) } }
    func stop() { state.withLock { $0.stopped = true } }
    var stopped: Bool { state.withLock { $0.stopped } }
    var answers: [Answer] { state.withLock { $0.answers } }
    var failures: [Int] { state.withLock { $0.failures } }
    var answeredCount: Int { state.withLock { $0.answers.count } }
}
