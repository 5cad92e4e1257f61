"""The daemon the benchmarks run: a release `supervisor serve` on a config of their own."""

import http.client
import json
import os
import subprocess
import tempfile
import threading
import time


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """`job_types` is TOML: the [job_types.*] tables of the config."""

    def __init__(self, binary, work, concurrency, job_types, work_root="./supervisor-data/work"):
        self.dir = tempfile.mkdtemp(dir=work)
        self.connections = threading.local()
        self.port = free_port()
        with open(os.path.join(self.dir, "supervisor.toml"), "w") as f:
            f.write(f"""
[server]
listen = "127.0.0.1:{self.port}"
[store]
url = "sqlite://./jobs.sqlite"
[runner]
concurrency = {concurrency}
work_root = "{work_root}"
[limits]
max_pending = 100000000
max_pending_per_owner = 100000000
[log]
level = "warning"
{job_types}
""")
        self.log = open(os.path.join(self.dir, "daemon.log"), "w")
        self.process = subprocess.Popen([binary, "serve", "--config", "supervisor.toml"], cwd=self.dir,
                                        stderr=self.log, stdout=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                self.get("/healthz")
                return
            except (OSError, http.client.HTTPException):
                time.sleep(0.05)
        raise SystemExit("the daemon did not start; see " + self.log.name)

    def request(self, method, path, body=None):
        # One kept-alive connection per client thread, as a web app's HTTP pool has: a new
        # TCP connection per request would measure the client's connects, not the daemon.
        connection = getattr(self.connections, "connection", None)
        if connection is None:
            connection = self.connections.connection = http.client.HTTPConnection("127.0.0.1", self.port)
        data = json.dumps(body).encode() if body is not None else None
        try:
            connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            connection.close()
            self.connections.connection = None
            raise
        if response.status >= 300:
            raise SystemExit(f"{method} {path}: {response.status} {payload[:200]!r}")
        return json.loads(payload)

    def get(self, path):
        return self.request("GET", path)

    def submit(self, job_type, payload=None):
        return self.request("POST", "/api/jobs", {"type": job_type, "payload": payload})["jobId"]

    def wait_finished(self, job_id):
        while True:
            job = self.get(f"/api/jobs/{job_id}")
            if job["status"] in ("completed", "failed", "cancelled"):
                return job
            time.sleep(0.01)

    def stop(self):
        self.process.terminate()
        self.process.wait()


def quantile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
