import Foundation
import GatehouseCore
import HTTPTypes
import Testing
@testable import GatehouseConsole

/// The console's named time formats, and the one reading of a query mistake.
@Suite struct ConsoleFormatTests {
    /// 2026-11-30T00:53:20.123456Z.
    let micros: Int64 = 1_796_000_000_123_456

    @Test func timesReadAsBefore() {
        #expect(Format.dateTime(micros) == "2026-11-30 00:53:20 UTC")
        #expect(Format.rowTime(micros) == "11-30 00:53:20")
        #expect(Format.millisecondTime("2026-11-30T00:53:20.123Z") == "2026-11-30 00:53:20.123")
        #expect(Format.monthDay(micros) == "11-30")
        #expect(Format.hourMinute(micros) == "00:53")
        #expect(Format.fileStamp(micros) == "2026-11-30T005320")
        #expect(Format.duration(micros: 3 * 3_600_000_000 + 5 * 60_000_000) == "3h 5m")
    }

    /// A damaged page link reads the same on the requests and logs pages (it once said two different things).
    @Test func oneMistakeOneMessage() {
        let cursor = PageProblem(StoreError.invalidCursor)
        #expect(cursor?.status == .badRequest && cursor?.message.contains("Start again from the first page") == true)
        let tooLarge = PageProblem(UsageQueryTooLarge(rows: 3_000_000, limit: 2_000_000))
        #expect(tooLarge?.status == .unprocessableContent)
        #expect(PageProblem(CancellationError()) == nil, "anything else is the store's failure: the 503 page")
    }
}
