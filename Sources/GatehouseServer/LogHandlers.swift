import Foundation
import GatehouseCore
import Logging
import Synchronization

/// Where log lines go, one whole line per write so concurrent lines never interleave.
final class LogSink: Sendable {
    static let standardError = LogSink()
    private let lock = Mutex(())

    func write(_ line: String) {
        lock.withLock { _ in
            var bytes = Array(line.utf8)
            bytes.append(UInt8(ascii: "\n"))
            // write(2) on the descriptor: unbuffered, and no shared C `FILE*` to reason about.
            bytes.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let n = Foundation.write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                    if n <= 0 { break }
                    offset += n
                }
            }
        }
    }
}

/// One JSON object per line: `timestamp`, `level`, `logger`, `message`, then the metadata
/// (`correlation_id` among it on every line of a request).
struct JSONLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level
    let label: String

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let level = event.level, message = event.message, explicit = event.metadata
        var object: [String: Any] = [
            "timestamp": TimeExpressions.format(micros: Int64(Date().timeIntervalSince1970 * 1_000_000)),
            "level": level.rawValue, "logger": label, "message": message.description,
        ]
        for (key, value) in metadata.merging(explicit ?? [:], uniquingKeysWith: { $1 }) where object[key] == nil {
            object[key] = Self.jsonValue(value)
        }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        LogSink.standardError.write(String(decoding: data, as: UTF8.self))
    }

    static func jsonValue(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let s): s
        case .stringConvertible(let c): c.description
        case .array(let a): a.map(jsonValue)
        case .dictionary(let d): d.mapValues(jsonValue)
        }
    }
}

/// `2026-11-22T10:00:00.000Z info  gatehouse: message key=value` for people at a terminal.
struct TextLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level
    let label: String

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let level = event.level, message = event.message, explicit = event.metadata
        let merged = metadata.merging(explicit ?? [:], uniquingKeysWith: { $1 })
        let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let time = TimeExpressions.format(micros: Int64(Date().timeIntervalSince1970 * 1_000_000))
        let levelText = level.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)
        LogSink.standardError.write("\(time) \(levelText) \(label): \(message)\(fields.isEmpty ? "" : " " + fields)")
    }
}

public enum LoggingSetup {
    /// Bootstraps swift-log once for the process. `auto` picks text at a terminal, JSON elsewhere.
    public static func bootstrap(format: GatehouseConfig.LogFormat, level: GatehouseConfig.LogLevel) {
        let useJSON = format == .json || (format == .auto && isatty(STDERR_FILENO) == 0)
        let logLevel = Logger.Level(rawValue: level.rawValue) ?? .info
        LoggingSystem.bootstrap { label in
            useJSON ? JSONLogHandler(logLevel: logLevel, label: label) as any LogHandler : TextLogHandler(logLevel: logLevel, label: label)
        }
    }
}
