import Metrics

/// The metrics `/metrics` exposes (SPEC section 4), recorded through swift-metrics: `serve`
/// bootstraps it with a Prometheus registry; in a process that does not, they go nowhere.
/// Every name is here, so one reading shows all of them.
public enum SupervisorMetrics {
    /// `supervisor_attempt_duration_seconds` buckets: attempts last from milliseconds to hours.
    public static let attemptDurationBuckets: [Duration] = [
        .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5), .seconds(15), .seconds(30), .seconds(60),
        .seconds(120), .seconds(300), .seconds(600), .seconds(1800), .seconds(3600),
    ]
    public static let attemptDuration = "supervisor_attempt_duration_seconds"
    /// `supervisor_browser_startup_seconds` buckets: Chromium answers in a fraction of a
    /// second on an idle host, in seconds on a loaded one.
    public static let browserStartupBuckets: [Duration] = [
        .milliseconds(100), .milliseconds(200), .milliseconds(300), .milliseconds(500), .seconds(1), .seconds(2),
        .seconds(5), .seconds(10), .seconds(30),
    ]
    public static let browserStartup = "supervisor_browser_startup_seconds"

    public static func submitted(type: String) {
        Counter(label: "supervisor_jobs_submitted_total", dimensions: [("type", type)]).increment()
    }

    /// A job that reached a final state (`completed`, `failed`, `cancelled`) after an attempt.
    public static func finished(type: String, status: String) {
        Counter(label: "supervisor_jobs_finished_total", dimensions: [("type", type), ("status", status)]).increment()
    }

    public static func attemptEnded(type: String, outcome: String, duration: Duration) {
        Timer(label: attemptDuration, dimensions: [("type", type)]).recordNanoseconds(
            duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
        Counter(label: "supervisor_attempts_total", dimensions: [("type", type), ("outcome", outcome)]).increment()
    }

    /// From an attempt's start to its browser's DevTools endpoint answering.
    public static func browserStarted(type: String, after duration: Duration) {
        Timer(label: browserStartup, dimensions: [("type", type)]).recordNanoseconds(
            duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }

    public static func running(_ count: Int) {
        Gauge(label: "supervisor_running_attempts").record(count)
    }

    /// What a cleanup sweep did.
    public static func swept(_ report: HostCleanup.Report) {
        Counter(label: "supervisor_orphans_killed_total").increment(by: report.killedProcesses.count)
        Counter(label: "supervisor_work_dirs_removed_total").increment(by: report.removedDirectories.count)
        Counter(label: "supervisor_tmpdir_links_removed_total").increment(by: report.removedLinks.count)
        Counter(label: "supervisor_jobs_requeued_total").increment(by: report.requeuedJobs.count)
        Counter(label: "supervisor_jobs_pruned_total").increment(by: report.prunedJobs.count)
    }

    /// A store call that failed, by what it was for.
    public static func storeError(_ operation: String) {
        Counter(label: "supervisor_store_errors_total", dimensions: [("operation", operation)]).increment()
    }
}
