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
            return StorageRow(kind: use.kind.rawValue, rows: Format.count(use.rows), size: Self.bytes(use.approximateBytes),
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

    /// "512 B", "3.4 KB", "1.2 GB" (powers of 1024, as disks are sized).
    static func bytes(_ count: Int64) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var value = Double(max(count, 0)), unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(Int(value)) B" : String(format: value >= 100 ? "%.0f" : "%.1f", value) + " " + units[unit]
    }
}
