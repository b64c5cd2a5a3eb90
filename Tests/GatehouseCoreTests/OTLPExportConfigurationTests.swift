import Foundation
import Testing
import Yams
@testable import GatehouseCore

/// `telemetry.otlp_export: {endpoint, headers, timeout}`: how it is read, checked and printed.
@Suite struct OTLPExportConfigurationTests {
    static let token = "hc-SECRET-team-key-0042"

    @Test func itIsReadWithDefaultsAndPrintedWithTheHeaderValuesMasked() throws {
        let config = try BackupConfigurationTests.load("""
            telemetry:
              otlp_export:
                endpoint: http://collector:4318/
                headers: {x-honeycomb-team: \(Self.token), x-other: plain-value-77}
                timeout: 1500ms
            """)
        let export = try #require(config.telemetry.otlpExport)
        #expect(export == OTLPExportSettings(endpoint: "http://collector:4318/", headers: ["x-honeycomb-team": Self.token, "x-other": "plain-value-77"],
                                             timeoutSeconds: 1.5))
        #expect(export.tracesURL == "http://collector:4318/v1/traces")
        let printed = config.redactedYAML()
        #expect(!printed.contains(Self.token) && !printed.contains("plain-value-77") && printed.contains("x-honeycomb-team") && printed.contains("1500ms"), "\(printed)")
        // The printed configuration reads back as YAML.
        #expect((try Yams.load(yaml: printed)) != nil)
        let defaults = try BackupConfigurationTests.load("telemetry: {otlp_export: {endpoint: 'https://otel.example'}}")
        #expect(defaults.telemetry.otlpExport == OTLPExportSettings(endpoint: "https://otel.example", headers: [:], timeoutSeconds: 10))
        #expect(defaults.telemetry.otlpExport?.tracesURL == "https://otel.example/v1/traces")
        #expect(try BackupConfigurationTests.load("").telemetry.otlpExport == nil)
    }

    @Test func mistakesAreExplainedWithoutRepeatingSecrets() {
        let problems = BackupConfigurationTests.problems("""
            telemetry:
              otlp_export:
                endpoint: "ftp://user:\(Self.token)@collector"
                headers: {"bad name": x, ok: "two\\nlines"}
                timeout: 0s
                batch: 3
            """)
        #expect(problems.contains { $0.contains("telemetry.otlp_export.endpoint") && $0.contains("http://") }, "\(problems)")
        #expect(problems.contains { $0.contains("telemetry.otlp_export.headers") && $0.contains("bad name") })
        #expect(problems.contains { $0.contains("telemetry.otlp_export.headers.ok") && $0.contains("line breaks") })
        #expect(problems.contains { $0.contains("telemetry.otlp_export.timeout") })
        #expect(problems.contains { $0.contains("telemetry.otlp_export.batch") && $0.contains("unknown key") })
        #expect(!problems.joined().contains(Self.token))
        #expect(BackupConfigurationTests.problems("telemetry: {otlp_export: {headers: {a: b}}}").contains { $0.contains("telemetry.otlp_export.endpoint") && $0.contains("required") })
        #expect(BackupConfigurationTests.problems("telemetry: {otlp_export: {endpoint: 'http://c:4318?x=1'}}").contains { $0.contains("query") })
        #expect(BackupConfigurationTests.problems("telemetry: {otlp_export: {endpoint: 'http://c:4318', timeout: soon}}").contains { $0.contains("not a duration") })
    }
}
