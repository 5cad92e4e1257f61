"""A run_as job beside its supervisor-started Chromium: what the browser runs as, and
whether Chromium's own sandbox holds (no --no-sandbox; renderers in a pid namespace of
their own), and that the job itself still cannot write below /proc. Standard library
only: the run_as user cannot reach the test's virtualenv."""
import json
import os
import time
import urllib.request

port = os.environ["SUPERVISOR_DEBUG_PORT"]
base = f"http://127.0.0.1:{port}"
version = json.load(urllib.request.urlopen(base + "/json/version"))
# A new tab starts a renderer, the process Chromium's sandbox confines.
urllib.request.urlopen(urllib.request.Request(base + "/json/new?about:blank", method="PUT")).read()


def processes():
    """pid -> (arguments, status) of every process this job can see."""
    seen = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            # Chromium rewrites its helpers' command lines as one string: split on both.
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                arguments = f.read().replace(b"\0", b" ").split()
            with open(f"/proc/{entry}/status") as f:
                status = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
        except OSError:
            continue
        seen[int(entry)] = (arguments, status)
    return seen


def this_browser(seen):
    """The browser listening on this attempt's port, and every process below it."""
    flag = f"--remote-debugging-port={port}".encode()
    tree = {pid for pid, (arguments, _) in seen.items() if flag in arguments and arguments[0].endswith(b"/chromium")}
    grew = True
    while grew:
        below = {pid for pid, (_, status) in seen.items() if int(status.get("PPid", "0")) in tree}
        grew = not below <= tree
        tree |= below
    return [seen[pid] for pid in tree]


# The renderer is forked by the zygote after the tab exists; its appearance is not
# announced anywhere this job can wait on.
deadline = time.monotonic() + 20
while True:
    browser = this_browser(processes())
    renderers = [status for arguments, status in browser if b"--type=renderer" in arguments]
    if renderers or time.monotonic() > deadline:
        break
    time.sleep(0.05)

try:
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write("1000")
    job_writes_proc = True
except PermissionError:
    job_writes_proc = False

print("::result " + json.dumps({
    "uid": os.getuid(),
    "answered": "Chrome" in version.get("Browser", ""),
    "browserProcesses": len(browser),
    "browserUids": sorted({int(status["Uid"].split()[0]) for _, status in browser}),
    "noSandbox": any(b"--no-sandbox" in arguments for arguments, _ in browser),
    "renderers": len(renderers),
    "renderersInOwnPidNamespace": sum(len(status.get("NSpid", "").split()) > 1 for status in renderers),
    "jobWritesProc": job_writes_proc,
}))
