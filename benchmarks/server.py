"""A throwaway ``redis-server`` for the benchmarks, so that ``INFO memory`` sees only our data.

The server listens on 127.0.0.1 only, keeps nothing on disk (``--save ""``,
``--appendonly no``, a temporary ``--dir``) and is stopped when the benchmark ends, also
on an error or Ctrl-C. On Linux it is also asked to exit if the benchmark process dies
without cleaning up (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

DEFAULT_PORT = 6399


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(preferred: int = DEFAULT_PORT) -> int:
    """``preferred`` if nothing listens there, else a port the kernel picks."""
    if _port_is_free(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    # Linux only: deliver SIGTERM to redis-server when the benchmark process dies.
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


@contextlib.contextmanager
def throwaway_redis(binary: str = "redis-server", port: int = DEFAULT_PORT) -> Iterator[redis.Redis]:
    """Start a private redis-server, yield a (bytes) client to it, stop it afterwards."""
    exe = shutil.which(binary)
    if exe is None:
        msg = f"{binary} is not on PATH; install Redis or pass --url redis://host:port/db."
        raise RuntimeError(msg)
    workdir = Path(tempfile.mkdtemp(prefix="rs-bench-"))
    port = free_port(port)
    log = workdir / "redis.log"
    args = [
        exe,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        "--logfile",
        str(log),
        "--daemonize",
        "no",
    ]
    # A session of its own: Ctrl-C reaches the benchmark, which then stops the server
    # in order (rather than both racing on SIGINT).
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_die_with_parent,  # safe: the benchmark starts no threads
    )
    client: Any = None
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                msg = f"redis-server exited with code {proc.returncode} on port {port}:\n{detail}"
                raise RuntimeError(msg)
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield client
    finally:
        if client is not None:
            client.close()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def existing_redis(url: str) -> Iterator[redis.Redis]:
    """A (bytes) client for ``--url``; its database gets flushed by the benchmark."""
    client = redis.Redis.from_url(url)
    try:
        client.ping()
        yield client
    finally:
        client.close()
