/// A config that cannot be used; always names the key at fault.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    /// Dotted path of the key, e.g. `job_types.screenshot.timeout`; empty for the file as a whole.
    public var key: String
    public var message: String
    /// The config file, when there is one.
    public var file: String?

    public init(key: String, message: String, file: String? = nil) {
        self.key = key
        self.message = message
        self.file = file
    }

    public var description: String {
        let location = file.map { "\($0): " } ?? ""
        return key.isEmpty ? "\(location)\(message)" : "\(location)\(key): \(message)"
    }
}
