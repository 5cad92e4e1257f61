import Foundation

/// One line a job wrote on stdout, read as SPEC section 6 says: a line that starts with
/// `::` and parses is a marker; every other line, malformed markers included, is log.
public enum StdoutLine: Sendable, Equatable {
    case marker(ProgressMarker)
    case log(String)

    /// The largest `::result` a job may return.
    public static let maxResultBytes = 1 << 20

    public init(_ line: String) {
        self = ProgressMarker(line).map(StdoutLine.marker) ?? .log(line)
    }
}

/// A `::` marker a job prints to report on itself.
public enum ProgressMarker: Sendable, Equatable {
    /// `::progress 42 msg` or `::progress 5/22 msg`.
    case progress(JobProgress)
    /// `::result {json}`: the last one wins.
    case result(JSONValue)
    /// `::result` with more than `StdoutLine.maxResultBytes` of JSON: fails the job.
    case resultTooLarge(byteCount: Int)
    /// `::fail permanent msg` or `::fail transient msg`.
    case fail(FailureKind, message: String)
    /// `::heartbeat`: resets the idle timer.
    case heartbeat

    public enum FailureKind: String, Sendable, Equatable {
        /// Not retried.
        case permanent
        /// Retried while attempts remain.
        case transient
    }

    /// nil when the line is not a well-formed marker.
    public init?(_ line: String) {
        guard line.hasPrefix("::") else { return nil }
        let body = line.dropFirst(2)
        let name = body.prefix { $0 != " " }
        let rest = body.dropFirst(name.count).drop { $0 == " " }
        switch name {
        case "progress":
            guard let progress = Self.progress(rest) else { return nil }
            self = .progress(progress)
        case "result":
            let byteCount = rest.utf8.count
            guard byteCount <= StdoutLine.maxResultBytes else {
                self = .resultTooLarge(byteCount: byteCount)
                return
            }
            guard let value = try? JSONValue(parsing: Data(rest.utf8)) else { return nil }
            self = .result(value)
        case "fail":
            let kindText = rest.prefix { $0 != " " }
            guard let kind = FailureKind(rawValue: String(kindText)) else { return nil }
            let message = rest.dropFirst(kindText.count).drop { $0 == " " }
            self = .fail(kind, message: String(message))
        case "heartbeat":
            guard rest.allSatisfy(\.isWhitespace) else { return nil }
            self = .heartbeat
        default:
            return nil
        }
    }

    /// `42`, `42.5` (0 to 100) or `5/22` (0 ≤ current ≤ total, total > 0), then an optional message.
    private static func progress(_ text: Substring) -> JobProgress? {
        let amount = text.prefix { $0 != " " }
        let messageText = text.dropFirst(amount.count).drop { $0 == " " }
        let message = messageText.isEmpty ? nil : String(messageText)
        if let slash = amount.firstIndex(of: "/") {
            guard let current = Int(amount[..<slash]), let total = Int(amount[amount.index(after: slash)...]),
                total > 0, (0...total).contains(current)
            else { return nil }
            return JobProgress(percent: Double(current) * 100 / Double(total), current: current, total: total, message: message)
        }
        guard amount.allSatisfy({ $0.isASCIIDigit || $0 == "." }), let percent = Double(amount),
            (0...100).contains(percent)
        else { return nil }
        return JobProgress(percent: percent, message: message)
    }
}
