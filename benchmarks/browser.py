"""Browser benchmarks, each beside its baseline in the same run (scripts/bench browser).

  startup     attempt start -> SUPERVISOR_CDP_URL ready (the attempt's browserStartupMs),
              interleaved with a bare `chromium --headless=new` start to "DevTools listening"
              with the same flags, fresh user-data dir each time; as root, also a bare start
              without capabilities (what the launcher leaves an attempt, SPEC section 7)
  screenshot  the screenshot example against a local page at concurrency 2 and 4: jobs per
              minute, and each attempt's peak memory (its cgroup's high-water mark)

Usage: browser.py BINARY WORKDIR CHROMIUM PYTHON [startup|screenshot|all]
"""

import functools
import http.server
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import daemon
from daemon import quantile

BINARY, WORK, CHROMIUM, PYTHON = (os.path.abspath(argument) for argument in sys.argv[1:5])
WHICH = sys.argv[5] if len(sys.argv) > 5 else "all"
JOBS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "jobs")
# What AttemptBrowser.command gives Chromium, but the user-data dir and the port.
FLAGS = [
    "--headless=new", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
    "--disable-component-update", "--disable-breakpad", "--disable-crash-reporter", "--disable-background-networking",
    "--disable-sync", "--disable-default-apps", "--metrics-recording-only", "--password-store=basic",
    "--use-mock-keychain",
] + (["--no-sandbox"] if os.geteuid() == 0 else [])


def job_types(concurrency):
    return f"""
[job_types.ready]
command = ["/bin/true"]
browser = "chromium"
profile = "chromium"
[job_types.screenshot]
command = ["{PYTHON}", "{os.path.join(JOBS, 'screenshot.py')}"]
browser = "chromium"
profile = "chromium"
timeout = "2m"
memory_max = "2G"
pids_max = 1024
concurrency = {concurrency}
"""


# Root keeps every capability across exec; an empty bounding set leaves it none, as the
# launcher does. Chromium raises its threads' priority (setpriority -8), which only
# CAP_SYS_NICE allows: this baseline tells that cost from the supervisor's own. setpriv's
# own exec (about a millisecond) is counted in it.
SETPRIV = shutil.which("setpriv")
WITHOUT_CAPABILITIES = [SETPRIV, "--bounding-set=-all", "--inh-caps=-all", "--"] if os.geteuid() == 0 and SETPRIV else None


def bare_start(prefix=()):
    """Seconds from spawning Chromium (under `prefix`) to its "DevTools listening" line."""
    user_data = tempfile.mkdtemp(dir=WORK)
    port = daemon.free_port()
    begin = time.perf_counter()
    browser = subprocess.Popen(
        [*prefix, CHROMIUM, *FLAGS, f"--user-data-dir={user_data}", f"--remote-debugging-port={port}", "about:blank"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True)
    elapsed = None
    for line in browser.stderr:
        if line.startswith(b"DevTools listening on ws://"):
            elapsed = time.perf_counter() - begin
            break
    os.killpg(browser.pid, 9)
    browser.wait()
    shutil.rmtree(user_data, ignore_errors=True)
    if elapsed is None:
        raise SystemExit("chromium ended without listening")
    return elapsed


def startup(samples=30):
    supervisor = daemon.Daemon(BINARY, WORK, 1, job_types(1))
    try:
        bare_start()  # a first start fills the page cache for both
        supervisor.wait_finished(supervisor.submit("ready"))
        bare, capless, supervised = [], [], []
        for _ in range(samples):
            bare.append(bare_start() * 1000)
            if WITHOUT_CAPABILITIES:
                capless.append(bare_start(WITHOUT_CAPABILITIES) * 1000)
            job = supervisor.wait_finished(supervisor.submit("ready"))
            if job["status"] != "completed":
                raise SystemExit(f"a browser attempt failed: {job}")
            supervised.append(job["attempts"][-1]["browserStartupMs"])
    finally:
        supervisor.stop()
    p50, p50_bare = statistics.median(supervised), statistics.median(bare)
    p95, p95_bare = quantile(supervised, 0.95), quantile(bare, 0.95)
    print(f"browser start-up over {samples} attempts, interleaved: attempt start -> SUPERVISOR_CDP_URL "
          f"p50 {p50:.0f} ms, p95 {p95:.0f} ms; bare chromium -> DevTools listening p50 {p50_bare:.0f} ms, "
          f"p95 {p95_bare:.0f} ms; ratio p50 {p50 / p50_bare:.2f}x, p95 {p95 / p95_bare:.2f}x")
    if os.geteuid() == 0 and not SETPRIV:
        print("  bare chromium without capabilities: skipped, no setpriv (util-linux)")
    if capless:
        p50_capless, p95_capless = statistics.median(capless), quantile(capless, 0.95)
        print(f"  bare chromium without capabilities -> DevTools listening p50 {p50_capless:.0f} ms, "
              f"p95 {p95_capless:.0f} ms; attempt against it: ratio p50 {p50 / p50_capless:.2f}x, "
              f"p95 {p95 / p95_capless:.2f}x")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def screenshot(jobs=24):
    site = tempfile.mkdtemp(dir=WORK)
    with open(os.path.join(site, "index.html"), "w") as page:
        items = "".join(f"<li>Item {i}</li>" for i in range(200))
        page.write(f"<!doctype html><title>Benchmark page</title><h1>Benchmark</h1><ul>{items}</ul>")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=site))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
    try:
        for concurrency in (2, 4):
            supervisor = daemon.Daemon(BINARY, WORK, concurrency, job_types(concurrency))
            try:
                supervisor.wait_finished(supervisor.submit("screenshot", {"url": url}))  # warm-up
                begin = time.perf_counter()
                ids = [supervisor.submit("screenshot", {"url": url}) for _ in range(jobs)]
                finished = [supervisor.wait_finished(job_id) for job_id in ids]
                elapsed = time.perf_counter() - begin
            finally:
                supervisor.stop()
            failed = [job for job in finished if job["status"] != "completed"]
            peaks = [job["attempts"][-1].get("peakMemoryBytes", 0) / 2**20 for job in finished]
            startups = [job["attempts"][-1]["browserStartupMs"] for job in finished]
            print(f"screenshot example, concurrency {concurrency}: {jobs} jobs in {elapsed:.1f} s = "
                  f"{jobs * 60 / elapsed:.0f} jobs/min ({len(failed)} failed); peak memory per attempt "
                  f"p50 {statistics.median(peaks):.0f} MiB, max {max(peaks):.0f} MiB; browser start-up "
                  f"p50 {statistics.median(startups):.0f} ms")
    finally:
        server.shutdown()


if WHICH in ("startup", "all"):
    startup()
if WHICH in ("screenshot", "all"):
    screenshot()
