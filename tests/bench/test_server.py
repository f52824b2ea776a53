"""The benchmark's gunicorn spreads connections over every worker.

wrk opens all its connections at once and keeps them for the whole run. On
one shared listening socket, the worker that woke first could take every one
of them while the other idled, and that run measured half the service.
"""

from __future__ import annotations

import http.client
import os
from collections import Counter
from pathlib import Path

import pytest

from bench import server
from bench.database import Target
from bench.run import bench_env

CONNECTIONS = 24


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


@pytest.fixture
def gunicorn(database_url, instance_dir, tmp_path):
    port = server.free_port()
    target = Target(url=database_url, kind="test", redis_url=None, name="test")
    env = dict(bench_env(target, port), IDP_INSTANCE_PATH=str(instance_dir))
    running = server.Server(env, port, tmp_path / "gunicorn.log").start()
    yield running
    running.stop()


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
def test_every_worker_listens_and_kept_alive_connections_spread_over_them(gunicorn):
    assert gunicorn.listeners() == server.WORKERS  # one socket each
    clients = [http.client.HTTPConnection("127.0.0.1", gunicorn.port) for _ in range(CONNECTIONS)]
    try:
        for client in clients:  # all opened at once, as wrk does, and kept alive
            client.connect()
        for client in clients:
            client.request("GET", "/healthz")
            assert client.getresponse().read() == b'{"status":"ok"}\n'
        served = server.sockets_on(gunicorn.port, server.ESTABLISHED)
        per_worker = Counter(
            {pid: len(_socket_inodes(pid) & served) for pid in gunicorn.worker_pids()}
        )
    finally:
        for client in clients:
            client.close()
    assert sum(per_worker.values()) == CONNECTIONS
    # The kernel hashes each connection to a worker: all 24 on one has odds of 2 in 2**24.
    assert len(per_worker) == server.WORKERS
    assert all(count > 0 for count in per_worker.values()), per_worker
