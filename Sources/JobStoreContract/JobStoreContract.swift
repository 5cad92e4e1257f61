public import Foundation
public import SupervisorCore
public import SupervisorStore
import Testing

/// The behaviour every `JobStore` must show (River's `riverdrivertest` in spirit): each
/// backend's test target runs every `Scenario` against fresh stores of its own.
///
/// ```swift
/// @Test(arguments: JobStoreContract.Scenario.allCases)
/// func contract(_ scenario: JobStoreContract.Scenario) async throws {
///     try await scenario.run(JobStoreContract(makeStore: { try makeFreshStore() }))
/// }
/// ```
public struct JobStoreContract: Sendable {
    /// Makes an empty, migrated store that no other test uses.
    public let makeStore: @Sendable () async throws -> any JobStore

    public init(makeStore: @escaping @Sendable () async throws -> any JobStore) {
        self.makeStore = makeStore
    }

    public enum Scenario: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case submitAndRead
        case claimOrder
        case noDoubleClaimUnderConcurrentClaimers
        case cancelPending
        case cancelRunningAndFinished
        case retryRestoresBudget
        case idempotencyKey
        case cursorPaging
        case listFilters
        case ownerScoping
        case queuePositionAndCounts
        case queuePositionBesideManyScheduled
        case admissionLimits
        case concurrentSubmitsAllDurable
        case migrateTwiceKeepsJobs
        case progressAndEndingFencedByLease
        case retryAndRequeueEndings
        case failedCancelledAndCompletedEndings
        case leaseRenewalAndExpiry
        case cancelRequestReachesWorker
        case nextRunAtWakesForScheduledJobs
        case startWithinExpiresUnstartedJobs
        case secretsErasedWhenJobEnds
        case claimPassesOverCappedTypesAndOwners
        case workersRegisterHeartbeatAndLeave
        case deadWorkersLeasesRequeued
        case deleteOnlyFinishedJobs
        case retentionPrunesByStatusAndAge

        public var testDescription: String { rawValue }

        public func run(_ contract: JobStoreContract) async throws {
            let store = try await contract.makeStore()
            do {
                try await StoreScenarios(store: store).run(self)
            } catch {
                try? await store.close()
                throw error
            }
            try await store.close()
        }
    }
}
