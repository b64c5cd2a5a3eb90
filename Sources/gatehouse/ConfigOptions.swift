import ArgumentParser
import Foundation
import GatehouseCore

/// Where the store is: the options of every command that opens it (`serve`, `migrate`,
/// `backup`), and nothing else, so commands that never listen do not offer `--host`/`--port`.
struct StoreOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Directory of the embedded SQLite database (GATEHOUSE_DATA_DIR). Default ./gatehouse-data.")
    var dataDirectory: String?

    @Option(name: .customLong("database-url"), help: "sqlite:///path or postgres://user:pass@host/db (GATEHOUSE_DATABASE_URL).")
    var databaseURL: String?

    @Option(name: .customLong("config"), help: "YAML configuration file (GATEHOUSE_CONFIG).")
    var configFile: String?

    /// The store `serve` would open, from the flags, the `GATEHOUSE_DATA_DIR`/`GATEHOUSE_DATABASE_URL`
    /// variables and the config file's top-level `data_dir`/`database_url` lines only: a cron backup
    /// or a migration Job must not need the serving secrets (GATEHOUSE_ENCRYPTION_KEY) or a config
    /// valid in every other key.
    func location(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        let yaml = try configText(environment: environment).map { text in
            text.split(separator: "\n", omittingEmptySubsequences: false)
                .filter { $0.hasPrefix("data_dir:") || $0.hasPrefix("database_url:") }.joined(separator: "\n")
        }
        let location = environment.filter { $0.key == "GATEHOUSE_DATA_DIR" || $0.key == "GATEHOUSE_DATABASE_URL" }
        return try ConfigurationLoader.load(yaml: yaml, environment: location,
                                            overrides: ConfigOverrides(dataDirectory: dataDirectory, databaseURL: databaseURL)).resolvedDatabaseURL
    }

    /// The config file's text (`--config`, else `GATEHOUSE_CONFIG`); nil when neither names one.
    func configText(environment: [String: String]) throws -> String? {
        guard let path = configFile ?? environment["GATEHOUSE_CONFIG"] else { return nil }
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigErrors(errors: [ConfigError(key: "--config", problem: "cannot read \(path): \(error.localizedDescription)")])
        }
    }
}

/// The options every command that needs the whole configuration shares (`serve`, `check-config`,
/// `healthcheck`).
struct ConfigOptions: ParsableArguments {
    @Option(help: "Address to listen on (GATEHOUSE_HOST). Default 127.0.0.1.")
    var host: String?

    @Option(help: "Port to listen on (GATEHOUSE_PORT). Default 8080.")
    var port: Int?

    @OptionGroup var store: StoreOptions

    @Option(name: .customLong("log-format"), help: "auto, json or text (GATEHOUSE_LOG_FORMAT). auto: text at a terminal, JSON otherwise.")
    var logFormat: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (GATEHOUSE_LOG_LEVEL).")
    var logLevel: String?

    /// Loads and validates the effective configuration.
    func load(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> GatehouseConfig {
        let yaml = try store.configText(environment: environment)
        return try ConfigurationLoader.load(
            yaml: yaml, environment: environment,
            overrides: ConfigOverrides(host: host, port: port, dataDirectory: store.dataDirectory, databaseURL: store.databaseURL,
                                       logFormat: logFormat, logLevel: logLevel))
    }
}
