import Foundation
import GatehouseCore
import Testing
@testable import GatehouseTelemetry

@Suite struct SentryTests {
    /// When the events are received: an hour after `event`'s time.
    static let received: Int64 = 1_764_500_400_000_000
    static let event = #"{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","timestamp":1764496800.25,"level":"error","release":"app@1","environment":"prod","exception":{"values":[{"type":"ZeroDivisionError","value":"division by zero"},{"type":"RuntimeError","value":"report 42 failed","stacktrace":{"frames":[{"module":"lib","function":"outer","in_app":false},{"module":"app.reports","function":"build","in_app":true,"lineno":12},{"module":"lib.io","function":"write","in_app":false}]}}]},"tags":{"correlation_id":"corr-9"},"user":{"email":"ada@example.com"},"request":{"headers":{"Authorization":"Bearer secret-token","Accept":"*/*"}}}"#

    @Test func envelopesWithAndWithoutLengthsParse() throws {
        let attachment = "binary\nwith newline"
        let text = #"{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","dsn":"https://abc@example.com/42"}"# + "\n"
            + #"{"type":"event","length":\#(Self.event.utf8.count)}"# + "\n" + Self.event + "\n"
            + #"{"type":"attachment","length":\#(attachment.utf8.count)}"# + "\n" + attachment + "\n"
            + #"{"type":"session"}"# + "\n" + #"{"sid":"x"}"# + "\n"
        let envelope = try SentryEnvelope.parse(Array(text.utf8))
        #expect(envelope.items.map(\.type) == ["event", "attachment", "session"])
        #expect(Array(envelope.items[1].payload) == Array(attachment.utf8))
        #expect(String(decoding: envelope.items[2].payload, as: UTF8.self) == #"{"sid":"x"}"#)
        let dsn = try #require(SentryAuth.parse(dsn: envelope.header["dsn"] as! String))
        #expect(dsn.key == "abc" && dsn.project == "42")
        #expect(throws: SentryEnvelope.ParseError.self) { try SentryEnvelope.parse(Array(#"{}\#n{"type":"event","length":999}\#n{}"#.utf8)) }
        #expect(throws: SentryEnvelope.ParseError.self) { try SentryEnvelope.parse(Array("not json\n".utf8)) }
        #expect(SentryAuth.key(fromHeader: "Sentry sentry_version=7, sentry_client=sentry.python/2.75.0, sentry_key=pub123") == "pub123")
        #expect(SentryAuth.key(fromHeader: "Sentry sentry_version=7") == nil)
    }

    @Test func anEventKeepsItsChainAndLiftsWhatIssuesNeed() throws {
        let e = try SentryEventReader.read(Array(Self.event.utf8)[...], project: "web", receivedMicros: Self.received)
        #expect(e.type == "RuntimeError" && e.title == "RuntimeError: report 42 failed" && e.culprit == "app.reports in build")
        #expect(e.timestampMicros == 1_764_496_800_250_000 && e.release == "app@1" && e.correlationID == "corr-9" && e.userKey == "ada@example.com")
        #expect(e.eventID == "9ec79c33ec9942ab8353589fcb2e04dc" && e.level == .error)
        #expect(e.documentJSON.contains("ZeroDivisionError") && e.documentJSON.contains("app.reports"), "the whole chain and frames are kept")
        #expect(!e.documentJSON.contains("secret-token"), "credentials in request headers are masked")
        let again = try SentryEventReader.read(Array(Self.event.replacingOccurrences(of: "report 42", with: "report 7").utf8)[...], project: "web", receivedMicros: Self.received)
        #expect(again.issueID == e.issueID, "numbers are not part of the grouping")
        let other = try SentryEventReader.read(Array(Self.event.replacingOccurrences(of: "\"RuntimeError\"", with: "\"IOError\"").utf8)[...], project: "web", receivedMicros: Self.received)
        #expect(other.issueID != e.issueID)
        let elsewhere = try SentryEventReader.read(Array(Self.event.utf8)[...], project: "api", receivedMicros: Self.received)
        #expect(elsewhere.issueID != e.issueID, "issues belong to a project")
    }

    /// An SDK sends the end user's cookies, OAuth codes and tokens in the URL, query and body;
    /// none of them may reach the stored document, while the rest of the request stays readable.
    @Test func requestSecretsAreMaskedAtIngest() throws {
        let asObjects = #"""
        {"exception":{"values":[{"type":"E","value":"x"}]},"request":{"method":"POST",
         "url":"https://app.example.com/callback?access_token=URL-TOKEN-1&code=URL-CODE-2&page=3",
         "query_string":"access_token=QS-TOKEN-3&code=QS-CODE-4&page=5",
         "cookies":"sessionid=COOKIE-5; theme=dark",
         "data":{"password":"DATA-PW-6","code":"DATA-CODE-7","comment":"keep me"},
         "headers":{"Accept":"text/html"}}}
        """#
        let asLists = #"""
        {"exception":{"values":[{"type":"E","value":"x"}]},"request":{"method":"GET",
         "url":"https://app.example.com/cb?state=s1&key=URL-KEY-8#access_token=FRAG-TOKEN-16",
         "query_string":[["access_token","QS-TOKEN-9"],["code","QS-CODE-10"],["page","11"]],
         "cookies":{"sessionid":"COOKIE-12","csrftoken":"COOKIE-13"},
         "data":"username=ada&password=FORM-PW-14&code=FORM-CODE-15"}}
        """#
        let secrets = ["URL-TOKEN-1", "URL-CODE-2", "QS-TOKEN-3", "QS-CODE-4", "COOKIE-5", "DATA-PW-6", "DATA-CODE-7",
                       "URL-KEY-8", "QS-TOKEN-9", "QS-CODE-10", "COOKIE-12", "COOKIE-13", "FORM-PW-14", "FORM-CODE-15", "FRAG-TOKEN-16"]
        var documents: [[String: Any]] = []
        for text in [asObjects, asLists] {
            let event = try SentryEventReader.read(Array(text.utf8)[...], project: "web", receivedMicros: Self.received)
            for secret in secrets { #expect(!event.documentJSON.contains(secret), "\(secret) kept in \(event.documentJSON)") }
            documents.append(try #require(try JSONSerialization.jsonObject(with: Data(event.documentJSON.utf8)) as? [String: Any]))
        }
        let first = try #require(documents[0]["request"] as? [String: Any])
        #expect(first["method"] as? String == "POST" && (first["headers"] as? [String: Any])?["Accept"] as? String == "text/html")
        #expect((first["url"] as? String)?.hasPrefix("https://app.example.com/callback?") == true && (first["url"] as? String)?.contains("page=3") == true)
        #expect((first["query_string"] as? String)?.contains("page=5") == true)
        #expect((first["data"] as? [String: Any])?["comment"] as? String == "keep me")
        let second = try #require(documents[1]["request"] as? [String: Any])
        #expect((second["url"] as? String)?.contains("state=s1") == true)
        #expect((second["query_string"] as? [[String]])?.last == ["page", "11"])
        #expect((second["data"] as? String)?.hasPrefix("username=ada&") == true)
    }

    @Test func fingerprintsParameterizeAndHonourTheEventsOwn() {
        #expect(Fingerprint.parameterize("User 4821 not found at https://x.io/u/4821 (ada@example.com)") == "User <int> not found at <url> (<email>)")
        #expect(Fingerprint.parameterize("id 3f2a9c1e-0b1d-4c55-9e2e-9a0d5c1b2e3f from 10.0.0.12 took 2.5s, hash deadbeef42") ==
                "id <uuid> from <ip> took <float>s, hash <hex>")
        #expect(Fingerprint.parameterize("h264 v2 utf8 OCC retry 3rd") == "h264 v2 utf8 OCC retry 3rd", "numbers inside names stay")
        let defaults = Fingerprint.components(explicit: nil, exceptionType: "ValueError", exceptionValue: "bad 1\nmore", message: nil)
        #expect(defaults == ["ValueError", "bad <int>"])
        #expect(Fingerprint.components(explicit: ["{{ default }}", "tenant-a"], exceptionType: "ValueError", exceptionValue: "bad 2", message: nil)
                == ["ValueError", "bad <int>", "tenant-a"])
        #expect(Fingerprint.components(explicit: ["payments"], exceptionType: "ValueError", exceptionValue: "x", message: nil) == ["payments"])
        #expect(Fingerprint.components(explicit: nil, exceptionType: nil, exceptionValue: nil, message: "Export took 31s\nstack…") == ["Export took <int>s"])
    }

    /// Random and mutated envelopes and events never crash the readers.
    @Test func mutatedEnvelopesNeverCrash() {
        var rng = SystemRandomNumberGenerator()
        let seed = Array((#"{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}"# + "\n" + #"{"type":"event","length":\#(Self.event.utf8.count)}"#
            + "\n" + Self.event + "\n" + #"{"type":"event"}"# + "\n" + Self.event + "\n").utf8)
        var parsed = 0
        for round in 0..<3000 {
            var bytes = seed
            for _ in 0..<Int.random(in: 1...10, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[i] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.remove(at: i)
                default: bytes.insert([10, 123, 125, 34, 58].randomElement(using: &rng)!, at: i)
                }
                if bytes.isEmpty { bytes = [10] }
            }
            if round % 10 == 0 { bytes = (0..<Int.random(in: 0..<300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) } }
            guard let envelope = try? SentryEnvelope.parse(bytes) else { continue }
            parsed += 1
            for item in envelope.items where item.type == "event" {
                if let event = try? SentryEventReader.read(item.payload, project: "p", receivedMicros: Self.received) {
                    #expect(event.issueID.count == 32 && event.eventID.count == 32)
                }
            }
        }
        #expect(parsed > 100, "most mutations leave a parsable envelope, so the event reader is exercised too")
    }
}
