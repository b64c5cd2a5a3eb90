import ArgumentParser
import Foundation
import GatehouseCore

/// The options every command that needs a configuration shares.
struct ConfigOptions: ParsableArguments {
    @Option(help: "Address to listen on (GATEHOUSE_HOST). Default 127.0.0.1.")
    var host: String?

    @Option(help: "Port to listen on (GATEHOUSE_PORT). Default 8080.")
    var port: Int?

    @Option(name: .customLong("data-dir"), help: "Directory of the embedded SQLite database (GATEHOUSE_DATA_DIR). Default ./gatehouse-data.")
    var dataDirectory: String?

    @Option(name: .customLong("database-url"), help: "sqlite:///path or postgres://user:pass@host/db (GATEHOUSE_DATABASE_URL).")
    var databaseURL: String?

    @Option(name: .customLong("config"), help: "YAML configuration file (GATEHOUSE_CONFIG).")
    var configFile: String?

    @Option(name: .customLong("log-format"), help: "auto, json or text (GATEHOUSE_LOG_FORMAT). auto: text at a terminal, JSON otherwise.")
    var logFormat: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (GATEHOUSE_LOG_LEVEL).")
    var logLevel: String?

    /// Loads and validates the effective configuration.
    func load(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> GatehouseConfig {
        let path = configFile ?? environment["GATEHOUSE_CONFIG"]
        var yaml: String?
        if let path {
            do {
                yaml = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw ConfigErrors(errors: [ConfigError(key: "--config", problem: "cannot read \(path): \(error.localizedDescription)")])
            }
        }
        return try ConfigurationLoader.load(
            yaml: yaml, environment: environment,
            overrides: ConfigOverrides(host: host, port: port, dataDirectory: dataDirectory, databaseURL: databaseURL,
                                       logFormat: logFormat, logLevel: logLevel))
    }
}
