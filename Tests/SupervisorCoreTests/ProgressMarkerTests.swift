import Foundation
import SupervisorCore
import Testing

@Suite("stdout markers")
struct ProgressMarkerTests {
    @Test("markers of SPEC section 6", arguments: [
        ("::progress 42 Logging in", ProgressMarker.progress(JobProgress(percent: 42, message: "Logging in"))),
        ("::progress 42.5", .progress(JobProgress(percent: 42.5))),
        ("::progress 0", .progress(JobProgress(percent: 0))),
        ("::progress 100 done", .progress(JobProgress(percent: 100, message: "done"))),
        ("::progress 5/20 Tagging items", .progress(JobProgress(percent: 25, current: 5, total: 20, message: "Tagging items"))),
        ("::progress 0/3", .progress(JobProgress(percent: 0, current: 0, total: 3))),
        ("::progress   7   spaced  out ", .progress(JobProgress(percent: 7, message: "spaced  out "))),
        (#"::result {"any": ["json", 1]}"#, .result(["any": ["json", 1]])),
        ("::result 42", .result(42)),
        ("::fail permanent Item not found", .fail(.permanent, message: "Item not found")),
        ("::fail transient Site is down", .fail(.transient, message: "Site is down")),
        ("::fail transient", .fail(.transient, message: "")),
        ("::heartbeat", .heartbeat),
    ])
    func markers(_ line: String, _ expected: ProgressMarker) {
        #expect(StdoutLine(line) == .marker(expected))
    }

    @Test("malformed or unknown markers, and plain text, are log lines", arguments: [
        "plain output", "", ":: progress 5", "::progress", "::progress 101", "::progress -1", "::progress 1e2",
        "::progress abc", "::progress 5/0", "::progress 6/5", "::progress -1/5", "::progress 1/2/3", "::progress nan",
        "::result", "::result {not json", "::result {} trailing", "::fail", "::fail maybe broken", "::heartbeat now",
        "::unknown marker", "::PROGRESS 5", " ::progress 5", ":progress 5",
    ])
    func logLines(_ line: String) {
        #expect(StdoutLine(line) == .log(line))
    }

    @Test("a result over 1 MiB is reported, not parsed")
    func oversizedResult() {
        let big = "::result \"" + String(repeating: "x", count: StdoutLine.maxResultBytes) + "\""
        #expect(StdoutLine(big) == .marker(.resultTooLarge(byteCount: StdoutLine.maxResultBytes + 2)))
        let fits = "::result \"" + String(repeating: "x", count: StdoutLine.maxResultBytes - 2) + "\""
        guard case .marker(.result) = StdoutLine(fits) else {
            Issue.record("a result of exactly 1 MiB is kept")
            return
        }
    }
}

@Suite("retry backoff")
struct RetryBackoffTests {
    let backoff = RetryBackoff(base: .seconds(5), maximum: .seconds(60))

    @Test("doubles from the base, capped", arguments: [(1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (40, 60), (10_000, 60)])
    func doubling(_ attempt: Int, _ seconds: Int64) {
        #expect(backoff.delay(afterAttempt: attempt, jitterFraction: 0) == .seconds(seconds))
    }

    @Test("jitter moves the delay by at most 10% either way")
    func jitter() {
        #expect(backoff.delay(afterAttempt: 2, jitterFraction: 0.1) == .seconds(11))
        #expect(backoff.delay(afterAttempt: 2, jitterFraction: -0.1) == .seconds(9))
        #expect(backoff.delay(afterAttempt: 2, jitterFraction: 5) == .seconds(11))
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<1000 {
            let delay = backoff.delay(afterAttempt: 3, using: &generator)
            #expect(delay >= .seconds(18) && delay <= .seconds(22))
        }
    }
}

@Suite("attempt outcomes")
struct AttemptReportTests {
    typealias Row = (report: AttemptReport, attempt: Int, verdict: AttemptVerdict)

    static let rows: [Row] = [
        (AttemptReport(termination: .exited(0), result: ["ok": true]), 1, .completed(result: ["ok": true])),
        (AttemptReport(termination: .exited(0)), 3, .completed(result: nil)),
        (AttemptReport(termination: .exited(1)), 1, .retry(.exitCode, message: "exited with status 1")),
        (AttemptReport(termination: .exited(1)), 3, .failed(.exitCode, message: "exited with status 1")),
        (AttemptReport(termination: .exited(2)), 1, .failed(.failPermanent, message: "exited with status 2, one of permanent_exit_codes")),
        (AttemptReport(termination: .signaled(9)), 2, .retry(.signal, message: "killed by signal 9")),
        (AttemptReport(termination: .exited(0), failure: (.permanent, "Item not found")), 1, .failed(.failPermanent, message: "Item not found")),
        (AttemptReport(termination: .exited(0), failure: (.transient, "Site is down")), 1, .retry(.failTransient, message: "Site is down")),
        (AttemptReport(termination: .exited(1), failure: (.transient, "")), 3, .failed(.failTransient, message: "the job reported a transient failure")),
        (AttemptReport(termination: .signaled(15), stoppedBy: .timeout), 1, .retry(.timeout, message: "ran past its timeout")),
        (AttemptReport(termination: .signaled(9), stoppedBy: .idleTimeout), 3, .failed(.idleTimeout, message: "wrote nothing for longer than its idle timeout")),
        (AttemptReport(termination: .signaled(9), stoppedBy: .oom), 1, .retry(.oom, message: "ran out of memory (memory_max)")),
        (AttemptReport(termination: .signaled(9), stoppedBy: .cancelled, failure: (.transient, "x")), 1, .cancelled),
        (AttemptReport(termination: .signaled(15), stoppedBy: .interrupted), 3, .requeued),
        (AttemptReport(termination: .exited(0), resultTooLarge: true), 1, .failed(.resultTooLarge, message: "its ::result was over 1048576 bytes")),
        (AttemptReport(termination: .signaled(9), stoppedBy: .browserCrashed), 1, .retry(.browserCrashed, message: "the browser crashed")),
        (AttemptReport(termination: .signaled(9), stoppedBy: .leaseExpired), 3, .failed(.leaseExpired, message: "its worker could not renew the lease")),
        (AttemptReport(termination: .signaled(9), stoppedBy: .workDirFull), 1, .retry(.workDirFull, message: "wrote more than max_work_dir_bytes")),
    ]

    @Test("SPEC section 6: exit, markers and stops decide the job", arguments: rows.indices)
    func verdicts(_ index: Int) {
        let row = Self.rows[index]
        #expect(row.report.verdict(attempt: row.attempt, maxAttempts: 3, permanentExitCodes: [2]) == row.verdict)
    }
}
