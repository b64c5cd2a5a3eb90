import GatehouseCore
import GatehouseHTTP
import Hummingbird
import Synchronization

/// `/status`: the public status page. No sign-in, read-only, and only the probes and heartbeats
/// marked `public: true`: their names, up or down, uptime and recent incidents; never URLs or
/// errors. With none public it answers 404.
struct StatusPage: Sendable {
    let console: Console
    var deps: ConsoleDependencies { console.deps }
    /// Anyone may ask, so an answer is reused for 30 seconds rather than read each time: the
    /// page reads 30 days of checks, and probes run every 30 s or more, so nothing is lost. The
    /// page says when it was read ("as of").
    static let maxAgeMicros: Int64 = 30_000_000
    let cache = RecentAnswer(maxAgeMicros: StatusPage.maxAgeMicros)

    static let incidentsShown = 5
    static let incidentSpanMicros: Int64 = 30 * 86_400_000_000

    func addRoutes(to r: APIRouter.AccessGroup) {
        r.get("/status") { _, _ in await answer() }
    }

    struct MonitorRow {
        var name: String
        var dot: String
        var status: String
        var uptime: [UptimeCell]
        var incidents: [Incident]
        var hasIncidents: Bool
    }

    struct Incident {
        var started: String
        var duration: String
        var ongoing: Bool
    }

    func answer() async -> Response {
        let now = TimeExpressions.nowMicros()
        if let recent = cache.answer(at: now) { return recent }
        let response: Response
        do {
            response = try await render(now: now)
        } catch {
            Console.logger.error("status page failed", metadata: ["error": "\(Redactor.scrubText(String(describing: error)))"])
            return console.renderer.page("status", ["unavailable": true], status: .serviceUnavailable)
        }
        cache.keep(response, at: now)
        return response
    }

    func render(now: Int64) async throws -> Response {
        let shown = deps.about.publicProbes
        guard !shown.isEmpty else { return console.renderer.page("status", ["missing": true], status: .notFound) }
        let states = try await deps.probes.states(nowMicros: now).filter { shown.contains($0.name) }
        let probes = states.filter { $0.kind == "http" }.map(\.name)
        async let windows = UptimeWindows.read(deps.alertStore, probes: probes, now: now)
        async let incidents = deps.alertStore.probeIncidents(probes: probes, fromMicros: now - Self.incidentSpanMicros, toMicros: now,
                                                              limit: Self.incidentsShown * max(probes.count, 1))
        let figures = try await windows
        let byProbe = Dictionary(grouping: try await incidents, by: \.probe)
        let rows = states.map { s in
            let incidents = (byProbe[s.name] ?? []).prefix(Self.incidentsShown).map { i in
                Incident(started: Format.dateTime(i.startedMicros), duration: Format.duration(micros: (i.endedMicros ?? now) - i.startedMicros),
                         ongoing: i.endedMicros == nil)
            }
            return MonitorRow(name: s.name, dot: UptimeWindows.dot(s.up), status: UptimeWindows.status(s.up),
                              uptime: figures.cells(s.name, isProbe: s.kind == "http"), incidents: incidents, hasIncidents: !incidents.isEmpty)
        }
        let down = states.filter { $0.up == false }.count
        return console.renderer.page("status", [
            "monitors": rows, "anyIncidents": rows.contains { $0.hasIncidents }, "updated": Format.dateTime(now),
            "overall": down == 0 ? "All systems operational" : "\(down) of \(states.count) \(down == 1 ? "is" : "are") down",
            "overallTone": down == 0 ? "good" : "bad",
        ] as [String: Any])
    }
}

/// One answer kept for a short while.
final class RecentAnswer: Sendable {
    let maxAgeMicros: Int64
    private let kept = Mutex<(atMicros: Int64, response: Response)?>(nil)

    init(maxAgeMicros: Int64) { self.maxAgeMicros = maxAgeMicros }

    func answer(at now: Int64) -> Response? {
        kept.withLock { kept in kept.flatMap { now - $0.atMicros < maxAgeMicros ? $0.response : nil } }
    }

    func keep(_ response: Response, at now: Int64) { kept.withLock { $0 = (now, response) } }
}
