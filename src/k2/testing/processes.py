"""K2's commands as processes of their own, the way a user runs them (``k2 serve``, ``k2 stream
run``, ``k2 stream playback``, ``k2 ingest …``), all on one :class:`~k2.settings.K2Settings`: for
tests and benchmarks of the whole pipeline. Every process is stopped when the block ends.
"""

from __future__ import annotations

import enum
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import orjson
from pydantic import SecretStr
from pydantic_settings import BaseSettings, NoDecode

from k2.settings import K2Settings

#: How long a process may take to stop after SIGTERM before it is killed.
STOP_TIMEOUT_S = 30.0


def environment(settings: K2Settings) -> dict[str, str]:
    """Environment variables under which a ``k2`` process builds ``settings`` again (every field,
    each section under its own prefix; unset optional fields are left out).
    """
    env: dict[str, str] = {}
    for name, value in settings:
        if isinstance(value, BaseSettings):
            prefix = str(value.model_config.get("env_prefix", ""))
            fields = type(value).model_fields
            for field, inner in value:
                if inner is not None:
                    plain = NoDecode in fields[field].metadata  # comma-separated, not JSON
                    env[f"{prefix}{field}".upper()] = _text(inner, plain=plain)
        elif value is not None:
            env[f"K2_{name}".upper()] = _text(value)
    return env


def _text(value: object, *, plain: bool = False) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float | Path):
        return str(value)
    if plain and isinstance(value, list | tuple):
        return ",".join(_text(item) for item in value)
    return orjson.dumps(value, default=str).decode()


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on loopback right now."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class K2Process:
    """One running ``k2`` command, its stderr in a log file."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("ab") as handle:  # the child keeps its own handle
            self.popen = subprocess.Popen(  # noqa: S603 - K2's own command line
                [sys.executable, "-m", "k2.cli.main", *args],
                env=dict(env),
                stdout=handle,
                stderr=handle,
            )

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def running(self) -> bool:
        """Whether the process has not exited yet."""
        return self.popen.poll() is None

    def rss_bytes(self) -> int:
        """The process's resident memory now (0 once it has exited)."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return 0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def wait(self, timeout_s: float) -> int:
        """Wait for the process to exit by itself; its exit code."""
        return self.popen.wait(timeout=timeout_s)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int | None:
        """Send ``sig`` (SIGTERM: the command finishes its work and exits); kill it if it has not
        exited within :data:`STOP_TIMEOUT_S`. Its exit code.
        """
        if self.running():
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=STOP_TIMEOUT_S)
        return self.popen.returncode

    def output(self) -> str:
        """What the process wrote so far."""
        return self.log.read_text(errors="replace")


class Processes:
    """The ``k2`` processes of one run, all on the same settings."""

    def __init__(self, settings: K2Settings, logs: Path, extra_env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self._logs = logs
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("K2_")}
        self.env = {**inherited, **environment(settings), **(extra_env or {})}
        self.started: list[K2Process] = []

    def start(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> K2Process:
        """Start ``k2 <args>`` as ``name`` (its log: ``<logs>/<name>.log``)."""
        self._logs.mkdir(parents=True, exist_ok=True)
        process = K2Process(name, list(args), {**self.env, **(env or {})}, self._logs / f"{name}.log")
        self.started.append(process)
        return process

    def serve(self, name: str = "api", timeout_s: float = 60.0) -> tuple[K2Process, str]:
        """Start ``k2 serve`` on a free port and wait until ``/health`` answers; the process and its URL."""
        (port,) = free_ports(1)
        process = self.start(name, "serve", "--port", str(port))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):  # noqa: S310 - loopback http
                    return process, url
            except OSError:
                if time.monotonic() > deadline or not process.running():
                    raise RuntimeError(f"k2 serve did not come up:\n{process.output()[-2000:]}") from None
                time.sleep(0.2)

    def stop_all(self) -> None:
        """Stop every process still running, last started first."""
        for process in reversed(self.started):
            process.stop()


@contextmanager
def processes(
    settings: K2Settings, logs: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[Processes]:
    """A run of ``k2`` processes on ``settings``; each is stopped when the block ends."""
    run = Processes(settings, logs, extra_env)
    try:
        yield run
    finally:
        run.stop_all()
