import Foundation
import SupervisorCore
import Testing

@Suite("job ids")
struct JobIDTests {
    @Test("UUIDv7 ids are canonical, versioned and sort in the order they were made")
    func ordering() {
        let generator = UUIDv7Generator()
        let now = Date()
        // Many in the same millisecond exercise the counter.
        let ids = (0..<5000).map { _ in generator.next(at: now) }
        #expect(ids == ids.sorted())
        #expect(Set(ids).count == ids.count)
        for id in ids.prefix(10) {
            let text = id.rawValue
            #expect(text.count == 36)
            #expect(Array(text)[14] == "7")
            #expect("89ab".contains(Array(text)[19]))
        }
        let later = generator.next(at: now.addingTimeInterval(1))
        #expect(later > ids.last!)
    }

    @Test("the timestamp prefix is the creation millisecond")
    func timestamp() {
        let date = Date(millisecondsSince1970: 1_800_000_000_123)
        let id = UUIDv7Generator().next(at: date)
        let hex = id.rawValue.replacingOccurrences(of: "-", with: "").prefix(12)
        #expect(UInt64(hex, radix: 16) == 1_800_000_000_123)
    }

    @Test("only the canonical form parses", arguments: [
        "", "x", "01a2086c-3f9f-7191-bad9-a9e3aa8496e", "01A2086C-3F9F-7191-BAD9-A9E3AA8496EE",
        "01a2086c_3f9f-7191-bad9-a9e3aa8496ee", "../../etc/passwd-aaaaaaaaaaaaaaaaaaaa",
    ])
    func rejects(_ text: String) {
        #expect(JobID(text) == nil)
    }
}

@Suite("durations and sizes")
struct DurationTextTests {
    @Test("durations", arguments: [
        ("250ms", Duration.milliseconds(250)), ("5s", .seconds(5)), ("10m", .seconds(600)), ("2h", .seconds(7200)),
        ("7d", .seconds(604_800)), ("0s", .zero),
    ])
    func parses(_ text: String, _ expected: Duration) throws {
        #expect(try DurationText.parse(text) == expected)
    }

    @Test("bad durations", arguments: ["", "5", "s", "-5s", "1.5s", "5 s", "5sec", "5S", "99999999999999999999d"])
    func rejects(_ text: String) {
        #expect(throws: DurationText.InvalidDuration.self) { try DurationText.parse(text) }
    }

    @Test("sizes", arguments: [("0", Int64(0)), ("4096", 4096), ("10K", 10240), ("10M", 10_485_760), ("2G", 2_147_483_648)])
    func sizes(_ text: String, _ expected: Int64) throws {
        #expect(try ByteSizeText.parse(text) == expected)
    }

    @Test("bad sizes", arguments: ["", "M", "1.5G", "-1", "10MB", "10k", "1T"])
    func badSizes(_ text: String) {
        #expect(throws: ByteSizeText.InvalidSize.self) { try ByteSizeText.parse(text) }
    }
}

@Suite("queue rules")
struct QueueRuleTests {
    func job(_ priority: JobPriority, runAt: Double, id: JobID) -> Job {
        let created = Date(timeIntervalSince1970: 0)
        return Job(
            id: id, owner: "o", type: "t", status: .pending, priority: priority, payload: nil,
            runAt: Date(timeIntervalSince1970: runAt), createdAt: created, updatedAt: created, maxAttempts: 1)
    }

    @Test("claim order: priority, then runAt, then creation")
    func claimOrder() {
        let ids = UUIDv7Generator()
        let now = Date()
        let (a, b, c, d) = (ids.next(at: now), ids.next(at: now), ids.next(at: now), ids.next(at: now))
        let jobs = [
            job(.normal, runAt: 5, id: a), job(.urgent, runAt: 9, id: b), job(.normal, runAt: 5, id: c),
            job(.high, runAt: 1, id: d),
        ]
        #expect(jobs.sorted(by: ClaimOrder.precedes).map(\.id) == [b, d, a, c])
    }

    @Test("status polls slow down as a job ages", arguments: [(0.0, 2), (29.9, 2), (30, 5), (119, 5), (120, 10), (86_400, 10)])
    func pollInterval(_ age: Double, _ seconds: Int) {
        #expect(StatusPollInterval.seconds(jobAge: age) == seconds)
    }

    @Test("priority accepts 0...2 only")
    func priority() {
        #expect(JobPriority(rawValue: 2) == .urgent)
        #expect(JobPriority(rawValue: 3) == nil)
        #expect(JobPriority(rawValue: -1) == nil)
    }

    @Test("terminal states")
    func terminal() {
        #expect(JobStatus.allCases.filter(\.isTerminal) == [.completed, .failed, .cancelled])
    }
}

@Suite("JSON values")
struct JSONValueTests {
    @Test("round-trips, keeping integers integral", arguments: [
        #"{"a":[1,2.5,null,true,"x"],"b":{"c":-7}}"#, "42", "\"text\"", "null", "[]", #"{"big":9007199254740993}"#,
    ])
    func roundTrip(_ text: String) throws {
        let value = try JSONValue(parsing: Data(text.utf8))
        #expect(value.serializedString() == text)
    }

    @Test("keeps booleans, integers and decimals apart")
    func types() throws {
        let value = try JSONValue(parsing: Data(#"{"t": true, "f": false, "one": 1, "zero": 0, "half": 0.5, "whole": 2, "neg": -3, "big": 9223372036854775807}"#.utf8))
        #expect(value == [
            "t": true, "f": false, "one": 1, "zero": 0, "half": 0.5, "whole": 2, "neg": -3, "big": .int(Int64.max),
        ])
    }

    @Test("rejects what is not JSON", arguments: ["", "{", "{'a':1}", "nul", "[1 2]", "1e400", #"{"a":1}x"#])
    func rejects(_ text: String) {
        #expect(throws: (any Error).self) { try JSONValue(parsing: Data(text.utf8)) }
    }
}
