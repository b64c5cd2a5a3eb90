/// Cuts a query into tokens, each with its character offset.
struct QueryLexer {
    enum Kind: Equatable {
        case word(String)
        case phrase(String)
        case colon, lparen, rparen, lbracket, rbracket, minus, pipe, comma
        case comparison(Comparison)
        case end
    }

    struct Token: Equatable {
        var kind: Kind
        var position: Int
    }

    /// Characters that end a word. `:` ends a word only where a field name can end; values
    /// (times like 10:00:00) keep theirs, which the parser handles by re-joining.
    static let delimiters: Set<Character> = [" ", "\t", "\n", "\r", "(", ")", "\"", ":", "[", "]", "|", ","]

    static func tokens(_ text: String) throws(QuerySyntaxError) -> [Token] {
        let chars = Array(text)
        var result: [Token] = []
        var i = 0
        while i < chars.count {
            let c = chars[i]
            switch c {
            case " ", "\t", "\n", "\r": i += 1
            case "(": result.append(Token(kind: .lparen, position: i)); i += 1
            case ")": result.append(Token(kind: .rparen, position: i)); i += 1
            case "[": result.append(Token(kind: .lbracket, position: i)); i += 1
            case "]": result.append(Token(kind: .rbracket, position: i)); i += 1
            case ":": result.append(Token(kind: .colon, position: i)); i += 1
            case "|": result.append(Token(kind: .pipe, position: i)); i += 1
            case ",": result.append(Token(kind: .comma, position: i)); i += 1
            case ">", "<":
                if i + 1 < chars.count, chars[i + 1] == "=" {
                    result.append(Token(kind: .comparison(c == ">" ? .greaterOrEqual : .lessOrEqual), position: i))
                    i += 2
                } else {
                    result.append(Token(kind: .comparison(c == ">" ? .greater : .less), position: i))
                    i += 1
                }
            case "-" where result.last.map(Self.allowsNegation) ?? true:
                // `-status:200` negates; `>-1h` is a value, handled as a word below.
                result.append(Token(kind: .minus, position: i))
                i += 1
            case "\"":
                let start = i
                i += 1
                var value = ""
                var closed = false
                while i < chars.count {
                    if chars[i] == "\\", i + 1 < chars.count {
                        value.append(chars[i + 1])
                        i += 2
                    } else if chars[i] == "\"" {
                        closed = true
                        i += 1
                        break
                    } else {
                        value.append(chars[i])
                        i += 1
                    }
                }
                guard closed else { throw QuerySyntaxError(position: start, message: "this quote is never closed; add a closing \"") }
                result.append(Token(kind: .phrase(value), position: start))
            default:
                let start = i
                var word = ""
                while i < chars.count, !delimiters.contains(chars[i]) {
                    word.append(chars[i])
                    i += 1
                }
                if word.isEmpty {
                    throw QuerySyntaxError(position: i, message: "unexpected character \(chars[i])")
                }
                result.append(Token(kind: .word(word), position: start))
            }
        }
        result.append(Token(kind: .end, position: chars.count))
        return result
    }

    /// A `-` right after these starts a negation; after a comparison or `:` it starts a value.
    static func allowsNegation(_ previous: Token) -> Bool {
        switch previous.kind {
        case .comparison, .colon, .lbracket: false
        case .word("TO"): false
        default: true
        }
    }
}
