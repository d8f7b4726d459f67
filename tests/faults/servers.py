"""Throwaway redis-server processes for the fault tests (127.0.0.1, ports 7100-7199).

A :class:`ThrowawayRedis` runs ``redis-server`` in a temporary directory, and can be
killed with SIGKILL, frozen with SIGSTOP / thawed with SIGCONT, and started again on the
same port and directory (with ``appendonly=True`` the data comes back from the AOF).
``stop()`` always kills whatever is left; use it as a context manager or in a
``finally`` so a failing test never leaves a server behind.
"""

from __future__ import annotations

import contextlib
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

from tests.faults.proxy import PORTS, bind_free_port


class ThrowawayRedis:
    """One redis-server on 127.0.0.1 with its own directory."""

    def __init__(
        self,
        binary: str,
        directory: Path,
        appendonly: bool = False,
        tls: bool = False,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.binary = binary
        self.directory = directory
        self.appendonly = appendonly
        #: TLS only (``--port 0 --tls-port``), with a self-signed certificate made here
        self.tls = tls
        self.extra = extra
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        #: what a client needs besides host and port (the CA file when TLS is on)
        self.client_kwargs: dict[str, object] = {}
        if tls:
            self._make_certificate()

    def _make_certificate(self) -> None:
        self.cert = self.directory / "cert.pem"
        self.key = self.directory / "key.pem"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-keyout",
                str(self.key),
                "-out",
                str(self.cert),
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )
        self.client_kwargs = {"ssl": True, "ssl_ca_certs": str(self.cert)}

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> ThrowawayRedis:
        """Start on a free port of 7100-7199 (the same port again after a kill)."""
        for _ in range(10):
            if not self.port:
                probe = socket.socket()
                try:
                    self.port = bind_free_port(probe, PORTS, random.Random())
                finally:
                    probe.close()
            self.process = subprocess.Popen(
                self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            if self._wait_ready():
                return self
            self._reap()
            if self.process is None:  # it exited: port taken meanwhile? try another one
                self.port = 0
        msg = f"could not start {self.binary}; see {self.directory / 'redis.log'}"
        raise RuntimeError(msg)

    def _command(self) -> list[str]:
        ports = ["--port", "0", "--tls-port", str(self.port)] if self.tls else ["--port", str(self.port)]
        cmd = [
            self.binary,
            "--bind", "127.0.0.1",
            *ports,
            "--dir", str(self.directory),
            "--logfile", "redis.log",
            "--save", "",
            "--daemonize", "no",
        ]  # fmt: skip
        if self.appendonly:
            cmd += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            cmd += ["--appendonly", "no"]
        if self.tls:
            cmd += [
                "--tls-cert-file", str(self.cert), "--tls-key-file", str(self.key),
                "--tls-ca-cert-file", str(self.cert), "--tls-auth-clients", "no",
            ]  # fmt: skip
        return [*cmd, *self.extra]

    def _wait_ready(self, seconds: float = 10.0) -> bool:
        probe = self.client(socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    self.process = None
                    return False
                try:
                    if probe.ping():
                        # loading the AOF answers -LOADING until done; a write proves it is over
                        probe.set("__throwaway_ready__", "1")
                        probe.delete("__throwaway_ready__")
                        return True
                except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                    time.sleep(0.05)
            return False
        finally:
            probe.close()

    def _reap(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def kill9(self) -> None:
        """SIGKILL: the server dies at once, mid-command if it was running one."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def freeze(self) -> None:
        """SIGSTOP: the server holds every connection open and answers nothing."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def restart(self) -> ThrowawayRedis:
        """Kill (if running) and start again on the same port and directory."""
        self.kill9()
        return self.start()

    def stop(self) -> None:
        """Kill whatever is left (thawing it first so that SIGKILL is not queued behind SIGSTOP)."""
        if self.process is not None:
            self.thaw()
        self._reap()

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **{**self.client_kwargs, **kwargs})  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def __enter__(self) -> ThrowawayRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
