"""A QuestDB server for the peers benchmark: its jar (fetched once from Maven Central into a cache
directory), and one server process on free loopback ports with its data under
``benchmarks/.data/questdb-<run>``, stopped and removed when the ``with`` block ends.

Every port QuestDB opens (HTTP, HTTP min, PG wire, ILP over TCP) is set in ``conf/server.conf``
to a free port of 127.0.0.1: its defaults (9000, 9003, 8812, 9009) clash with other services of
this machine. Telemetry and ILP over UDP are off; a query may run 10 minutes (the default, one
minute, would cut a whole-table join short).
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from benchmarks.api.serving import HOST
from benchmarks.common import DATA_DIR, BenchmarkError, log
from k2.testing.processes import free_ports

VERSION = "9.3.4"
ARTIFACT = f"org.questdb:questdb:{VERSION}"
CACHE_DIR = Path.home() / ".cache" / "k2" / "bench" / "questdb"
JAR = CACHE_DIR / f"questdb-{VERSION}.jar"
HEAP = ("-Xms1g", "-Xmx4g")
STARTUP_SECONDS = 120.0
STOP_SECONDS = 30.0
FETCH_SECONDS = 600.0


def ensure_jar() -> Path:
    """The QuestDB jar, copied from Maven Central by ``mvn`` into the cache the first time.

    Raises:
        BenchmarkError: when Maven cannot fetch it.
    """
    if JAR.is_file():
        return JAR
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    log(f"fetching {ARTIFACT} from Maven Central into {CACHE_DIR} (once)")
    command = [
        "mvn",
        "-B",
        "-q",
        "dependency:copy",
        f"-Dartifact={ARTIFACT}",
        f"-DoutputDirectory={CACHE_DIR}",
    ]
    try:
        subprocess.run(command, check=True, cwd=CACHE_DIR, timeout=FETCH_SECONDS, capture_output=True)
    except (OSError, subprocess.SubprocessError) as error:
        raise BenchmarkError(f"could not fetch {ARTIFACT} with Maven: {error}") from error
    if not JAR.is_file():
        raise BenchmarkError(f"Maven ran but left no {JAR}")
    return JAR


def java_version() -> str:
    """The first line of ``java -version``."""
    try:
        done = subprocess.run(["java", "-version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.SubprocessError):
        return "java ?"
    return (done.stderr or done.stdout).splitlines()[0].strip()


@dataclass(frozen=True, slots=True)
class Ports:
    """The loopback ports of one server."""

    http: int
    http_min: int
    pg: int
    ilp: int

    @classmethod
    def free(cls) -> Ports:
        """Four distinct ports nobody listens on right now."""
        ports: set[int] = set()
        while len(ports) < 4:
            ports.add(free_ports(1)[0])
        return cls(*sorted(ports))


def server_conf(ports: Ports, copy_root: Path) -> str:
    """``server.conf``: every port on 127.0.0.1, CSV import from ``copy_root``, no telemetry,
    queries up to 10 minutes.
    """
    lines = [
        f"http.bind.to={HOST}:{ports.http}",
        f"http.min.net.bind.to={HOST}:{ports.http_min}",
        f"pg.net.bind.to={HOST}:{ports.pg}",
        f"line.tcp.net.bind.to={HOST}:{ports.ilp}",
        "line.udp.enabled=false",
        "telemetry.enabled=false",
        "query.timeout=10m",
        f"cairo.sql.copy.root={copy_root}",
        f"cairo.sql.copy.work.root={copy_root / 'work'}",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class QuestDB:
    """A running server: where its data and CSV import directory are, and its ports."""

    root: Path
    copy_root: Path
    ports: Ports
    process: subprocess.Popen[bytes]


def _answers(port: int) -> bool:
    connection = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        connection.request("GET", "/exec?" + urlencode({"query": "SELECT 1"}))
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _wait_ready(server: QuestDB, log_file: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = log_file.read_text(errors="replace")[-4000:]
            raise BenchmarkError(f"QuestDB exited with {server.process.returncode}:\n{tail}")
        if _answers(server.ports.http):
            return
        time.sleep(0.5)
    raise BenchmarkError(f"QuestDB did not answer on port {server.ports.http} in {STARTUP_SECONDS:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_SECONDS)


@contextmanager
def questdb(run: str) -> Iterator[QuestDB]:
    """A QuestDB server with its data in ``benchmarks/.data/questdb-<run>``, which is removed
    with the server's log when the block ends (on failure too); the log is kept on failure.
    """
    jar = ensure_jar()
    root = DATA_DIR / f"questdb-{run}"
    copy_root = root / "import"
    (root / "conf").mkdir(parents=True)
    (copy_root / "work").mkdir(parents=True)
    ports = Ports.free()
    (root / "conf" / "server.conf").write_text(server_conf(ports, copy_root))
    log_file = DATA_DIR / f"questdb-{run}.log"
    command = ["java", *HEAP, "-p", str(jar), "-m", "io.questdb/io.questdb.ServerMain", "-d", str(root)]
    env = {**os.environ, "QDB_TELEMETRY_ENABLED": "false"}
    failed = True
    with log_file.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        server = QuestDB(root, copy_root, ports, process)
        _wait_ready(server, log_file)
        yield server
        failed = False
    finally:
        _stop(process)
        shutil.rmtree(root, ignore_errors=True)
        if not failed:
            log_file.unlink(missing_ok=True)
