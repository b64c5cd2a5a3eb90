/// Reads an alert expression:
///
/// ```
/// expr := signal ['(' argument ')'] ['over' duration] ['against' duration] ['by' field] op threshold
/// op   := '>' | '>=' | '<' | '<='
/// threshold := number ['%' | 'ms' | 's' | 'm' | 'k'] | '$' number
/// ```
public enum AlertExpressionParser {
    public struct Failure: Error, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    public static func parse(_ text: String) throws(Failure) -> AlertExpression {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        func fail(_ message: String) -> Failure { Failure(message: message) }
        func skipSpaces() { rest = rest.drop { $0 == " " || $0 == "\t" } }

        let name = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
        guard !name.isEmpty else { throw fail("an expression starts with a signal: \(AlertSignal.allCases.map(\.rawValue).joined(separator: ", "))") }
        guard let signal = AlertSignal(rawValue: String(name)) else {
            throw fail("unknown signal `\(name)`; signals are \(AlertSignal.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        rest = rest.dropFirst(name.count)
        skipSpaces()

        var argument: String?
        if rest.first == "(" {
            // Balanced parentheses, quotes respected: the argument may itself be a query with groups.
            var depth = 0, inQuote = false, end: Substring.Index?
            var i = rest.startIndex
            while i < rest.endIndex {
                let c = rest[i]
                if c == "\"" { inQuote.toggle() } else if !inQuote && c == "(" { depth += 1 } else if !inQuote && c == ")" {
                    depth -= 1
                    if depth == 0 { end = i; break }
                }
                i = rest.index(after: i)
            }
            guard let end else { throw fail("the ( after \(signal.rawValue) is not closed") }
            argument = String(rest[rest.index(after: rest.startIndex)..<end]).trimmingCharacters(in: .whitespaces)
            if argument?.isEmpty == true { argument = nil }
            rest = rest[rest.index(after: end)...]
            skipSpaces()
        }
        if signal == .count && argument == nil { throw fail("count needs a query: count(level:error service:api) over 5m > 10") }

        var window: Int64?
        if rest.hasPrefix("over ") || rest.hasPrefix("over\t") {
            rest = rest.dropFirst(4)
            skipSpaces()
            let word = rest.prefix { !$0.isWhitespace }
            guard let micros = TimeExpressions.durationMicros(String(word)), micros >= 1_000_000 else {
                throw fail("`over` needs a window of at least 1s, such as 5m, 1h or 1d (got \"\(word)\")")
            }
            guard micros <= 31 * 86_400_000_000 else { throw fail("the window may be at most 31d") }
            window = micros
            rest = rest.dropFirst(word.count)
            skipSpaces()
        }
        if signal.needsWindow && window == nil { throw fail("\(signal.rawValue) needs a window: \(signal.rawValue) over 5m …") }
        if !signal.needsWindow && window != nil { throw fail("\(signal.rawValue) is a current value and takes no `over` window") }

        var baselineOffset: Int64?
        if rest.hasPrefix("against ") || rest.hasPrefix("against\t") {
            guard signal == .transactionRegression else { throw fail("only transaction_regression compares `against` an earlier window") }
            rest = rest.dropFirst(7)
            skipSpaces()
            let word = rest.prefix { !$0.isWhitespace }
            guard let micros = TimeExpressions.durationMicros(String(word)), micros >= (window ?? 0), micros <= 31 * 86_400_000_000 else {
                throw fail("`against` needs how far back the baseline lies, at least the window and at most 31d, such as 1d or 1w (got \"\(word)\")")
            }
            baselineOffset = micros
            rest = rest.dropFirst(word.count)
            skipSpaces()
        }
        if signal == .transactionRegression, let window, window > (baselineOffset ?? TimeExpressions.microsPerDay) {
            throw fail("transaction_regression's window may be at most its baseline offset (a day unless `against` says otherwise)")
        }

        var groupBy: [String] = []
        if rest.hasPrefix("by ") {
            rest = rest.dropFirst(3)
            skipSpaces()
            while true {
                let field = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "-" }
                guard !field.isEmpty else { throw fail("`by` needs field names: by model, route") }
                let allowed = signal.groupings
                let ok = allowed.contains(String(field)) || (field.hasPrefix("property.") && allowed.contains("property.<name>") && field.count > 9)
                guard ok else {
                    throw fail(allowed.isEmpty ? "\(signal.rawValue) cannot be split with `by`"
                                               : "\(signal.rawValue) can be split by \(allowed.joined(separator: ", ")), not `\(field)`")
                }
                groupBy.append(String(field))
                rest = rest.dropFirst(field.count)
                skipSpaces()
                guard rest.first == "," else { break }
                rest = rest.dropFirst()
                skipSpaces()
            }
            guard groupBy.count == 1 else { throw fail("`by` takes one field") }
        }

        let op: Comparison
        if rest.hasPrefix(">=") { op = .greaterOrEqual } else if rest.hasPrefix("<=") { op = .lessOrEqual } else if rest.hasPrefix(">") { op = .greater } else if rest.hasPrefix("<") {
            op = .less
        } else {
            throw fail("expected a comparison (>, >=, <, <=) and a threshold after `\(text.prefix(text.count - rest.count).trimmingCharacters(in: .whitespaces))`")
        }
        rest = rest.dropFirst(op.rawValue.count)
        skipSpaces()
        let threshold = try value(String(rest).trimmingCharacters(in: .whitespaces), signal: signal)
        return AlertExpression(signal: signal, argument: argument, windowMicros: window, baselineOffsetMicros: baselineOffset, groupBy: groupBy,
                               comparison: op, threshold: threshold)
    }

    static func value(_ text: String, signal: AlertSignal) throws(Failure) -> Double {
        var t = Substring(text.lowercased())
        var dollars = false
        if t.hasPrefix("$") { dollars = true; t = t.dropFirst() }
        let number = t.prefix { $0.isNumber || $0 == "." || $0 == "_" }.replacingOccurrences(of: "_", with: "")
        let unit = t.dropFirst(t.prefix { $0.isNumber || $0 == "." || $0 == "_" }.count)
        guard let n = Double(number), n.isFinite, n >= 0 else {
            throw Failure(message: "the threshold must be a number, such as 10, 1%, 500ms or $50 (got \"\(text)\")")
        }
        func wrong(_ expected: String) -> Failure { Failure(message: "\(signal.rawValue) is compared with \(expected), not \"\(text)\"") }
        switch signal.unit {
        case .ratio:
            if unit == "%" { return n / 100 }
            guard unit.isEmpty, !dollars, n <= 1 else { throw wrong("a share such as 1% or 0.01") }
            return n
        case .milliseconds:
            guard !dollars else { throw wrong("a duration such as 500ms or 2s") }
            switch unit {
            case "", "ms": return n
            case "s": return n * 1000
            case "m": return n * 60_000
            default: throw wrong("a duration such as 500ms or 2s")
            }
        case .dollars:
            guard unit.isEmpty else { throw wrong("dollars such as $50 or 50") }
            return n
        case .perSecond, .count:
            guard !dollars else { throw wrong("a number") }
            switch unit {
            case "": return n
            case "k": return n * 1000
            case "m" where signal == .tokens: return n * 1_000_000
            default: throw wrong("a number such as 10 or 100k")
            }
        }
    }
}
