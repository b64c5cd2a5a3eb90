import Foundation
import Testing
@testable import GatehouseCore

@Suite struct BackoffTests {
    @Test func doublesUpToItsMaximumAndStartsOverAfterASuccess() {
        var backoff = Backoff(initial: .milliseconds(50), maximum: .milliseconds(300))
        #expect((0..<5).map { _ in backoff.next() } == [.milliseconds(50), .milliseconds(100), .milliseconds(200), .milliseconds(300), .milliseconds(300)])
        backoff.reset()
        #expect(backoff.next() == .milliseconds(50))
        #expect(Backoff.ceilingMilliseconds(initial: 200, maximum: 5000, retry: 1) == 200)
        #expect(Backoff.ceilingMilliseconds(initial: 200, maximum: 5000, retry: 3) == 800)
        #expect(Backoff.ceilingMilliseconds(initial: 200, maximum: 5000, retry: .max) == 5000, "no overflow")
        #expect(Backoff.ceilingMilliseconds(initial: 0, maximum: 5000, retry: .max) == 0, "no NaN from 0 × ∞")
    }
}

@Suite struct CorrelationAndRedactionTests {
    /// A Sentry SDK sends its frames' local variables; a `dsn` variable held the ingest key in
    /// its URL's user part, and the event page showed it. Credentials in URLs inside any string
    /// value are masked, as are provider keys in free text.
    @Test func credentialsInsideStringValuesAreMasked() {
        let event: [String: Any] = ["frames": [["vars": ["client": "http://ingest-key-web-0123456789@127.0.0.1:8080/42",
                                                         "db": "postgres://app:hunter2-secret@db.internal:5432/app",
                                                         "note": "called with sk-proj-abcdefghijklmnop", "plain": "https://example.com/a@b"]]]]
        let text = String(describing: Redactor.redactJSON(event))
        #expect(!text.contains("ingest-key-web-0123456789") && !text.contains("hunter2-secret") && !text.contains("sk-proj-abcdefghijklmnop"), "\(text)")
        #expect(text.contains("127.0.0.1:8080/42") && text.contains("db.internal:5432") && text.contains("https://example.com/a@b"),
                "what is not a credential stays readable: \(text)")
    }

    @Test func requestIDWinsThenTraceparentThenGenerated() {
        #expect(CorrelationID.resolve(requestID: "abc-123", traceparent: nil) == "abc-123")
        let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        #expect(CorrelationID.resolve(requestID: nil, traceparent: trace) == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(CorrelationID.resolve(requestID: "has space", traceparent: trace) == "4bf92f3577b34da6a3ce929d0e0e4736")
        let generated = CorrelationID.resolve(requestID: String(repeating: "x", count: 200), traceparent: "garbage")
        #expect(generated.count == 32 && generated.allSatisfy(\.isHexDigit))
        #expect(CorrelationID.traceID(fromTraceparent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01") == nil)
    }

    @Test func scrubbingRemovesKeysFromFreeText() {
        let text = "Incorrect API key provided: sk-proj-abcdef1234567890. Header was Bearer sk-ant-api03-XYZXYZXYZXYZ"
        let scrubbed = Redactor.scrubText(text)
        #expect(!scrubbed.contains("abcdef1234567890"))
        #expect(!scrubbed.contains("XYZXYZXYZXYZ"))
        #expect(scrubbed.contains("Incorrect API key provided"))
        #expect(Redactor.redactURL("postgres://u:pw@h/db").contains("pw") == false)
    }

    @Test func credentialNamesAreMaskedButTokenCountsAreNot() {
        for key in ["token", "Token", "x_auth_token", "csrfToken", "password", "client_secret", "api_key", "X-Api-Key", "private_key", "authorization"] {
            #expect(Redactor.isSecretKey(key), "\(key) names a credential")
        }
        for key in ["input_tokens", "max_tokens", "total_tokens", "token_count", "tokens", "tokenizer", "model", "customer"] {
            #expect(!Redactor.isSecretKey(key), "\(key) is not a credential")
        }
        // Past the depth cap a subtree is masked whole, never left unread.
        var deep: Any = ["password": "hunter2"]
        for _ in 0..<70 { deep = ["nested": deep] }
        let text = String(describing: Redactor.redactJSON(deep))
        #expect(!text.contains("hunter2"))
    }

    /// One list of secret names: a name masked in one place is masked in every other, and log
    /// ingest's byte scan (which looks for `secretKeyMarkers` and `secretHeaderNames`) sees it.
    @Test func aSecretNameIsMaskedEverywhere() {
        let names = ["token", "Token", "x_auth_token", "csrfToken", "password", "PASSWD", "client_secret", "api_key", "apiKey", "X-Api-Key",
                     "private_key", "aws_access_key", "sentry_key", "authorization", "Proxy-Authorization", "cookie", "Set-Cookie",
                     "x-sentry-auth", "Helicone-Auth", "openai-api-key", "anthropic-api-key", "x-goog-api-key", "api-key",
                     "input_tokens", "max_tokens", "token_count", "tokenizer", "model", "customer", "key", "monkey", "authority", "author"]
        var config = GatehouseConfig()
        config.providers = [ProviderConfig(name: "p", kind: .openAI, baseURL: "https://api.openai.com/v1",
                                           headers: Dictionary(uniqueKeysWithValues: names.map { ($0, "<value of \($0)>") }))]
        let printed = config.redactedYAML()
        let markers = (Redactor.secretKeyMarkers + Redactor.secretHeaderNames).map { $0.lowercased() }
        for name in names {
            let secret = Redactor.isSecretKey(name)
            let value = "<value of \(name)>"
            let object = Redactor.redactJSON(["outer": [name: value]]) as? [String: [String: String]]
            #expect((object?["outer"]?[name] == Redactor.mask) == secret, "redactJSON and isSecretKey disagree on \(name)")
            let pair = Redactor.redactJSON([[name, value]]) as? [[String]]
            #expect((pair?.first?.last == Redactor.mask) == secret, "header pairs and isSecretKey disagree on \(name)")
            let printsValue = Redactor.isHarmlessHeader(name) && !secret
            #expect(printed.contains(value) == printsValue, "check-config prints \(name) only when it is a harmless header")
            if secret {
                let url = Redactor.redactURL("https://h.example/p?\(name)=s3cr3t&q=cafe")
                #expect(Redactor.isSecretQueryName(name) && !url.contains("s3cr3t") && url.contains("q=cafe"), "a URL keeps the secret \(name): \(url)")
                #expect(markers.contains { name.lowercased().contains($0) }, "log ingest's scan would miss \(name)")
            }
            if Redactor.isSecretHeader(name) { #expect(secret, "\(name) is a secret header but not a secret key") }
        }
        // A URL's query is masked more widely (`?key=`), never less.
        #expect(!Redactor.redactURL("https://maps.example/api?key=AIzaSecret&q=cafe").contains("AIzaSecret"))
        #expect(Redactor.redactURL("https://maps.example/api?key=AIzaSecret&q=cafe").contains("q=cafe"))
    }

    @Test func fingerprintsDoNotRevealTheKey() {
        let fp = Redactor.fingerprint(ofSecret: "sk-test-verysecretvalue")
        #expect(fp.hasPrefix("sk-…"))
        #expect(!fp.contains("verysecret"))
        #expect(fp == Redactor.fingerprint(ofSecret: "sk-test-verysecretvalue"))
    }
}

@Suite struct TimeExpressionTests {
    let now = Date(timeIntervalSince1970: 1_795_000_000)

    @Test func durations() {
        #expect(TimeExpressions.durationMicros("100ms") == 100_000)
        #expect(TimeExpressions.durationMicros("2s") == 2_000_000)
        #expect(TimeExpressions.durationMicros("5m") == 300_000_000)
        #expect(TimeExpressions.durationMicros("1h") == 3_600_000_000)
        #expect(TimeExpressions.durationMicros("7d") == 604_800_000_000)
        #expect(TimeExpressions.durationMicros("h") == nil)
        #expect(TimeExpressions.durationMicros("99999999999999999d") == nil)
    }

    @Test func instants() {
        let nowMicros: Int64 = 1_795_000_000_000_000
        #expect(TimeExpressions.instantMicros("now", now: now) == nowMicros)
        #expect(TimeExpressions.instantMicros("-1h", now: now) == nowMicros - 3_600_000_000)
        #expect(TimeExpressions.instantMicros("24h", now: now) == nowMicros - 86_400_000_000)
        #expect(TimeExpressions.instantMicros("2026-11-22T10:00:00Z", now: now) == 1_795_341_600_000_000)
        #expect(TimeExpressions.instantMicros("2026-11-22", now: now) == 1_795_305_600_000_000)
        #expect(TimeExpressions.instantMicros("1795000000", now: now) == nowMicros)
        #expect(TimeExpressions.instantMicros("yesterday-ish", now: now) == nil)
    }

    @Test func percentilesInterpolateLikePostgres() throws {
        // percentile_cont over 1...10: p50 = 5.5, p95 = 9.55, p99 = 9.91.
        let p = try #require(LatencyPercentiles.compute(sorted: Array(1...10)))
        #expect(abs(p.p50 - 5.5) < 1e-9)
        #expect(abs(p.p95 - 9.55) < 1e-9)
        #expect(abs(p.p99 - 9.91) < 1e-9)
        #expect(LatencyPercentiles.compute(sorted: []) == nil)
        #expect(LatencyPercentiles.compute(sorted: [42])?.p99 == 42)
    }
}

/// The scanner's numbers follow JSON's grammar: log ingest stores a line's attributes as the
/// scanned bytes, and one `03` in them made every later attribute query fail in SQLite's
/// json functions ("malformed JSON": a 503 from the log search, found by the ingest fuzz test).
@Suite struct JSONNumberGrammarTests {
    @Test func leadingZerosAreNotJSON() {
        for bad in [#"{"n":03}"#, #"{"n":-01}"#, #"{"n":00.5}"#, #"{"n":1.}"#, #"{"n":-}"#] {
            #expect((try? JSONObjectScanner.members(of: Array(bad.utf8))) == nil, "\(bad)")
        }
        for good in [#"{"n":0}"#, #"{"n":-0}"#, #"{"n":0.5}"#, #"{"n":10}"#, #"{"n":-0e3}"#, #"{"n":503}"#] {
            #expect((try? JSONObjectScanner.members(of: Array(good.utf8))) != nil, "\(good)")
        }
    }
}
