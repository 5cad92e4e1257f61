import Foundation
public import Logging
public import ServiceLifecycle
public import SupervisorConfig
public import SupervisorCore
public import SupervisorStore
import Synchronization

/// Takes jobs from the store and runs each attempt (SPEC sections 5–8): up to
/// `runner.concurrency` at once, woken at once by a submit in this process, by a timer at
/// the next `runAt`, and once a second for jobs submitted by other processes.
///
/// While attempts run it renews their leases every third of `runner.lease`, looks for
/// cancel requests every half second, and kills an attempt whose lease it could not renew
/// for two thirds of its length. On graceful shutdown it stops claiming, lets attempts
/// finish for `runner.shutdown_grace`, then interrupts them: back to pending, not spent.
public actor Runner: Service {
    public nonisolated let worker: WorkerIdentity
    private let store: any JobStore
    private nonisolated let configuration: SupervisorConfiguration
    private nonisolated let clock: any WallClock
    private nonisolated let logger: Logger
    public nonisolated let events: JobEvents
    /// What every attempt gets; its job types' seccomp programs and users are the ones
    /// loaded at start, replaced by `reload`.
    private var context: Attempt.Context
    /// The job types as last loaded (SIGHUP replaces them); running attempts keep theirs.
    private var jobTypes: [String: JobTypeSettings]
    private nonisolated let cgroups: AttemptCgroups

    /// By lease, not by job: a job whose lease was lost may be claimed again here while
    /// the lost attempt is still being killed.
    private var running: [AttemptLease: Attempt] = [:]
    private var endWaiters: [AttemptLease: [CheckedContinuation<Void, Never>]] = [:]
    private var lastRenewal = ContinuousClock.now
    private nonisolated let draining = Atomic<Bool>(false)
    /// Set by `supervisor drain`: no more claims, while running jobs finish.
    private nonisolated let drainedByOperator = Atomic<Bool>(false)
    private nonisolated let timer = Mutex<(deadline: Date?, task: Task<Void, Never>?)>((nil, nil))
    /// How long attempts run here, in seconds: a moving average over the recent ones.
    private nonisolated let meanAttemptSeconds = Mutex<Double?>(nil)
    private nonisolated let wakeups: AsyncStream<Void>
    private nonisolated let wakeup: AsyncStream<Void>.Continuation
    /// One element per attempt that ended, for the drain to count down.
    private nonisolated let endings: AsyncStream<Void>
    private nonisolated let ending: AsyncStream<Void>.Continuation

    public init(
        store: any JobStore, configuration: SupervisorConfiguration, worker: WorkerIdentity, launcher: String,
        seccompPrograms: [String: Int32], users: [String: RunAsUser] = [:], chromium: String? = nil,
        clock: any WallClock = SystemWallClock(), events: JobEvents = JobEvents(), logger: Logger
    ) {
        self.store = store
        self.configuration = configuration
        self.worker = worker
        self.clock = clock
        self.events = events
        self.logger = logger
        jobTypes = configuration.jobTypes
        cgroups = AttemptCgroups.detect()
        context = Attempt.Context(
            settings: configuration.runner, workerID: worker.id, launcher: launcher,
            ports: DebugPortPool(range: configuration.runner.portRange), cgroups: cgroups,
            supervisorPath: ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin",
            seccompPrograms: seccompPrograms, landlockABI: AttemptFileAccess.kernelABI, users: users, chromium: chromium)
        (wakeups, wakeup) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (endings, ending) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// How attempts are tracked on this host: a cgroup per attempt, or the process table.
    public nonisolated var tracksWithCgroups: Bool { cgroups.unified != nil }

    /// New job types from a reloaded config, with their compiled seccomp programs, `run_as`
    /// users and browser program: claims from now on use them; running attempts finish as
    /// they began.
    public func reload(
        jobTypes: [String: JobTypeSettings], seccompPrograms: [String: Int32], users: [String: RunAsUser],
        chromium: String?
    ) {
        self.jobTypes = jobTypes
        context.seccompPrograms = seccompPrograms
        context.users = users
        context.chromium = chromium
    }

    /// Stops claiming for good, as `supervisor drain` asks; running attempts finish. A drain
    /// asked through the API of this process lands at once, others at the next heartbeat.
    public nonisolated func stopClaiming() {
        guard !drainedByOperator.exchange(true, ordering: .relaxed) else { return }
        logger.notice("drained: no more jobs are claimed here", metadata: ["worker": "\(worker.id)"])
    }

    /// Looks for claimable jobs now (a submit in this process calls it).
    public nonisolated func wake() {
        wakeup.yield()
    }

    /// Looks for claimable jobs at `date`: a job scheduled in this process (a retry's
    /// backoff, a delayed submit) starts on time rather than at the next poll.
    /// One timer, for the earliest such date; later ones are found by the poll, which
    /// asks the store for the next `runAt`.
    public nonisolated func wake(at date: Date) {
        let delay = date.timeIntervalSince(clock.now())
        guard delay > 0 else { return wake() }
        timer.withLock { timer in
            if let deadline = timer.deadline, deadline <= date { return }
            timer.task?.cancel()
            timer.deadline = date
            timer.task = Task { [self] in
                try? await Task.sleep(for: .milliseconds(Int64((delay * 1000).rounded(.up))))
                guard !Task.isCancelled else { return }
                self.timer.withLock { $0.deadline = nil }
                wake()
            }
        }
    }

    /// Seconds until the job at this 1-based position in the queue starts: the jobs ahead
    /// of it leave in rounds of `runner.concurrency`, each as long as attempts have taken
    /// here on average. nil until an attempt has been measured. It counts only this
    /// process's capacity: other workers on the same store make the wait shorter.
    public nonisolated func estimatedWaitSeconds(queuePosition: Int) -> Double? {
        guard let mean = meanAttemptSeconds.withLock({ $0 }), queuePosition >= 1 else { return nil }
        return Double((queuePosition - 1) / configuration.runner.concurrency) * mean
    }

    /// Kills the job's attempt if it runs here, and returns once its ending is stored.
    /// False when the job does not run in this process.
    public func cancel(_ id: JobID) async -> Bool {
        let attempts = running.values.filter { $0.job.id == id }
        guard !attempts.isEmpty else { return false }
        for attempt in attempts {
            attempt.stop(.cancelled)
            await withCheckedContinuation { endWaiters[attempt.lease, default: []].append($0) }
        }
        return true
    }

    public func run() async throws {
        var metadata: Logger.Metadata = [
            "worker": "\(worker.id)", "concurrency": "\(configuration.runner.concurrency)",
            "tracking": "\(tracksWithCgroups ? "cgroup v2" : "process table")",
            "landlock": "\(context.landlockABI.map { "ABI \($0)" } ?? "unavailable: file access is not confined")",
            "memory_max": "\(context.cgroups.memory.map(\.description) ?? "RLIMIT_AS (no writable memory cgroup)")",
            "pids_max": "\(context.cgroups.pids.map(\.description) ?? "RLIMIT_NPROC (no writable pids cgroup; not enforced for root)")",
        ]
        if let leaf = context.cgroups.daemonLeaf { metadata["moved_into_cgroup"] = "\(leaf)" }
        logger.info("runner started", metadata: metadata)
        await register()
        await sweepHost()
        let upkeep = Task { await keepUp() }
        // Apart from the upkeep: a sweep may wait for processes to die or prune a backlog,
        // and lease renewals must not wait for it.
        let janitor = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(60))
                await sweepHost()
            }
        }
        let leaseWatch = Task { await watchLeases() }
        await withDiscardingTaskGroup { group in
            await withGracefulShutdownHandler {
                wake()
                for await _ in wakeups {
                    if draining.load(ordering: .relaxed) { break }
                    await claimAndStart(in: &group)
                }
            } onGracefulShutdown: { [self] in
                draining.store(true, ordering: .relaxed)
                wakeup.yield()
            }
            await drain()
        }
        upkeep.cancel()
        janitor.cancel()
        leaseWatch.cancel()
        context.cgroups.removeParents()
        do {
            try await store.removeWorker(id: worker.id)
        } catch {
            logger.error("cannot remove this worker's record; cleanup will", metadata: ["error": "\(error)"])
        }
        logger.info("runner stopped", metadata: ["worker": "\(worker.id)"])
    }

    private func claimAndStart(in group: inout DiscardingTaskGroup) async {
        let free = configuration.runner.concurrency - running.count
        guard free > 0, !drainedByOperator.load(ordering: .relaxed) else { return }
        let jobs: [Job]
        do {
            jobs = try await store.claim(
                limit: free, caps: claimCaps(), worker: worker, leaseDuration: configuration.runner.lease,
                now: clock.now())
        } catch {
            logger.error("cannot claim jobs", metadata: ["error": "\(error)"])
            SupervisorMetrics.storeError("claim")
            return
        }
        for job in jobs {
            let lease = AttemptLease(claimed: job, by: worker)
            guard let type = jobTypes[job.type] else {
                let message = "job type \(job.type) is not configured on worker \(worker.id)"
                await record(
                    lease, AttemptEnding(verdict: .failed(.failPermanent, message: message), outcome: .failPermanent))
                continue
            }
            let attempt = Attempt(job: job, type: type, lease: lease, context: context)
            running[lease] = attempt
            SupervisorMetrics.running(running.count)
            events.publish(.status(job))
            // An attempt always runs to its recorded ending: cancelling the runner (another
            // service failed) interrupts it instead of abandoning its processes.
            group.addTask {
                await withTaskCancellationHandler {
                    await Task { await self.execute(attempt) }.value
                } onCancel: {
                    attempt.stop(.interrupted)
                }
            }
        }
    }

    /// The type caps count this worker's attempts; the owner cap is the store's to count.
    private func claimCaps() -> ClaimCaps {
        var freeSlotsByType: [String: Int] = [:]
        for (name, type) in jobTypes {
            guard let cap = type.concurrency else { continue }
            freeSlotsByType[name] = cap - running.values.count(where: { $0.job.type == name })
        }
        return ClaimCaps(freeSlotsByType: freeSlotsByType, maxRunningPerOwner: configuration.limits.maxRunningPerOwner)
    }

    private func execute(_ attempt: Attempt) async {
        let job = attempt.job
        let lease = attempt.lease
        logger.info("attempt started", metadata: ["job": "\(job.id)", "type": "\(job.type)", "attempt": "\(lease.attempt)"])
        let attemptStart = ContinuousClock.now
        let summary = await attempt.run { [store, clock, events] progress in
            _ = try? await store.recordProgress(progress, for: lease, now: clock.now())
            events.publish(.progress(job.id, owner: job.owner, progress))
        }
        let seconds = ContinuousClock.now - attemptStart
        meanAttemptSeconds.withLock { mean in
            let latest = Double(seconds.components.seconds) + Double(seconds.components.attoseconds) / 1e18
            mean = mean.map { $0 * 0.8 + latest * 0.2 } ?? latest
        }
        let report = summary.report
        let verdict = report.verdict(
            attempt: lease.attempt, maxAttempts: job.maxAttempts, permanentExitCodes: attempt.type.permanentExitCodes)
        let (outcome, _) = report.outcome(permanentExitCodes: attempt.type.permanentExitCodes)
        SupervisorMetrics.attemptEnded(type: job.type, outcome: outcome.rawValue, duration: seconds)
        var ending = AttemptEnding(
            verdict: verdict, outcome: outcome, progress: summary.progress, peakMemoryBytes: summary.peakMemoryBytes,
            browserStartupMilliseconds: summary.browserStartup.map { Int($0.milliseconds) })
        if let startup = summary.browserStartup { SupervisorMetrics.browserStarted(type: job.type, after: startup) }
        switch report.termination {
        case .exited(let code): ending.exitCode = Int(code)
        case .signaled(let signal): ending.signal = Int(signal)
        }
        if case .retry = verdict {
            var random = SystemRandomNumberGenerator()
            let delay = attempt.type.backoff.delay(afterAttempt: lease.attempt, using: &random)
            ending.retryAt = clock.now().addingTimeInterval(Double(delay.milliseconds) / 1000).truncatedToMilliseconds
        }
        await record(lease, ending)
        logger.info(
            "attempt ended",
            metadata: [
                "job": "\(job.id)", "attempt": "\(lease.attempt)", "outcome": "\(outcome.rawValue)",
                "browser_startup_ms": "\(ending.browserStartupMilliseconds.map(String.init) ?? "-")",
            ])
        attemptEnded(lease)
    }

    /// Stores an ending, retrying while the store is unreachable; a fenced ending is
    /// dropped (the lease was lost and the job belongs to someone else now).
    private func record(_ lease: AttemptLease, _ ending: AttemptEnding) async {
        // The lease is renewed while this retries; past its length the job is another
        // worker's to recover anyway.
        let giveUp = ContinuousClock.now + configuration.runner.lease
        var retry = 0
        while true {
            do {
                switch try await store.finish(lease, ending, now: clock.now()) {
                case .recorded(let job):
                    events.publish(.status(job))
                    if job.status.isTerminal { SupervisorMetrics.finished(type: job.type, status: job.status.rawValue) }
                    if job.status == .pending { wake(at: job.runAt) }
                case .fenced: logger.warning("attempt ending dropped: the lease was lost", metadata: ["job": "\(lease)"])
                }
                return
            } catch {
                logger.error("cannot store an attempt's ending", metadata: ["job": "\(lease)", "error": "\(error)"])
                SupervisorMetrics.storeError("finish")
                guard ContinuousClock.now < giveUp else { return }
                try? await Task.sleep(for: .milliseconds(100 << min(retry, 5)))
                retry += 1
            }
        }
    }

    private func attemptEnded(_ lease: AttemptLease) {
        running[lease] = nil
        SupervisorMetrics.running(running.count)
        for waiter in endWaiters.removeValue(forKey: lease) ?? [] { waiter.resume() }
        ending.yield()
        wake()
    }

    /// On shutdown: attempts may finish within `shutdown_grace`; the rest are interrupted.
    private func drain() async {
        guard !running.isEmpty else { return }
        logger.notice("draining", metadata: ["running": "\(running.count)", "grace": "\(configuration.runner.shutdownGrace)"])
        let deadline = ContinuousClock.now + configuration.runner.shutdownGrace
        await withTaskGroup(of: Void.self) { race in
            race.addTask { [self] in
                // Iteration ends when the race is over: cancellation finishes the stream's wait.
                for await _ in endings where await running.isEmpty { return }
            }
            race.addTask { try? await Task.sleep(until: deadline, clock: .continuous) }
            await race.next()
            race.cancelAll()
        }
        for attempt in running.values { attempt.stop(.interrupted) }
    }

    private func recoverExpiredLeases() async {
        do {
            let requeued = try await store.requeueExpiredLeases(now: clock.now())
            if !requeued.isEmpty {
                logger.notice("jobs whose lease expired went back to the queue", metadata: ["jobs": "\(requeued)"])
            }
        } catch {
            logger.error("cannot requeue jobs with expired leases", metadata: ["error": "\(error)"])
            SupervisorMetrics.storeError("requeue")
        }
    }

    /// Records this worker in the store, for `/api/workers` and for the cleanup of what it
    /// leaves if it dies: where its attempts' directories and cgroups are.
    private func register() async {
        let now = clock.now()
        let cgroups = context.cgroups
        let record = WorkerRecord(
            id: worker.id, host: worker.host, pid: getpid(), processStart: ProcessIdentity.of(getpid()) ?? "",
            startedAt: now, heartbeatAt: now, capacity: configuration.runner.concurrency,
            workDirectory: configuration.runner.workRoot.path + "/" + worker.id,
            cgroupDirectories: Array(Set([cgroups.unified, cgroups.memory, cgroups.pids].compactMap { $0?.parent })).sorted())
        do {
            try await store.registerWorker(record)
        } catch {
            logger.error("cannot record this worker in the store", metadata: ["error": "\(error)"])
        }
    }

    /// What attempts of dead workers left on this host, and jobs whose lease ran out
    /// anywhere (SPEC section 8): at start, before the first claim, then every minute.
    private func sweepHost() async {
        let cleanup = HostCleanup(store: store, host: worker.host, configuration: configuration)
        do {
            let report = try await cleanup.run(now: clock.now(), dryRun: false)
            SupervisorMetrics.swept(report)
            guard !report.isEmpty else { return }
            logger.notice(
                "cleanup swept what attempts left behind",
                metadata: [
                    "killed": "\(report.killedProcesses.map { "\($0.pid) (job \($0.jobId))" })",
                    "removed_directories": "\(report.removedDirectories)", "removed_links": "\(report.removedLinks)",
                    "requeued": "\(report.requeuedJobs)",
                    "removed_workers": "\(report.removedWorkers)", "pruned": "\(report.prunedJobs.count)",
                ])
        } catch {
            logger.error("cleanup failed", metadata: ["error": "\(error)"])
            SupervisorMetrics.storeError("cleanup")
        }
    }

    /// Lease renewals, heartbeats, cancel requests and timed wake-ups, until cancelled.
    private func keepUp() async {
        let renewEvery = configuration.runner.lease / 3
        var nextRenewal = ContinuousClock.now + renewEvery
        while !Task.isCancelled {
            let now = ContinuousClock.now
            if now >= nextRenewal {
                await renewLeases()
                await recoverExpiredLeases()
                switch try? await store.heartbeat(workerID: worker.id, now: clock.now()) {
                case true?: stopClaiming()
                case nil: await register()
                case false?: break
                }
                nextRenewal = now + renewEvery
            }
            await forwardCancelRequests()
            // Claimable jobs are looked for once a second at most, for jobs that other
            // processes submit (a submit in this process wakes the runner at once), and
            // at the `runAt` of the next scheduled job.
            var pause: Duration = running.isEmpty ? .seconds(1) : .milliseconds(500)
            if !draining.load(ordering: .relaxed) && running.count < configuration.runner.concurrency {
                wake()
                if let next = try? await store.nextRunAt(after: clock.now()) {
                    let untilDue = Duration.milliseconds(next.millisecondsSince1970 - clock.now().millisecondsSince1970)
                    pause = max(.milliseconds(1), min(pause, untilDue))
                }
            }
            try? await Task.sleep(for: pause)
        }
    }

    private func renewLeases() async {
        let leases = running.values.map(\.lease)
        guard !leases.isEmpty else {
            lastRenewal = .now
            return
        }
        do {
            let lost = try await store.renewLeases(leases, duration: configuration.runner.lease, now: clock.now())
            lastRenewal = .now
            for lease in lost {
                logger.warning("lease lost; killing the attempt", metadata: ["job": "\(lease)"])
                running[lease]?.stop(.leaseExpired)
            }
        } catch {
            logger.error("cannot renew leases", metadata: ["error": "\(error)"])
            SupervisorMetrics.storeError("renew")
        }
    }

    /// Past two thirds of a lease it could not renew, another worker may soon claim the
    /// job: the attempt is killed here first. Checked apart from the renewals, which may
    /// hang on an unreachable store.
    private func watchLeases() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.runner.lease / 10)
            guard ContinuousClock.now - lastRenewal > configuration.runner.lease * 2 / 3, !running.isEmpty else { continue }
            logger.error("leases not renewed for two thirds of their length; killing the attempts")
            for attempt in running.values { attempt.stop(.leaseExpired) }
        }
    }

    private func forwardCancelRequests() async {
        let leases = running.values.map(\.lease)
        guard !leases.isEmpty, let requested = try? await store.cancelRequests(among: leases) else { return }
        for lease in requested { running[lease]?.stop(.cancelled) }
    }
}
