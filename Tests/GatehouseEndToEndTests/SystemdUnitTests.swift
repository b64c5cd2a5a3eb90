import Foundation
import GatehouseTestSupport
import Testing

/// The files in `deploy/` that can be checked on a machine without a Docker engine or a cluster:
/// the systemd unit is verified by systemd itself, and it starts the binary with flags it has.
@Suite struct SystemdUnitTests {
    static let unit = TestEnvironment.repositoryRoot.appendingPathComponent("deploy/systemd/gatehouse.service")

    /// The unit as installed, except that it runs the binary under test (`verify` checks that
    /// ExecStart's program exists and is executable).
    static func unitForThisBinary() throws -> URL {
        let text = try String(contentsOf: unit, encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/gatehouse", with: TestEnvironment.gatehouseBinary)
        let copy = try TestEnvironment.temporaryDirectory().appendingPathComponent("gatehouse.service")
        try text.write(to: copy, atomically: true, encoding: .utf8)
        return copy
    }

    /// `systemd-analyze verify` finds nothing to say: every key is known and in its section.
    @Test func theUnitVerifiesClean() async throws {
        let verify = try await ProcessRunner.runAsync("/usr/bin/systemd-analyze", ["verify", try Self.unitForThisBinary().path])
        #expect(verify.status == 0 && verify.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(verify.output)")
    }

    /// The sandbox holds: systemd rates the unit's exposure "OK" (below 2 on its 0–10 scale;
    /// an unhardened service rates 9.6 "UNSAFE").
    @Test func theUnitIsHardened() async throws {
        let security = try await ProcessRunner.runAsync("/usr/bin/systemd-analyze", ["security", "--offline=true", try Self.unitForThisBinary().path])
        let level = security.output.firstMatch(of: /Overall exposure level for gatehouse\.service: ([0-9.]+)/).flatMap { Double($0.1) }
        #expect(level.map { $0 < 2 } == true, "\(security.output.suffix(400))")
        let text = try String(contentsOf: Self.unit, encoding: .utf8)
        for setting in ["User=gatehouse", "ProtectSystem=strict", "NoNewPrivileges=yes", "Restart=on-failure", "StateDirectory=gatehouse"] {
            #expect(text.contains("\n" + setting + "\n"), "\(setting)")
        }
    }

    /// `systemctl reload gatehouse` sends SIGHUP, which rereads the TLS certificate (and is
    /// harmless without TLS), so certificate renewal needs no drop-in. The unit links nothing
    /// that does not exist (no public repository address has been published).
    @Test func theUnitReloadsWithSIGHUPAndNamesNoMadeUpAddress() throws {
        let text = try String(contentsOf: Self.unit, encoding: .utf8)
        #expect(text.contains("\nExecReload=/bin/kill -HUP $MAINPID\n"))
        #expect(!text.contains("https://"), "Documentation= names an address that does not exist")
    }

    /// ExecStart's command and flags are ones `gatehouse` has.
    @Test func theUnitStartsTheBinaryWithFlagsItHas() async throws {
        let text = try String(contentsOf: Self.unit, encoding: .utf8)
        let exec = try #require(text.split(separator: "\n").first { $0.hasPrefix("ExecStart=") })
        let words = exec.dropFirst("ExecStart=".count).split(separator: " ").map(String.init)
        #expect(words.first == "/usr/local/bin/gatehouse" && words.dropFirst().first == "serve")
        let help = try await ProcessRunner.runAsync(TestEnvironment.gatehouseBinary, ["serve", "--help"])
        for flag in words where flag.hasPrefix("--") {
            #expect(help.output.contains(flag + " "), "gatehouse serve has no \(flag)")
        }
    }
}
