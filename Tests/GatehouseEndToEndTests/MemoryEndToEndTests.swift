import Foundation
import GatehouseTestSupport
import Testing

/// What a finished call leaves behind. Each proxied call once left a cancelled sleep whose timer
/// the runtime kept (~700 B) until the call's whole timeout had passed (600 s by default), so
/// memory grew with every call for ten minutes; under load that was hundreds of MiB.
@Suite("Memory held by finished calls", .serialized)
struct MemoryEndToEndTests {
    @Test("a finished call frees what it used, without waiting out its timeout")
    func finishedCallsHoldNoMemory() async throws {
        let gatehouse = try await GatehouseProcess.start(yaml: """
            gateway: {upstream_timeout_seconds: 600}
            recorder: {flush_interval_ms: 20}
            """)
        let pid = try Self.pid(servingFrom: gatehouse.dataDirectory)
        let body = #"{"model":"mock/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#
        func burst(_ calls: Int) async throws {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        for _ in 0..<(calls / 8) {
                            let reply = try await HTTP.post(gatehouse.baseURL + "/v1/chat/completions", json: body)
                            guard reply.status == 200 else { throw ProcessRunner.Failure(message: "a call answered \(reply.status)") }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        // Warm-up: connection pools, the store's page caches and the allocator's arenas settle.
        try await burst(5000)
        let before = try Self.residentKiB(pid)
        try await burst(10_000)
        let after = try Self.residentKiB(pid)
        _ = try await gatehouse.stop()
        // 10,000 calls that each kept ~700 B would add about 7 MiB.
        #expect(after - before < 3 * 1024, "resident memory grew by \(after - before) KiB over 10,000 finished calls")
    }

    /// The pid of the `gatehouse serve` whose command line names `directory` (its config file is there).
    static func pid(servingFrom directory: URL) throws -> Int32 {
        for entry in try FileManager.default.contentsOfDirectory(atPath: "/proc") {
            guard let pid = Int32(entry), let raw = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            let arguments = String(decoding: raw, as: UTF8.self).split(separator: "\0")
            if arguments.contains(where: { $0.contains(directory.path) }) && arguments.contains("serve") { return pid }
        }
        throw ProcessRunner.Failure(message: "no gatehouse process serves from \(directory.path)")
    }

    static func residentKiB(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else {
            throw ProcessRunner.Failure(message: "no VmRSS for pid \(pid)")
        }
        return kib
    }
}
