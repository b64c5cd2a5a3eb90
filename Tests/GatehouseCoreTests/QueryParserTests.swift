import Foundation
import Testing
@testable import GatehouseCore

@Suite struct QueryParserTests {
    let now: Int64 = 1_795_402_688_000_000

    func parse(_ text: String) throws -> Query { try QueryParser.parse(text, nowMicros: now) }

    /// The examples from the seeds and DESIGN.md, verbatim.
    @Test func theSeedExamplesParse() throws {
        #expect(try parse("level:error timestamp:>-1h") == Query(filter: .and([
            .field("level", .equals(.text("error"))), .field("timestamp", .compare(.greater, .time(micros: now - 3_600_000_000))),
        ])))
        #expect(try parse(#"message:"Slow query detected""#).filter == .field("message", .equals(.text("Slow query detected"))))
        #expect(try parse(#"function:"tasks.list" level:error"#).filter == .and([
            .field("function", .equals(.text("tasks.list"))), .field("level", .equals(.text("error"))),
        ]))
        #expect(try parse("dbCalls:>50").filter == .field("dbCalls", .compare(.greater, .number(50))))
        #expect(try parse(#"model:gpt-4o* cost:>0.01 property.customer:acme -status:200 "timeout""#).filter == .and([
            .field("model", .wildcard("gpt-4o*")), .field("cost", .compare(.greater, .number(0.01))),
            .field("property.customer", .equals(.text("acme"))), .not(.field("status", .equals(.number(200)))),
            .text("timeout", phrase: true),
        ]))
    }

    @Test func operatorsUnitsRangesAndStages() throws {
        #expect(try parse("(level:error OR level:fatal) service:api").filter == .and([
            .or([.field("level", .equals(.text("error"))), .field("level", .equals(.text("fatal")))]), .field("service", .equals(.text("api"))),
        ]))
        #expect(try parse("duration:>=100ms size:<1MB user:*").filter == .and([
            .field("duration", .compare(.greaterOrEqual, .duration(micros: 100_000))), .field("size", .compare(.less, .bytes(1_000_000))),
            .field("user", .exists),
        ]))
        #expect(try parse("latency:[100ms TO 2s]").filter == .field("latency", .range(.duration(micros: 100_000), .duration(micros: 2_000_000))))
        #expect(try parse("timestamp:>2026-11-23T10:00:00Z").filter == .field("timestamp", .compare(.greater, .time(micros: 1_795_428_000_000_000))))
        #expect(try parse("NOT timeout AND retry").filter == .and([.not(.text("timeout", phrase: false)), .text("retry", phrase: false)]))
        #expect(try parse("level:error | count by function") == Query(filter: .field("level", .equals(.text("error"))),
                                                                       aggregation: Aggregation(function: .count, groupBy: ["function"])))
        #expect(try parse("| p95(duration) by route, model").aggregation == Aggregation(function: .percentile(95, "duration"), groupBy: ["route", "model"]))
        #expect(try parse("").filter == nil)
    }

    @Test func mistakesPointAtTheirPositionAndSayWhatWasExpected() {
        func error(_ text: String) -> QuerySyntaxError? {
            do { _ = try QueryParser.parse(text, nowMicros: now); return nil } catch { return error }
        }
        #expect(error(#"message:"unclosed"#) == QuerySyntaxError(position: 8, message: "this quote is never closed; add a closing \""))
        #expect(error("level:")?.position == 6)
        #expect(error("level:")?.message.contains("expected a value after level:") == true)
        #expect(error("(a OR b")?.message.contains("expected ) to close the ( at character 1") == true)
        #expect(error("a OR b)")?.position == 6)
        #expect(error("latency:[1 2]")?.message.contains("expected TO") == true)
        #expect(error("x | p200(y)")?.message.contains("not an aggregation") == true)
        #expect(error("9abc:1")?.position == 0)
        #expect(error(String(repeating: "(", count: 40) + "a" + String(repeating: ")", count: 40))?.message.contains("nest deeper") == true)
        #expect(error((0..<101).map { "w\($0)" }.joined(separator: " "))?.message.contains("more than 100 terms") == true)
        #expect(error(String(repeating: "a", count: 5000))?.message.contains("longer than 4096") == true)
        let e = error("level:error AND")!
        #expect(e.pointer(in: "level:error AND") == "level:error AND\n               ^")
    }

    /// Random strings over the language's own characters: every one parses or fails with a
    /// position inside the query, and none hangs or crashes.
    @Test func randomInputNeverCrashesOrHangs() {
        var state: UInt64 = 0x5EED
        func next() -> UInt64 {
            state &+= 0x9E3779B97F4A7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
            z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
            return z ^ (z >> 31)
        }
        let pieces = ["a", "level", ":", ">", ">=", "<", "-", "(", ")", "[", "]", " TO ", " OR ", " AND ", "NOT ", "\"", "*", "|", ",",
                      " ", "1h", "100ms", "2026-11-23T10:00:00Z", "by", "count", "p95", "é", "\\", "1MB", "-1h", "0.5", "x.y", "bin(", "bin", "5m)", "avg(duration)"]
        var parsed = 0
        for _ in 0..<20_000 {
            let text = (0..<Int(next() % 14)).map { _ in pieces[Int(next() % UInt64(pieces.count))] }.joined()
            do {
                _ = try QueryParser.parse(text, nowMicros: now)
                parsed += 1
            } catch {
                #expect(error.position >= 0 && error.position <= text.count, "\(text): \(error)")
            }
        }
        #expect(parsed > 1000)
    }

    @Test func binsAreGroupTerms() throws {
        #expect(try parse("| count by bin(1h)").aggregation == Aggregation(function: .count, groupBy: [.bin(micros: 3_600_000_000)]))
        #expect(try parse("| p95(duration) by bin(5m), route").aggregation
            == Aggregation(function: .percentile(95, "duration"), groupBy: [.bin(micros: 300_000_000), "route"]))
        // `bin` without parentheses is a field like any other.
        #expect(try parse("| count by bin").aggregation == Aggregation(function: .count, groupBy: ["bin"]))
        #expect(try parse("| count by a, b, c, bin(1d)").aggregation?.groupBy.count == 4)
    }

    @Test func badStagesSayWhatIsWrong() {
        func error(_ text: String) -> String {
            do { _ = try QueryParser.parse(text, nowMicros: now); return "parsed" } catch { return error.message }
        }
        #expect(error("| count by a, b, c, d, e").contains("at most 4"))
        #expect(error("| count by bin(1h), bin(5m)").contains("at most one bin"))
        #expect(error("| count by bin(soon)").contains("not a duration"))
        #expect(error("| count by bin(1ms)").contains("from 1s to 1000d"))
        #expect(error("| count by bin(5000d)").contains("from 1s to 1000d"))
        #expect(error("| count by bin()").contains("expected a duration"))
        #expect(error("| count by bin(1h").contains("expected )"))
        #expect(error("| count by").contains("after by"))
        #expect(error("| p100(duration)").contains("not an aggregation"))
    }

    /// Random valid stages: written out by `Aggregation.description`, each parses back to itself.
    @Test func randomStagesRoundTrip() throws {
        var state: UInt64 = 0xB1_5EED
        func next(_ n: Int) -> Int {
            state &+= 0x9E3779B97F4A7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
            z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
            return Int((z ^ (z >> 31)) % UInt64(n))
        }
        let fields = ["duration", "cost", "function", "route", "property.customer", "http.status", "db_calls", "model"]
        let widths: [Int64] = [1_000_000, 30_000_000, 300_000_000, 3_600_000_000, 86_400_000_000, 1_500_000]
        for _ in 0..<2000 {
            let field = fields[next(fields.count)]
            let function: Aggregation.Function = switch next(6) {
            case 0: .count
            case 1: .sum(field)
            case 2: .avg(field)
            case 3: .min(field)
            case 4: .max(field)
            default: .percentile(1 + next(99), field)
            }
            var terms: [Aggregation.GroupTerm] = (0..<next(5)).map { _ in .field(fields[next(fields.count)]) }
            if !terms.isEmpty, next(2) == 0 { terms[next(terms.count)] = .bin(micros: widths[next(widths.count)]) }
            let stage = Aggregation(function: function, groupBy: terms)
            let filter = next(2) == 0 ? "level:error " : ""
            let parsed = try QueryParser.parse(filter + "| " + stage.description, nowMicros: now)
            #expect(parsed.aggregation == stage, "\(stage)")
        }
    }
}

@Suite struct QueryDigitIDTests {
    /// Review: a trace or span id of decimal digits only is an id, kept as written; short numbers stay numbers.
    @Test func longDigitRunsAndLeadingZerosStayText() throws {
        func value(_ q: String) throws -> QueryValue? {
            if case .field(_, .equals(let v)) = try QueryParser.parse(q).filter { return v }
            return nil
        }
        #expect(try value("trace_id:01234567890123456789012345678901") == .text("01234567890123456789012345678901"))
        #expect(try value("span_id:1234567890123456") == .text("1234567890123456"))
        #expect(try value("span_id:0123") == .text("0123"))
        #expect(try value("status:503") == .number(503))
        #expect(try value("count:0") == .number(0))
        #expect(try value("n:123456789012345") == .number(123456789012345))
    }
}
