"""Run a service's server process detached from K2, with a pid file and a log file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from k2.errors import ConfigurationError, RetryableError

# Servers this process started: kept so they can be reaped when stopped (no zombies, no
# "still running" warnings from a dropped Popen).
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ServerProcess:
    """One long-running server: its pid file and log live in ``run_dir``."""

    name: str
    run_dir: Path

    @property
    def pid_file(self) -> Path:
        """File holding the server's process id while it runs."""
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        """File the server's stdout and stderr go to."""
        return self.run_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The running server's pid, or None when it is not running."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        if _is_zombie(pid):
            return None
        return pid

    def start(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> int:
        """Start the server in its own session unless it already runs; return its pid.

        Args:
            argv: The server's command line.
            env: Variables added to K2's environment.
            cwd: Working directory.
            user: Run as this user (K2 runs as root on CI; PostgreSQL refuses root).
        """
        running = self.pid()
        if running is not None:
            return running
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 - argv is built by K2, never by a user
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
                user=user,
            )
        _children[process.pid] = process
        self.pid_file.write_text(str(process.pid))
        return process.pid

    def stop(self, timeout_s: float = 30.0, sig: signal.Signals = signal.SIGTERM) -> None:
        """Ask the server to stop with ``sig``; kill its process group if it has not within the timeout."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return
        _signal_group(pid, sig)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.pid() is None:
                break
            time.sleep(0.2)
        else:
            _signal_group(pid, signal.SIGKILL)
        child = _children.pop(pid, None)
        if child is not None:
            child.wait()
        self.pid_file.unlink(missing_ok=True)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's log, for error messages."""
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return


def _is_zombie(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[-1].split()[0] == "Z"


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def http_get(url: str, timeout_s: float) -> httpx.Response | None:
    """A local server's answer to ``GET url``, or None when it does not answer."""
    try:
        return httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError:
        return None


def port_holder(port: int) -> str | None:
    """The process listening on TCP ``port`` (pid and command line), when this user can see it."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            listening = fields[3] == "0A"
            if listening and int(fields[1].rsplit(":", 1)[1], 16) == port:
                sockets.add(f"socket:[{fields[9]}]")
    if not sockets:
        return None
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in sockets for fd in (process / "fd").iterdir()):
                command = (process / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                return f"pid {process.name} ({command.strip()[:160]})"
        except OSError:
            continue
    return None


def ensure_free(port: int, service: str, setting: str) -> None:
    """Refuse to start ``service`` when another process holds its ``port``: K2 never adopts a
    service it did not start for this data directory (another checkout's, or another program).

    Raises:
        ConfigurationError: naming the port, the process holding it and the setting that moves it.
    """
    if not port_open(port):
        return
    holder = port_holder(port) or "a process this user cannot see"
    raise ConfigurationError(
        f"{service} of this data directory is not running, and its port {port} is held by {holder}; "
        f"set {setting} to a free port (another checkout's platform needs other ports), or stop that process"
    )


def wait_until(
    check: Callable[[], bool], what: str, timeout_s: float, process: ServerProcess | None = None
) -> None:
    """Poll ``check`` until it is true; raise with the server's log tail when it never is."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if process is not None and process.pid() is None:
            raise ConfigurationError(f"{what}: the server exited; last log lines:\n{process.log_tail()}")
        time.sleep(0.5)
    tail = process.log_tail() if process is not None else ""
    raise RetryableError(f"{what}: not ready after {timeout_s:.0f} s; last log lines:\n{tail}")


def run(
    argv: Sequence[str],
    what: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> str:
    """Run a short command to completion; raise with its output when it fails."""
    result = subprocess.run(  # noqa: S603 - argv is built by K2, never by a user
        list(argv),
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        check=False,
        user=user,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-30:]
        raise ConfigurationError(f"{what} failed (exit {result.returncode}):\n" + "\n".join(output))
    return result.stdout
