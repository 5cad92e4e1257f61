/// Claim priority: higher goes first (SPEC section 5).
public struct JobPriority: RawRepresentable, Hashable, Sendable, Comparable {
    public static let normal = JobPriority(uncheckedRawValue: 0)
    public static let high = JobPriority(uncheckedRawValue: 1)
    public static let urgent = JobPriority(uncheckedRawValue: 2)
    public static let allowedValues = 0...2

    public let rawValue: Int

    public init?(rawValue: Int) {
        guard Self.allowedValues.contains(rawValue) else { return nil }
        self.rawValue = rawValue
    }

    private init(uncheckedRawValue: Int) {
        self.rawValue = uncheckedRawValue
    }

    public static func < (lhs: JobPriority, rhs: JobPriority) -> Bool { lhs.rawValue < rhs.rawValue }
}
