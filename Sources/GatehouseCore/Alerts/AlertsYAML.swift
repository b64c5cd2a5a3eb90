import Foundation

/// Reads and checks the `alerts:` section, explaining each mistake with its key.
extension YAMLReader {
    mutating func readAlerts(_ value: Any, into a: inout AlertSettings) {
        guard let map = mapping(value, at: "alerts") else { return }
        check(map, at: "alerts", allowed: ["rules", "receivers", "routes", "default_receiver", "evaluation_interval_seconds", "group_by",
                                           "group_wait_seconds", "group_interval_seconds", "repeat_interval_seconds", "send_resolved",
                                           "external_url", "delivery_attempts", "probes", "heartbeats"])
        if let v = int(map["evaluation_interval_seconds"], at: "alerts.evaluation_interval_seconds") { a.evaluationIntervalSeconds = v }
        if let v = strings(map["group_by"], at: "alerts.group_by") { a.groupBy = v }
        if let v = int(map["group_wait_seconds"], at: "alerts.group_wait_seconds") { a.groupWaitSeconds = v }
        if let v = int(map["group_interval_seconds"], at: "alerts.group_interval_seconds") { a.groupIntervalSeconds = v }
        if let v = int(map["repeat_interval_seconds"], at: "alerts.repeat_interval_seconds") { a.repeatIntervalSeconds = v }
        if let v = bool(map["send_resolved"], at: "alerts.send_resolved") { a.sendResolved = v }
        if let v = string(map["external_url"], at: "alerts.external_url") { a.externalURL = v.hasSuffix("/") ? String(v.dropLast()) : v }
        if let v = int(map["delivery_attempts"], at: "alerts.delivery_attempts") { a.deliveryAttempts = v }
        if let v = string(map["default_receiver"], at: "alerts.default_receiver") { a.defaultReceiver = v }
        var rulesAt: [(String, AlertRule)] = []
        if let list = map["rules"].flatMap({ sequence($0, at: "alerts.rules") }) {
            rulesAt = list.enumerated().compactMap { i, item in alertRule(item, at: "alerts.rules[\(i)]").map { ("alerts.rules[\(i)]", $0) } }
            a.rules = rulesAt.map(\.1)
        }
        if let list = map["receivers"].flatMap({ sequence($0, at: "alerts.receivers") }) {
            a.receivers = list.enumerated().compactMap { receiver($1, at: "alerts.receivers[\($0)]") }
        }
        if let list = map["routes"].flatMap({ sequence($0, at: "alerts.routes") }) {
            a.routes = list.enumerated().compactMap { i, item in
                let at = "alerts.routes[\(i)]"
                guard let m = mapping(item, at: at) else { return nil }
                check(m, at: at, allowed: ["receiver", "severity", "match", "continue"])
                let receiver = string(m["receiver"], at: "\(at).receiver", required: true)
                var severities: [AlertSeverity] = []
                if let raw = m["severity"] {
                    let names = (raw as? String).map { [$0] } ?? strings(raw, at: "\(at).severity") ?? []
                    for name in names {
                        if let s = AlertSeverity(rawValue: name) { severities.append(s) } else {
                            errors.append(.init(key: "\(at).severity", problem: "\"\(name)\" is not one of critical, high, medium, low"))
                        }
                    }
                }
                let match = stringMap(m["match"], at: "\(at).match")
                let continueMatching = bool(m["continue"], at: "\(at).continue") ?? false
                guard let receiver else { return nil }
                return AlertRoute(receiver: receiver, severities: severities, match: match, continueMatching: continueMatching)
            }
        }
        if let list = map["probes"].flatMap({ sequence($0, at: "alerts.probes") }) {
            a.probes = list.enumerated().compactMap { probe($1, at: "alerts.probes[\($0)]") }
        }
        if let list = map["heartbeats"].flatMap({ sequence($0, at: "alerts.heartbeats") }) {
            a.heartbeats = list.enumerated().compactMap { i, item in
                let at = "alerts.heartbeats[\(i)]"
                guard let m = mapping(item, at: at) else { return nil }
                check(m, at: at, allowed: ["name", "interval_seconds", "grace_seconds", "token", "public"])
                let name = string(m["name"], at: "\(at).name", required: true)
                let interval = int(m["interval_seconds"], at: "\(at).interval_seconds")
                if m["interval_seconds"] == nil || m["interval_seconds"] is NSNull {
                    errors.append(.init(key: "\(at).interval_seconds", problem: "is required: how often the job calls in"))
                }
                let grace = int(m["grace_seconds"], at: "\(at).grace_seconds") ?? 60
                let token = string(m["token"], at: "\(at).token")
                let isPublic = bool(m["public"], at: "\(at).public") ?? false
                guard let name, let interval else { return nil }
                return HeartbeatConfig(name: name, intervalSeconds: interval, graceSeconds: grace, token: token, isPublic: isPublic)
            }
        }
        let monitored = Set(a.probes.map(\.name) + a.heartbeats.map(\.name)).union(builtInMonitors)
        for (at, rule) in rulesAt where rule.expression.signal == .probeDown {
            if let name = rule.expression.argument, !monitored.contains(name) {
                errors.append(.init(key: "\(at).expr", problem: "no probe or heartbeat is named \"\(name)\""))
            }
        }
    }

    mutating func alertRule(_ item: Any, at: String) -> AlertRule? {
        guard let m = mapping(item, at: at) else { return nil }
        check(m, at: at, allowed: ["name", "expr", "for", "severity", "labels", "annotations", "summary", "runbook_url"])
        // Every field is checked, so one pass reports every mistake of the rule.
        let name = string(m["name"], at: "\(at).name", required: true)
        var expression: AlertExpression?
        let text = string(m["expr"], at: "\(at).expr", required: true)
        if let text {
            do {
                let e = try AlertExpressionParser.parse(text)
                if let query = e.argument, e.signal != .probeDown { _ = try QueryParser.parse(query) }
                expression = e
            } catch let error as AlertExpressionParser.Failure {
                errors.append(.init(key: "\(at).expr", problem: "\(error.message) — in \"\(text)\""))
            } catch {
                errors.append(.init(key: "\(at).expr", problem: "the query in parentheses: \(error)"))
            }
        }
        var forMicros: Int64? = 0
        if let f = string(m["for"], at: "\(at).for") {
            forMicros = TimeExpressions.durationMicros(f)
            if forMicros == nil { errors.append(.init(key: "\(at).for", problem: "\"\(f)\" is not a duration such as 2m or 30s")) }
        }
        var severity: AlertSeverity? = .medium
        if let s = string(m["severity"], at: "\(at).severity") {
            severity = AlertSeverity(rawValue: s)
            if severity == nil { errors.append(.init(key: "\(at).severity", problem: "\"\(s)\" is not one of critical, high, medium, low")) }
        }
        var annotations = stringMap(m["annotations"], at: "\(at).annotations")
        if let s = string(m["summary"], at: "\(at).summary") { annotations["summary"] = s }
        if let s = string(m["runbook_url"], at: "\(at).runbook_url") { annotations["runbook_url"] = s }
        guard let name, let text, let expression, let forMicros, let severity else { return nil }
        return AlertRule(name: name, expressionText: text, expression: expression, forMicros: forMicros, severity: severity,
                         labels: stringMap(m["labels"], at: "\(at).labels"), annotations: annotations)
    }

    mutating func receiver(_ item: Any, at: String) -> AlertReceiver? {
        guard let m = mapping(item, at: at) else { return nil }
        check(m, at: at, allowed: ["name", "slack", "pagerduty", "webhook"])
        // Every field is read before giving up, so one pass reports every mistake of the receiver.
        let name = string(m["name"], at: "\(at).name", required: true)
        let kinds = ["slack", "pagerduty", "webhook"].filter { m[$0] != nil }
        guard kinds.count == 1 else {
            errors.append(.init(key: at, problem: "a receiver has exactly one of slack, pagerduty or webhook"))
            return nil
        }
        var kind: AlertReceiver.Kind?
        switch kinds[0] {
        case "slack":
            guard let s = mapping(m["slack"]!, at: "\(at).slack") else { return nil }
            check(s, at: "\(at).slack", allowed: ["webhook_url"])
            kind = string(s["webhook_url"], at: "\(at).slack.webhook_url", required: true).map { .slack(webhookURL: $0) }
        case "pagerduty":
            guard let p = mapping(m["pagerduty"]!, at: "\(at).pagerduty") else { return nil }
            check(p, at: "\(at).pagerduty", allowed: ["routing_key", "url"])
            let key = string(p["routing_key"], at: "\(at).pagerduty.routing_key", required: true)
            let url = string(p["url"], at: "\(at).pagerduty.url") ?? AlertReceiver.pagerDutyEventsURL
            kind = key.map { .pagerDuty(routingKey: $0, url: url) }
        default:
            guard let w = mapping(m["webhook"]!, at: "\(at).webhook") else { return nil }
            check(w, at: "\(at).webhook", allowed: ["url", "headers"])
            let url = string(w["url"], at: "\(at).webhook.url", required: true)
            let headers = stringMap(w["headers"], at: "\(at).webhook.headers")
            kind = url.map { .webhook(url: $0, headers: headers) }
        }
        guard let name, let kind else { return nil }
        return AlertReceiver(name: name, kind: kind)
    }

    mutating func probe(_ item: Any, at: String) -> ProbeConfig? {
        guard let m = mapping(item, at: at) else { return nil }
        check(m, at: at, allowed: ["name", "url", "method", "headers", "body", "interval_seconds", "timeout_ms", "expected_status",
                                   "expected_body", "expected_json", "retries", "max_response_ms", "public"])
        // Every field is read before giving up, so one pass reports every mistake of the probe.
        let name = string(m["name"], at: "\(at).name", required: true)
        let url = string(m["url"], at: "\(at).url", required: true)
        var p = ProbeConfig(name: name ?? "", url: url ?? "")
        if let v = string(m["method"], at: "\(at).method") { p.method = v.uppercased() }
        p.headers = stringMap(m["headers"], at: "\(at).headers")
        p.body = string(m["body"], at: "\(at).body")
        if let v = int(m["interval_seconds"], at: "\(at).interval_seconds") { p.intervalSeconds = v }
        if let v = int(m["timeout_ms"], at: "\(at).timeout_ms") { p.timeoutMilliseconds = v }
        if let raw = m["expected_status"] {
            if let i = raw as? Int { p.expectedStatus = [i] } else if let list = raw as? [Any] {
                p.expectedStatus = list.enumerated().compactMap { int($1, at: "\(at).expected_status[\($0)]") }
            } else { errors.append(.init(key: "\(at).expected_status", problem: "must be a status code or a list of them")) }
        }
        p.expectedBody = string(m["expected_body"], at: "\(at).expected_body")
        if let j = m["expected_json"].flatMap({ mapping($0, at: "\(at).expected_json") }) {
            check(j, at: "\(at).expected_json", allowed: ["path", "value"])
            p.expectedJSONPath = string(j["path"], at: "\(at).expected_json.path", required: true)
            if let v = j["value"] { p.expectedJSONValue = (v as? String) ?? "\(v)" } else {
                errors.append(.init(key: "\(at).expected_json.value", problem: "is required"))
            }
        }
        if let v = int(m["retries"], at: "\(at).retries") { p.retries = v }
        if let v = int(m["max_response_ms"], at: "\(at).max_response_ms") { p.maxResponseMilliseconds = v }
        if let v = bool(m["public"], at: "\(at).public") { p.isPublic = v }
        guard name != nil, url != nil else { return nil }
        return p
    }

    mutating func stringMap(_ value: Any?, at path: String) -> [String: String] {
        guard let value, !(value is NSNull), let m = mapping(value, at: path) else { return [:] }
        var result: [String: String] = [:]
        for (k, v) in m { if let s = string(v, at: "\(path).\(k)") { result[k] = s } }
        return result
    }

    static func validateAlerts(_ a: AlertSettings) -> [ConfigError] {
        var errors: [ConfigError] = []
        func positive(_ v: Int, _ key: String, max: Int = 31 * 86_400) {
            if v < 1 || v > max { errors.append(.init(key: "alerts.\(key)", problem: "must be between 1 and \(max)")) }
        }
        positive(a.evaluationIntervalSeconds, "evaluation_interval_seconds", max: 3600)
        if a.groupWaitSeconds < 0 { errors.append(.init(key: "alerts.group_wait_seconds", problem: "must not be negative")) }
        positive(a.groupIntervalSeconds, "group_interval_seconds")
        positive(a.repeatIntervalSeconds, "repeat_interval_seconds")
        positive(a.deliveryAttempts, "delivery_attempts", max: 100)
        var names = Set<String>()
        for (i, r) in a.rules.enumerated() where !names.insert(r.name).inserted {
            errors.append(.init(key: "alerts.rules[\(i)].name", problem: "\"\(r.name)\" is the name of another rule"))
        }
        let receivers = Set(a.receivers.map(\.name))
        if receivers.count != a.receivers.count { errors.append(.init(key: "alerts.receivers", problem: "two receivers share a name")) }
        for (i, r) in a.receivers.enumerated() {
            let urls: [(String, String)] = switch r.kind {
            case .slack(let u): [(u, "slack.webhook_url")]
            case .pagerDuty(_, let u): [(u, "pagerduty.url")]
            case .webhook(let u, _): [(u, "webhook.url")]
            }
            for (url, key) in urls where !(url.hasPrefix("http://") || url.hasPrefix("https://")) || URL(string: url)?.host == nil {
                errors.append(.init(key: "alerts.receivers[\(i)].\(key)", problem: "must be an http:// or https:// URL"))
            }
        }
        for (i, route) in a.routes.enumerated() where !receivers.contains(route.receiver) {
            errors.append(.init(key: "alerts.routes[\(i)].receiver", problem: "no receiver is named \"\(route.receiver)\""))
        }
        if let d = a.defaultReceiver, !receivers.contains(d) {
            errors.append(.init(key: "alerts.default_receiver", problem: "no receiver is named \"\(d)\""))
        }
        var probeNames = Set<String>()
        for (i, p) in a.probes.enumerated() {
            let at = "alerts.probes[\(i)]"
            if !probeNames.insert(p.name).inserted { errors.append(.init(key: "\(at).name", problem: "\"\(p.name)\" is the name of another probe or heartbeat")) }
            if !(p.url.hasPrefix("http://") || p.url.hasPrefix("https://")) || URL(string: p.url)?.host == nil {
                errors.append(.init(key: "\(at).url", problem: "must be an http:// or https:// URL"))
            }
            if !["GET", "HEAD", "POST", "PUT", "OPTIONS"].contains(p.method) { errors.append(.init(key: "\(at).method", problem: "must be GET, HEAD, POST, PUT or OPTIONS")) }
            positive(p.intervalSeconds, "probes[\(i)].interval_seconds", max: 86_400)
            if p.timeoutMilliseconds < 10 || p.timeoutMilliseconds > 120_000 { errors.append(.init(key: "\(at).timeout_ms", problem: "must be between 10 and 120000")) }
            if p.retries < 1 || p.retries > 20 { errors.append(.init(key: "\(at).retries", problem: "must be between 1 and 20")) }
            for s in p.expectedStatus where !(100...599).contains(s) { errors.append(.init(key: "\(at).expected_status", problem: "\(s) is not an HTTP status")) }
        }
        for (i, h) in a.heartbeats.enumerated() {
            if !probeNames.insert(h.name).inserted { errors.append(.init(key: "alerts.heartbeats[\(i)].name", problem: "\"\(h.name)\" is the name of another probe or heartbeat")) }
            positive(h.intervalSeconds, "heartbeats[\(i)].interval_seconds")
            if h.graceSeconds < 0 { errors.append(.init(key: "alerts.heartbeats[\(i)].grace_seconds", problem: "must not be negative")) }
        }
        return errors
    }
}
