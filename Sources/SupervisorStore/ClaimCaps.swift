/// What a claim may not take, beyond its `limit`: the per-type `concurrency` caps of the
/// claiming worker and `limits.max_running_per_owner`.
public struct ClaimCaps: Sendable, Equatable {
    /// How many more jobs of each capped type the claiming worker may run; a type not
    /// named here has no cap of its own.
    public var freeSlotsByType: [String: Int]
    /// How many jobs one owner may have running, on every worker together; nil: no cap.
    public var maxRunningPerOwner: Int?

    public init(freeSlotsByType: [String: Int] = [:], maxRunningPerOwner: Int? = nil) {
        self.freeSlotsByType = freeSlotsByType
        self.maxRunningPerOwner = maxRunningPerOwner
    }

    public static let none = ClaimCaps()
}

/// One claim's bookkeeping under `ClaimCaps`, for a store to walk the claimable jobs in
/// claim order: which jobs it may take, and which types and owners to pass over from
/// now on because a cap is reached.
public struct ClaimAdmission: Sendable {
    private var freeSlotsByType: [String: Int]
    private var runningByOwner: [String: Int]
    private let maxRunningPerOwner: Int?
    public private(set) var heldBackTypes: Set<String>
    public private(set) var heldBackOwners: Set<String>

    /// - Parameter runningByOwner: the jobs each owner has running now, on every worker;
    ///   only read when `caps.maxRunningPerOwner` is set.
    public init(caps: ClaimCaps, runningByOwner: [String: Int]) {
        freeSlotsByType = caps.freeSlotsByType
        self.runningByOwner = runningByOwner
        maxRunningPerOwner = caps.maxRunningPerOwner
        heldBackTypes = Set(caps.freeSlotsByType.filter { $0.value <= 0 }.keys)
        heldBackOwners = maxRunningPerOwner.map { cap in Set(runningByOwner.filter { $0.value >= cap }.keys) } ?? []
    }

    /// Whether a job of this type and owner may be claimed; if so, it is counted.
    public mutating func admit(type: String, owner: String) -> Bool {
        guard !heldBackTypes.contains(type), !heldBackOwners.contains(owner) else { return false }
        if let free = freeSlotsByType[type] {
            freeSlotsByType[type] = free - 1
            if free - 1 <= 0 { heldBackTypes.insert(type) }
        }
        if let cap = maxRunningPerOwner {
            let running = runningByOwner[owner, default: 0] + 1
            runningByOwner[owner] = running
            if running >= cap { heldBackOwners.insert(owner) }
        }
        return true
    }
}
