"""Topic administration: create the topics K2 writes to when they are missing (their names are
:mod:`k2.kafka.topics`'s).
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.cimpl import NewTopic

from k2.errors import ConfigurationError
from k2.kafka.clients import admin_client
from k2.kafka.errors import KafkaUnavailableError
from k2.resilience.breakers import Dependency
from k2.settings import KafkaSettings

log = structlog.get_logger(__name__)

#: Seconds an admin request (metadata, topic creation) may take.
ADMIN_TIMEOUT_S = 30.0


#: Times a topic creation is tried when the controller it went to did not answer: a broker the
#: metadata still lists may have died (a cluster fences it only after its session times out), and
#: each try asks fresh metadata, so it reaches a live one.
CREATE_ATTEMPTS = 3
#: Seconds one CreateTopics request may wait for the controller.
CREATE_REQUEST_TIMEOUT_S = 15.0
#: What a new try can get past: no answer in time, or a broker that is no longer the controller.
_UNANSWERED = frozenset({KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT, KafkaError.NOT_CONTROLLER})


def ensure_topics(settings: KafkaSettings, partitions: Mapping[str, int]) -> list[str]:
    """Create each topic of ``partitions`` (name → partition count) that does not exist yet, with
    the settings' replication factor and ``min.insync.replicas``; a topic that appears meanwhile is
    fine. A creation the controller did not answer is tried again, up to :data:`CREATE_ATTEMPTS` times.

    Returns:
        The topics created.

    Raises:
        KafkaUnavailableError: Kafka did not answer, or failed in a way worth retrying.
        ConfigurationError: Kafka refused a topic (a bad name, too few brokers).
    """
    created: list[str] = []
    pending = dict(partitions)
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        unanswered = _create_missing(settings, pending, created, last=attempt == CREATE_ATTEMPTS)
        if not unanswered:
            break
        log.warning("topic_create_unanswered", topics=sorted(unanswered), attempt=attempt)
        pending = {name: partitions[name] for name in unanswered}
    return created


def _create_missing(
    settings: KafkaSettings, partitions: Mapping[str, int], created: list[str], *, last: bool
) -> list[str]:
    """One try of :func:`ensure_topics`: the topics it creates are added to ``created``.

    Returns:
        The topics whose creation the controller did not answer (empty on the ``last`` try, which
        raises instead).
    """
    # An admin client of its own each time: topics are set up once per route, and AdminClient has
    # no close(), so a kept one would stay connected for its owner's whole life.
    admin = admin_client(settings, "k2-admin")
    try:
        existing = admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics
    except KafkaException as exc:
        raise KafkaUnavailableError(
            f"Kafka at {settings.bootstrap_servers} did not answer: {exc.args[0]}", Dependency.KAFKA
        ) from exc
    missing = [
        NewTopic(
            name,
            num_partitions=count,
            replication_factor=settings.replication_factor,
            config={"min.insync.replicas": str(settings.min_insync_replicas)},
        )
        for name, count in partitions.items()
        if name not in existing
    ]
    if not missing:
        return []
    unanswered = []
    futures = admin.create_topics(
        missing, operation_timeout=ADMIN_TIMEOUT_S, request_timeout=CREATE_REQUEST_TIMEOUT_S
    )
    for name, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            if error.code() in _UNANSWERED and not last:
                unanswered.append(name)
                continue
            if error.retriable() or error.code() in _UNANSWERED:
                raise KafkaUnavailableError(
                    f"cannot create topic {name}: {error.str()}", Dependency.KAFKA
                ) from exc
            raise ConfigurationError(f"cannot create topic {name}: {error.str()}") from exc
        log.info("topic_created", topic=name, partitions=partitions[name])
        created.append(name)
    return unanswered
