import GatehouseCore

/// The console's navigation and the frame around every page (the layout template's `chrome`).
enum Nav {
    enum Item: String, CaseIterable, Sendable {
        case overview, requests, spend, logs, issues, performance, alerts, uptime, keys, switches, audit, accounts, settings

        var label: String {
            switch self {
            case .overview: "Overview"
            case .requests: "AI requests"
            case .spend: "Spend"
            case .logs: "Logs"
            case .issues: "Issues"
            case .performance: "Performance"
            case .alerts: "Alerts"
            case .uptime: "Uptime"
            case .keys: "Keys"
            case .switches: "Kill switches"
            case .audit: "Audit log"
            case .accounts: "Accounts"
            case .settings: "Settings"
            }
        }

        var path: String { self == .overview ? "/" : "/" + rawValue }
    }

    static let sections: [(heading: String, items: [Item])] = [
        ("Monitor", [.overview, .requests, .spend, .logs, .issues, .performance]),
        ("Operate", [.alerts, .uptime]),
        ("Manage", [.keys, .switches, .audit, .accounts, .settings]),
    ]

    struct Link {
        var href: String
        var label: String
        var active: Bool
        var badge: String?
    }

    struct Section {
        var heading: String
        var items: [Link]
    }

    struct Chrome {
        var title: String
        var sections: [Section]
        var ranges: [Link]
        var showRanges: Bool
        var viewer: ConsoleViewer
        var flash: Console.Flash?
        /// The custom-range form, open when the "custom" link was followed.
        var custom: CustomRange?
    }

    struct CustomRange {
        var action: String
        var from: String
        var to: String
        var kept: [Hidden]
    }

    struct Hidden {
        var name: String
        var value: String
    }

    static func chrome(title: String, active: Item, viewer: ConsoleViewer, input: Console.PageInput, showsRange: Bool, firing: Int) -> Chrome {
        let sections = Self.sections.map { section in
            Section(heading: section.heading, items: section.items.map { item in
                // Moving between pages keeps the time range.
                let href = Console.url(item.path, item == .settings || item == .accounts ? [] : input.range.parameters)
                return Link(href: href, label: item.label, active: item == active, badge: item == .alerts && firing > 0 ? String(firing) : nil)
            })
        }
        // `//uptime` routes to /uptime; its links must not become `//uptime…` (another host).
        let path = "/" + input.request.uri.path.drop { $0 == "/" }
        // A range link keeps the page's other filters and starts paging over.
        let kept = input.parameters.filter { !["range", "from", "to", "cursor", "ok", "error"].contains($0.key) }.sorted { $0.key < $1.key }
        let ranges = TimeRange.presets.map { preset in
            Link(href: Console.url(path, kept.map { ($0.key, $0.value) } + [("range", preset.name)]), label: preset.name,
                 active: input.range.preset == preset.name, badge: nil)
        } + [Link(href: Console.url(path, kept.map { ($0.key, $0.value) } + [("custom", "1")] + input.range.parameters),
                  label: input.range.preset == nil ? input.range.label : "custom", active: input.range.preset == nil, badge: nil)]
        // `datetime-local` wants `2026-11-30T14:05`, read back as UTC.
        let custom = input.parameters["custom"] == nil ? nil : CustomRange(
            action: path, from: String(TimeExpressions.format(micros: input.range.fromMicros).prefix(16)),
            to: String(TimeExpressions.format(micros: input.range.toMicros).prefix(16)), kept: kept.map { Hidden(name: $0.key, value: $0.value) })
        return Chrome(title: title, sections: sections, ranges: ranges, showRanges: showsRange, viewer: viewer, flash: input.flash, custom: custom)
    }
}
