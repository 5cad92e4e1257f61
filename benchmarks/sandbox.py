"""Launch overhead of supervisor-launch with the default seccomp filter (scripts/bench sandbox).

Interleaved in one run, each started with posix_spawn and waited for:
  raw        /bin/true
  launcher   supervisor-launch -- /bin/true   (session, PDEATHSIG, closed fds, rlimits, no capabilities, no_new_privs)
  filtered   supervisor-launch --seccomp-fd 4 -- /bin/true, with profiles/default.json compiled
  confined   the same, and Landlock with the rules an attempt gets (system directories, its own)

Usage: sandbox.py SUPERVISOR_BINARY LAUNCHER_BINARY WORKDIR [SAMPLES]
"""

import os
import statistics
import subprocess
import sys
import time

SUPERVISOR, LAUNCHER, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
SAMPLES = int(sys.argv[4]) if len(sys.argv) > 4 else 2000

program = os.path.join(WORK, "default.bpf")
subprocess.run([SUPERVISOR, "profile", "check", "default", "--bpf-output", program], check=True, stdout=subprocess.DEVNULL)
filter_fd = os.open(program, os.O_RDONLY)

variants = {
    "raw": (["/bin/true"], []),
    "launcher": ([LAUNCHER, "--", "/bin/true"], []),
    "filtered": ([LAUNCHER, "--seccomp-fd", "4", "--", "/bin/true"], [(os.POSIX_SPAWN_DUP2, filter_fd, 4)]),
}
abi = int(subprocess.run(["python3", "-c", "import ctypes; print(ctypes.CDLL(None).syscall(444, None, 0, 1))"],
                         capture_output=True, text=True).stdout)
if abi > 0:
    reads = ["/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc", "/opt", "/var/cache", "/proc",
             "/sys", "/dev"]
    writes = [WORK, "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/ptmx",
              "/dev/pts", "/dev/shm"]
    rules = ["--landlock", str(abi)] + [a for p in reads for a in ("--read", p)] + [a for p in writes for a in ("--write", p)]
    variants["confined"] = ([LAUNCHER, "--seccomp-fd", "4"] + rules + ["--", "/bin/true"], [(os.POSIX_SPAWN_DUP2, filter_fd, 4)])
times = {name: [] for name in variants}
environment = {"PATH": "/usr/bin:/bin"}
for index in range(SAMPLES + 50):
    for name, (argv, actions) in variants.items():
        begin = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, environment, file_actions=actions)
        _, status = os.waitpid(pid, 0)
        elapsed = time.perf_counter() - begin
        if status != 0:
            raise SystemExit(f"{name} exited with status {status}")
        if index >= 50:
            times[name].append(elapsed * 1000)

medians = {name: statistics.median(values) for name, values in times.items()}
for name, values in times.items():
    ordered = sorted(values)
    print(f"{name:9s} p50 {medians[name]:.3f} ms  p90 {ordered[int(0.9 * len(ordered))]:.3f} ms")
print(f"launcher with the default filter: {medians['filtered'] - medians['raw']:.3f} ms more than fork+exec of /bin/true "
      f"(the filter itself {medians['filtered'] - medians['launcher']:.3f} ms), {SAMPLES} samples each")
if "confined" in medians:
    print(f"with Landlock too: {medians['confined'] - medians['raw']:.3f} ms more "
          f"(Landlock itself {medians['confined'] - medians['filtered']:.3f} ms)")
