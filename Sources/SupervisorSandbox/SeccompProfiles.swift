public import Foundation

/// Finds a job type's `profile` (SPEC section 3): a name is `profiles/NAME.json` next to
/// the config file if there is one, else the profile of that name shipped with
/// `supervisor`; a value with a `/` or ending in `.json` is a path, relative to the config
/// file's directory.
public enum SeccompProfiles {
    /// The profile of a type that names none.
    public static let defaultName = "default"

    /// The shipped profiles (`profiles/` in the repository).
    public static var shipped: URL? { Bundle.module.url(forResource: "Profiles", withExtension: nil) }

    public static func load(_ reference: String, relativeTo base: URL) throws -> SeccompProfile {
        let candidates: [URL]
        if reference.contains("/") || reference.hasSuffix(".json") {
            candidates = [reference.hasPrefix("/") ? URL(fileURLWithPath: reference) : base.appendingPathComponent(reference)]
        } else {
            guard reference.range(of: #"^[A-Za-z0-9][A-Za-z0-9_.-]*$"#, options: .regularExpression) != nil else {
                throw SeccompProfileError(profile: reference, message: "is neither a profile name nor a path")
            }
            candidates = [base.appendingPathComponent("profiles/\(reference).json")]
                + (shipped.map { [$0.appendingPathComponent("\(reference).json")] } ?? [])
        }
        for candidate in candidates {
            guard let data = FileManager.default.contents(atPath: candidate.path) else { continue }
            return try SeccompProfile(name: reference, json: data)
        }
        let known = ((try? FileManager.default.contentsOfDirectory(atPath: shipped?.path ?? "")) ?? [])
            .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
        throw SeccompProfileError(
            profile: reference,
            message: "not found (looked at \(candidates.map(\.path).joined(separator: ", "))); shipped: \(known.joined(separator: ", "))")
    }
}
