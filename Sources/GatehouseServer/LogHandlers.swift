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

/// Writes each log event as one line: a JSON object (`timestamp`, `level`, `logger`,
/// `message`, then the metadata, `correlation_id` among it on every line of a request), or
/// `2026-11-22T10:00:00.000Z info     gatehouse: message key=value` for people at a terminal.
struct GatehouseLogHandler: LogHandler {
    enum Format { case json, text }

    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level
    let label: String
    let format: Format

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadataProvider?.get() ?? [:]
        merged.merge(metadata, uniquingKeysWith: { $1 })
        merged.merge(event.metadata ?? [:], uniquingKeysWith: { $1 })
        let time = TimeExpressions.format(micros: TimeExpressions.nowMicros())
        switch format {
        case .json:
            var object: [String: Any] = ["timestamp": time, "level": event.level.rawValue, "logger": label, "message": event.message.description]
            for (key, value) in merged where object[key] == nil { object[key] = Self.jsonValue(value) }
            guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
            LogSink.standardError.write(String(decoding: data, as: UTF8.self))
        case .text:
            let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            let levelText = event.level.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)
            LogSink.standardError.write("\(time) \(levelText) \(label): \(event.message)\(fields.isEmpty ? "" : " " + fields)")
        }
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

public enum LoggingSetup {
    /// Bootstraps swift-log once for the process. `auto` picks text at a terminal, JSON elsewhere.
    public static func bootstrap(format: GatehouseConfig.LogFormat, level: GatehouseConfig.LogLevel) {
        let useJSON = format == .json || (format == .auto && isatty(STDERR_FILENO) == 0)
        let logLevel = Logger.Level(rawValue: level.rawValue) ?? .info
        LoggingSystem.bootstrap({ label, provider in
            GatehouseLogHandler(metadataProvider: provider, logLevel: logLevel, label: label, format: useJSON ? .json : .text)
        }, metadataProvider: CorrelationID.loggingMetadata)
    }
}
