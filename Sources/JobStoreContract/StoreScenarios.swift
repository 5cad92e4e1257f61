import Foundation
import SupervisorCore
import SupervisorStore
import Testing

/// The scenarios of `JobStoreContract`, each against one fresh store.
struct StoreScenarios {
    let store: any JobStore
    let ids = UUIDv7Generator()
    let start = Date(millisecondsSince1970: 1_800_000_000_000)
    let worker = WorkerIdentity(id: "worker-1", host: "test-host")

    func run(_ scenario: JobStoreContract.Scenario) async throws {
        switch scenario {
        case .submitAndRead: try await submitAndRead()
        case .claimOrder: try await claimOrder()
        case .noDoubleClaimUnderConcurrentClaimers: try await noDoubleClaim()
        case .cancelPending: try await cancelPending()
        case .cancelRunningAndFinished: try await cancelRunningAndFinished()
        case .retryRestoresBudget: try await retryRestoresBudget()
        case .idempotencyKey: try await idempotencyKey()
        case .cursorPaging: try await cursorPaging()
        case .listFilters: try await listFilters()
        case .ownerScoping: try await ownerScoping()
        case .queuePositionAndCounts: try await queuePositionAndCounts()
        case .queuePositionBesideManyScheduled: try await queuePositionBesideManyScheduled()
        case .admissionLimits: try await admissionLimits()
        case .concurrentSubmitsAllDurable: try await concurrentSubmits()
        case .migrateTwiceKeepsJobs: try await migrateTwice()
        case .progressAndEndingFencedByLease: try await progressAndEndingFenced()
        case .retryAndRequeueEndings: try await retryAndRequeueEndings()
        case .failedCancelledAndCompletedEndings: try await failedCancelledAndCompletedEndings()
        case .leaseRenewalAndExpiry: try await leaseRenewalAndExpiry()
        case .cancelRequestReachesWorker: try await cancelRequestReachesWorker()
        case .nextRunAtWakesForScheduledJobs: try await nextRunAtWakes()
        case .startWithinExpiresUnstartedJobs: try await startWithinExpires()
        case .secretsErasedWhenJobEnds: try await secretsErased()
        case .claimPassesOverCappedTypesAndOwners: try await claimPassesOverCaps()
        case .workersRegisterHeartbeatAndLeave: try await workersRegisterHeartbeatAndLeave()
        case .deadWorkersLeasesRequeued: try await deadWorkersLeasesRequeued()
        case .deleteOnlyFinishedJobs: try await deleteOnlyFinishedJobs()
        case .retentionPrunesByStatusAndAge: try await retentionPrunes()
        }
    }

    func submission(
        owner: String = "alice", type: String = "echo", priority: JobPriority = .normal, runAt: Date? = nil,
        at time: Date? = nil, tags: [String: String] = [:], key: String? = nil, maxAttempts: Int = 3,
        payload: JSONValue = ["n": 1]
    ) -> JobSubmission {
        let created = time ?? start
        return JobSubmission(
            id: ids.next(at: created), owner: owner, type: type, payload: payload, priority: priority,
            runAt: runAt ?? created, createdAt: created, maxAttempts: maxAttempts, timeoutSeconds: 60, tags: tags,
            idempotencyKey: key
        )
    }

    @discardableResult
    func accept(_ submission: JobSubmission) async throws -> Job {
        let outcome = try await store.submit(submission, limits: .unlimited)
        guard case .accepted(let job, _) = outcome else {
            Issue.record("expected a new job, got \(outcome)")
            throw ScenarioFailure()
        }
        return job
    }

    // MARK: Scenarios

    func submitAndRead() async throws {
        let new = submission(tags: ["site": "example"], payload: ["url": "https://example.com", "deep": [1, 2.5, nil, true]])
        let accepted = try await accept(new)
        let read = try #require(try await store.job(id: new.id, owner: nil))
        #expect(read == accepted)
        #expect(read.status == .pending)
        #expect(read.attempt == 0)
        #expect(read.maxAttempts == 3)
        #expect(read.payload == new.payload)
        #expect(read.tags == ["site": "example"])
        #expect(read.progress == nil)
        #expect(read.attempts.isEmpty)
        #expect(try await store.job(id: ids.next(at: start), owner: nil) == nil)
    }

    func claimOrder() async throws {
        // Created in an order that differs from claim order on purpose.
        let lateNormal = try await accept(submission(priority: .normal, runAt: start.addingTimeInterval(-10), at: start))
        let urgent = try await accept(submission(priority: .urgent, at: start.addingTimeInterval(1)))
        let earlyNormal = try await accept(submission(priority: .normal, runAt: start.addingTimeInterval(-20), at: start.addingTimeInterval(2)))
        let high = try await accept(submission(priority: .high, at: start.addingTimeInterval(3)))
        let sameTimeFirst = try await accept(submission(priority: .normal, runAt: start.addingTimeInterval(-10), at: start.addingTimeInterval(4)))
        let future = try await accept(submission(priority: .urgent, runAt: start.addingTimeInterval(3600), at: start.addingTimeInterval(5)))
        let now = start.addingTimeInterval(10)

        var claimed: [JobID] = []
        while let job = try await store.claim(limit: 1, worker: worker, leaseDuration: .seconds(30), now: now).first {
            claimed.append(job.id)
            #expect(job.status == .running)
            #expect(job.attempt == 1)
        }
        #expect(claimed == [urgent.id, high.id, earlyNormal.id, lateNormal.id, sameTimeFirst.id])
        let waiting = try #require(try await store.job(id: future.id, owner: nil))
        #expect(waiting.status == .pending)

        let batch = try await store.claim(limit: 10, worker: worker, leaseDuration: .seconds(30), now: start.addingTimeInterval(3601))
        #expect(batch.map(\.id) == [future.id])
        let running = try #require(try await store.job(id: future.id, owner: nil))
        #expect(running.attempts.map(\.attempt) == [1])
        #expect(running.attempts.first?.workerID == worker.id)
        #expect(running.attempts.first?.host == worker.host)
    }

    func noDoubleClaim() async throws {
        let total = 200
        for index in 0..<total { try await accept(submission(at: start.addingTimeInterval(Double(index) / 1000))) }
        let now = start.addingTimeInterval(60)
        let store = self.store
        let claims = try await withThrowingTaskGroup(of: [JobID].self) { group in
            for claimer in 0..<8 {
                group.addTask {
                    var mine: [JobID] = []
                    let identity = WorkerIdentity(id: "claimer-\(claimer)", host: "test-host")
                    while true {
                        let jobs = try await store.claim(limit: 3, worker: identity, leaseDuration: .seconds(30), now: now)
                        if jobs.isEmpty { return mine }
                        mine += jobs.map(\.id)
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let all = claims.flatMap { $0 }
        #expect(all.count == total)
        #expect(Set(all).count == total)
        #expect(claims.filter { !$0.isEmpty }.count > 1, "the claimers should have shared the work")
    }

    func cancelPending() async throws {
        let job = try await accept(submission())
        let later = start.addingTimeInterval(5)
        guard case .cancelled(let cancelled) = try await store.cancel(id: job.id, owner: "alice", now: later) else {
            Issue.record("a pending job should be cancelled at once")
            return
        }
        #expect(cancelled.status == .cancelled)
        #expect(cancelled.finishedAt == later)
        #expect(cancelled.error?.errorClass == .cancelled)
        #expect(try await store.claim(limit: 5, worker: worker, leaseDuration: .seconds(30), now: later).isEmpty)
        #expect(try await store.cancel(id: job.id, owner: "alice", now: later) == .alreadyFinished(cancelled))
        #expect(try await store.cancel(id: ids.next(at: later), owner: nil, now: later) == .notFound)
    }

    func cancelRunningAndFinished() async throws {
        let job = try await accept(submission())
        _ = try await store.claim(limit: 1, worker: worker, leaseDuration: .seconds(30), now: start)
        guard case .requested(let requested) = try await store.cancel(id: job.id, owner: nil, now: start) else {
            Issue.record("a running job's cancel is a request to its worker")
            return
        }
        #expect(requested.status == .running)
        #expect(requested.cancelRequested)
    }

    func retryRestoresBudget() async throws {
        let job = try await accept(submission(maxAttempts: 2))
        #expect(try await store.retry(id: job.id, owner: nil, now: start) == .notRetryable(job))
        guard case .cancelled = try await store.cancel(id: job.id, owner: nil, now: start) else {
            Issue.record("cancel failed")
            return
        }
        let later = start.addingTimeInterval(30)
        guard case .retried(let retried) = try await store.retry(id: job.id, owner: "alice", now: later) else {
            Issue.record("a cancelled job can be retried")
            return
        }
        #expect(retried.status == .pending)
        #expect(retried.runAt == later)
        #expect(retried.error == nil)
        #expect(retried.finishedAt == nil)
        #expect(retried.maxAttempts == 2)
        let claimed = try await store.claim(limit: 1, worker: worker, leaseDuration: .seconds(30), now: later)
        #expect(claimed.map(\.id) == [job.id])
        #expect(claimed.first?.attempt == 1)
        #expect(try await store.retry(id: job.id, owner: "bob", now: later) == .notFound)
    }

    func idempotencyKey() async throws {
        let first = try await accept(submission(key: "order-42"))
        let again = submission(type: "other", key: "order-42", payload: ["different": true])
        #expect(try await store.submit(again, limits: .unlimited) == .duplicate(first))
        // The same key is another owner's own key.
        let bobs = try await accept(submission(owner: "bob", key: "order-42"))
        #expect(bobs.id != first.id)
        _ = try await store.cancel(id: first.id, owner: nil, now: start)
        guard case .duplicate(let current) = try await store.submit(submission(key: "order-42"), limits: .unlimited) else {
            Issue.record("the key should still answer the first job")
            return
        }
        #expect(current.id == first.id)
        #expect(current.status == .cancelled)
        let page = try await store.list(JobQuery(owner: "alice"))
        #expect(page.jobs.count == 1)
        #expect(try await store.job(owner: "alice", idempotencyKey: "order-42")?.id == first.id)
        #expect(try await store.job(owner: "bob", idempotencyKey: "order-42")?.id == bobs.id)
        #expect(try await store.job(owner: "carol", idempotencyKey: "order-42") == nil)
        #expect(try await store.job(owner: "alice", idempotencyKey: "order-43") == nil)
    }

    func cursorPaging() async throws {
        var made: [JobID] = []
        for index in 0..<25 { made.append(try await accept(submission(at: start.addingTimeInterval(Double(index)))).id) }
        var seen: [JobID] = []
        var cursor: JobID?
        var pages = 0
        repeat {
            let page = try await store.list(JobQuery(owner: "alice", limit: 10, after: cursor))
            seen += page.jobs.map(\.id)
            cursor = page.nextCursor
            pages += 1
        } while cursor != nil && pages < 10
        #expect(pages == 3)
        #expect(seen == made.reversed())
        let exact = try await store.list(JobQuery(owner: "alice", limit: 25))
        #expect(exact.nextCursor == nil)
    }

    func listFilters() async throws {
        let a = try await accept(submission(type: "shot", tags: ["env": "prod", "team": "web"]))
        let b = try await accept(submission(type: "shot", at: start.addingTimeInterval(1), tags: ["env": "dev", "team": "web"]))
        let c = try await accept(submission(type: "pdf", at: start.addingTimeInterval(2), tags: ["env": "prod"]))
        _ = try await store.cancel(id: b.id, owner: nil, now: start)
        #expect(try await store.list(JobQuery(owner: nil, type: "shot")).jobs.map(\.id) == [b.id, a.id])
        #expect(try await store.list(JobQuery(owner: nil, status: .cancelled)).jobs.map(\.id) == [b.id])
        #expect(try await store.list(JobQuery(owner: nil, tags: ["env": "prod"])).jobs.map(\.id) == [c.id, a.id])
        #expect(try await store.list(JobQuery(owner: nil, tags: ["env": "prod", "team": "web"])).jobs.map(\.id) == [a.id])
        #expect(try await store.list(JobQuery(owner: nil, status: .pending, type: "shot")).jobs.map(\.id) == [a.id])
    }

    func ownerScoping() async throws {
        let alices = try await accept(submission(owner: "alice"))
        let bobs = try await accept(submission(owner: "bob", at: start.addingTimeInterval(1)))
        #expect(try await store.job(id: alices.id, owner: "bob") == nil)
        #expect(try await store.job(id: alices.id, owner: "alice")?.id == alices.id)
        #expect(try await store.job(id: alices.id, owner: nil)?.id == alices.id)
        #expect(try await store.cancel(id: alices.id, owner: "bob", now: start) == .notFound)
        #expect(try await store.list(JobQuery(owner: "bob")).jobs.map(\.id) == [bobs.id])
        #expect(try await store.list(JobQuery(owner: nil)).jobs.map(\.id) == [bobs.id, alices.id])
    }

    func queuePositionAndCounts() async throws {
        let first = try await store.submit(submission(at: start), limits: .unlimited)
        let second = try await store.submit(submission(at: start.addingTimeInterval(1)), limits: .unlimited)
        let urgent = try await store.submit(submission(priority: .urgent, at: start.addingTimeInterval(2)), limits: .unlimited)
        let later = try await store.submit(
            submission(runAt: start.addingTimeInterval(600), at: start.addingTimeInterval(3)), limits: .unlimited)
        guard case .accepted(let firstJob, 1) = first, case .accepted(let secondJob, 2) = second,
            case .accepted(let urgentJob, 1) = urgent, case .accepted(let laterJob, nil) = later
        else {
            Issue.record("positions at submit: \(first), \(second), \(urgent), \(later)")
            return
        }
        // A job not due yet, even an urgent one, is not ahead of anything.
        let laterUrgent = try await store.submit(
            submission(priority: .urgent, runAt: start.addingTimeInterval(900), at: start.addingTimeInterval(4)), limits: .unlimited)
        let fifth = try await store.submit(submission(at: start.addingTimeInterval(5)), limits: .unlimited)
        guard case .accepted(_, nil) = laterUrgent, case .accepted(_, 4) = fifth else {
            Issue.record("positions beside jobs not due yet: \(laterUrgent), \(fifth)")
            return
        }
        let now = start.addingTimeInterval(10)
        #expect(try await store.queuePosition(of: urgentJob, now: now) == 1)
        #expect(try await store.queuePosition(of: firstJob, now: now) == 2)
        #expect(try await store.queuePosition(of: secondJob, now: now) == 3)
        #expect(try await store.queuePosition(of: laterJob, now: now) == nil)

        _ = try await store.claim(limit: 1, worker: worker, leaseDuration: .seconds(30), now: now)
        _ = try await store.cancel(id: secondJob.id, owner: nil, now: now)
        let counts = try await store.queueCounts(now: now)
        #expect(counts[.pending] == 4)
        #expect(counts[.running] == 1)
        #expect(counts[.cancelled] == 1)
        #expect(counts[.completed] == 0)
        #expect(counts.oldestPendingSeconds == 10)
        let running = try #require(try await store.job(id: urgentJob.id, owner: nil))
        #expect(try await store.queuePosition(of: running, now: now) == nil)
    }

    /// More jobs scheduled for later than positions are counted exactly up to must not
    /// distort the position of a job that is due.
    func queuePositionBesideManyScheduled() async throws {
        let store = self.store
        let scheduled = (0..<(QueuePosition.exactLimit + 50)).map { _ in
            submission(priority: .urgent, runAt: start.addingTimeInterval(86_400), at: start)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for new in scheduled { group.addTask { _ = try await store.submit(new, limits: .unlimited) } }
            try await group.waitForAll()
        }
        for index in 1...3 { try await accept(submission(at: start.addingTimeInterval(Double(index)))) }
        let outcome = try await store.submit(submission(at: start.addingTimeInterval(4)), limits: .unlimited)
        guard case .accepted(let job, let position) = outcome else {
            Issue.record("expected a new job, got \(outcome)")
            return
        }
        #expect(position == 4)
        #expect(try await store.queuePosition(of: job, now: start.addingTimeInterval(5)) == 4)
    }

    func admissionLimits() async throws {
        let limits = QueueLimits(maxPending: 3, maxPendingPerOwner: 2)
        _ = try await store.submit(submission(owner: "alice"), limits: limits)
        _ = try await store.submit(submission(owner: "alice"), limits: limits)
        await #expect(throws: JobStoreError.ownerOverLimit(owner: "alice", limit: 2)) {
            try await store.submit(submission(owner: "alice"), limits: limits)
        }
        _ = try await store.submit(submission(owner: "bob"), limits: limits)
        await #expect(throws: JobStoreError.queueFull(limit: 3)) {
            try await store.submit(submission(owner: "carol"), limits: limits)
        }
        // A finished job no longer counts against the limits.
        let page = try await store.list(JobQuery(owner: "alice"))
        _ = try await store.cancel(id: try #require(page.jobs.first).id, owner: nil, now: start)
        _ = try await store.submit(submission(owner: "alice"), limits: limits)
    }

    func concurrentSubmits() async throws {
        let store = self.store
        let submissions = (0..<300).map { submission(at: start.addingTimeInterval(Double($0) / 1000)) }
        let outcomes = try await withThrowingTaskGroup(of: SubmitOutcome.self) { group in
            for new in submissions { group.addTask { try await store.submit(new, limits: .unlimited) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.count == submissions.count)
        let positions = outcomes.compactMap { outcome -> Int? in
            if case .accepted(_, let position) = outcome { return position }
            return nil
        }
        #expect(positions.count == submissions.count)
        #expect(positions.allSatisfy { (1...submissions.count).contains($0) })
        #expect(try await store.queueCounts(now: start)[.pending] == submissions.count)
        for new in submissions { #expect(try await store.job(id: new.id, owner: nil) != nil) }
    }

    func claimPassesOverCaps() async throws {
        // Claim order: a1, a2, b1, a3, c1.
        let a1 = try await accept(submission(owner: "alice", type: "slow", at: start))
        let a2 = try await accept(submission(owner: "alice", type: "slow", at: start.addingTimeInterval(1)))
        let b1 = try await accept(submission(owner: "bob", type: "slow", at: start.addingTimeInterval(2)))
        let a3 = try await accept(submission(owner: "alice", type: "echo", at: start.addingTimeInterval(3)))
        let c1 = try await accept(submission(owner: "carol", type: "echo", at: start.addingTimeInterval(4)))
        let now = start.addingTimeInterval(10)
        let caps = ClaimCaps(freeSlotsByType: ["slow": 1], maxRunningPerOwner: 2)

        // One slot for `slow` (a2 and b1 wait); alice reaches her cap with a3.
        let first = try await store.claim(limit: 10, caps: caps, worker: worker, leaseDuration: .seconds(30), now: now)
        #expect(first.map(\.id) == [a1.id, a3.id, c1.id])
        let noSlot = ClaimCaps(freeSlotsByType: ["slow": 0], maxRunningPerOwner: 2)
        #expect(try await store.claim(limit: 10, caps: noSlot, worker: worker, leaseDuration: .seconds(30), now: now).isEmpty)

        // Another worker has a `slow` slot, but alice's cap counts her jobs on every worker.
        let other = WorkerIdentity(id: "worker-2", host: "other-host")
        let second = try await store.claim(limit: 10, caps: caps, worker: other, leaseDuration: .seconds(30), now: now)
        #expect(second.map(\.id) == [b1.id])

        let lease = AttemptLease(claimed: try #require(first.first), by: worker)
        _ = try await store.finish(lease, AttemptEnding(verdict: .completed(result: nil), outcome: .completed), now: now)
        let third = try await store.claim(limit: 10, caps: caps, worker: other, leaseDuration: .seconds(30), now: now)
        #expect(third.map(\.id) == [a2.id])
        #expect(try await store.queueCounts(now: now)[.running] == 4)
    }

    func migrateTwice() async throws {
        let job = try await accept(submission())
        try await store.migrate()
        #expect(try await store.job(id: job.id, owner: nil) == job)
    }

    // MARK: Attempts

    /// Claims the one claimable job and returns it with its lease.
    func claimOne(now: Date, lease: Duration = .seconds(30), by identity: WorkerIdentity? = nil) async throws
        -> (Job, AttemptLease)
    {
        let identity = identity ?? worker
        let job = try #require(try await store.claim(limit: 1, worker: identity, leaseDuration: lease, now: now).first)
        return (job, AttemptLease(claimed: job, by: identity))
    }

    func progressAndEndingFenced() async throws {
        let submitted = try await accept(submission())
        let (_, lease) = try await claimOne(now: start)
        let halfway = JobProgress(percent: 50, current: 5, total: 10, message: "half")
        #expect(try await store.recordProgress(halfway, for: lease, now: start.addingTimeInterval(1)))
        #expect(try await store.job(id: submitted.id, owner: nil)?.progress == halfway)

        // A stale attempt number or another worker is fenced out and changes nothing.
        let stale = AttemptLease(jobID: submitted.id, attempt: lease.attempt - 1, workerID: lease.workerID)
        let stranger = AttemptLease(jobID: submitted.id, attempt: lease.attempt, workerID: "worker-2")
        #expect(try await store.recordProgress(JobProgress(percent: 99), for: stale, now: start) == false)
        #expect(try await store.recordProgress(JobProgress(percent: 99), for: stranger, now: start) == false)
        let ending = AttemptEnding(verdict: .failed(.failPermanent, message: "no"), outcome: .failPermanent, exitCode: 1)
        #expect(try await store.finish(stranger, ending, now: start) == .fenced)
        #expect(try await store.job(id: submitted.id, owner: nil)?.status == .running)

        let done = AttemptEnding(
            verdict: .completed(result: ["ok": true]), outcome: .completed, exitCode: 0,
            progress: JobProgress(percent: 100, message: "done"))
        guard case .recorded(let job) = try await store.finish(lease, done, now: start.addingTimeInterval(2)) else {
            Issue.record("the holder of the lease must be able to finish")
            return
        }
        #expect(job.status == .completed)
        #expect(job.result == ["ok": true])
        #expect(job.progress == JobProgress(percent: 100, message: "done"))
        #expect(job.finishedAt == start.addingTimeInterval(2))
        #expect(job.attempts.count == 1)
        #expect(job.attempts.first?.exitCode == 0)
        #expect(job.attempts.first?.outcome == .completed)
        #expect(job.attempts.first?.finishedAt == start.addingTimeInterval(2))
        // Once finished, the same lease fences itself out: one outcome per attempt.
        #expect(try await store.finish(lease, ending, now: start.addingTimeInterval(3)) == .fenced)
        #expect(try await store.recordProgress(JobProgress(percent: 1), for: lease, now: start) == false)
        #expect(try await store.queueCounts(now: start)[.completed] == 1)
    }

    func retryAndRequeueEndings() async throws {
        let submitted = try await accept(submission(maxAttempts: 2))
        let (_, first) = try await claimOne(now: start)
        _ = try await store.recordProgress(JobProgress(percent: 30), for: first, now: start)
        let retryAt = start.addingTimeInterval(5)
        let retry = AttemptEnding(
            verdict: .retry(.exitCode, message: "exited with status 3"), outcome: .exitCode, exitCode: 3,
            retryAt: retryAt)
        guard case .recorded(let waiting) = try await store.finish(first, retry, now: start.addingTimeInterval(1)) else {
            Issue.record("retry ending not recorded")
            return
        }
        #expect(waiting.status == .pending)
        #expect(waiting.runAt == retryAt)
        #expect(waiting.error == JobError(message: "exited with status 3", errorClass: .exitCode))
        #expect(waiting.finishedAt == nil)
        // Not due before the backoff has passed.
        #expect(try await store.claim(limit: 1, worker: worker, leaseDuration: .seconds(30), now: start.addingTimeInterval(4)).isEmpty)
        #expect(try await store.queuePosition(of: waiting, now: start.addingTimeInterval(4)) == nil)

        let (second, secondLease) = try await claimOne(now: retryAt)
        #expect(second.attempt == 2)
        #expect(second.progress == nil, "progress is reset when a new attempt starts")
        let interrupted = AttemptEnding(verdict: .requeued, outcome: .interrupted, signal: 15)
        guard case .recorded(let requeued) = try await store.finish(secondLease, interrupted, now: retryAt) else {
            Issue.record("requeue not recorded")
            return
        }
        #expect(requeued.status == .pending)
        #expect(requeued.runAt == retryAt)
        #expect(requeued.maxAttempts == 3, "an interrupted attempt is not spent")
        #expect(requeued.attempts.map(\.outcome) == [.exitCode, .interrupted])
        #expect(requeued.attempts.map(\.signal) == [nil, 15])

        let (third, thirdLease) = try await claimOne(now: retryAt)
        #expect(third.attempt == 3)
        let last = AttemptEnding(verdict: .failed(.exitCode, message: "exited with status 3"), outcome: .exitCode, exitCode: 3)
        guard case .recorded(let failed) = try await store.finish(thirdLease, last, now: retryAt) else {
            Issue.record("final failure not recorded")
            return
        }
        #expect(failed.status == .failed)
        #expect(failed.id == submitted.id)
        #expect(failed.attempts.count == 3)
    }

    func failedCancelledAndCompletedEndings() async throws {
        let permanent = try await accept(submission(at: start))
        let cancelled = try await accept(submission(at: start))
        let (_, permanentLease) = try await claimOne(now: start)
        let (_, cancelledLease) = try await claimOne(now: start)
        let failure = AttemptEnding(
            verdict: .failed(.failPermanent, message: "Item not found"), outcome: .failPermanent, exitCode: 1,
            peakMemoryBytes: 123 << 20, browserStartupMilliseconds: 187)
        _ = try await store.finish(permanentLease, failure, now: start)
        let failed = try #require(try await store.job(id: permanent.id, owner: nil))
        #expect(failed.status == .failed)
        // The attempt's measurements are kept in its history.
        #expect(failed.attempts.first?.peakMemoryBytes == 123 << 20)
        #expect(failed.attempts.first?.browserStartupMilliseconds == 187)
        #expect(failed.error == JobError(message: "Item not found", errorClass: .failPermanent))
        #expect(failed.finishedAt == start)

        _ = try await store.cancel(id: cancelled.id, owner: nil, now: start)
        _ = try await store.finish(cancelledLease, AttemptEnding(verdict: .cancelled, outcome: .cancelled, signal: 9), now: start)
        let stopped = try #require(try await store.job(id: cancelled.id, owner: nil))
        #expect(stopped.status == .cancelled)
        #expect(stopped.error?.errorClass == .cancelled)
        #expect(stopped.attempts.first?.signal == 9)
        // A failed or cancelled job can be retried by hand: a fresh budget, attempts continue.
        guard case .retried(let again) = try await store.retry(id: stopped.id, owner: nil, now: start) else {
            Issue.record("a cancelled job must be retryable")
            return
        }
        #expect(again.status == .pending)
        #expect(again.cancelRequested == false)
        let counts = try await store.queueCounts(now: start)
        #expect(counts[.failed] == 1 && counts[.pending] == 1 && counts[.running] == 0)
    }

    func leaseRenewalAndExpiry() async throws {
        let renewed = try await accept(submission(at: start, maxAttempts: 2))
        let abandoned = try await accept(submission(at: start, maxAttempts: 2))
        let spent = try await accept(submission(at: start, maxAttempts: 1))
        let (_, renewedLease) = try await claimOne(now: start, lease: .seconds(10))
        let (_, abandonedLease) = try await claimOne(now: start, lease: .seconds(10))
        let (_, spentLease) = try await claimOne(now: start, lease: .seconds(10))

        let later = start.addingTimeInterval(8)
        let stranger = AttemptLease(jobID: renewed.id, attempt: 1, workerID: "worker-2")
        let lost = try await store.renewLeases([renewedLease, stranger], duration: .seconds(10), now: later)
        #expect(lost == [stranger])

        // At 12 s the two leases not renewed have run out; the renewed one holds until 18 s.
        let expired = try await store.requeueExpiredLeases(now: start.addingTimeInterval(12))
        #expect(Set(expired) == [abandoned.id, spent.id])
        let requeued = try #require(try await store.job(id: abandoned.id, owner: nil))
        #expect(requeued.status == .pending)
        #expect(requeued.error?.errorClass == .leaseExpired)
        #expect(requeued.attempts.first?.outcome == .leaseExpired)
        let failed = try #require(try await store.job(id: spent.id, owner: nil))
        #expect(failed.status == .failed)
        #expect(failed.error?.errorClass == .leaseExpired)
        #expect(try await store.job(id: renewed.id, owner: nil)?.status == .running)

        // The workers that lost them learn it at their next renewal, and are fenced out.
        let lostLater = try await store.renewLeases([renewedLease, abandonedLease, spentLease], duration: .seconds(10), now: start.addingTimeInterval(12))
        #expect(lostLater == [abandonedLease, spentLease])
        let ending = AttemptEnding(verdict: .completed(result: nil), outcome: .completed, exitCode: 0)
        #expect(try await store.finish(abandonedLease, ending, now: start.addingTimeInterval(13)) == .fenced)
        #expect(try await store.requeueExpiredLeases(now: start.addingTimeInterval(13)).isEmpty)
    }

    func workersRegisterHeartbeatAndLeave() async throws {
        func record(_ id: String, pid: Int32, at time: Date) -> WorkerRecord {
            WorkerRecord(
                id: id, host: "test-host", pid: pid, processStart: "boot:\(pid)", startedAt: time, heartbeatAt: time,
                capacity: 4, workDirectory: "/work/\(id)", cgroupDirectories: ["/cg/unified/supervisor-\(pid)", "/cg/memory/x"])
        }
        #expect(try await store.workers().isEmpty)
        let first = record("worker-1", pid: 10, at: start)
        try await store.registerWorker(first)
        try await store.registerWorker(record("worker-2", pid: 20, at: start))
        #expect(try await store.heartbeat(workerID: "worker-1", now: start.addingTimeInterval(5)) == false)
        #expect(try await store.heartbeat(workerID: "nobody", now: start.addingTimeInterval(5)) == nil)
        var expected = first
        expected.heartbeatAt = start.addingTimeInterval(5)
        #expect(try await store.workers() == [expected, record("worker-2", pid: 20, at: start)])

        // A drain reaches the worker at its next heartbeat.
        #expect(try await store.drainWorker(id: "worker-1"))
        #expect(try await store.drainWorker(id: "nobody") == false)
        #expect(try await store.heartbeat(workerID: "worker-1", now: start.addingTimeInterval(6)) == true)
        #expect(try await store.workers().first?.draining == true)

        // A restart under the same id replaces the record.
        let again = record("worker-2", pid: 21, at: start.addingTimeInterval(9))
        try await store.registerWorker(again)
        try await store.removeWorker(id: "worker-1")
        #expect(try await store.workers() == [again])
    }

    func deadWorkersLeasesRequeued() async throws {
        let alive = WorkerIdentity(id: "alive", host: "test-host")
        let dead = WorkerIdentity(id: "dead", host: "test-host")
        let kept = try await accept(submission(at: start))
        let orphan = try await accept(submission(at: start))
        let (_, keptLease) = try await claimOne(now: start, lease: .seconds(30), by: alive)
        let (_, orphanLease) = try await claimOne(now: start, lease: .seconds(30), by: dead)
        #expect(keptLease.jobID == kept.id && orphanLease.jobID == orphan.id)
        let running = try await store.runningAttempts().sorted { $0.lease.workerID < $1.lease.workerID }
        #expect(running == [
            RunningAttempt(lease: keptLease, leaseExpiresAt: start.addingTimeInterval(30)),
            RunningAttempt(lease: orphanLease, leaseExpiresAt: start.addingTimeInterval(30)),
        ])

        // Before either lease runs out, the dead worker's job goes back to the queue.
        let moved = try await store.requeueExpiredLeases(now: start.addingTimeInterval(1), heldBy: ["dead", "gone"])
        #expect(moved == [orphan.id])
        let requeued = try #require(try await store.job(id: orphan.id, owner: nil))
        #expect(requeued.status == .pending && requeued.attempts.first?.outcome == .leaseExpired)
        #expect(try await store.runningAttempts().map(\.lease) == [keptLease])
    }

    /// Finishes a claimed job as completed at `time`.
    func complete(_ lease: AttemptLease, at time: Date) async throws {
        let ending = AttemptEnding(verdict: .completed(result: nil), outcome: .completed, exitCode: 0)
        #expect(try await store.finish(lease, ending, now: time) != .fenced)
    }

    func deleteOnlyFinishedJobs() async throws {
        let done = try await accept(submission(at: start))
        let waiting = try await accept(submission(at: start.addingTimeInterval(1)))
        let (_, lease) = try await claimOne(now: start.addingTimeInterval(2))
        try await complete(lease, at: start.addingTimeInterval(3))

        #expect(try await store.delete(id: done.id, owner: "bob") == .notFound, "another owner's job is not found")
        guard case .notFinished(let pending) = try await store.delete(id: waiting.id, owner: "alice") else {
            Issue.record("a pending job cannot be deleted")
            return
        }
        #expect(pending.id == waiting.id)
        guard case .deleted(let deleted) = try await store.delete(id: done.id, owner: "alice") else {
            Issue.record("a completed job can be deleted")
            return
        }
        #expect(deleted.id == done.id && deleted.status == .completed)
        #expect(try await store.job(id: done.id, owner: nil) == nil)
        #expect(try await store.delete(id: done.id, owner: nil) == .notFound)
        let counts = try await store.queueCounts(now: start.addingTimeInterval(4))
        #expect(counts[.completed] == 0 && counts[.pending] == 1)
    }

    func retentionPrunes() async throws {
        // Completed at 10 s and 100 s, one cancelled at 10 s, one still pending.
        var finished: [Job] = []
        for offset in [10.0, 100.0] {
            let job = try await accept(submission(at: start))
            let (_, lease) = try await claimOne(now: start)
            try await complete(lease, at: start.addingTimeInterval(offset))
            finished.append(job)
        }
        let cancelled = try await accept(submission(at: start))
        _ = try await store.cancel(id: cancelled.id, owner: nil, now: start.addingTimeInterval(10))
        let pending = try await accept(submission(at: start))

        // Completed jobs are kept 50 s, cancelled ones 1000 s: only the first completed goes.
        let cutoffs: [JobStatus: Date] = [
            .completed: start.addingTimeInterval(50), .cancelled: start.addingTimeInterval(-990),
            .pending: start.addingTimeInterval(1000),
        ]
        #expect(try await store.finishedJobs(endedBefore: cutoffs, limit: 100) == [finished[0].id])
        #expect(try await store.job(id: finished[0].id, owner: nil) != nil, "listing deletes nothing")
        #expect(try await store.pruneFinished(endedBefore: cutoffs, limit: 100) == [finished[0].id])
        #expect(try await store.job(id: finished[0].id, owner: nil) == nil)
        for kept in [finished[1], cancelled, pending] { #expect(try await store.job(id: kept.id, owner: nil) != nil) }
        // At most `limit` a call.
        let later: [JobStatus: Date] = [.completed: start.addingTimeInterval(1000), .cancelled: start.addingTimeInterval(1000)]
        #expect(try await store.pruneFinished(endedBefore: later, limit: 1).count == 1)
        #expect(try await store.pruneFinished(endedBefore: later, limit: 10).count == 1)
        #expect(try await store.job(id: pending.id, owner: nil) != nil, "a pending job is never pruned")
    }

    func cancelRequestReachesWorker() async throws {
        let first = try await accept(submission(at: start))
        _ = try await accept(submission(at: start))
        let (_, firstLease) = try await claimOne(now: start)
        let (_, secondLease) = try await claimOne(now: start)
        #expect(try await store.cancelRequests(among: [firstLease, secondLease]).isEmpty)
        _ = try await store.cancel(id: first.id, owner: "alice", now: start)
        #expect(try await store.cancelRequests(among: [firstLease, secondLease]) == [firstLease])
        #expect(try await store.cancelRequests(among: []).isEmpty)
        // The attempt failed before the worker saw the request: the cancel wins, no retry.
        let failed = AttemptEnding(verdict: .retry(.exitCode, message: "exited with status 1"), outcome: .exitCode, exitCode: 1)
        guard case .recorded(let job) = try await store.finish(firstLease, failed, now: start) else {
            Issue.record("not recorded")
            return
        }
        #expect(job.status == .cancelled)
        #expect(job.attempts.first?.outcome == .exitCode)
    }

    func nextRunAtWakes() async throws {
        #expect(try await store.nextRunAt(after: start) == nil)
        _ = try await accept(submission(at: start))
        #expect(try await store.nextRunAt(after: start) == nil, "a due job is not a wake-up")
        let soon = start.addingTimeInterval(30)
        _ = try await accept(submission(priority: .normal, runAt: start.addingTimeInterval(90), at: start))
        _ = try await accept(submission(priority: .high, runAt: soon, at: start))
        #expect(try await store.nextRunAt(after: start) == soon)
        #expect(try await store.nextRunAt(after: soon) == start.addingTimeInterval(90))
    }

    func startWithinExpires() async throws {
        var late = submission(at: start)
        late.startBy = start.addingTimeInterval(10)
        var inTime = submission(at: start)
        inTime.startBy = start.addingTimeInterval(60)
        let lateJob = try await accept(late)
        let inTimeJob = try await accept(inTime)
        #expect(lateJob.startBy == start.addingTimeInterval(10))
        // At 30 s the first is past its start_by: it is never claimed, it fails as expired.
        let claimed = try await store.claim(limit: 5, worker: worker, leaseDuration: .seconds(30), now: start.addingTimeInterval(30))
        #expect(claimed.map(\.id) == [inTimeJob.id])
        let expired = try #require(try await store.job(id: lateJob.id, owner: nil))
        #expect(expired.status == .failed)
        #expect(expired.error?.errorClass == .expired)
        #expect(expired.attempt == 0)
        #expect(expired.finishedAt == start.addingTimeInterval(30))
    }

    func secretsErased() async throws {
        var secret = submission(at: start)
        secret.secrets = ["apiKey": "s3cr3t"]
        var cancelledSecret = submission(at: start)
        cancelledSecret.secrets = ["apiKey": "other"]
        _ = try await accept(secret)
        let pending = try await accept(cancelledSecret)
        let (running, lease) = try await claimOne(now: start)
        #expect(running.secrets == ["apiKey": "s3cr3t"], "the runner reads them at claim")
        let done = AttemptEnding(verdict: .completed(result: nil), outcome: .completed, exitCode: 0)
        guard case .recorded(let finished) = try await store.finish(lease, done, now: start) else {
            Issue.record("not recorded")
            return
        }
        #expect(finished.secrets == nil, "erased when the job ends")
        _ = try await store.cancel(id: pending.id, owner: nil, now: start)
        #expect(try await store.job(id: pending.id, owner: nil)?.secrets == nil)
    }
}

struct ScenarioFailure: Error {}
