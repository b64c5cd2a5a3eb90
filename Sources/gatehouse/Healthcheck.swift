import ArgumentParser
import AsyncHTTPClient
import Foundation
import GatehouseCore
import NIOCore
import NIOSSL

/// `gatehouse healthcheck`: one GET of a health path, exit 0 when it answers 2xx. For container
/// health checks (Docker's HEALTHCHECK), where the runtime image has no curl.
struct Healthcheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Exit 0 when the server's health path answers 2xx, 1 otherwise (for container health checks).",
        discussion: """
            The server checked is the one this configuration describes, read like `serve` reads it (the same \
            options, GATEHOUSE_* variables and --config file): its port, its host (127.0.0.1 when it listens on \
            every address) and HTTPS when tls_cert_file is set (on loopback the certificate is not verified: it \
            names the public host, and nothing secret is sent). --url names another server instead. GATEHOUSE_URL \
            is not read: it may name a load balancer, whose answer says nothing about this instance. One GET, no \
            redirect followed (a redirect is not healthy), no admin token sent.
            """)

    @OptionGroup var options: ConfigOptions
    @Option(help: "Check this base URL instead of the server the configuration describes.") var url: String?
    @Option(help: "The path to call: /health (the process serves) or /ready (its store answers too).") var path = "/health"
    @Option(help: "Seconds to wait for the answer.") var timeoutSeconds: Int64 = 3

    /// Whom to ask, and how to take their certificate.
    struct Target: Equatable {
        var base: String
        /// Skip certificate verification: only for a server on this machine's loopback.
        var trustAnyCertificate = false
    }

    func validate() throws {
        if timeoutSeconds < 1 { throw ValidationError("--timeout-seconds must be at least 1") }
    }

    func run() async throws {
        let target: Target
        if let url {
            target = Target(base: APIClient.normalise(url))
        } else {
            do {
                target = Self.target(for: try options.load())
            } catch {
                throw CLIError("cannot tell which server to check: \(error)")
            }
        }
        let timeout = TimeAmount.seconds(timeoutSeconds)
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: timeout, read: timeout)
        configuration.connectionPool.retryConnectionEstablishment = false
        if target.trustAnyCertificate {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .none
            configuration.tlsConfiguration = tls
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let outcome: Result<UInt, any Error>
        do {
            var request = HTTPClientRequest(url: target.base + path)
            request.method = .GET
            let response = try await client.execute(request, timeout: timeout)
            _ = try await response.body.collect(upTo: 1 << 20)
            outcome = .success(response.status.code)
        } catch {
            outcome = .failure(error)
        }
        try? await client.shutdown()
        switch outcome {
        case .success(let code) where (200..<300).contains(code):
            print("\(target.base)\(path) answered \(code)")
        case .success(let code):
            throw CLIError("\(target.base)\(path) answered \(code)")
        case .failure(let error):
            throw CLIError(APIClient.failure(error, base: target.base, timeout: timeout), cause: error)
        }
    }

    /// The server `config` describes, as seen from this machine.
    static func target(for config: GatehouseConfig) -> Target {
        let everyAddress = ["", "0.0.0.0", "::", "[::]"].contains(config.host)
        let host = everyAddress ? "127.0.0.1" : config.host
        let literal = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        let loopback = host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
        let https = config.servesHTTPS
        return Target(base: "\(https ? "https" : "http")://\(literal):\(config.port)", trustAnyCertificate: https && loopback)
    }
}
