import Foundation
import GatehouseCore
import GatehouseHTTP
import HTTPTypes
import Logging
import Testing
@testable import GatehouseGateway

/// Property tests for arithmetic on numbers that come from outside (issue 9, defect 2): a
/// request's `max_tokens`, a provider's usage, headers, query parameters, prices. Every one is
/// fed extreme integers and floats; nothing may trap, and what comes out is bounded and sane.
@Suite struct UntrustedNumbersTests {
    let logger = Logger(label: "test")

    /// JSON number texts a client or a provider may send where a count is expected.
    static let numberTexts = [
        "0", "1", "-1", "2", "1000000000000", "1000000000001", "9007199254740992", "9007199254740993",
        "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
        "18446744073709551615", "18446744073709551616", "100000000000000000000000000000000",
        "1e300", "-1e300", "1.5e19", "1e-300", "4.9e-324", "0.5", "-0.5", "1.7976931348623157e308", "-0.0", "123.999", "1E15",
    ]
    /// What may stand where a number is expected without being one (1E400 makes the whole body
    /// unreadable, which must be just as harmless).
    static let nonNumberTexts = [#""12""#, #""NaN""#, #""Infinity""#, #""-1e300""#, "null", "true", "false", "[]", "{}", "1E400"]
    static var anyTexts: [String] { numberTexts + nonNumberTexts }

    static let int64Extremes: [Int64] = [0, 1, -1, 2, -2, .max, .min, .max - 1, .min + 1, 1 << 53, 1 << 62, -(1 << 62),
                                         1_000_000, 1_000_000_000_000, 3_037_000_499, 3_037_000_500, -3_037_000_500]
    static let doubleExtremes: [Double] = [0, -0.0, 1, -1, 0.5, -0.5, 0.999, .nan, .infinity, -.infinity, 1e300, -1e300, 0x1p63, -0x1p63,
                                           0x1p64, 0x1p53, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude,
                                           9.223372036854775e18, -9.223372036854775e18, 1e12, 1e15]

    /// The count a JSON number text should read as: truncated, limited to 0...maximumCount.
    static func expectedCount(_ text: String) -> Int? {
        guard let d = Double(text) else { return nil }
        if d <= 0 { return 0 }
        if d >= Double(TokenUsage.maximumCount) { return TokenUsage.maximumCount }
        return Int(d)
    }

    static let maxCount = TokenUsage.maximumCount
    /// The most one call can cost: every part saturates at Int64.max pico-dollars.
    static let maxCost = Int64.max / 1_000_000

    // MARK: - The helpers

    @Test func saturatingArithmeticIsExactOrStopsAtTheBounds() {
        var rng = SplitMix(seed: 9)
        func pick() -> Int64 {
            rng.next() % 3 == 0 ? Self.int64Extremes.randomElement(using: &rng)! : Int64(bitPattern: rng.next()) >> Int64(rng.next() % 64)
        }
        func check(_ result: Int64, exact: Double, _ what: String) {
            if abs(exact) < 0x1p62 {
                // The reference is a Double: exact up to its rounding (cancellation included).
                #expect(abs(Double(result) - exact) <= max(abs(exact) * 1e-15, 4096), "\(what)")
            } else if exact >= 0x1p63 * (1 + 1e-12) {
                #expect(result == .max, "\(what)")
            } else if exact <= -0x1p63 * (1 + 1e-12) {
                #expect(result == .min, "\(what)")
            }
            if exact > 0 { #expect(result > 0, "\(what)") }
            if exact < 0 { #expect(result < 0, "\(what)") }
        }
        for _ in 0..<5000 {
            let a = pick(), b = pick()
            check(a.addingSaturated(b), exact: Double(a) + Double(b), "\(a) + \(b)")
            check(a.subtractingSaturated(b), exact: Double(a) - Double(b), "\(a) - \(b)")
            check(a.multipliedSaturated(by: b), exact: Double(a) * Double(b), "\(a) * \(b)")
            if !a.addingReportingOverflow(b).overflow { #expect(a.addingSaturated(b) == a + b) }
            if !a.multipliedReportingOverflow(by: b).overflow { #expect(a.multipliedSaturated(by: b) == a * b) }
            let (low, high, c) = (min(a, b), max(a, b), pick())
            #expect((low...high).contains(c.clamped(to: low...high)))
        }
        #expect(Int32.max.addingSaturated(1) == .max && Int32.min.subtractingSaturated(1) == .min && UInt64(0).subtractingSaturated(1) == 0)
    }

    @Test func doublesConvertWithoutTrapping() {
        var rng = SplitMix(seed: 10)
        let randomDoubles = (0..<3000).map { _ in Double(bitPattern: rng.next()) }
        for d in Self.doubleExtremes + randomDoubles {
            let i = Int64(saturating: d)
            if d.isNaN { #expect(i == 0) } else if d >= 0x1p63 { #expect(i == .max) } else if d <= -0x1p63 { #expect(i == .min) } else {
                #expect(i == Int64(d))
            }
            let u = UInt64(saturating: d)
            #expect(d.isNaN || d <= 0 ? u == 0 : d >= 0x1p64 ? u == .max : u == UInt64(d))
            _ = Int(saturating: d)
            _ = Int32(saturating: d)
            _ = UInt8(saturating: d)
        }
    }

    @Test func jsonNumbersOfAnySizeReadAsBoundedCounts() throws {
        for text in Self.anyTexts {
            let object = try? JSONSerialization.jsonObject(with: Data(#"{"v": \#(text)}"#.utf8)) as? [String: Any]
            let value = object?["v"]
            let count = TokenUsage.count(json: value)
            #expect((0...Self.maxCount).contains(count), "\(text) → \(count)")
            if Self.numberTexts.contains(text) { #expect(count == Self.expectedCount(text), "\(text) → \(count)") }
            if let wide = Int64(jsonNumber: value, in: Int64.min...Int64.max), let d = Double(text), Self.numberTexts.contains(text) {
                if d >= 0x1p63 { #expect(wide == .max, "\(text)") } else if d <= -0x1p63 { #expect(wide == .min, "\(text)") }
            }
        }
        // Integers keep every digit where they fit.
        let exact = try #require(try JSONSerialization.jsonObject(with: Data(#"{"v": 9007199254740993}"#.utf8)) as? [String: Any])
        #expect(Int64(jsonNumber: exact["v"], in: Int64.min...Int64.max) == 9_007_199_254_740_993)
        #expect(Int64(jsonNumber: "12", in: 0...100) == nil && Int64(jsonNumber: nil, in: 0...100) == nil)
    }

    @Test func moneyAndPricesNeverOverflow() {
        #expect(PicoDollarsPerToken(perMillionTokens: "9223372036854.775807")?.value == .max)
        for bad in ["9223372036854.775808", "9223372036855", "99999999999999999999", "+5", "-5", "1.-5", "1.+5", "1e3", " 1 . 5", "1..5", "0x10", "١٢"] {
            #expect(PicoDollarsPerToken(perMillionTokens: bad) == nil, "\(bad)")
            #expect(MicroDollars(dollars: bad) == nil, "\(bad)")
        }
        #expect(MicroDollars(.max) + MicroDollars(1) == MicroDollars(.max))
        #expect(MicroDollars(.min) + MicroDollars(-1) == MicroDollars(.min))
        var total = MicroDollars(.max - 5)
        total += MicroDollars(10)
        #expect(total.value == .max)

        var rng = SplitMix(seed: 11)
        let prices: [Int64] = [0, 1, 150_000, 600_000, 10_000_000, 75_000_000, 1 << 40, .max, -1, .min]
        let counts: [Int] = [0, 1, -1, 1_000, Self.maxCount, Self.maxCount + 1, Int.max, Int.min, 1 << 53]
        for _ in 0..<4000 {
            let price = ModelPrice(provider: "p", model: "m", input: PicoDollarsPerToken(prices.randomElement(using: &rng)!),
                                   output: PicoDollarsPerToken(prices.randomElement(using: &rng)!),
                                   cachedInput: rng.next() % 2 == 0 ? nil : PicoDollarsPerToken(prices.randomElement(using: &rng)!),
                                   cacheWrite: rng.next() % 2 == 0 ? nil : PicoDollarsPerToken(prices.randomElement(using: &rng)!))
            let usage = TokenUsage(inputTokens: counts.randomElement(using: &rng)!, outputTokens: counts.randomElement(using: &rng)!,
                                   cachedInputTokens: counts.randomElement(using: &rng)!, cacheCreationInputTokens: counts.randomElement(using: &rng)!,
                                   reasoningTokens: counts.randomElement(using: &rng)!)
            let cost = price.cost(of: usage)
            #expect((0...Self.maxCost).contains(cost.value), "\(usage) at \(price) → \(cost.value)")
            #expect((0...2 * Self.maxCount).contains(usage.totalTokens))
            let b = usage.bounded
            #expect([b.inputTokens, b.outputTokens, b.cachedInputTokens, b.cacheCreationInputTokens, b.reasoningTokens].allSatisfy { (0...Self.maxCount).contains($0) })
        }
        // The most expensive call saturates rather than wrapping to a small or negative number.
        let dearest = ModelPrice(provider: "p", model: "m", input: PicoDollarsPerToken(.max), output: PicoDollarsPerToken(.max))
        #expect(dearest.cost(of: TokenUsage(inputTokens: .max, outputTokens: .max)).value == Self.maxCost)
        // Ordinary calls are priced exactly as before: 1,000 in + 500 out of gpt-4o at $2.50 / $10.
        let gpt4o = ModelPrice(provider: "openai", model: "gpt-4o", input: PicoDollarsPerToken(2_500_000), output: PicoDollarsPerToken(10_000_000))
        #expect(gpt4o.cost(of: TokenUsage(inputTokens: 1000, outputTokens: 500)).value == 7500)
    }

    // MARK: - What providers report: every usage field

    /// A provider's answer (whole or streamed) whose usage fields carry `values`; every shape
    /// Gatehouse reads, and the cost of what it read, must stay bounded.
    @Test func usageFromProvidersIsBoundedInEveryField() throws {
        let prices = try PriceTable.shipped()
        var rng = SplitMix(seed: 12)
        let texts = Self.anyTexts
        for round in 0..<1500 {
            func v() -> String { texts.randomElement(using: &rng)! }
            let (a, b, c, d) = (v(), v(), v(), v())
            let chat = #"{"model":"gpt-4o","usage":{"prompt_tokens":\#(a),"completion_tokens":\#(b),"prompt_tokens_details":{"cached_tokens":\#(c)},"completion_tokens_details":{"reasoning_tokens":\#(d)}}}"#
            let responses = #"{"model":"gpt-4o","usage":{"input_tokens":\#(a),"output_tokens":\#(b),"input_tokens_details":{"cached_tokens":\#(c)},"output_tokens_details":{"reasoning_tokens":\#(d)}}}"#
            let anthropic = #"{"model":"claude-sonnet-4-5","usage":{"input_tokens":\#(a),"output_tokens":\#(b),"cache_read_input_tokens":\#(c),"cache_creation_input_tokens":\#(d)}}"#
            var found: [TokenUsage] = []
            for (body, dialect) in [(chat, APIDialect.openAI), (responses, .openAI), (anthropic, .anthropic)] {
                if let usage = UsageExtraction.fromBody(Array(body.utf8), dialect: dialect).usage { found.append(usage) }
            }
            // The same numbers streamed.
            var chatStream = StreamUsageAccumulator(route: .chatCompletions)
            _ = chatStream.observe(event(nil, #"{"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":\#(a),"completion_tokens":\#(b)}}"#))
            var responsesStream = StreamUsageAccumulator(route: .responses)
            _ = responsesStream.observe(event("response.completed", #"{"type":"response.completed","response":{"model":"gpt-4o","usage":{"input_tokens":\#(a),"output_tokens":\#(b)}}}"#))
            var messagesStream = StreamUsageAccumulator(route: .messages)
            _ = messagesStream.observe(event("message_start", #"{"type":"message_start","message":{"model":"claude-sonnet-4-5","usage":{"input_tokens":\#(a),"output_tokens":1,"cache_read_input_tokens":\#(c)}}}"#))
            _ = messagesStream.observe(event("message_delta", #"{"type":"message_delta","usage":{"output_tokens":\#(b),"input_tokens":\#(d),"cache_creation_input_tokens":\#(d)}}"#))
            found += [chatStream.usage, responsesStream.usage, messagesStream.usage].compactMap { $0 }

            for usage in found {
                let fields = [usage.inputTokens, usage.outputTokens, usage.cachedInputTokens, usage.cacheCreationInputTokens, usage.reasoningTokens]
                #expect(fields.allSatisfy { (0...Self.maxCount).contains($0) }, "round \(round): \(a) \(b) \(c) \(d) → \(usage)")
                // Metering the call: its record and its cost.
                var meter = CallMeter(route: .chatCompletions, correlationID: "c")
                meter.model = "gpt-4o"
                meter.priceProvider = round % 2 == 0 ? "openai" : "mock"
                let record = meter.record(status: 200, usage: usage, reportedModel: round % 3 == 0 ? "claude-sonnet-4-5" : nil, errorClass: nil,
                                          errorMessage: nil, complete: true, prices: prices)
                #expect((0...Self.maxCost).contains(record.cost.value))
                #expect((0...2 * Self.maxCount).contains(record.usage.totalTokens))
            }
            // Exact where the number is an ordinary count.
            if let ea = Self.expectedCount(a), let eb = Self.expectedCount(b), Self.numberTexts.contains(a), Self.numberTexts.contains(b),
               Self.numberTexts.contains(c), Self.numberTexts.contains(d) {
                let usage = UsageExtraction.fromBody(Array(chat.utf8), dialect: .openAI).usage
                #expect(usage?.inputTokens == ea && usage?.outputTokens == eb, "\(a) \(b)")
                let claude = UsageExtraction.fromBody(Array(anthropic.utf8), dialect: .anthropic).usage
                let inputs = ea + Self.expectedCount(c)! + Self.expectedCount(d)!
                #expect(claude?.inputTokens == min(inputs, Self.maxCount), "\(a) \(c) \(d)")
            }
        }
    }

    /// The answer's usage is read from its bytes (no Foundation objects on every call): it must
    /// read each count as Foundation's decoding did, for every text a provider may put there.
    /// (Booleans differ on purpose: `true` is not a count. 1E400 is readable JSON to the scanner,
    /// which saturates it, where Foundation refuses the whole body.)
    @Test func scannedUsageReadsEveryCountAsDecodedUsage() throws {
        var rng = SplitMix(seed: 14)
        let texts = Self.anyTexts.filter { !["true", "false", "1E400"].contains($0) }
        for round in 0..<1500 {
            func v() -> String { texts.randomElement(using: &rng)! }
            let (a, b, c, d) = (v(), v(), v(), v())
            for usage in [#"{"prompt_tokens":\#(a),"completion_tokens":\#(b),"prompt_tokens_details":{"cached_tokens":\#(c)},"completion_tokens_details":{"reasoning_tokens":\#(d)}}"#,
                          #"{"input_tokens":\#(a),"output_tokens":\#(b),"input_tokens_details":{"cached_tokens":\#(c)},"output_tokens_details":{"reasoning_tokens":\#(d)}}"#,
                          #"{"input_tokens" : \#(a), "output_tokens":\#(b),"cache_read_input_tokens":\#(c),"cache_creation_input_tokens":\#(d)}"#] {
                let bytes = Array(usage.utf8)
                let decoded = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any], "\(usage)")
                let scanned = try #require(ScannedFields(bytes))
                #expect(UsageExtraction.openAI(scanned) == UsageExtraction.openAI(decoded), "round \(round): \(usage)")
                #expect(UsageExtraction.anthropic(scanned) == UsageExtraction.anthropic(decoded), "round \(round): \(usage)")
                let body = Array(#"{"model":"gpt-4o","usage":\#(usage)}"#.utf8)
                #expect(UsageExtraction.fromBody(body, dialect: .openAI).usage == UsageExtraction.openAI(decoded))
            }
        }
        // Not an object, or not JSON: no usage, never a trap.
        for text in ["[]", "12", #""x""#, "{", "{\"a\":}", ""] { #expect(ScannedFields(Array(text.utf8)) == nil, "\(text)") }
        #expect(UsageExtraction.fromBody(Array(#"{"usage":[1,2]}"#.utf8), dialect: .openAI).usage == nil)
    }

    func event(_ name: String?, _ data: String) -> SSEEvent {
        SSEEvent(event: name, data: data, hasData: true, raw: Array(data.utf8))
    }

    // MARK: - What clients send: max_tokens and friends, through caps, estimate and quotas

    func makeControls(rules: [QuotaRule] = []) throws -> (Controls, MemoryQuotaStore) {
        let store = MemoryQuotaStore()
        var settings = ControlSettings()
        settings.rateLimits = rules.filter { $0.unit != .cost }
        settings.budgets = rules.filter { $0.unit == .cost }
        let controls = Controls(settings: settings, state: ControlState(store: NoKeysOrSwitches(), logger: logger),
                                ledger: QuotaLedger(store: store, leaseFraction: 0.05, logger: logger), prices: try PriceTable.shipped())
        return (controls, store)
    }

    @Test func requestTokenLimitsOfAnySizeAreEstimatedAndRefusedPolitely() async throws {
        let rules = [
            QuotaRule(id: "tokens", scope: .global, unit: .tokens, limit: 100_000, period: .minute),
            QuotaRule(id: "spend", scope: .global, unit: .cost, limit: 5_000_000, period: .day),
            QuotaRule(id: "huge", scope: .global, unit: .tokens, limit: .max, period: .total),
            QuotaRule(id: "requests", scope: .global, unit: .requests, limit: .max, period: .second),
        ]
        let (controls, _) = try makeControls(rules: rules)
        let capSets: [[TokenCap]] = [
            [], [TokenCap(maxOutputTokens: 1000)], [TokenCap(maxOutputTokens: 1000, mode: .reject)],
            [TokenCap(maxOutputTokens: .max, maxInputTokens: .max)], [TokenCap(maxOutputTokens: 0, maxInputTokens: 0)],
        ]
        let fields = ["max_tokens", "max_completion_tokens", "max_output_tokens"]
        var admitted = 0
        for route in [GatewayRoute.chatCompletions, .completions, .messages, .responses, .embeddings] {
            for field in fields {
                for text in Self.anyTexts {
                    let body = #"{"model":"gpt-4o","\#(field)":\#(text),"messages":[{"role":"user","content":"hi"}]}"#
                    guard let inbound = try? InboundRequest(route: route, body: Array(body.utf8)) else { continue }
                    for caps in capSets {
                        let outcome: TokenCaps.Outcome
                        do {
                            outcome = try TokenCaps(caps: caps).apply(route: route, properties: [:], request: inbound)
                        } catch {
                            #expect(error.error.status == .badRequest)
                            continue
                        }
                        if let m = outcome.maxOutputTokens { #expect((0...Self.maxCount).contains(m), "\(field) \(text) → \(m)") }
                        #expect(outcome.integers.allSatisfy { $0.value >= 0 })
                        _ = inbound.rewritten(upstreamModel: "gpt-4o", injectUsageOption: true, integers: outcome.integers)
                        let estimate = controls.estimate(bodyBytes: inbound.body.count, maxOutputTokens: outcome.maxOutputTokens, route: route,
                                                         model: "gpt-4o", priceProvider: "openai")
                        #expect((0...2 * Int64(Self.maxCount)).contains(estimate.tokens), "\(field) \(text)")
                        #expect((0...Self.maxCost).contains(estimate.cost.value), "\(field) \(text)")
                        let subject = CallSubject(route: route, requestedModel: "gpt-4o", key: nil, credentialFingerprint: nil, clientIP: nil,
                                                  userID: nil, properties: [:])
                        do {
                            let admission = try await controls.admit(subject, rules: try controls.applicableRules(subject, policyHeader: nil),
                                                                     estimate: estimate)
                            admitted += 1
                            _ = admission.headers
                            admission.cancel()
                        } catch {
                            #expect(error.error.status == .tooManyRequests, "\(field) \(text): \(error.error.message)")
                            #expect(error.error.message.contains("estimated") || error.error.message.contains("used up")
                                || error.error.message.contains("Rate limit reached"), "\(error.error.message)")
                        }
                    }
                }
            }
        }
        #expect(admitted > 0, "ordinary values still pass")
        // The estimate itself, fed raw extremes.
        for bytes in [0, 1, -1, Int.max, Int.min] {
            for output in [nil, 0, -1, Int.max, Int.min, Self.maxCount, Self.maxCount + 1] as [Int?] {
                let e = controls.estimate(bodyBytes: bytes, maxOutputTokens: output, route: .messages, model: "claude-opus-4-1", priceProvider: "anthropic")
                #expect((0...2 * Int64(Self.maxCount)).contains(e.tokens) && (0...Self.maxCost).contains(e.cost.value))
            }
        }
    }

    @Test func theLedgerRefusesWhatCanNeverFitAndSaturatesDebts() async throws {
        let store = MemoryQuotaStore()
        let ledger = QuotaLedger(store: store, leaseFraction: 0.05, logger: logger)
        let budget = QuotaRule(id: "b", scope: .global, unit: .cost, limit: 100, period: .day)
        do {
            _ = try await ledger.acquire(counter: "b|", rule: budget, amount: .max)
            Issue.record("an amount above the whole limit was admitted")
        } catch let e as QuotaLedger.Exhausted {
            #expect(e.needed == .max && e.remaining == 100)
        }
        let free = try await ledger.acquire(counter: "b|", rule: budget, amount: .min)
        #expect(free.amount == 0, "a negative amount reserves nothing")
        ledger.settle(free, actual: 0)
        let r = try await ledger.acquire(counter: "b|", rule: budget, amount: 50)
        ledger.settle(r, actual: .max)
        ledger.settle(r, actual: .max)
        ledger.settle(r, actual: .min)
        do {
            _ = try await ledger.acquire(counter: "b|", rule: budget, amount: 1)
            Issue.record("a budget in debt admitted a call")
        } catch let e as QuotaLedger.Exhausted {
            #expect(e.remaining == 0)
        }
        #expect((ledger.localView(counter: "b|")?.unreported ?? 0) >= 0)

        // Random amounts and settlements on limits of every size never trap.
        var rng = SplitMix(seed: 13)
        let limits: [Int64] = [0, 1, 100, 1_000_000, .max]
        for i in 0..<2000 {
            let rule = QuotaRule(id: "r\(i % 5)", scope: .global, unit: .tokens, limit: limits[i % 5], period: [.second, .minute, .day, .month, .total][i % 5])
            let amount = Self.int64Extremes.randomElement(using: &rng)!
            do {
                let reservation = try await ledger.acquire(counter: "r\(i % 5)|", rule: rule, amount: amount)
                #expect(reservation.remaining >= 0 && reservation.amount >= 0)
                ledger.settle(reservation, actual: max(0, Self.int64Extremes.randomElement(using: &rng)!) % 1_000_000_000_000)
            } catch let e as QuotaLedger.Exhausted {
                #expect(e.remaining >= 0)
                _ = Controls.rejection(e)
            }
        }
    }

    @Test func budgetRefusalsSayWhetherTheCallOrTheBudgetIsTooBig() async throws {
        let budget = QuotaRule(id: "tiny", scope: .global, unit: .cost, limit: 100, period: .day)
        let dear = Controls.rejection(QuotaLedger.Exhausted(counter: "tiny|", rule: budget, windowEnd: TimeExpressions.nowMicros() + 3_600_000_000,
                                                            needed: 60_003, remaining: 100))
        #expect(dear.error.message.contains("this call's estimated cost ($0.060003) exceeds what is left of the budget ($0.000100 of $0.000100 per day for all calls)"),
                "\(dear.error.message)")
        #expect(!dear.error.message.contains("used up") && dear.error.code == "budget_exceeded" && dear.error.status == .tooManyRequests)
        let spent = Controls.rejection(QuotaLedger.Exhausted(counter: "tiny|", rule: budget, windowEnd: TimeExpressions.nowMicros() + 3_600_000_000,
                                                             needed: 5, remaining: 0))
        #expect(spent.error.message.hasPrefix("Budget exceeded: $0.000100 per day for all calls is used up; it resets in"), "\(spent.error.message)")
        let total = QuotaRule(id: "once", scope: .global, unit: .cost, limit: 100, period: .total)
        let totalDear = Controls.rejection(QuotaLedger.Exhausted(counter: "once|", rule: total, windowEnd: .max, needed: .max, remaining: 40))
        #expect(totalDear.error.message.contains("($9223372036854.775807) exceeds what is left of the budget ($0.000040 of $0.000100 in total"),
                "\(totalDear.error.message)")
        let tokens = QuotaRule(id: "tpm", scope: .global, unit: .tokens, limit: 1000, period: .minute)
        let tooLarge = Controls.rejection(QuotaLedger.Exhausted(counter: "tpm|", rule: tokens, windowEnd: TimeExpressions.nowMicros() + 1_000_000,
                                                                needed: 1_000_000_000_000, remaining: 1000))
        #expect(tooLarge.error.message.contains("estimated at 1000000000000 tokens, more than the limit of 1000 tokens per minute"), "\(tooLarge.error.message)")

        // Through the ledger: a call dearer than the whole budget, then a budget really spent.
        let (controls, _) = try makeControls(rules: [budget])
        let subject = CallSubject(route: .chatCompletions, requestedModel: "gpt-4o-mini", key: nil, credentialFingerprint: nil, clientIP: nil,
                                  userID: nil, properties: [:])
        let rules = try controls.applicableRules(subject, policyHeader: nil)
        do {
            _ = try await controls.admit(subject, rules: rules, estimate: Controls.Estimate(tokens: 100, cost: MicroDollars(60_003)))
            Issue.record("admitted")
        } catch {
            #expect(error.error.message.contains("estimated cost ($0.060003) exceeds what is left of the budget ($0.000100"), "\(error.error.message)")
        }
        let admission = try await controls.admit(subject, rules: rules, estimate: Controls.Estimate(tokens: 10, cost: MicroDollars(50)))
        admission.settle(tokens: 10, cost: MicroDollars(100))
        do {
            _ = try await controls.admit(subject, rules: rules, estimate: Controls.Estimate(tokens: 10, cost: MicroDollars(10)))
            Issue.record("admitted past a spent budget")
        } catch {
            #expect(error.error.message.contains("is used up"), "\(error.error.message)")
        }
    }

    // MARK: - Headers, parameters, times

    @Test func heliconePoliciesWithHugeNumbersAreRefusedNotTrappedOn() {
        let quotas = ["9223372036854775807", "922337203685477580", "922337203685477", "922337203685478", "-1", "0", "1", "1e300", "99999999999999999999"]
        let windows = ["60", "1", "0", "-5", "31536000", "31536001", "9223372036854775807", "1e300"]
        let now = TimeExpressions.nowMicros()
        for quota in quotas {
            for window in windows {
                for unit in ["", ";u=cents", ";u=request"] {
                    guard let rule = try? HeliconePolicy.parse("\(quota);w=\(window)\(unit)") else { continue }
                    #expect(rule.limit >= 1 && (rule.customWindowSeconds ?? 0) >= 1)
                    let w = rule.window(containing: now)
                    #expect(w.start <= now && now < w.end)
                }
            }
        }
        #expect((try? HeliconePolicy.parse("922337203685477580;w=60;u=cents")) == nil, "cents × 10,000 would overflow: refused")
        #expect((try? HeliconePolicy.parse("922337203685477;w=60;u=cents"))?.limit == 9_223_372_036_854_770_000)
    }

    @Test func retryAfterOfAnySizeIsBounded() {
        let values = ["1e300", "-1e300", "inf", "Infinity", "-inf", "nan", "NaN", "-1", "0", "1.5", "9223372036854775808", "1e-300",
                      "86400", "86401", "99999999999999999999999", "Fri, 31 Dec 9999 23:59:59 GMT", "Thu, 01 Jan 1970 00:00:00 GMT", ""]
        for value in values {
            for name in ["Retry-After", "retry-after-ms"] {
                if let seconds = RetryPolicy.retryAfterSeconds([(name, value)]) {
                    #expect((0...RetryPolicy.maximumRetryAfterSeconds).contains(seconds), "\(name): \(value) → \(seconds)")
                }
            }
        }
        var settings = RetrySettings()
        for (initial, maximum) in [(200, 8000), (Int.max, Int.max), (0, 0), (1, Int.max)] {
            settings.initialBackoffMilliseconds = initial
            settings.maxBackoffMilliseconds = maximum
            let policy = RetryPolicy(settings: settings)
            for retry in [Int.min, -1, 0, 1, 2, 63, 64, 1100, Int.max] {
                for after in Self.doubleExtremes.map(Optional.some) + [nil] {
                    for random in [0, 0.5, 1, .nan, .infinity, -1] as [Double] {
                        let delay = policy.delayMilliseconds(retry: retry, retryAfterSeconds: after, random: random)
                        #expect(delay >= 0 && delay <= max(maximum, 86_400_000), "\(retry) \(String(describing: after)) \(random) → \(delay)")
                    }
                }
            }
        }
    }

    @Test func timesDurationsAndLimitsFromOutsideNeverTrap() {
        for text in ["9223372036854775807w", "9223372036854775807ms", "9223372036854775ms", "99999999999999999999s", "-5s", "1e300s", "0s", "5m"] {
            if let d = TimeExpressions.durationMicros(text) { #expect(d >= 0) }
            for prefix in ["", "-"] { _ = TimeExpressions.instantMicros(prefix + text) }
        }
        for text in ["9223372036854775807", "-9223372036854775808", "9223372036854775", "100000000000000000000", "+292277026596-12-04T15:30:07Z",
                     "9999-12-31T23:59:59.999999999999Z", "0000-01-01T00:00:00Z", "0001-01-01", "9999-12-31", "today", "now"] {
            _ = TimeExpressions.instantMicros(text)
            _ = TimeExpressions.rfc3339Micros(text)
        }
        #expect(TimeExpressions.micros(.seconds(Int64.max)) == .max)
        #expect(TimeExpressions.micros(.seconds(Int64.min)) == .min)
        #expect(TimeExpressions.micros(.milliseconds(1500)) == 1_500_000)
        for micros in Self.int64Extremes {
            _ = TimeExpressions.formatDuration(micros: micros)
            _ = TimeExpressions.format(micros: micros)
            for period in QuotaPeriod.allCases {
                let w = period.window(containing: micros)
                #expect(w.start <= w.end)
            }
            for seconds in Self.int64Extremes where seconds > 0 {
                let rule = QuotaRule(id: "w", scope: .global, unit: .requests, limit: 1, period: .total, customWindowSeconds: seconds)
                let w = rule.window(containing: micros)
                #expect(w.start <= w.end)
            }
        }
        for text in ["99999999999999999999999", "9223372036854775807", "-1", "0", "1e3", "1000", "1001", " 5", "NaN"] {
            do {
                let n = try APIParameters.limit(text, fallback: 50, max: 1000)
                #expect((1...1000).contains(n))
            } catch {
                #expect(error.status == .badRequest)
            }
        }
    }
}
