import Foundation
import GatehouseCore
import GatehouseHTTP
import Hummingbird

/// `/settings`: the version, the store, how much each kind of data takes against its retention,
/// and the configuration in effect with its secrets redacted.
struct SettingsPage: Sendable {
    let console: Console
    var deps: ConsoleDependencies { console.deps }

    func addRoutes(to r: APIRouter.AccessGroup) {
        r.get("/settings") { request, _ in await console.page(request, .settings) { try await render($0) } }
    }

    struct StorageRow {
        var kind: String
        var rows: String
        var size: String
        var oldest: String
        var oldestTitle: String
        var keptFor: String
        var maxRows: String
        /// Rows against the row limit, when there is one.
        var fraction: Double?
        var percent: String
    }

    func render(_ input: Console.PageInput) async throws -> Console.PageOutput {
        let about = deps.about, now = TimeExpressions.nowMicros()
        let storage = try await deps.telemetry.storageUse().map { use in
            let days = about.retention.days[use.kind] ?? 0, limit = about.retention.maxRows[use.kind] ?? 0
            let fraction = limit > 0 ? Double(use.rows) / Double(limit) : nil
            return StorageRow(kind: use.kind.rawValue, rows: Format.count(use.rows), size: Format.bytes(use.approximateBytes),
                              oldest: use.oldestMicros.map { Format.ago($0, now: now) } ?? "–", oldestTitle: use.oldestMicros.map(Format.dateTime) ?? "",
                              keptFor: days > 0 ? "\(days) days" : "forever", maxRows: limit > 0 ? Format.count(Int64(limit)) : "no limit",
                              fraction: fraction.map { min($0, 1) }, percent: fraction.map(Format.percent) ?? "")
        }
        return Console.PageOutput(template: "settings", title: "Settings", body: [
            "version": about.version, "storeKind": about.storeKind, "storage": storage,
            "publicProbes": about.publicProbes.sorted(), "hasPublic": !about.publicProbes.isEmpty,
            "configuration": about.redactedConfiguration,
        ] as [String: Any], showsRange: false)
    }
}
