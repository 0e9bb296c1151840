"""Apache Kafka in KRaft mode, run from its Maven Central jars: the streaming pipeline's broker.

One JVM is both broker and controller (``process.roles=broker,controller``) with a single-voter
dynamic metadata quorum, listening on loopback only. ``install`` copies ``kafka_2.13`` and its runtime
dependencies into ``<home>/kafka-<version>/libs`` with Maven (the pom ships with K2); ``start`` formats
the storage on first start and runs ``kafka.Kafka`` directly, without Kafka's shell scripts.
"""

from __future__ import annotations

import base64
import logging
import shutil
import uuid
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from k2.errors import ConfigurationError
from k2.platform.process import ServerProcess, ensure_free, port_open, run, wait_until
from k2.platform.service import Health
from k2.platform.software import installing, scratch_for
from k2.settings import K2Settings

#: Java options of the broker: a modest heap, Kafka's own GC choice.
JVM_OPTIONS = (
    "-Xms256m",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)
#: Seconds a clean shutdown may take before the broker is killed.
STOP_TIMEOUT_S = 60.0
#: Seconds one metadata request may take in a health check.
HEALTH_TIMEOUT_S = 3.0

_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
_LOG4J2 = """\
# Written by K2: WARN and above to stdout, which the platform keeps in kafka.log.
status = error
shutdownHook = disable
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
"""

# librdkafka reports every refused connection while the broker starts; keep that out of K2's output.
_CLIENT_LOG = logging.getLogger("k2.platform.kafka.client")
_CLIENT_LOG.addHandler(logging.NullHandler())
_CLIENT_LOG.propagate = False


def kafka_version() -> str:
    """The Kafka version K2 installs: the ``kafka.version`` property of its packaged pom."""
    pom = resources.files("k2.platform").joinpath("maven", "kafka", "pom.xml")
    root = ET.fromstring(pom.read_text(encoding="utf-8"))  # noqa: S314 - K2's own packaged pom
    version = root.findtext("m:properties/m:kafka.version", namespaces=_POM_NS)
    if not version:
        raise ConfigurationError("the packaged Kafka pom names no kafka.version")
    return version.strip()


def new_cluster_id() -> str:
    """A random KRaft cluster id, in Kafka's form: a UUID as unpadded URL-safe base64."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not cluster_id.startswith("-"):  # Kafka never hands out ids that read as a CLI option
            return cluster_id


class Kafka:
    """One combined broker and controller on loopback, data under ``<platform data>/kafka``."""

    name = "kafka"

    def __init__(self, settings: K2Settings) -> None:
        platform = settings.platform
        self._port = platform.kafka_port
        self._controller_port = platform.kafka_controller_port
        self._timeout = platform.start_timeout_s
        self.version = kafka_version()
        self._home = platform.home
        self._install_dir = platform.home / f"kafka-{self.version}"
        self._root = settings.platform_data / "kafka"
        self._process = ServerProcess("kafka", self._root)

    @property
    def endpoint(self) -> str:
        """The broker's bootstrap address."""
        return f"127.0.0.1:{self._port}"

    @property
    def _libs(self) -> Path:
        return self._install_dir / "libs"

    @property
    def _log_config(self) -> Path:
        return self._install_dir / "log4j2.properties"

    @property
    def _data(self) -> Path:
        return self._root / "data"

    @property
    def _config(self) -> Path:
        return self._root / "server.properties"

    def installed(self) -> bool:
        """Whether Kafka's jars and logging configuration are in place."""
        return (self._libs / f"kafka_2.13-{self.version}.jar").is_file() and self._log_config.is_file()

    def install(self) -> None:
        """Copy Kafka and its runtime dependencies from Maven Central when missing.

        The jars land in a scratch folder that is renamed to ``libs`` only once Maven succeeded, so an
        interrupted install is simply redone.
        """
        if self.installed():
            return
        with installing(self._home, f"kafka-{self.version}"):
            if self.installed():
                return  # another checkout installed it while this one waited
            if not (self._libs / f"kafka_2.13-{self.version}.jar").is_file():
                self._copy_jars()
            self._log_config.write_text(_LOG4J2)

    def _copy_jars(self) -> None:
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ConfigurationError("Maven (mvn) is needed to fetch Kafka's jars from Maven Central")
        self._install_dir.mkdir(parents=True, exist_ok=True)
        scratch = scratch_for(self._libs)
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(self._libs, ignore_errors=True)
        with resources.as_file(resources.files("k2.platform").joinpath("maven", "kafka", "pom.xml")) as pom:
            run(
                [
                    mvn,
                    "-B",
                    "-q",
                    "-f",
                    str(pom),
                    f"-Dkafka.version={self.version}",
                    "dependency:copy-dependencies",
                    "-DincludeScope=runtime",
                    f"-DoutputDirectory={scratch}",
                ],
                f"mvn: fetch Kafka {self.version}",
            )
        scratch.rename(self._libs)

    def _write_config(self) -> None:
        controller = f"127.0.0.1:{self._controller_port}"
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": controller,
            "listeners": f"PLAINTEXT://{self.endpoint},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{self.endpoint},CONTROLLER://{controller}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self._data),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
        }
        self._root.mkdir(parents=True, exist_ok=True)
        lines = [
            "# Written by K2 at every start; edits are overwritten.",
            *(f"{k}={v}" for k, v in properties.items()),
        ]
        self._config.write_text("\n".join(lines) + "\n")

    def _java(self, main_class: str, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise ConfigurationError("Java 17 or newer (java) is needed to run Kafka")
        return [
            java,
            *JVM_OPTIONS,
            "-cp",
            f"{self._libs}/*",
            f"-Dlog4j2.configurationFile={self._log_config}",
            main_class,
            *args,
        ]

    def _format(self) -> None:
        """Format the storage once, for a single-voter dynamic quorum, with the kept cluster id."""
        if (self._data / "meta.properties").is_file():
            return
        id_file = self._root / "cluster.id"
        if not id_file.is_file():
            id_file.write_text(new_cluster_id() + "\n")
        cluster_id = id_file.read_text().strip()
        run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "--ignore-formatted",
                "--cluster-id",
                cluster_id,
                "--config",
                str(self._config),
            ),
            "kafka-storage format",
        )

    def start(self) -> None:
        """Install when missing, format storage on first start, start the broker, and wait for it."""
        self.install()
        if self._process.pid() is None:
            ensure_free(self._port, "Kafka", "K2_PLATFORM_KAFKA_PORT")
            ensure_free(self._controller_port, "Kafka's controller", "K2_PLATFORM_KAFKA_CONTROLLER_PORT")
            self._write_config()
            self._format()
            self._process.start(self._java("kafka.Kafka", str(self._config)), cwd=self._root)
        wait_until(self._ready, "Kafka", self._timeout, self._process)

    def _brokers(self, timeout_s: float) -> int | None:
        """The broker count the cluster's metadata reports, or None when it does not answer."""
        if not port_open(self._port):
            return None
        client = AdminClient({"bootstrap.servers": self.endpoint}, logger=_CLIENT_LOG)
        try:
            metadata = client.list_topics(timeout=timeout_s)
        except KafkaException:
            return None
        return len(metadata.brokers)

    def _ready(self) -> bool:
        return bool(self._brokers(timeout_s=2.0))

    def stop(self) -> None:
        """Stop the broker with SIGTERM (a clean, controlled shutdown); its data stays."""
        self._process.stop(timeout_s=STOP_TIMEOUT_S)

    def health(self) -> Health:
        """Whether the broker runs and answers a metadata request within a few seconds."""
        running = self._process.pid() is not None
        brokers = self._brokers(timeout_s=HEALTH_TIMEOUT_S) if running else None
        healthy = bool(brokers)
        if healthy:
            detail = f"Kafka {self.version}, {brokers} broker(s), KRaft"
        elif running:
            detail = self._process.log_tail(3)
        else:
            detail = "not running"
        return Health(
            name=self.name,
            installed=self.installed(),
            running=running,
            healthy=healthy,
            endpoint=self.endpoint,
            detail=detail,
            version=f"Kafka {self.version}",
        )
