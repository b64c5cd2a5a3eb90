// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "gatehouse",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "gatehouse", targets: ["gatehouse"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/onevcat/Rainbow.git", from: "4.2.2"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
    ],
    targets: [
        .target(
            name: "GatehouseCore",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
            ],
            exclude: ["Resources/prices.json"],
            swiftSettings: strict
        ),
        .target(
            name: "GatehouseAPI",
            dependencies: [.product(name: "Yams", package: "Yams")],
            exclude: ["OpenAPI"],
            swiftSettings: strict
        ),
        .target(
            name: "GatehouseStorage",
            dependencies: [
                "GatehouseCore", "CCompression",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "GatehouseHTTP",
            dependencies: [
                "GatehouseCore", "GatehouseAPI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "GatehouseGateway",
            dependencies: [
                "GatehouseCore", "GatehouseAPI", "GatehouseHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .systemLibrary(name: "CCompression", providers: [.apt(["zlib1g-dev", "libbrotli-dev"])]),
        .target(
            name: "GatehouseTelemetry",
            dependencies: [
                "GatehouseCore", "GatehouseAPI", "GatehouseHTTP", "CCompression",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                // OTLP export (telemetry.otlp_export) posts spans to a collector.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            exclude: ["OTLP/README.md"],
            swiftSettings: strict
        ),
        .target(
            name: "GatehouseAlerts",
            dependencies: [
                "GatehouseCore", "GatehouseAPI", "GatehouseHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "GatehouseConsole",
            dependencies: [
                "GatehouseCore", "GatehouseAPI", "GatehouseHTTP", "GatehouseGateway", "GatehouseTelemetry", "GatehouseAlerts",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // Compiled in through ConsoleBundle.swift (scripts/generate-console-bundle.sh).
            exclude: ["Templates", "Assets"],
            swiftSettings: strict
        ),
        .target(
            name: "GatehouseServer",
            dependencies: [
                "GatehouseCore", "GatehouseAPI", "GatehouseHTTP", "GatehouseStorage", "GatehouseGateway", "GatehouseTelemetry", "GatehouseAlerts",
                "GatehouseConsole",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                // HTTPS without a proxy (tls_cert_file), reloaded on SIGHUP; HTTP/2 by ALPN.
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                // HTTP/2 frames: an idle connection's unanswered PING closes it (TLSServer.swift).
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "gatehouse",
            dependencies: [
                "GatehouseCore", "GatehouseAPI", "GatehouseServer", "GatehouseStorage", "CConcurrencyHook",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Rainbow", package: "Rainbow"),
            ],
            swiftSettings: strict
        ),
        // Sets Swift concurrency's global enqueue hook (ConcurrencyExecutor).
        .target(name: "CConcurrencyHook"),
        .target(
            name: "GatehouseTestSupport",
            dependencies: [
                "GatehouseAPI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: strict
        ),
        .testTarget(name: "GatehouseConsoleTests", dependencies: ["GatehouseCore", "GatehouseConsole"], swiftSettings: strict),
        .testTarget(name: "GatehouseCoreTests", dependencies: ["GatehouseCore", "GatehouseAPI"], swiftSettings: strict),
        .testTarget(name: "GatehouseStorageTests", dependencies: ["GatehouseCore", "GatehouseStorage", "GatehouseTestSupport"], swiftSettings: strict),
        .testTarget(name: "GatehouseAlertsTests", dependencies: ["GatehouseCore", "GatehouseAPI", "GatehouseAlerts", "GatehouseTestSupport",
                                                               .product(name: "AsyncHTTPClient", package: "async-http-client")], swiftSettings: strict),
        .testTarget(name: "GatehouseTelemetryTests", dependencies: ["GatehouseCore", "GatehouseAPI", "GatehouseTelemetry", "GatehouseTestSupport"], swiftSettings: strict),
        .testTarget(name: "GatehouseGatewayTests", dependencies: ["GatehouseCore", "GatehouseAPI", "GatehouseHTTP", "GatehouseGateway", "GatehouseTestSupport",
                                                                .product(name: "HTTPTypes", package: "swift-http-types"),
                                                                .product(name: "HummingbirdTesting", package: "hummingbird"),
                                                                .product(name: "AsyncHTTPClient", package: "async-http-client")], swiftSettings: strict),
        .testTarget(
            name: "GatehouseEndToEndTests",
            dependencies: [
                "GatehouseCore", "GatehouseAPI", "GatehouseHTTP", "GatehouseServer", "GatehouseStorage", "GatehouseTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                // The deployment manifests' tests parse compose and Kubernetes YAML.
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
