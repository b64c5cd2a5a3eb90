import Logging
import Synchronization

/// Log lines a test can read back: hand `logger` to the code under test.
public final class CapturedLog: Sendable {
    public typealias Line = (level: Logger.Level, message: String, metadata: Logger.Metadata)
    public let lines = Mutex<[Line]>([])

    public init() {}

    public var logger: Logger {
        Logger(label: "test") { _ in Handler(log: self) }
    }

    /// The metadata of every line whose message contains `text`.
    public func messages(_ text: String) -> [Logger.Metadata] {
        lines.withLock { $0.filter { $0.message.contains(text) }.map(\.metadata) }
    }

    /// Every line at `level` or above.
    public func lines(atLeast level: Logger.Level) -> [Line] {
        lines.withLock { $0.filter { $0.level >= level } }
    }

    struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let entry: Line = (event.level, event.message.description, event.metadata ?? [:])
            self.log.lines.withLock { $0.append(entry) }
        }
    }
}
