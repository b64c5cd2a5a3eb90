import ArgumentParser
import Foundation
import GatehouseAPI
import GatehouseCore
import Rainbow

struct SilenceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "silence", abstract: "Mute alert notifications for a while (needs GATEHOUSE_ADMIN_TOKEN when one is set).",
        subcommands: [Add.self, List.self, Expire.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Silence the alerts whose labels match, e.g. --matcher alertname=HighErrorRate.")
        @Option(help: "Gatehouse base URL (GATEHOUSE_URL). Default http://127.0.0.1:8080.") var url: String?
        @Option(name: .customLong("matcher"), help: "label=value or label!=value; repeat to require several.") var matchers: [String] = []
        @Option(help: "How long: 30m, 2h, 1d.") var duration: String = "1h"
        @Option(help: "Why (shown with the silence).") var comment: String = ""
        @Option(help: "Who (default: $USER).") var author: String?
        @Flag(help: "Print the API's JSON.") var json = false

        func validate() throws {
            guard !matchers.isEmpty else { throw ValidationError("give at least one --matcher label=value") }
            guard TimeExpressions.durationMicros(duration) != nil else { throw ValidationError("--duration must be like 30m, 2h or 1d") }
        }

        func run() async throws {
            let request = SilenceRequest(matchers: matchers, duration: duration, comment: comment,
                                         createdBy: author ?? ProcessInfo.processInfo.environment["USER"] ?? "cli")
            let silence = try await APIClient(url: url).send(.POST, "/api/v1/silences", json: request, as: SilenceView.self)
            if json {
                // Sorted keys with escaped slashes, as `--json` has always printed it.
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(silence), as: UTF8.self))
                return
            }
            print("Silenced \(silence.matchers.joined(separator: ", ")) until \(silence.endsAt) — id \(silence.id)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List silences, active first.")
        @Option(help: "Gatehouse base URL (GATEHOUSE_URL).") var url: String?
        @Flag(help: "Print the API's JSON.") var json = false

        func run() async throws {
            let client = APIClient(url: url)
            if json { print(String(decoding: try await client.call(.GET, "/api/v1/silences"), as: UTF8.self)); return }
            let rows = try await client.get("/api/v1/silences", as: SilenceList.self).data
            if rows.isEmpty { print("(no silences)".dim); return }
            for row in rows.sorted(by: { ($0.state == .active ? 0 : 1) < ($1.state == .active ? 0 : 1) }) {
                let badge = row.state == .active ? row.state.rawValue.green : row.state.rawValue.dim
                print("\(row.id)  \(badge)  \(row.matchers.joined(separator: ",").bold)  until \(row.endsAt)  \(row.createdBy): \(row.comment)")
            }
        }
    }

    struct Expire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End a silence now.")
        @Option(help: "Gatehouse base URL (GATEHOUSE_URL).") var url: String?
        @Argument(help: "The silence id.") var id: String

        func run() async throws {
            _ = try await APIClient(url: url).send(.DELETE, "/api/v1/silences/\(id)", as: SilenceExpiry.self)
            print("Silence \(id) expired.")
        }
    }
}
