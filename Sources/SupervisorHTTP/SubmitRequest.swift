import HTTPTypes
import Foundation
import SupervisorConfig
import SupervisorCore

/// The body of `POST /api/jobs`, checked field by field: each problem is a 422 naming the
/// field, never a crash and never a 500.
struct SubmitRequest {
    static let knownFields: Set<String> = [
        "type", "payload", "priority", "runAt", "delaySeconds", "startWithinSeconds", "maxAttempts",
        "timeoutSeconds", "tags", "secrets", "webhookUrl",
    ]
    static let maxDelaySeconds: Double = 365 * 86_400
    static let maxTimeoutSeconds = 7 * 86_400
    static let maxTags = 32

    var jobType: JobTypeSettings
    var payload: JSONValue
    var priority: JobPriority
    /// nil: run as soon as possible.
    var runAt: Date?
    var delaySeconds: Double?
    var maxAttempts: Int?
    var timeoutSeconds: Int?
    var tags: [String: String]
    var startWithinSeconds: Int?
    var secrets: JSONValue?

    init(_ body: JSONValue, jobTypes: [String: JobTypeSettings]) throws {
        guard case .object(let fields) = body else {
            throw APIError(.badRequest, code: "not_an_object", message: "the body must be a JSON object")
        }
        if let unknown = fields.keys.filter({ !Self.knownFields.contains($0) }).sorted().first {
            throw APIError(.unprocessableContent, code: "unknown_field", message: "\(unknown): unknown field")
        }
        if fields["webhookUrl"] != nil { throw APIError.notSupportedYet("the field webhookUrl") }

        guard let typeValue = fields["type"] else { throw APIError.invalidField("type", "is required") }
        guard case .string(let typeName) = typeValue else { throw APIError.invalidField("type", "must be a string") }
        guard let jobType = jobTypes[typeName] else {
            throw APIError(.unprocessableContent, code: "unknown_job_type", message: "type: no job type \"\(typeName)\" is configured")
        }
        self.jobType = jobType
        payload = fields["payload"] ?? [:]

        switch fields["priority"] {
        case nil, .null?:
            priority = .normal
        case .int(let value)?:
            guard let checked = JobPriority(rawValue: Int(clamping: value)) else {
                throw APIError.invalidField("priority", "must be 0 (normal), 1 (high) or 2 (urgent), not \(value)")
            }
            priority = checked
        default:
            throw APIError.invalidField("priority", "must be an integer 0, 1 or 2")
        }

        if let value = fields["runAt"], value != .null {
            guard case .string(let text) = value, let date = Self.parseTimestamp(text) else {
                throw APIError.invalidField("runAt", "must be an ISO 8601 date-time with a time zone, e.g. 2026-01-31T09:30:00Z")
            }
            runAt = date
        }
        if let value = fields["delaySeconds"], value != .null {
            guard runAt == nil else {
                throw APIError(.unprocessableContent, code: "invalid_field", message: "runAt and delaySeconds: give one or the other, not both")
            }
            guard let seconds = Self.number(value), seconds >= 0, seconds <= Self.maxDelaySeconds else {
                throw APIError.invalidField("delaySeconds", "must be a number of seconds from 0 to \(Int(Self.maxDelaySeconds))")
            }
            delaySeconds = seconds
        }
        maxAttempts = try Self.integer(fields["maxAttempts"], field: "maxAttempts", in: 1...100)
        timeoutSeconds = try Self.integer(fields["timeoutSeconds"], field: "timeoutSeconds", in: 1...Self.maxTimeoutSeconds)
        tags = try Self.tags(fields["tags"])
        startWithinSeconds = try Self.integer(
            fields["startWithinSeconds"], field: "startWithinSeconds", in: 1...Int(Self.maxDelaySeconds))
        switch fields["secrets"] {
        case nil, .null?: secrets = nil
        case .object(let members)? where !members.isEmpty: secrets = .object(members)
        case .object?: secrets = nil
        default: throw APIError.invalidField("secrets", "must be an object")
        }
    }

    /// When the job becomes claimable, given the time of submission.
    func runAt(submittedAt now: Date) -> Date {
        if let runAt { return max(runAt, now).truncatedToMilliseconds }
        if let delaySeconds { return now.addingTimeInterval(delaySeconds).truncatedToMilliseconds }
        return now
    }

    static func parseTimestamp(_ text: String) -> Date? {
        (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text))
            ?? (try? Date.ISO8601FormatStyle().parse(text))
    }

    private static func number(_ value: JSONValue) -> Double? {
        switch value {
        case .int(let number): Double(number)
        case .double(let number): number
        default: nil
        }
    }

    private static func integer(_ value: JSONValue?, field: String, in range: ClosedRange<Int>) throws -> Int? {
        switch value {
        case nil, .null?:
            return nil
        case .int(let number)? where range.contains(Int(clamping: number)):
            return Int(number)
        default:
            throw APIError.invalidField(field, "must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
    }

    /// Tag keys are restricted so that they are safe in store queries and in `tag=k:v`.
    static func isValidTagKey(_ key: String) -> Bool {
        !key.isEmpty && key.utf8.count <= 64
            && key.utf8.allSatisfy { byte in
                (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_")
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
            }
    }

    private static func tags(_ value: JSONValue?) throws -> [String: String] {
        switch value {
        case nil, .null?:
            return [:]
        case .object(let members)?:
            guard members.count <= maxTags else { throw APIError.invalidField("tags", "at most \(maxTags) tags") }
            var tags: [String: String] = [:]
            for (key, member) in members {
                guard isValidTagKey(key) else {
                    throw APIError.invalidField("tags", "key \"\(key)\" must be 1-64 letters, digits, '_', '.' or '-'")
                }
                guard case .string(let text) = member, text.utf8.count <= 256 else {
                    throw APIError.invalidField("tags.\(key)", "must be a string of at most 256 bytes")
                }
                tags[key] = text
            }
            return tags
        default:
            throw APIError.invalidField("tags", "must be an object of strings")
        }
    }
}
