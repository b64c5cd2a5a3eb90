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
                      " ", "1h", "100ms", "2026-11-23T10:00:00Z", "by", "count", "p95", "é", "\\", "1MB", "-1h", "0.5", "x.y"]
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
}
