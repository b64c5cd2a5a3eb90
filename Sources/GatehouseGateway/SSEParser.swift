/// One server-sent event, with the exact bytes it arrived as so it can be forwarded untouched.
public struct SSEEvent: Sendable, Equatable {
    /// The `event:` field; nil when absent (OpenAI's chat streams).
    public var event: String?
    /// The `data:` lines joined by "\n".
    public var data: String
    /// False for blocks with no `data:` line (comments, keep-alives); they are forwarded, not read.
    public var hasData: Bool
    /// The raw bytes of the block, including its terminating blank line.
    public var raw: [UInt8]
}

/// An incremental parser for `text/event-stream` (WHATWG HTML, "Interpreting an event stream"):
/// feed it bytes in any chunking and it returns each event once its terminating blank line has
/// arrived, with its exact bytes, so a proxy can forward, drop or inspect each one.
///
/// Lines end in LF, CRLF or CR. A CR at the very end of the input waits for the next byte to
/// know whether an LF follows. One event is limited to `maxEventBytes`.
public struct SSEParser: Sendable {
    public static let defaultMaxEventBytes = 8 * 1024 * 1024

    public struct EventTooLarge: Error, Equatable {}

    private var pending: [UInt8] = []
    /// Start of the current line in `pending`.
    private var lineStart = 0
    /// Bytes before this index (from `lineStart`) hold no line ending; saves rescanning.
    private var scanned = 0
    private var eventName: String?
    private var dataLines: [String] = []
    private var hasData = false
    private let maxEventBytes: Int

    public init(maxEventBytes: Int = SSEParser.defaultMaxEventBytes) {
        self.maxEventBytes = maxEventBytes
    }

    /// Bytes received that do not yet form a whole event; forward them as they are when the
    /// stream ends.
    public var remainder: [UInt8] { pending }

    public mutating func feed(_ bytes: some Sequence<UInt8>) throws -> [SSEEvent] {
        pending.append(contentsOf: bytes)
        var events: [SSEEvent] = []
        while let (lineEnd, nextStart) = nextLineEnd() {
            let line = pending[lineStart..<lineEnd]
            if line.isEmpty {
                events.append(SSEEvent(event: eventName, data: dataLines.joined(separator: "\n"), hasData: hasData,
                                       raw: Array(pending[0..<nextStart])))
                pending.removeFirst(nextStart)
                lineStart = 0
                eventName = nil
                dataLines.removeAll(keepingCapacity: true)
                hasData = false
            } else {
                processLine(line)
                lineStart = nextStart
            }
            scanned = lineStart
        }
        if pending.count > maxEventBytes { throw EventTooLarge() }
        return events
    }

    private mutating func nextLineEnd() -> (Int, Int)? {
        var i = max(scanned, lineStart)
        while i < pending.count {
            switch pending[i] {
            case UInt8(ascii: "\n"):
                return (i, i + 1)
            case UInt8(ascii: "\r"):
                guard i + 1 < pending.count else {
                    scanned = i
                    return nil
                }
                return (i, pending[i + 1] == UInt8(ascii: "\n") ? i + 2 : i + 1)
            default:
                i += 1
            }
        }
        scanned = i
        return nil
    }

    private mutating func processLine(_ line: ArraySlice<UInt8>) {
        if line.first == UInt8(ascii: ":") { return }
        let colon = line.firstIndex(of: UInt8(ascii: ":"))
        let field = String(decoding: line[line.startIndex..<(colon ?? line.endIndex)], as: UTF8.self)
        var value = colon.map { line[($0 + 1)...] } ?? line[line.endIndex...]
        if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        switch field {
        case "event":
            eventName = String(decoding: value, as: UTF8.self)
        case "data":
            dataLines.append(String(decoding: value, as: UTF8.self))
            hasData = true
        default:
            break
        }
    }
}
