import Foundation
import Rainbow

/// An aligned table for the terminal whose cells may be coloured or hyperlinked: widths are
/// measured on the plain text and the padding is added outside the styling, so escape
/// sequences neither shift the columns nor underline trailing spaces.
struct TextTable {
    enum Alignment { case left, right }

    struct Column {
        var header: String
        var alignment: Alignment = .left
    }

    struct Cell {
        /// What is shown, without styling.
        var text: String
        /// Colour or a link, applied to `text` alone.
        var style: (String) -> String = { $0 }
    }

    var columns: [Column]
    var rows: [[Cell]] = []

    func render() -> [String] {
        var widths = columns.map(\.header.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.text.count) } }
        func line(_ cells: [Cell]) -> String {
            cells.enumerated().map { i, cell in
                let padding = String(repeating: " ", count: widths[i] - cell.text.count)
                switch columns[i].alignment {
                case .right: return padding + cell.style(cell.text)
                // The last column needs no padding after it.
                case .left: return cell.style(cell.text) + (i == cells.count - 1 ? "" : padding)
                }
            }.joined(separator: "  ")
        }
        return [line(columns.map { Cell(text: $0.header, style: { $0.bold }) })] + rows.map(line)
    }
}

enum TerminalText {
    /// `text` from the server (an error's title, a user id) made safe to print: control
    /// characters, which could move the cursor or forge a link, become `�`; a line break or tab
    /// becomes a space, so a row stays one line.
    static func printable(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x09, 0x0A, 0x0D: scalars.append(" ")
            case 0x00..<0x20, 0x7F..<0xA0: scalars.append("\u{FFFD}")
            default: scalars.append(scalar)
            }
        }
        return String(scalars)
    }

    /// At most `limit` characters, an ellipsis marking a cut.
    static func truncated(_ text: String, to limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(limit - 1)) + "…"
    }

    /// `2026-11-30 14:05:09` from the API's `2026-11-30T14:05:09.123Z` (UTC).
    static func time(_ timestamp: String) -> String {
        String(timestamp.replacingOccurrences(of: "T", with: " ").prefix(19))
    }

    /// Labelled lines (`Status:   200`), the labels padded to one width.
    static func fields(_ pairs: [(String, String)]) -> [String] {
        let width = (pairs.map(\.0.count).max() ?? 0) + 2
        return pairs.map { ($0.0 + ":").padding(toLength: width, withPad: " ", startingAt: 0).bold + $0.1 }
    }
}
