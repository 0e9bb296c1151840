"""Apache Kafka in KRaft mode, run from its Maven Central jars: the streaming pipeline's brokers.

Each node is one JVM, both broker and controller (``process.roles=broker,controller``), listening
on loopback only. By default there is one node with a single-voter dynamic metadata quorum, its
files in ``<platform data>/kafka``. With ``K2_PLATFORM_KAFKA_BROKERS=3`` three nodes form a static
quorum of three voters (``controller.quorum.voters``), each with its files in
``<platform data>/kafka/node-<n>``: the cluster keeps its metadata and its partitions' leaders
through the loss of any one node, where a dedicated controller would be a single point of failure
and a fourth JVM. Topics get ``min(3, brokers)`` replicas, Kafka's internal ones too.

``install`` copies ``kafka_2.13`` and its runtime dependencies into ``<home>/kafka-<version>/libs``
with Maven (the pom ships with K2); ``start`` formats each node's storage on first start, records
the node count (a cluster's quorum and replicas are fixed at format time, so another count is refused
on the same data), and runs ``kafka.Kafka`` directly, without Kafka's shell scripts.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
import uuid
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._metadata import ClusterMetadata

from k2.errors import ConfigurationError
from k2.platform.process import ServerProcess, ensure_free, port_open, run, wait_until
from k2.platform.service import Health
from k2.platform.software import installing, scratch_for
from k2.settings import K2Settings

#: Most heap of a node: one node alone, or each of several (three share a 2-core, 24 GB machine).
HEAP_ALONE = "1g"
HEAP_EACH = "512m"
#: Java options of every node but its heap: Kafka's own GC choice.
JVM_OPTIONS = (
    "-Xms256m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)
#: Seconds a clean shutdown may take before a node is killed.
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


class KafkaNode:
    """One node of the platform's Kafka: a broker and a KRaft controller in one JVM."""

    def __init__(self, node_id: int, port: int, controller_port: int, root: Path) -> None:
        self.node_id = node_id
        self.port = port
        self.controller_port = controller_port
        self.root = root
        self.process = ServerProcess("kafka", root)

    @property
    def endpoint(self) -> str:
        """The node's broker address."""
        return f"127.0.0.1:{self.port}"

    @property
    def controller_endpoint(self) -> str:
        """The node's KRaft controller address."""
        return f"127.0.0.1:{self.controller_port}"

    @property
    def data(self) -> Path:
        """The node's log directory: its partitions and the cluster's metadata log."""
        return self.root / "data"

    @property
    def config(self) -> Path:
        """The node's ``server.properties``."""
        return self.root / "server.properties"

    def quorum_leader(self) -> tuple[int, int] | None:
        """The metadata quorum's leader as this node last recorded it, with the leader's epoch
        (Kafka rewrites ``quorum-state`` at each election); None before the first election.
        """
        try:
            state = json.loads((self.data / "__cluster_metadata-0" / "quorum-state").read_text())
        except (FileNotFoundError, ValueError):
            return None
        leader, epoch = state.get("leaderId", -1), state.get("leaderEpoch", -1)
        return (int(leader), int(epoch)) if leader >= 0 else None


@dataclass(frozen=True)
class BrokerState:
    """One node as ``k2 platform status`` shows it."""

    node_id: int
    endpoint: str
    running: bool
    #: Whether the cluster's metadata lists the broker (registered and not fenced).
    in_cluster: bool
    #: Whether the node is the active KRaft controller (the metadata quorum's leader).
    controller: bool


@dataclass(frozen=True)
class ClusterState:
    """The cluster's brokers, its active controller and its partitions' replication."""

    brokers: list[BrokerState]
    controller: int | None
    #: Partitions (K2's and Kafka's internal topics) whose in-sync replicas are fewer than their
    #: replicas; None when no broker answers.
    under_replicated_partitions: int | None
    #: Partitions of every topic; None when no broker answers.
    partitions: int | None


class Kafka:
    """The platform's Kafka: ``K2_PLATFORM_KAFKA_BROKERS`` combined broker and controller nodes
    on loopback, data under ``<platform data>/kafka``.
    """

    name = "kafka"

    def __init__(self, settings: K2Settings) -> None:
        platform = settings.platform
        self._platform = platform
        self._timeout = platform.start_timeout_s
        self.version = kafka_version()
        self._home = platform.home
        self._install_dir = platform.home / f"kafka-{self.version}"
        self._root = settings.platform_data / "kafka"
        alone = platform.kafka_brokers == 1
        #: The nodes, node 1 first; one node alone keeps its files in ``kafka/`` itself.
        self.nodes = [
            KafkaNode(n, port, controller, self._root if alone else self._root / f"node-{n}")
            for n, (port, controller) in enumerate(platform.kafka_ports, start=1)
        ]

    @property
    def endpoint(self) -> str:
        """The brokers' bootstrap addresses, comma-separated."""
        return ",".join(node.endpoint for node in self.nodes)

    @property
    def _libs(self) -> Path:
        return self._install_dir / "libs"

    @property
    def _log_config(self) -> Path:
        return self._install_dir / "log4j2.properties"

    @property
    def _count_file(self) -> Path:
        return self._root / "brokers"

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

    def _recorded_brokers(self) -> int | None:
        """The node count the data was formatted for; None before the first format. Data of a
        single node formatted before K2 recorded counts has ``kafka/data/meta.properties``.
        """
        try:
            return int(self._count_file.read_text().strip())
        except FileNotFoundError:
            return 1 if (self._root / "data" / "meta.properties").is_file() else None

    def _check_brokers(self) -> None:
        """Refuse to run another node count on data formatted for a count.

        Raises:
            ConfigurationError: the data holds a cluster of another size, with what to do.
        """
        recorded, wanted = self._recorded_brokers(), self._platform.kafka_brokers
        if recorded is not None and recorded != wanted:
            raise ConfigurationError(
                f"the Kafka data in {self._root} belongs to a cluster of {recorded} broker(s), and "
                f"K2_PLATFORM_KAFKA_BROKERS is {wanted}: a KRaft quorum and its topics' replicas are "
                f"fixed when the data is formatted. Set K2_PLATFORM_KAFKA_BROKERS={recorded} (k2 platform "
                f"up --brokers {recorded}), or stop the platform and use a new K2_PLATFORM_DATA (or remove "
                f"{self._root}, losing its messages)"
            )

    def _write_config(self, node: KafkaNode) -> None:
        platform = self._platform
        if len(self.nodes) == 1:
            quorum = {"controller.quorum.bootstrap.servers": node.controller_endpoint}
        else:
            voters = ",".join(f"{n.node_id}@{n.controller_endpoint}" for n in self.nodes)
            quorum = {"controller.quorum.voters": voters}
        replicas, insync = str(platform.kafka_replication_factor), str(platform.kafka_min_insync_replicas)
        listeners = f"PLAINTEXT://{node.endpoint},CONTROLLER://{node.controller_endpoint}"
        properties = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            **quorum,
            "listeners": listeners,
            "advertised.listeners": listeners,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(node.data),
            "num.partitions": "1",
            "default.replication.factor": replicas,
            "min.insync.replicas": insync,
            "offsets.topic.replication.factor": replicas,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": insync,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": insync,
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
        }
        node.root.mkdir(parents=True, exist_ok=True)
        lines = [
            "# Written by K2 at every start; edits are overwritten.",
            *(f"{k}={v}" for k, v in properties.items()),
        ]
        node.config.write_text("\n".join(lines) + "\n")

    def _java(self, main_class: str, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise ConfigurationError("Java 17 or newer (java) is needed to run Kafka")
        heap = HEAP_ALONE if len(self.nodes) == 1 else HEAP_EACH
        return [
            java,
            f"-Xmx{heap}",
            *JVM_OPTIONS,
            "-cp",
            f"{self._libs}/*",
            f"-Dlog4j2.configurationFile={self._log_config}",
            main_class,
            *args,
        ]

    def _format(self, node: KafkaNode) -> None:
        """Format a node's storage once, with the cluster's kept id: for a single-voter dynamic
        quorum when alone, for the static quorum of ``controller.quorum.voters`` otherwise.
        """
        if (node.data / "meta.properties").is_file():
            return
        id_file = self._root / "cluster.id"
        if not id_file.is_file():
            self._root.mkdir(parents=True, exist_ok=True)
            id_file.write_text(new_cluster_id() + "\n")
        self._count_file.write_text(f"{len(self.nodes)}\n")
        cluster_id = id_file.read_text().strip()
        standalone = ["--standalone"] if len(self.nodes) == 1 else []
        run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                *standalone,
                "--ignore-formatted",
                "--cluster-id",
                cluster_id,
                "--config",
                str(node.config),
            ),
            f"kafka-storage format (node {node.node_id})",
        )

    def start(self) -> None:
        """Install when missing, format storage on first start, start every node that is not
        running (all of them, or one that stopped), and wait until every broker is in the cluster.

        Raises:
            ConfigurationError: a port is held by another process, the data belongs to a cluster of
                another size, or a node exited.
            RetryableError: the brokers did not all join within the start timeout.
        """
        self.install()
        self._check_brokers()
        stopped = [node for node in self.nodes if node.process.pid() is None]
        for node in stopped:
            step = node.node_id - 1
            suffix = f" (node {node.node_id}: plus {step} x K2_PLATFORM_KAFKA_PORT_STEP)" if step else ""
            ensure_free(node.port, f"Kafka node {node.node_id}", f"K2_PLATFORM_KAFKA_PORT{suffix}")
            ensure_free(
                node.controller_port,
                f"Kafka node {node.node_id}'s controller",
                f"K2_PLATFORM_KAFKA_CONTROLLER_PORT{suffix}",
            )
            self._write_config(node)
            self._format(node)
        for node in stopped:
            node.process.start(self._java("kafka.Kafka", str(node.config)), cwd=node.root)
        wait_until(self._ready, "Kafka", self._timeout)

    def _metadata(self, timeout_s: float) -> ClusterMetadata | None:
        """The cluster's metadata from any running broker, or None when none answers."""
        reachable = [node.endpoint for node in self.nodes if port_open(node.port)]
        if not reachable:
            return None
        client = AdminClient({"bootstrap.servers": ",".join(reachable)}, logger=_CLIENT_LOG)
        try:
            return client.list_topics(timeout=timeout_s)
        except KafkaException:
            return None

    def _ready(self) -> bool:
        """Whether every node's broker is in the cluster.

        Raises:
            ConfigurationError: a node exited (with the end of its log).
        """
        for node in self.nodes:
            if node.process.pid() is None:
                tail = node.process.log_tail()
                raise ConfigurationError(
                    f"Kafka node {node.node_id}: the server exited; last log lines:\n{tail}"
                )
        metadata = self._metadata(timeout_s=2.0)
        return metadata is not None and set(metadata.brokers) >= {node.node_id for node in self.nodes}

    def stop(self) -> None:
        """Stop every node with SIGTERM (a clean, controlled shutdown), all at once, so the last
        ones still have a quorum to leave; their data stays. Nodes of another count left on this
        data are stopped too.
        """
        processes = [ServerProcess("kafka", self._root)]
        processes += [ServerProcess("kafka", folder) for folder in sorted(self._root.glob("node-*"))]
        with ThreadPoolExecutor(max_workers=len(processes)) as pool:
            list(pool.map(lambda process: process.stop(timeout_s=STOP_TIMEOUT_S), processes))

    def cluster(self, timeout_s: float = HEALTH_TIMEOUT_S) -> ClusterState:
        """Each node's state, the active controller and the under-replicated partitions."""
        metadata = self._metadata(timeout_s)
        registered = set(metadata.brokers) if metadata is not None else set()
        running = {node.node_id for node in self.nodes if node.process.pid() is not None}
        # The leader of the highest epoch a running node recorded: a stopped node's file is stale.
        leaders = [
            state for node in self.nodes if node.node_id in running and (state := node.quorum_leader())
        ]
        controller = max(leaders, key=lambda state: state[1])[0] if leaders else None
        brokers = [
            BrokerState(
                node_id=node.node_id,
                endpoint=node.endpoint,
                running=node.node_id in running,
                in_cluster=node.node_id in registered,
                controller=node.node_id == controller,
            )
            for node in self.nodes
        ]
        if metadata is None:
            return ClusterState(brokers, controller, under_replicated_partitions=None, partitions=None)
        partitions = [p for topic in metadata.topics.values() for p in topic.partitions.values()]
        under = sum(1 for p in partitions if len(p.isrs) < len(p.replicas))
        return ClusterState(
            brokers, controller, under_replicated_partitions=under, partitions=len(partitions)
        )

    def health(self) -> Health:
        """Whether every node runs and its broker is in the cluster, within a few seconds."""
        try:
            self._check_brokers()
        except ConfigurationError as error:
            return self._health(running=False, healthy=False, detail=str(error))
        state = self.cluster()
        running = any(b.running for b in state.brokers)
        healthy = all(b.running and b.in_cluster for b in state.brokers)
        if running and state.under_replicated_partitions is not None:
            up = sum(b.in_cluster for b in state.brokers)
            detail = (
                f"Kafka {self.version}, KRaft, {up} of {len(state.brokers)} broker(s) in the cluster, "
                f"controller {state.controller}, {state.under_replicated_partitions} under-replicated "
                "partition(s)"
            )
        elif running:
            detail = next(n for n in self.nodes if n.process.pid() is not None).process.log_tail(3)
        else:
            detail = "not running"
        return self._health(running=running, healthy=healthy, detail=detail)

    def _health(self, *, running: bool, healthy: bool, detail: str) -> Health:
        return Health(
            name=self.name,
            installed=self.installed(),
            running=running,
            healthy=healthy,
            endpoint=self.endpoint,
            detail=detail,
            version=f"Kafka {self.version}",
        )
