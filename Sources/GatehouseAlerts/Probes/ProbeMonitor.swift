import AsyncHTTPClient
import Foundation
import GatehouseCore
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// Runs the configured HTTP probes and watches the heartbeats; their up/down state feeds the
/// `probe_down` signal, `/api/v1/probes` and the `gatehouse_probe_*` gauges.
public actor ProbeMonitor: Service {
    public struct State: Sendable, Equatable {
        public var name: String
        public var kind: String
        /// nil until the first check (or ping) decides.
        public var up: Bool?
        public var since: Int64?
        public var lastCheckMicros: Int64?
        public var lastLatencyMicros: Int64?
        public var lastError: String?
        public var consecutiveFailures = 0
    }

    /// How long each check is kept: the uptime pages' longest figure is 30 days, and a day
    /// more keeps that figure whole between the hourly prunes.
    public static let resultRetentionMicros: Int64 = 31 * 86_400_000_000

    let probes: [ProbeConfig]
    let heartbeats: [HeartbeatConfig]
    let store: any AlertStore
    let client: HTTPClient
    let logger: Logger
    private var probeStates: [String: State] = [:]
    /// The failures reported to this process, also kept here: the store write can fail for the
    /// very reason the backup did (a full disk), and DOWN must not wait for the missed interval.
    private var reportedFailures: [String: HeartbeatFailure] = [:]
    private let startedMicros = TimeExpressions.nowMicros()

    public init(probes: [ProbeConfig], heartbeats: [HeartbeatConfig], store: any AlertStore, client: HTTPClient, logger: Logger) {
        self.probes = probes
        self.heartbeats = heartbeats
        self.store = store
        self.client = client
        self.logger = logger
        for p in probes { probeStates[p.name] = State(name: p.name, kind: "http") }
    }

    public func run() async throws {
        guard !probes.isEmpty || !heartbeats.isEmpty else {
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for probe in self.probes {
                    group.addTask {
                        while !Task.isCancelled {
                            await self.check(probe)
                            // A cancelled sleep ends the loop: it is not a pause.
                            do { try await Task.sleep(for: .seconds(probe.intervalSeconds)) } catch { break }
                        }
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        try? await self.store.pruneProbeResults(beforeMicros: TimeExpressions.nowMicros() - Self.resultRetentionMicros)
                        do { try await Task.sleep(for: .seconds(3600)) } catch { break }
                    }
                }
            }
        }
    }

    /// Every probe's and heartbeat's current state.
    /// Throws when the heartbeats cannot be read, so a store hiccup is not taken for "all up".
    public func states(nowMicros: Int64 = TimeExpressions.nowMicros()) async throws -> [State] {
        var result = probes.compactMap { probeStates[$0.name] }
        if !heartbeats.isEmpty {
            let pings = try await store.heartbeats()
            // Only Gatehouse's own jobs report failures; other heartbeats are judged by pings alone.
            var failures = heartbeats.contains(where: \.isBuiltIn) ? try await store.heartbeatFailures() : [:]
            for (name, failure) in reportedFailures where failure.atMicros > failures[name]?.atMicros ?? .min { failures[name] = failure }
            for h in heartbeats {
                var s = State(name: h.name, kind: "heartbeat")
                let allowed = Int64(h.intervalSeconds + h.graceSeconds) * 1_000_000
                if h.isBuiltIn, let failure = failures[h.name], failure.atMicros > pings[h.name] ?? .min {
                    s.lastCheckMicros = pings[h.name]
                    s.up = false
                    s.lastError = failure.error
                } else if let last = pings[h.name] {
                    s.lastCheckMicros = last
                    s.up = nowMicros - last <= allowed
                    if s.up == false { s.lastError = "no ping for \((nowMicros - last) / 1_000_000)s (expected every \(h.intervalSeconds)s + \(h.graceSeconds)s grace)" }
                } else if nowMicros - startedMicros > allowed {
                    // A job that never called in since Gatehouse started is down too.
                    s.up = false
                    s.lastError = "no ping since Gatehouse started \((nowMicros - startedMicros) / 1_000_000)s ago"
                }
                Gauge(label: "gatehouse_heartbeat_up", dimensions: [("heartbeat", h.name)]).record(s.up == false ? 0 : 1)
                result.append(s)
            }
        }
        return result
    }

    /// The job behind a built-in heartbeat (a scheduled backup) ended: a success pings it, a
    /// failure turns it DOWN at once with `failure` until a newer ping. Both go to the store, so
    /// a restarted server still sees them.
    public func builtInJobReported(_ name: String, atMicros: Int64, failure: String?) async throws {
        if let failure {
            let reported = HeartbeatFailure(name: name, atMicros: atMicros, error: failure)
            reportedFailures[name] = reported
            try await store.recordHeartbeatFailure(reported)
        } else {
            try await store.recordHeartbeat(name: name, atMicros: atMicros)
        }
    }

    /// One check: request, expectations, state change after `retries` failures in a row.
    func check(_ probe: ProbeConfig) async {
        let started = ContinuousClock.now
        let at = TimeExpressions.nowMicros()
        var status: Int?
        var failure: String?
        do {
            var request = HTTPClientRequest(url: probe.url)
            request.method = HTTPMethod(rawValue: probe.method)
            for (name, value) in probe.headers { request.headers.add(name: name, value: value) }
            if let body = probe.body {
                if !probe.headers.keys.contains(where: { $0.lowercased() == "content-type" }) { request.headers.add(name: "Content-Type", value: "application/json") }
                request.body = .bytes(ByteBuffer(string: body))
            }
            let response = try await client.execute(request, timeout: .milliseconds(Int64(probe.timeoutMilliseconds)))
            let body = try await response.body.collect(upTo: 1024 * 1024)
            status = Int(response.status.code)
            failure = Self.expectationFailure(probe, status: Int(response.status.code), body: Array(body.readableBytesView))
        } catch {
            failure = Self.describe(error, timeoutMilliseconds: probe.timeoutMilliseconds)
        }
        let latency = TimeExpressions.micros(ContinuousClock.now - started)
        if failure == nil, probe.maxResponseMilliseconds > 0, latency > Int64(probe.maxResponseMilliseconds) * 1000 {
            failure = "answered in \(latency / 1000) ms, over the \(probe.maxResponseMilliseconds) ms allowed"
        }
        try? await store.recordProbeResults([ProbeResult(probe: probe.name, timestampMicros: at, up: failure == nil, status: status,
                                                         latencyMicros: latency, error: failure)])
        var s = probeStates[probe.name] ?? State(name: probe.name, kind: "http")
        s.lastCheckMicros = at
        s.lastLatencyMicros = latency
        s.lastError = failure
        s.consecutiveFailures = failure == nil ? 0 : s.consecutiveFailures + 1
        let newUp: Bool? = failure == nil ? true : (s.consecutiveFailures >= probe.retries ? false : s.up)
        if newUp != s.up {
            if let newUp {
                logger.log(level: newUp ? .notice : .warning, "probe \(newUp ? "UP" : "DOWN")",
                           metadata: ["probe": "\(probe.name)", "error": "\(failure ?? "")"])
            }
            s.up = newUp
            s.since = at
        }
        probeStates[probe.name] = s
        Gauge(label: "gatehouse_probe_up", dimensions: [("probe", probe.name)]).record(s.up == false ? 0 : 1)
        Gauge(label: "gatehouse_probe_duration_seconds", dimensions: [("probe", probe.name)]).record(Double(latency) / 1_000_000)
        Counter(label: "gatehouse_probe_checks_total", dimensions: [("probe", probe.name), ("result", failure == nil ? "success" : "failure")]).increment()
    }

    /// Why a response does not meet the probe's expectations; nil when it does.
    static func expectationFailure(_ probe: ProbeConfig, status: Int, body: [UInt8]) -> String? {
        let statusOK = probe.expectedStatus.isEmpty ? (200..<300).contains(status) : probe.expectedStatus.contains(status)
        if !statusOK {
            return "status \(status), expected \(probe.expectedStatus.isEmpty ? "2xx" : probe.expectedStatus.map(String.init).joined(separator: " or "))"
        }
        if let text = probe.expectedBody, !String(decoding: body, as: UTF8.self).contains(text) { return "the body does not contain \"\(text)\"" }
        if let path = probe.expectedJSONPath, let expected = probe.expectedJSONValue {
            guard let object = try? JSONSerialization.jsonObject(with: Data(body)) else { return "the body is not JSON (expected \(path) = \(expected))" }
            var current: Any? = object
            for part in path.split(separator: ".") {
                if let dict = current as? [String: Any] { current = dict[String(part)] } else if let array = current as? [Any], let i = Int(part), i < array.count {
                    current = array[i]
                } else { current = nil }
            }
            let actual: String? = switch current {
            case let s as String: s
            // JSON true/false arrive as numbers; compare them as the words the rule wrote.
            case let n as NSNumber: expected == "true" || expected == "false" ? (n.boolValue ? "true" : "false") : n.stringValue
            case nil: nil
            default: "\(current!)"
            }
            if actual != expected { return "\(path) is \(actual.map { "\"\($0)\"" } ?? "missing"), expected \"\(expected)\"" }
        }
        return nil
    }

    static func describe(_ error: any Error, timeoutMilliseconds: Int) -> String {
        if let e = error as? HTTPClientError, e == .deadlineExceeded || e == .readTimeout || e == .connectTimeout {
            return "no answer within \(timeoutMilliseconds) ms"
        }
        let text = "\(error)"
        if text.contains("connectionRefused") || text.contains("Connection refused") { return "connection refused" }
        return String(text.prefix(300))
    }
}
