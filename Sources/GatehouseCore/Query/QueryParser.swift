import Foundation

/// Parses the query language (see docs/query-language.md):
///
/// ```
/// query   := expr? ('|' aggregation)?
/// expr    := and ('OR' and)*
/// and     := unary (('AND')? unary)*          implicit AND between terms
/// unary   := ('-' | 'NOT') unary | '(' expr ')' | term
/// term    := field ':' match | word | "phrase"
/// match   := '*' | comparison value | '[' value 'TO' value ']' | value | "phrase"
/// ```
public struct QueryParser {
    private var tokens: [QueryLexer.Token]
    private var index = 0
    private var terms = 0
    private let now: Int64

    /// Parses `text`; relative times (`-1h`) are resolved against `now` (µs since 1970).
    public static func parse(_ text: String, nowMicros: Int64 = TimeExpressions.nowMicros()) throws(QuerySyntaxError) -> Query {
        guard text.count <= QueryLimits.maxLength else {
            throw QuerySyntaxError(position: QueryLimits.maxLength, message: "the query is longer than \(QueryLimits.maxLength) characters")
        }
        var parser = QueryParser(tokens: try QueryLexer.tokens(text), now: nowMicros)
        return try parser.query()
    }

    private init(tokens: [QueryLexer.Token], now: Int64) {
        self.tokens = tokens
        self.now = now
    }

    private var current: QueryLexer.Token { tokens[index] }
    private mutating func advance() { if index < tokens.count - 1 { index += 1 } }

    private func fail(_ message: String, at token: QueryLexer.Token? = nil) -> QuerySyntaxError {
        QuerySyntaxError(position: (token ?? current).position, message: message)
    }

    private mutating func query() throws(QuerySyntaxError) -> Query {
        var filter: QueryNode?
        if current.kind != .end && current.kind != .pipe {
            filter = try expression(depth: 0)
        }
        var aggregation: Aggregation?
        if current.kind == .pipe {
            advance()
            aggregation = try self.aggregation()
        }
        guard current.kind == .end else {
            if current.kind == .rparen { throw fail("this ) has no matching (") }
            throw fail("expected the end of the query, AND, OR or a | stage")
        }
        return Query(filter: filter, aggregation: aggregation)
    }

    private func isKeyword(_ word: String) -> Bool {
        if case .word(let w) = current.kind { return w == word }
        return false
    }

    private mutating func expression(depth: Int) throws(QuerySyntaxError) -> QueryNode {
        guard depth < QueryLimits.maxDepth else { throw fail("parentheses nest deeper than \(QueryLimits.maxDepth)") }
        var alternatives = [try conjunction(depth: depth)]
        while isKeyword("OR") {
            advance()
            alternatives.append(try conjunction(depth: depth))
        }
        return alternatives.count == 1 ? alternatives[0] : .or(alternatives)
    }

    private mutating func conjunction(depth: Int) throws(QuerySyntaxError) -> QueryNode {
        var parts = [try unary(depth: depth)]
        while true {
            if isKeyword("AND") {
                advance()
                parts.append(try unary(depth: depth))
                continue
            }
            switch current.kind {
            case .end, .rparen, .pipe: break
            case .word("OR"): break
            default:
                parts.append(try unary(depth: depth))
                continue
            }
            break
        }
        return parts.count == 1 ? parts[0] : .and(parts)
    }

    private mutating func unary(depth: Int) throws(QuerySyntaxError) -> QueryNode {
        if current.kind == .minus || isKeyword("NOT") {
            advance()
            guard depth + 1 < QueryLimits.maxDepth else { throw fail("negations nest deeper than \(QueryLimits.maxDepth)") }
            return .not(try unary(depth: depth + 1))
        }
        if current.kind == .lparen {
            let open = current
            advance()
            let inner = try expression(depth: depth + 1)
            guard current.kind == .rparen else { throw fail("expected ) to close the ( at character \(open.position + 1)") }
            advance()
            return inner
        }
        return try term()
    }

    private mutating func term() throws(QuerySyntaxError) -> QueryNode {
        terms += 1
        guard terms <= QueryLimits.maxTerms else { throw fail("the query has more than \(QueryLimits.maxTerms) terms") }
        let token = current
        switch token.kind {
        case .phrase(let p):
            advance()
            return .text(p, phrase: true)
        case .word(let w):
            advance()
            guard current.kind == .colon else { return .text(w, phrase: false) }
            guard Self.isFieldName(w) else {
                throw fail("\"\(w)\" is not a field name (letters, digits, _ and dots, starting with a letter)", at: token)
            }
            advance()
            return .field(w, try match(field: w))
        case .end:
            throw fail("expected a term: a word, a \"phrase\", field:value or (")
        case .rparen:
            throw fail("expected a term before )")
        default:
            throw fail("expected a term: a word, a \"phrase\", field:value or (")
        }
    }

    static func isFieldName(_ w: String) -> Bool {
        guard let first = w.first, first.isLetter || first == "_", w.count <= 128 else { return false }
        return w.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "-" }
    }

    private mutating func match(field: String) throws(QuerySyntaxError) -> FieldMatch {
        switch current.kind {
        case .comparison(let op):
            advance()
            return .compare(op, try value(field: field))
        case .lbracket:
            let open = current
            advance()
            let low = try value(field: field)
            guard isKeyword("TO") else { throw fail("expected TO in the range that starts at character \(open.position + 1)") }
            advance()
            let high = try value(field: field)
            guard current.kind == .rbracket else { throw fail("expected ] to close the range that starts at character \(open.position + 1)") }
            advance()
            return .range(low, high)
        case .phrase(let p):
            advance()
            return .equals(.text(p))
        case .word(let w):
            if w == "*" {
                advance()
                return .exists
            }
            if w.contains("*") {
                advance()
                return .wildcard(w)
            }
            return .equals(try value(field: field))
        default:
            throw fail("expected a value after \(field): (a word, a \"phrase\", *, a comparison such as >50, or a range [a TO b])")
        }
    }

    /// A value, with units and times resolved. A value may contain `:` (10:30:00Z), so the
    /// colons the lexer split out are joined back when no space separates them.
    private mutating func value(field: String) throws(QuerySyntaxError) -> QueryValue {
        let token = current
        switch token.kind {
        case .phrase(let p):
            advance()
            return .text(p)
        case .word(var w):
            advance()
            while current.kind == .colon, current.position == token.position + w.count {
                let colonAt = current.position
                advance()
                if case .word(let more) = current.kind, current.position == colonAt + 1 {
                    w += ":" + more
                    advance()
                } else {
                    throw fail("expected a value after \(field):", at: current)
                }
            }
            return Self.interpret(w, now: now)
        default:
            throw fail("expected a value for \(field)")
        }
    }

    /// Numbers, durations (`100ms`), sizes (`1MB`), relative times (`-1h`), RFC 3339 times, or text.
    static func interpret(_ w: String, now: Int64) -> QueryValue {
        // All digits but longer than a Double holds exactly, or with a leading zero: an id
        // (a trace or span id of hex digits that happen to be decimal ones), kept as written.
        if w.utf8.count > 1, w.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), w.utf8.count > 15 || w.hasPrefix("0") { return .text(w) }
        if let n = Double(w), n.isFinite, w.first != "+", !w.lowercased().hasPrefix("nan"), !w.lowercased().contains("inf") { return .number(n) }
        if w.hasPrefix("-"), let d = TimeExpressions.durationMicros(String(w.dropFirst())) { return .time(micros: now - d) }
        if let d = TimeExpressions.durationMicros(w) { return .duration(micros: d) }
        if let bytes = byteSize(w) { return .bytes(bytes) }
        if let micros = TimeExpressions.rfc3339Micros(w) { return .time(micros: micros) }
        return .text(w)
    }

    static func byteSize(_ w: String) -> Int64? {
        let units: [(String, Int64)] = [("kb", 1_000), ("mb", 1_000_000), ("gb", 1_000_000_000), ("kib", 1_024), ("mib", 1_048_576),
                                        ("gib", 1_073_741_824), ("b", 1)]
        let lower = w.lowercased()
        for (suffix, scale) in units where lower.hasSuffix(suffix) {
            guard let n = Double(lower.dropLast(suffix.count)), n >= 0, n.isFinite, n * Double(scale) < 9e18 else { continue }
            return Int64(n * Double(scale))
        }
        return nil
    }

    private mutating func aggregation() throws(QuerySyntaxError) -> Aggregation {
        guard case .word(let name) = current.kind else { throw fail("expected an aggregation: count, sum(f), avg(f), min(f), max(f) or p95(f)") }
        let lower = name.lowercased()
        advance()
        let function: Aggregation.Function
        if lower == "count" {
            function = .count
        } else {
            guard current.kind == .lparen else { throw fail("expected ( after \(name), e.g. \(lower)(duration)") }
            advance()
            guard case .word(let field) = current.kind, Self.isFieldName(field) else { throw fail("expected a field name inside \(name)( )") }
            advance()
            guard current.kind == .rparen else { throw fail("expected ) after \(field)") }
            advance()
            switch lower {
            case "sum": function = .sum(field)
            case "avg": function = .avg(field)
            case "min": function = .min(field)
            case "max": function = .max(field)
            default:
                guard lower.hasPrefix("p"), let p = Int(lower.dropFirst()), (1...99).contains(p) else {
                    throw QuerySyntaxError(position: tokens[max(0, index - 4)].position,
                                           message: "\(name) is not an aggregation: use count, sum, avg, min, max or p1…p99")
                }
                function = .percentile(p, field)
            }
        }
        var groupBy: [Aggregation.GroupTerm] = []
        if isKeyword("by") || isKeyword("BY") {
            advance()
            repeat {
                if current.kind == .comma { advance() }
                let start = current
                guard case .word(let field) = current.kind, Self.isFieldName(field) else {
                    throw fail("expected a field name or bin(<duration>) after by")
                }
                advance()
                if field.lowercased() == "bin", current.kind == .lparen {
                    guard !groupBy.contains(where: { if case .bin = $0 { true } else { false } }) else {
                        throw fail("group by at most one bin(…)", at: start)
                    }
                    groupBy.append(.bin(micros: try binWidth()))
                } else {
                    groupBy.append(.field(field))
                }
                guard groupBy.count <= Aggregation.maxGroupTerms else {
                    throw fail("group by at most \(Aggregation.maxGroupTerms) fields", at: start)
                }
            } while current.kind == .comma
        }
        return Aggregation(function: function, groupBy: groupBy)
    }

    /// `(1h)` after `bin`: a duration of whole milliseconds, from 1s to 1000 days.
    private mutating func binWidth() throws(QuerySyntaxError) -> Int64 {
        advance()
        guard case .word(let text) = current.kind else { throw fail("expected a duration inside bin( ), such as bin(5m) or bin(1h)") }
        guard let micros = TimeExpressions.durationMicros(text) else {
            throw fail("\(text) is not a duration: write bin(30s), bin(5m), bin(1h) or bin(1d)")
        }
        guard micros >= Aggregation.minBinMicros, micros <= Aggregation.maxBinMicros, micros % 1000 == 0 else {
            throw fail("a bin is from 1s to 1000d, in whole milliseconds")
        }
        advance()
        guard current.kind == .rparen else { throw fail("expected ) after bin(\(text)") }
        advance()
        return micros
    }
}
