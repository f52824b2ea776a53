"""The service under gunicorn with fixed settings, and its workers' memory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")

# Fixed so that every figure of a run, ceilings included, meets the same server.
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
WORKER_CLASS = os.environ.get("BENCH_WORKER_CLASS", "gthread")
# A variant of the application (``module:callable``) to try a change before making it.
WSGI_APP = os.environ.get("BENCH_APP", "wsgi:app")


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# TCP states as Linux's ``/proc/net/tcp`` spells them.
ESTABLISHED, LISTENING = "01", "0A"


def sockets_on(port: int, state: str) -> set[str]:
    """The inodes of the IPv4 sockets whose local port is ``port``, in ``state``."""
    local = f":{port:04X}"
    with open("/proc/net/tcp") as table:
        rows = [row.split() for row in list(table)[1:]]  # after the header
    return {f[9] for f in rows if f[1].endswith(local) and f[3] == state}


def settle(url: str, *, prompt: float = 0.025, in_a_row: int = 6, limit: float = 10.0) -> float:
    """Wait until the workers have served what the last run left queued; return the seconds.

    wrk stops at its deadline, but requests it had already sent still wait in the
    workers' queues (argon2id at 32 connections leaves close to a second of them),
    and the next run would meet that backlog. A probe of ``/healthz`` on a new
    connection waits behind whatever its worker still holds; each connection goes
    to either worker at random, so ``in_a_row`` prompt answers mean both are idle.
    After ``limit`` seconds it gives up and the next run starts anyway.
    """
    started = time.monotonic()
    prompt_answers = 0
    while prompt_answers < in_a_row and (left := limit - (time.monotonic() - started)) > 0:
        sent = time.monotonic()
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=left) as resp:  # noqa: S310
                resp.read()
        except OSError:
            prompt_answers = 0
            time.sleep(0.05)
            continue
        prompt_answers = prompt_answers + 1 if time.monotonic() - sent <= prompt else 0
    return time.monotonic() - started


def settings() -> dict:
    """The gunicorn settings, as recorded in the results."""
    return {
        "workers": WORKERS,
        "threads": THREADS,
        "worker_class": WORKER_CLASS,
        "reuse_port": True,
        "app": WSGI_APP,
    }


class Server:
    """gunicorn serving ``wsgi:app`` on a loopback port until ``stop``."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path):
        self.env, self.port, self.log_path = env, port, log_path
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self, wait: float = 60) -> Server:
        """Start gunicorn and return once ``/healthz`` answers and every worker listens.

        Each worker listens on a socket of its own (``--reuse-port``), among which
        the kernel spreads new connections. On one shared socket, whichever worker
        woke first took the connections wrk opened at once, often every one of
        them, and the other worker idled through the run: the same code measured
        about half as fast in such a run, ceilings included.
        """
        command = [
            str(GUNICORN), "--workers", str(WORKERS), "--worker-class", WORKER_CLASS,
            "--threads", str(THREADS), "--bind", f"127.0.0.1:{self.port}",
            "--backlog", "2048", "--keep-alive", "5", "--graceful-timeout", "5", "--reuse-port",
            "--log-level", "warning", WSGI_APP,
        ]  # fmt: skip
        with self.log_path.open("wb") as log:  # gunicorn writes to its own copy
            self.process = subprocess.Popen(  # noqa: S603 (our own gunicorn, fixed arguments)
                command, cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as resp:  # noqa: S310
                    if resp.status == 200 and self.listeners() == WORKERS:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer within {wait}s; see {self.log_path}")

    def settle(self) -> float:
        """``settle`` on this server: wait until its workers are idle."""
        return settle(self.url)

    def listeners(self) -> int:
        """How many sockets listen on the server's port."""
        return len(sockets_on(self.port, LISTENING))

    def worker_pids(self) -> list[int]:
        """Process ids of the gunicorn workers (children of the master)."""
        if self.process is None:
            return []
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The ppid is the 2nd field after the parenthesised command name.
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.process.pid:
                pids.append(int(entry.name))
        return sorted(pids)

    def peak_rss_mb(self) -> dict[int, float]:
        """Peak resident memory (VmHWM) of each worker so far, in MiB."""
        peaks = {}
        for pid in self.worker_pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peaks[pid] = int(line.split()[1]) / 1024
        return peaks

    def stop(self) -> None:
        """Stop gunicorn and its workers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
