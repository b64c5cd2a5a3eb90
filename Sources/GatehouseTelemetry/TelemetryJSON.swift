import Foundation
import GatehouseCore

/// The JSON shapes of logs, issues and events in Gatehouse's API.
public enum TelemetryJSON {
    public static func log(_ l: LogRecord) -> [String: Any] {
        [
            "seq": l.sequence as Any? ?? NSNull(), "timestamp": TimeExpressions.format(micros: l.timestampMicros), "level": l.level.rawValue,
            "message": l.message, "project": l.project, "service": l.service as Any? ?? NSNull(), "environment": l.environment as Any? ?? NSNull(),
            "correlation_id": l.correlationID as Any? ?? NSNull(), "function": l.function as Any? ?? NSNull(),
            "duration_ms": l.durationMicros.map { Double($0) / 1000 } as Any? ?? NSNull(), "slow": l.slow,
            "attributes": object(l.attributesJSON),
        ]
    }

    public static func issue(_ i: ErrorIssue) -> [String: Any] {
        [
            "id": i.id, "project": i.project, "title": i.title, "type": i.type, "culprit": i.culprit, "level": i.level.rawValue,
            "status": i.status.rawValue, "regressed": i.regressed, "count": i.count, "users": i.users,
            "first_seen": TimeExpressions.format(micros: i.firstSeenMicros), "last_seen": TimeExpressions.format(micros: i.lastSeenMicros),
            "last_release": i.lastRelease as Any? ?? NSNull(),
        ]
    }

    public static func event(_ e: ErrorEvent, withDocument: Bool) -> [String: Any] {
        var o: [String: Any] = [
            "event_id": e.eventID, "issue_id": e.issueID, "project": e.project, "timestamp": TimeExpressions.format(micros: e.timestampMicros),
            "level": e.level.rawValue, "type": e.type, "value": e.value, "title": e.title, "culprit": e.culprit,
            "release": e.release as Any? ?? NSNull(), "environment": e.environment as Any? ?? NSNull(),
            "correlation_id": e.correlationID as Any? ?? NSNull(), "user": e.userKey as Any? ?? NSNull(),
        ]
        if withDocument { o["event"] = object(e.documentJSON) }
        return o
    }

    static func object(_ json: String) -> Any {
        (try? JSONSerialization.jsonObject(with: Data(json.utf8))) ?? [String: Any]()
    }
}
