import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import GatehouseAPI
import GatehouseCore
import Rainbow

/// Post-deploy checks of a deployment's health, store, AI health, usage API, CORS, rate limiting
/// and response time, with a table and an exit code CI can gate a deploy on.
struct Smoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a deployment: health, AI health, usage API, store readiness, CORS, rate limiting, response time.",
        discussion: "Exits 1 when any check fails, so CI can gate a deploy on it: gatehouse smoke https://gatehouse.example.com --origin https://app.example.com")

    @Argument(help: "The deployment's base URL.") var url: String
    @Option(help: "Check that CORS allows this browser origin.") var origin: String?
    @Option(help: "Slowest acceptable answer of the health and usage checks, in milliseconds.") var maxMs: Int = 1000
    @Option(help: "Send this many requests to --rate-limit-path and expect a 429 among them.") var rateLimitRequests: Int?
    @Option(help: "The path the rate-limit check calls.") var rateLimitPath = "/v1/chat/completions"
    @Option(help: "The JSON body the rate-limit check sends.") var rateLimitBody = #"{"model":"mock/gpt-4o-mini","messages":[{"role":"user","content":"smoke"}]}"#
    @Option(help: "A virtual key for the rate-limit check (Authorization: Bearer).") var key: String?
    @Option(help: "Path of the health check.") var healthPath = "/health"
    @Flag(help: "Print the results as JSON.") var json = false

    struct Check {
        var name: String
        var passed: Bool
        var detail: String
        var milliseconds: Double?
    }

    func run() async throws {
        // The admin token is sent only to the usage API; the other checks call what anyone may call.
        let client = APIClient(url: url)
        let base = client.base
        var checks: [Check] = []

        /// One call: status, headers, body, milliseconds, or why no answer came.
        var unreachable: (any Error)?
        func call(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: String? = nil)
            async -> (Int, HTTPHeaders, Data, Double, String?) {
            let started = ContinuousClock.now
            do {
                var request = try client.request(method, path)
                request.headers.remove(name: "Authorization")
                for (name, value) in headers { request.headers.add(name: name, value: value) }
                if let body { request.body = .bytes(ByteBuffer(string: body)) }
                let response = try await client.send(request)
                let data = try await client.collect(response, upTo: 8 * 1024 * 1024)
                let ms = Double(TimeExpressions.micros(ContinuousClock.now - started)) / 1000
                return (Int(response.status.code), response.headers, data, ms, nil)
            } catch {
                unreachable = unreachable ?? error
                return (0, [:], Data(), 0, "\(method) \(path): " + APIClient.noAnswer(error, timeout: .seconds(30)))
            }
        }
        let admin = client.token.map { [("Authorization", "Bearer \($0)")] } ?? []

        let (hs, _, _, hms, herr) = await call(.GET, healthPath)
        checks.append(Check(name: "health", passed: hs == 200, detail: herr ?? "GET \(healthPath) → \(hs)", milliseconds: herr == nil ? hms : nil))
        if herr != nil, let unreachable {
            // Nothing answers at the URL: every other check would fail the same way.
            try report(checks, base: base, summary: false)
            throw CLIError(APIClient.failure(unreachable, base: base, timeout: .seconds(30)))
        }
        checks.append(Check(name: "response time", passed: hms <= Double(maxMs),
                            detail: String(format: "health answered in %.1f ms (limit %d ms)", hms, maxMs), milliseconds: hms))

        let (rs, _, rbody, rms, rerr) = await call(.GET, "/ready")
        let store = (try? APIJSON.decode(ReadinessReport.self, from: rbody))?.store
        checks.append(Check(name: "store ready", passed: rs == 200, detail: rerr ?? "GET /ready → \(rs)\(store.map { " (\($0))" } ?? "")",
                            milliseconds: rerr == nil ? rms : nil))

        let (ahs, _, ahbody, ahms, aherr) = await call(.GET, "/api/v1/ai/health")
        let aiStatus = (try? APIJSON.decode(ProviderHealthReport.self, from: ahbody))?.status
        checks.append(Check(name: "AI health", passed: ahs == 200 && aiStatus != "down",
                            detail: aherr ?? "GET /api/v1/ai/health → \(ahs), status \(aiStatus ?? "?")", milliseconds: aherr == nil ? ahms : nil))

        let (us, _, ubody, ums, uerr) = await call(.GET, "/api/v1/ai/usage?from=-1h&interval=none", headers: admin)
        let totals = (try? APIJSON.decode(UsageReportView.self, from: ubody))?.totals
        checks.append(Check(name: "usage API", passed: us == 200 && totals != nil && ums <= Double(maxMs),
                            detail: uerr ?? "GET /api/v1/ai/usage → \(us)\(totals.map { ", \($0.requests) calls in the last hour" } ?? "")"
                                + (uerr == nil && ums > Double(maxMs) ? String(format: ", %.0f ms is over %d ms", ums, maxMs) : ""),
                            milliseconds: uerr == nil ? ums : nil))

        if let origin {
            let (cs, cheaders, _, cms, cerr) = await call(.OPTIONS, rateLimitPath, headers: [("Origin", origin), ("Access-Control-Request-Method", "POST"),
                                                                                             ("Access-Control-Request-Headers", "authorization, content-type")])
            let allowed = cheaders.first(name: "Access-Control-Allow-Origin")
            checks.append(Check(name: "CORS", passed: allowed == origin || allowed == "*",
                                detail: cerr ?? "preflight from \(origin) → \(cs), Access-Control-Allow-Origin: \(allowed ?? "(none)")"
                                    + (allowed == nil && cs == 404 ? " (add the origin to cors_allowed_origins or GATEHOUSE_CORS_ORIGINS)" : ""),
                                milliseconds: cerr == nil ? cms : nil))
        }

        if let n = rateLimitRequests {
            var statuses: [Int] = []
            var retryAfter: String?
            let auth = key.map { [("Authorization", "Bearer \($0)")] } ?? []
            var failure: String?
            for _ in 0..<max(1, n) {
                let (s, h, _, _, err) = await call(.POST, rateLimitPath, headers: [("Content-Type", "application/json")] + auth, body: rateLimitBody)
                if let err { failure = err; break }
                statuses.append(s)
                if s == 429 { retryAfter = h.first(name: "Retry-After"); break }
            }
            let limited = statuses.last == 429
            checks.append(Check(name: "rate limiting", passed: limited && retryAfter != nil,
                                detail: failure ?? (limited ? "429 after \(statuses.count) requests, Retry-After: \(retryAfter ?? "missing")"
                                                : "no 429 in \(statuses.count) requests (statuses: \(Set(statuses).sorted().map(String.init).joined(separator: ", ")))"),
                                milliseconds: nil))
        }

        try report(checks, base: base, summary: true)
        if checks.contains(where: { !$0.passed }) { throw ExitCode(1) }
    }

    /// The checks as a table, or as JSON with --json.
    func report(_ checks: [Check], base: String, summary: Bool) throws {
        if json {
            let rows = checks.map { SmokeReport.Row(check: $0.name, passed: $0.passed, detail: $0.detail, ms: $0.milliseconds.map { ($0 * 10).rounded() / 10 }) }
            let report = SmokeReport(url: base, passed: checks.allSatisfy(\.passed), checks: rows)
            print(String(decoding: try APIJSON.encode(report), as: UTF8.self))
        } else {
            let width = checks.map(\.name.count).max() ?? 10
            print("Smoke test of \(base)".bold)
            for c in checks {
                let mark = c.passed ? "PASS".green : "FAIL".red.bold
                print("\(mark)  \(c.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(c.detail)")
            }
            let failed = checks.filter { !$0.passed }.count
            if summary { print(failed == 0 ? "All \(checks.count) checks passed.".green : "\(failed) of \(checks.count) checks failed.".red.bold) }
        }
    }
}

/// `gatehouse smoke --json`: the checks as CI reads them.
struct SmokeReport: Encodable {
    struct Row: Encodable {
        var check: String
        var passed: Bool
        var detail: String
        /// Rounded to a tenth; null for a check that got no answer or times nothing.
        @Nullable var ms: Double?

        enum CodingKeys: String, CodingKey { case check, passed, detail, ms }
    }

    var url: String
    var passed: Bool
    var checks: [Row]

    enum CodingKeys: String, CodingKey { case url, passed, checks }
}
