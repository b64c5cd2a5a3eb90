import ArgumentParser
import Foundation
import GatehouseCore

/// Where the ids the CLI prints lead: each request, issue and correlation id to its page in the
/// console, on the server the CLI talks to or at `GATEHOUSE_CONSOLE_URL` (a console reached
/// through a proxy under another name).
///
/// At a terminal an id is written as an OSC 8 hyperlink, as `ls --hyperlink`, gh and systemd do:
/// it stays short on screen and opens its page when clicked. Anywhere else (a pipe, a file) it is
/// plain text, and the single-item views add a `Console: <url>` line instead, so that copied
/// output still leads to the page.
struct ConsoleLinks: Sendable {
    /// The console's base URL, without a trailing slash.
    let base: String
    /// Whether ids are written as OSC 8 hyperlinks.
    let hyperlinks: Bool

    init(base: String, hyperlinks: Bool) {
        self.base = base
        self.hyperlinks = hyperlinks
    }

    /// The links of a command that talks to `client`: `--no-links`, `GATEHOUSE_LINKS`,
    /// `GATEHOUSE_CONSOLE_URL` and whether standard output is a terminal decide.
    init(client: APIClient, noLinks: Bool, environment: [String: String] = ProcessInfo.processInfo.environment,
         standardOutputIsTerminal: Bool = isatty(STDOUT_FILENO) != 0) throws {
        var base = client.base
        if let configured = environment["GATEHOUSE_CONSOLE_URL"].map(APIClient.normalise), !configured.isEmpty {
            let components = URLComponents(string: configured)
            guard components?.scheme == "http" || components?.scheme == "https", components?.host?.isEmpty == false else {
                throw CLIError("GATEHOUSE_CONSOLE_URL=\(configured) is not a URL such as https://gatehouse.example.com")
            }
            base = configured
        }
        self.init(base: base, hyperlinks: Self.wantsHyperlinks(noLinks: noLinks, environment: environment,
                                                               standardOutputIsTerminal: standardOutputIsTerminal))
    }

    /// `--no-links` and `GATEHOUSE_LINKS=0` turn hyperlinks off, `GATEHOUSE_LINKS=1` on (also into
    /// a pipe, for `less -R`). Otherwise they go where colour goes, by Rainbow's rule: standard
    /// output is a terminal that is not `dumb`, and `NO_COLOR` is not set (unless `FORCE_COLOR`
    /// is); a terminal that cannot take colour codes cannot be trusted to swallow OSC 8 either
    /// (systemd decides the same way).
    static func wantsHyperlinks(noLinks: Bool, environment: [String: String], standardOutputIsTerminal: Bool) -> Bool {
        if noLinks { return false }
        switch environment["GATEHOUSE_LINKS"]?.lowercased() {
        case "0", "false", "no", "off": return false
        case "1", "true", "yes", "on": return true
        default: break
        }
        guard standardOutputIsTerminal, let term = environment["TERM"], term.lowercased() != "dumb" else { return false }
        // Rainbow reads "0" and "" as unset.
        func isSet(_ name: String) -> Bool { environment[name].map { !$0.isEmpty && $0 != "0" } ?? false }
        return isSet("FORCE_COLOR") || !isSet("NO_COLOR")
    }

    // MARK: Pages (the routes in Sources/GatehouseConsole/Pages)

    /// `/requests/{id}`: one AI call.
    func request(_ id: String) -> String { base + "/requests/" + Self.segment(id) }
    /// `/issues/{id}`: one issue with its latest events.
    func issue(_ id: String) -> String { base + "/issues/" + Self.segment(id) }
    /// `/correlation/{id}`: the logs, errors and AI calls that carry one correlation id.
    func correlation(_ id: String) -> String { base + "/correlation/" + Self.segment(id) }

    // MARK: Writing them

    /// `text` leading to `url`: an OSC 8 hyperlink when hyperlinks are on, else `text` itself.
    /// Style `text` (colour) before, never after: Rainbow would take the sequence apart.
    func link(_ text: String, to url: String) -> String {
        guard hyperlinks, Self.isLinkable(url) else { return text }
        return "\u{1B}]8;;" + url + "\u{1B}\\" + text + "\u{1B}]8;;\u{1B}\\"
    }

    /// The line a single-item view ends with when its id is not a hyperlink: the page's whole URL.
    func consoleLine(_ url: String) -> String? {
        hyperlinks && Self.isLinkable(url) ? nil : "Console: " + url
    }

    /// OSC 8 carries a URI of printable ASCII only; anything else (a console URL with a space in
    /// it) could end the sequence early, so such a link is written as plain text.
    static func isLinkable(_ url: String) -> Bool {
        url.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    /// `text` as one path segment, as the console's own pages write it (`PathSegment`), so an id
    /// holding `/`, `?`, `#`, `%` or non-ASCII stays one segment and the console decodes it back.
    static func segment(_ text: String) -> String { PathSegment.encode(text) }
}

/// `--no-links`, for every command that prints ids.
struct LinkOptions: ParsableArguments {
    @Flag(name: .customLong("no-links"),
          help: "Print ids as plain text, never as terminal hyperlinks to the console (also GATEHOUSE_LINKS=0).")
    var noLinks = false

    func links(for client: APIClient) throws -> ConsoleLinks { try ConsoleLinks(client: client, noLinks: noLinks) }
}
