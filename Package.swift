// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "supervisor",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "supervisor", targets: ["supervisor"]),
        .executable(name: "supervisor-launch", targets: ["SupervisorLaunch"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // The job model, states, ordering, durations and ids: no I/O.
        .target(name: "SupervisorCore", swiftSettings: swiftSettings),
        // The `JobStore` protocol every backend implements.
        .target(name: "SupervisorStore", dependencies: ["SupervisorCore"], swiftSettings: swiftSettings),
        .target(
            name: "SupervisorSQLite",
            dependencies: ["SupervisorStore", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SupervisorConfig",
            dependencies: [
                "SupervisorCore",
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SupervisorHTTP",
            dependencies: [
                "SupervisorStore", "SupervisorConfig", "SupervisorRunner",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            resources: [.copy("openapi.json")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SupervisorCLI",
            dependencies: [
                "SupervisorHTTP", "SupervisorSQLite", "SupervisorConfig", "SupervisorRunner", "SupervisorSandbox",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(name: "supervisor", dependencies: ["SupervisorCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: swiftSettings),
        // Claiming and running attempts: spawning, tracking, streaming, timeouts, retries.
        // Linux calls the Glibc module does not import (prctl, pipe2).
        .systemLibrary(name: "CSupervisorLinux", path: "Sources/CSupervisorLinux"),
        .target(
            name: "SupervisorRunner",
            dependencies: [
                "SupervisorStore", "SupervisorConfig", "CSupervisorLinux",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // libseccomp (Debian libseccomp-dev).
        .systemLibrary(name: "CSeccomp", path: "Sources/CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        // Containment of attempts (SPEC section 7): seccomp profiles, read, checked and
        // compiled once into the programs the launcher loads.
        .target(
            name: "SupervisorSandbox",
            dependencies: ["SupervisorCore", "CSeccomp", "CSupervisorLinux"],
            resources: [.copy("Profiles")],
            swiftSettings: swiftSettings
        ),
        // The exec launcher each attempt starts through: the setup that must run between
        // fork and exec, in C, because no Swift code may run there.
        // Linked statically: SwiftPM links every executable against the Swift runtime, and
        // loading it dynamically cost each attempt ~3 ms before the job even started.
        .executableTarget(
            name: "SupervisorLaunch",
            cSettings: [.unsafeFlags(["-Wall", "-Wextra", "-Werror"])],
            linkerSettings: [.unsafeFlags(["-static-executable", "-nostartfiles"])]
        ),
        // The behaviour every `JobStore` must show; each backend's tests run it.
        .target(name: "JobStoreContract", dependencies: ["SupervisorStore"], swiftSettings: swiftSettings),

        .testTarget(name: "SupervisorCoreTests", dependencies: ["SupervisorCore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "SupervisorSQLiteTests",
            dependencies: ["SupervisorSQLite", "JobStoreContract"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "SupervisorConfigTests", dependencies: ["SupervisorConfig", "SupervisorCore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "SupervisorHTTPTests",
            dependencies: [
                "SupervisorHTTP", "SupervisorSQLite",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "SupervisorLaunchTests", dependencies: ["SupervisorSandbox", "SupervisorRunner"], swiftSettings: swiftSettings),
        .testTarget(name: "SupervisorSandboxTests", dependencies: ["SupervisorSandbox"], swiftSettings: swiftSettings),
        .testTarget(name: "SupervisorRunnerTests", dependencies: ["SupervisorRunner", "CSupervisorLinux"], swiftSettings: swiftSettings),
        .testTarget(
            name: "SupervisorCLITests",
            dependencies: [
                "SupervisorCLI", "SupervisorSQLite", "SupervisorStore", "SupervisorRunner",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            // Job scripts the runner tests configure as job types.
            exclude: ["Jobs"],
            swiftSettings: swiftSettings
        ),
    ]
)
