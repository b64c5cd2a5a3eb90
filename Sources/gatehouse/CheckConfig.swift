import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseServer

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the configuration and print the effective settings with secrets redacted.")

    @OptionGroup var options: ConfigOptions

    func run() throws {
        do {
            let config = try options.load()
            let tls = TLSFiles(config)?.check()
            if let problems = tls?.problems, !problems.isEmpty { throw ConfigErrors(errors: problems) }
            if let expired = tls?.expiryWarning { FileHandle.standardError.write(Data("warning: tls_cert_file: \(expired)\n".utf8)) }
            print("# configuration is valid; effective settings (secrets redacted):")
            print(config.redactedYAML(), terminator: "")
        } catch let errors as ConfigErrors {
            FileHandle.standardError.write(Data("\(errors)\n".utf8))
            throw ExitCode(2)
        }
    }
}
