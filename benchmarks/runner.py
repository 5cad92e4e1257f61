"""Runner benchmarks, each beside its baseline in the same run (scripts/bench runner).

  launch      enqueue -> the job's first instruction, against a raw spawn of the same script
  throughput  /bin/true jobs end to end at concurrency 4, against `xargs -P4` fork+exec
  flood       a job printing 1M progress markers, against the same command piped into cat

Usage: runner.py BINARY WORKDIR [launch|throughput|flood|all]
"""

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import daemon
from daemon import quantile

BINARY, WORK = os.path.abspath(sys.argv[1]), sys.argv[2]
WHICH = sys.argv[3] if len(sys.argv) > 3 else "all"
HERE = os.path.dirname(os.path.abspath(__file__))
TOUCH = os.path.join(HERE, "jobs", "touch-fifo.sh")
FLOOD = os.path.join(HERE, "..", "Tests", "SupervisorCLITests", "Jobs", "flood.sh")
JOB_TYPES = f"""
[job_types.touch]
command = ["/bin/sh", "{TOUCH}"]
write_paths = ["{os.path.abspath(WORK)}"]   # the FIFOs, where Landlock confines jobs
[job_types.true]
command = ["/bin/true"]
[job_types.flood]
command = ["/bin/sh", "{FLOOD}"]
timeout = "10m"
"""


def start_daemon(concurrency, work_root="./supervisor-data/work"):
    return daemon.Daemon(BINARY, WORK, concurrency, JOB_TYPES, work_root)


def time_fifo(start_job):
    """Seconds from start_job() being called to the job opening a fresh FIFO for writing."""
    fifo = os.path.join(WORK, f"fifo-{time.monotonic_ns()}")
    os.mkfifo(fifo)
    begin = time.perf_counter()
    start_job(fifo)

    def never_opened(signum, frame):
        raise SystemExit(f"no job opened {fifo} within 30 s: it failed to start (see the daemon's log in {WORK})")

    # A job that fails never opens the FIFO, and the open below would wait for ever.
    signal.signal(signal.SIGALRM, never_opened)
    signal.alarm(30)
    with open(fifo) as f:  # returns when the job opened it for writing: its first step
        elapsed = time.perf_counter() - begin
        signal.alarm(0)
        f.read()
    os.unlink(fifo)
    return elapsed


def launch(work_root, samples=200):
    supervisor = start_daemon(concurrency=1, work_root=work_root)
    try:
        payload_file = os.path.join(WORK, "payload.json")

        def raw(fifo):
            with open(payload_file, "w") as f:
                json.dump(fifo, f)
            env = {"PATH": os.environ["PATH"], "SUPERVISOR_PAYLOAD_FILE": payload_file}
            process = subprocess.Popen(["/bin/sh", TOUCH], env=env, stdin=subprocess.DEVNULL)
            raw.processes.append(process)
        raw.processes = []

        supervised, spawned = [], []
        for index in range(samples + 10):
            # Interleaved, so both see the same machine.
            s = time_fifo(lambda fifo: supervisor.submit("touch", fifo))
            r = time_fifo(raw)
            if index >= 10:
                supervised.append(s * 1000)
                spawned.append(r * 1000)
        for process in raw.processes:
            process.wait()
        return supervised, spawned
    finally:
        supervisor.stop()


@contextlib.contextmanager
def places(benchmark):
    """Where the launch and throughput benchmarks put attempt directories: the data disk
    (the default `work_root`), then tmpfs. Each attempt makes and removes four directories
    and a payload file there (its log, artifacts and TMPDIR link stay on the disk). On an
    ext4 without a journal (these VMs) every new inode is found by scanning past those
    deleted in the last minute (six while the inode table is dirty): a cost that grows
    with the rate of attempts, lingers minutes after them, and that tmpfs does not have."""
    shm = tempfile.mkdtemp(dir="/dev/shm") if os.path.isdir("/dev/shm") else None
    if shm is None:
        print(f"{benchmark} (work_root on tmpfs): skipped, no /dev/shm")
    try:
        yield [("work_root on the data disk", "./supervisor-data/work")] + ([("work_root on tmpfs", shm)] if shm else [])
    finally:
        if shm:
            subprocess.run(["rm", "-rf", shm])


def report_launch():
    with places("launch") as where:
        for place, work_root in where:
            supervised, spawned = launch(work_root)
            p50s, p50r = statistics.median(supervised), statistics.median(spawned)
            print(f"launch ({place}): enqueue -> first instruction p50 {p50s:.2f} ms (p90 "
                  f"{quantile(supervised, 0.9):.2f}), raw spawn p50 {p50r:.2f} ms (p90 "
                  f"{quantile(spawned, 0.9):.2f}); overhead {p50s - p50r:.2f} ms over raw, {len(supervised)} samples each")


def throughput(jobs=2000, clients=8):
    from concurrent.futures import ThreadPoolExecutor

    def raw():
        begin = time.perf_counter()
        subprocess.run(f"seq {jobs} | xargs -P4 -n1 /bin/true", shell=True, check=True)
        return jobs / (time.perf_counter() - begin)

    def supervised(work_root):
        supervisor = start_daemon(concurrency=4, work_root=work_root)
        try:
            # Submitted by several clients at once, as web apps do: one client waiting for
            # each durable 202 in turn would measure its own round trips, not the runner.
            begin = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(lambda _: supervisor.submit("true"), range(jobs)))
            submitted = time.perf_counter() - begin
            done_by_then = supervisor.get("/api/queue")["completed"]
            while supervisor.get("/api/queue")["completed"] < jobs:
                time.sleep(0.02)
            total = time.perf_counter() - begin
            failed = supervisor.get("/api/queue")["failed"]
        finally:
            supervisor.stop()
        return jobs / total, (jobs - done_by_then) / max(total - submitted, 1e-9), failed

    with places("throughput") as where:
        for place, work_root in where:
            raw_rate = raw()
            rate, drain, failed = supervised(work_root)
            print(f"throughput ({place}): {rate:.0f} /bin/true jobs/s end to end at concurrency 4 ({jobs} jobs "
                  f"from {clients} clients, {failed} failed; {drain:.0f}/s once all were queued), raw xargs -P4 "
                  f"fork+exec {raw_rate:.0f}/s just before; ratio {rate / raw_rate:.2f}x")


def flood():
    begin = time.perf_counter()
    subprocess.run(f"/bin/sh {FLOOD} | cat > /dev/null", shell=True, check=True)
    raw = time.perf_counter() - begin

    supervisor = start_daemon(concurrency=1)
    try:
        job = supervisor.wait_finished(supervisor.submit("flood"))
    finally:
        supervisor.stop()
    attempt = job["attempts"][-1]
    from datetime import datetime
    started = datetime.fromisoformat(attempt["startedAt"].replace("Z", "+00:00"))
    finished = datetime.fromisoformat(attempt["finishedAt"].replace("Z", "+00:00"))
    supervised = (finished - started).total_seconds()
    print(f"flood: 1M markers under the runner {supervised:.2f} s (status {job['status']}, last progress "
          f"{job['progress']}), piped into cat {raw:.2f} s; ratio {supervised / raw:.2f}x")


if WHICH in ("launch", "all"):
    report_launch()
if WHICH in ("throughput", "all"):
    throughput()
if WHICH in ("flood", "all"):
    flood()
