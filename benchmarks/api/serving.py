"""A K2 API server in its own process on the loopback interface, and a keep-alive HTTP client.

The server is the ``k2 serve`` script of this environment (or any other command given), on a
free port of 127.0.0.1, with one benchmark key and a rate limit no benchmark reaches. It is
stopped (SIGINT, then SIGKILL after a grace period) when the ``with`` block ends.

:func:`cache_counts` reads the hits and misses of the server's read caches from its ``/metrics``:
the difference around a series says how many of its lookups each cache answered.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

from benchmarks.common import DATA_DIR, REPO_ROOT, BenchmarkError
from benchmarks.picks import SymbolDay
from k2.testing.processes import free_ports

HOST = "127.0.0.1"
KEY = "k2-benchmark-key"
STARTUP_SECONDS = 90.0
STOP_SECONDS = 15.0
REQUEST_TIMEOUT_SECONDS = 300.0
K2_SERVE = [str(Path(sys.executable).with_name("k2")), "serve"]


def server_env(lake: Path, port: int, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without its own K2 settings, plus the server's and ``extra``
    (more K2 settings, e.g. ``K2_QUERY_ROLLUP``).
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("K2_")}
    env.update(
        K2_DATA_DIR=str(lake.resolve()),
        K2_API_HOST=HOST,
        K2_API_PORT=str(port),
        K2_API_WORKERS="1",
        K2_API_KEYS=f"bench:{KEY}",
        K2_API_RATE_LIMIT="100000000/minute",
        K2_OBS_LOG_LEVEL="WARNING",
    )
    env.update(extra or {})
    return env


def iso(instant: datetime) -> str:
    """An instant as the API takes it."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def hour_params(symbol: str, start: datetime, end: datetime, limit: int) -> dict[str, str | int]:
    """The query string of one symbol's first ``limit`` trades in [start, end)."""
    return {"symbol": symbol, "start_time": iso(start), "end_time": iso(end), "limit": limit}


@dataclass(frozen=True, slots=True)
class Reply:
    """A 200 answer: its body and headers (names in lower case)."""

    body: bytes
    headers: dict[str, str]


class Client:
    """One keep-alive connection to the server; every answer must be 200."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_SECONDS)

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def get(self, path: str, params: Mapping[str, str | int] | None = None, *, auth: bool = True) -> Reply:
        """``GET path?params``."""
        url = f"{path}?{urlencode(params)}" if params else path
        return self._request("GET", url, None, auth)

    def post(self, path: str, body: Mapping[str, Any]) -> Reply:
        """``POST path`` with a JSON body."""
        return self._request("POST", path, json.dumps(body).encode(), True)

    def _request(self, method: str, url: str, body: bytes | None, auth: bool) -> Reply:
        headers = {"X-API-Key": KEY} if auth else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                self._connection.request(method, url, body=body, headers=headers)
                response = self._connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closes a keep-alive connection left idle; open a new one once.
                self._connection.close()
                if attempt == 2:
                    raise
                continue
            if response.status != 200:
                raise BenchmarkError(f"{method} {url} answered {response.status}: {data[:1000]!r}")
            return Reply(data, {name.lower(): value for name, value in response.getheaders()})
        raise AssertionError("unreachable")


def _wait_healthy(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkError(f"the API server exited with {process.returncode}:\n{_tail(log)}")
        try:
            with Client(port) as client:
                client.get("/health", auth=False)
            return
        except (OSError, http.client.HTTPException, BenchmarkError):
            time.sleep(0.2)
    raise BenchmarkError(f"the API server did not answer /health in {STARTUP_SECONDS:.0f} s:\n{_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:] if log.is_file() else ""


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_SECONDS)


@dataclass(frozen=True, slots=True)
class Server:
    """A running server: its process, port and log file."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path


@contextmanager
def serve(
    lake: Path, name: str, command: list[str] | None = None, env: Mapping[str, str] | None = None
) -> Iterator[Server]:
    """Run ``command`` (``k2 serve`` by default) over ``lake`` until the block ends, with the
    K2 settings ``env`` added to its environment.

    Its output goes to ``benchmarks/.data/api-<name>.log``.

    Raises:
        BenchmarkError: when the server exits or does not answer ``/health`` in time.
    """
    (port,) = free_ports(1)
    log = DATA_DIR / f"api-{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command or K2_SERVE,
            cwd=REPO_ROOT,
            env=server_env(lake, port, env),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(process, port, log)
        yield Server(process, port, log)
    finally:
        _stop(process)


# The `cache` labels of the API's answer cache and of its engine's decoded row groups
# (k2.api.answers.CACHE, k2.api.app.ROW_GROUPS).
ANSWERS = "answers"
ROW_GROUPS = "row_groups"
_SAMPLE = re.compile(r'^k2_query_cache_(hits|misses)_total\{cache="([^"]+)"\} (\S+)$', re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Lookups:
    """Look-ups of one cache: how many it answered (hits) and how many it did not."""

    hits: int = 0
    misses: int = 0

    @property
    def total(self) -> int:
        """Every look-up."""
        return self.hits + self.misses

    def __sub__(self, earlier: Lookups) -> Lookups:
        return Lookups(self.hits - earlier.hits, self.misses - earlier.misses)

    def __add__(self, other: Lookups) -> Lookups:
        return Lookups(self.hits + other.hits, self.misses + other.misses)

    def __str__(self) -> str:
        if not self.total:
            return "no look-ups"
        return f"{self.hits:,} hits of {self.total:,} ({self.hits / self.total:.0%})"


@dataclass(frozen=True, slots=True)
class CacheCounts:
    """The look-ups of each of a server's read caches so far, by cache name."""

    caches: dict[str, Lookups] = field(default_factory=dict)

    def __getitem__(self, cache: str) -> Lookups:
        return self.caches.get(cache, Lookups())

    def __sub__(self, earlier: CacheCounts) -> CacheCounts:
        return CacheCounts({name: self[name] - earlier[name] for name in self.caches})


def cache_counts(client: Client) -> CacheCounts:
    """The server's cache hits and misses so far (``k2_query_cache_{hits,misses}_total``)."""
    text = client.get("/metrics", auth=False).body.decode()
    found: dict[str, dict[str, int]] = {}
    for kind, cache, value in _SAMPLE.findall(text):
        found.setdefault(cache, {})[kind] = int(float(value))
    return CacheCounts(
        {cache: Lookups(kinds.get("hits", 0), kinds.get("misses", 0)) for cache, kinds in found.items()}
    )


def warm_row_groups(client: Client, days: Sequence[SymbolDay]) -> None:
    """Have the server decode every column of each symbol-day's row groups (``limit=1`` of each
    day), as the peers hold their tables in memory once loaded; its answer cache stays empty of
    the benchmark's requests.
    """
    for d in days:
        client.get("/v1/trades", hour_params(d.symbol, d.start, d.end, 1))
