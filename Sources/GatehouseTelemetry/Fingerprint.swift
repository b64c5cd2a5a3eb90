import Crypto
import Foundation
import GatehouseCore

/// How error events are grouped into issues.
public enum Fingerprint {
    /// The event's own `fingerprint` with `{{ default }}` expanded, else the default grouping:
    /// the primary exception's type and its value with the variable parts replaced, else the
    /// message's first line with the same replacements.
    public static func components(explicit: [String]?, exceptionType: String?, exceptionValue: String?, message: String?) -> [String] {
        let defaults: [String]
        if let type = exceptionType, !type.isEmpty {
            defaults = [type, parameterize(firstLine(exceptionValue ?? ""))]
        } else {
            defaults = [parameterize(firstLine(message ?? ""))]
        }
        guard let explicit, !explicit.isEmpty else { return defaults }
        return explicit.flatMap { part -> [String] in
            let p = part.replacingOccurrences(of: " ", with: "")
            return p == "{{default}}" ? defaults : [part]
        }
    }

    /// A stable issue id for a project's fingerprint: 32 hex digits of SHA-256.
    public static func issueID(project: String, components: [String]) -> String {
        let digest = SHA256.hash(data: Data((project + "\n" + components.joined(separator: "\n")).utf8))
        return Hex.encode(digest.prefix(16))
    }

    static func firstLine(_ text: String) -> String {
        String(text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: true).first ?? "").trimmingCharacters(in: .whitespaces)
    }

    /// Replaces what differs between occurrences of one error: e-mail addresses, URLs, UUIDs,
    /// long hex ids, IP addresses and numbers. `User 4821 not found at https://x/y` and `User 17
    /// not found at https://x/z` both become `User <int> not found at <url>`.
    public static func parameterize(_ text: String) -> String {
        var out = ""
        var word = ""
        for ch in text.prefix(4096) {
            if ch.isWhitespace {
                out += parameterizeWord(word)
                out.append(ch)
                word = ""
            } else {
                word.append(ch)
            }
        }
        return out + parameterizeWord(word)
    }

    private static let wrapping: Set<Character> = ["(", ")", "[", "]", "{", "}", "'", "\"", "`", ",", ";", ":", "<", ">"]

    /// One whitespace-separated word: the core inside its brackets and quotes is replaced whole
    /// when it is an address or id, else each free-standing number in it is.
    static func parameterizeWord(_ word: String) -> String {
        guard !word.isEmpty else { return word }
        var core = Substring(word)
        while let f = core.first, wrapping.contains(f) { core = core.dropFirst() }
        while let l = core.last, wrapping.contains(l) || l == "." || l == "!" || l == "?" { core = core.dropLast() }
        guard !core.isEmpty else { return word }
        let prefix = word[word.startIndex..<core.startIndex], suffix = word[core.endIndex...]
        if let kind = classify(core) { return prefix + kind + suffix }
        return prefix + replaceNumbers(core) + suffix
    }

    static func classify(_ s: Substring) -> String? {
        if let scheme = s.range(of: "://"), scheme.lowerBound > s.startIndex, s[s.startIndex].isLetter { return "<url>" }
        if let at = s.firstIndex(of: "@"), at > s.startIndex {
            let domain = s[s.index(after: at)...]
            if let dot = domain.lastIndex(of: "."), dot > domain.startIndex, domain.distance(from: dot, to: domain.endIndex) > 2 { return "<email>" }
        }
        let hexDigits = s.allSatisfy(\.isHexDigit)
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        if parts.map(\.count) == [8, 4, 4, 4, 12], parts.allSatisfy({ $0.allSatisfy(\.isHexDigit) }) { return "<uuid>" }
        let octets = s.split(separator: ".", omittingEmptySubsequences: false)
        if octets.count == 4, octets.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isNumber) && Int($0)! <= 255 }) { return "<ip>" }
        if s.hasPrefix("0x"), s.count > 2, s.dropFirst(2).allSatisfy(\.isHexDigit) { return "<hex>" }
        if hexDigits, s.count >= 8, s.contains(where: \.isNumber), s.contains(where: \.isLetter) { return "<hex>" }
        return nil
    }

    /// `order 42` → `order <int>`, `took 2.5s` keeps its unit: `took <float>s`; `v2`, `h264`, `utf8` stay.
    static func replaceNumbers(_ s: Substring) -> String {
        var out = ""
        var i = s.startIndex
        var previous: Character?
        while i < s.endIndex {
            let c = s[i]
            if c.isNumber, c.isASCII, !(previous.map { $0.isLetter || $0 == "_" || $0.isNumber } ?? false) {
                var j = i
                while j < s.endIndex, s[j].isNumber { j = s.index(after: j) }
                var isFloat = false
                if j < s.endIndex, s[j] == ".", s.index(after: j) < s.endIndex, s[s.index(after: j)].isNumber {
                    isFloat = true
                    j = s.index(after: j)
                    while j < s.endIndex, s[j].isNumber { j = s.index(after: j) }
                }
                // A number glued to a following word (`3rd`, `10x`) is a name, except for units.
                let rest = s[j...].prefix { $0.isLetter }
                if rest.isEmpty || ["ms", "s", "m", "h", "kb", "mb", "gb", "b", "us", "ns"].contains(rest.lowercased()) {
                    out += isFloat ? "<float>" : "<int>"
                    previous = "0"
                    i = j
                    continue
                }
                out += s[i..<j]
                previous = s[s.index(before: j)]
                i = j
                continue
            }
            out.append(c)
            previous = c
            i = s.index(after: i)
        }
        return out
    }
}
