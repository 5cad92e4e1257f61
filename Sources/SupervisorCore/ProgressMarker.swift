import Foundation

/// One line a job wrote on stdout, read as SPEC section 6 says: a line that starts with
/// `::` and parses is a marker; every other line, malformed markers included, is log.
public enum StdoutLine: Sendable, Equatable {
    case marker(ProgressMarker)
    case log(String)

    /// The largest `::result` a job may return.
    public static let maxResultBytes = 1 << 20

    public init(_ line: String) {
        var line = line
        self = line.withUTF8 { StdoutLine(utf8: UnsafeRawBufferPointer($0)) }
    }

    /// The same reading straight from the bytes of a line (without its newline), which is
    /// what the runner has: a flood of markers costs no string per line.
    public init(utf8 line: UnsafeRawBufferPointer) {
        self = ProgressMarker(utf8: line).map(StdoutLine.marker) ?? .log(String(decoding: line, as: UTF8.self))
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
        var line = line
        guard let marker = line.withUTF8({ ProgressMarker(utf8: UnsafeRawBufferPointer($0)) }) else { return nil }
        self = marker
    }

    /// nil when the bytes are not a well-formed marker line.
    public init?(utf8 line: UnsafeRawBufferPointer) {
        let space = UInt8(ascii: " ")
        guard line.count >= 2, line[0] == UInt8(ascii: ":"), line[1] == UInt8(ascii: ":") else { return nil }
        let body = line[2...]
        let name = body.prefix { $0 != space }
        let rest = body[name.endIndex...].drop { $0 == space }
        switch Self.text(name) {
        case "progress":
            guard let progress = Self.progress(rest) else { return nil }
            self = .progress(progress)
        case "result":
            guard rest.count <= StdoutLine.maxResultBytes else {
                self = .resultTooLarge(byteCount: rest.count)
                return
            }
            guard let value = try? JSONValue(parsing: Data(rest)) else { return nil }
            self = .result(value)
        case "fail":
            let kindText = rest.prefix { $0 != space }
            guard let kind = FailureKind(rawValue: Self.text(kindText)) else { return nil }
            self = .fail(kind, message: Self.text(rest[kindText.endIndex...].drop { $0 == space }))
        case "heartbeat":
            guard rest.allSatisfy({ $0 == space || $0 == UInt8(ascii: "\t") }) else { return nil }
            self = .heartbeat
        default:
            return nil
        }
    }

    private static func text(_ bytes: Slice<UnsafeRawBufferPointer>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes), as: UTF8.self)
    }

    /// `42`, `42.5` (0 to 100) or `5/22` (0 ≤ current ≤ total, total > 0), then an optional message.
    private static func progress(_ text: Slice<UnsafeRawBufferPointer>) -> JobProgress? {
        let space = UInt8(ascii: " ")
        let amount = text.prefix { $0 != space }
        let messageBytes = text[amount.endIndex...].drop { $0 == space }
        let message = messageBytes.isEmpty ? nil : Self.text(messageBytes)
        if let slash = amount.firstIndex(of: UInt8(ascii: "/")) {
            guard let current = integer(amount[..<slash]), let total = integer(amount[(slash + 1)...]),
                total > 0, (0...total).contains(current)
            else { return nil }
            return JobProgress(percent: Double(current) * 100 / Double(total), current: current, total: total, message: message)
        }
        guard !amount.isEmpty,
            amount.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: ".") }),
            let percent = Double(Self.text(amount)), (0...100).contains(percent)
        else { return nil }
        return JobProgress(percent: percent, message: message)
    }

    /// Decimal digits only, and small enough for an `Int`.
    private static func integer(_ digits: Slice<UnsafeRawBufferPointer>) -> Int? {
        guard !digits.isEmpty, digits.count <= 18 else { return nil }
        var value = 0
        for digit in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digit) else { return nil }
            value = value * 10 + Int(digit - UInt8(ascii: "0"))
        }
        return value
    }
}
