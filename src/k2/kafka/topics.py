"""Kafka topic and schema-registry subject names of K2's market data; pure functions, no I/O.

Market data goes to ``{prefix}market.{asset_class}.{trades|quotes}.{exchange}``, one topic per
venue and data type, keyed by symbol (``market.equities.trades.asx``,
``market.crypto.quotes.binance``). Messages no consumer can read go to the venue's dead-letter
topic ``{prefix}market.dlq.{exchange}``. The exchange is lower case in names, whatever case the
rows carry. The prefix (``KafkaSettings.topic_prefix``) separates environments and test runs
sharing a cluster; it is prepended as is, so it usually ends with a dot.

Value schemas are registered under Confluent's TopicNameStrategy subject ``<topic>-value``, so each
topic evolves its schema on its own and any Confluent-compatible client finds it.
"""

from __future__ import annotations

import re
from enum import StrEnum

from k2.domain.events import AssetClass
from k2.errors import InvalidInputError
from k2.schemas.market import QUOTE, TRADE
from k2.schemas.record import Record

#: Longest topic name Kafka accepts.
MAX_TOPIC_LENGTH = 249

_PREFIX = re.compile(r"[A-Za-z0-9._-]*")
_EXCHANGE = re.compile(r"[a-z0-9_-]+")


class DataType(StrEnum):
    """What a market data topic carries, as its name says it."""

    TRADES = "trades"
    QUOTES = "quotes"

    @property
    def record(self) -> Record:
        """The record the topic's messages hold."""
        return TRADE if self is DataType.TRADES else QUOTE

    @classmethod
    def of(cls, record: Record) -> DataType:
        """The data type whose topics hold ``record``.

        Raises:
            InvalidInputError: ``record`` is not streamed through Kafka (reference data).
        """
        for data_type in cls:
            if data_type.record == record:
                return data_type
        raise InvalidInputError(f"{record.name} records have no Kafka topic; only trades and quotes do")


def _exchange(exchange: str) -> str:
    name = exchange.lower()
    if not _EXCHANGE.fullmatch(name):
        raise InvalidInputError(f"exchange {exchange!r} cannot be part of a topic name")
    return name


def _prefix(prefix: str) -> str:
    if not _PREFIX.fullmatch(prefix):
        raise InvalidInputError(f"topic prefix {prefix!r} may hold only letters, digits, '.', '_' and '-'")
    return prefix


def _topic(prefix: str, *parts: str) -> str:
    name = _prefix(prefix) + ".".join(parts)
    if len(name) > MAX_TOPIC_LENGTH:
        raise InvalidInputError(f"topic name {name!r} is longer than Kafka's {MAX_TOPIC_LENGTH} characters")
    return name


def market_topic(asset_class: str, data_type: DataType, exchange: str, prefix: str = "") -> str:
    """The topic of one venue's trades or quotes.

    Args:
        asset_class: an :class:`~k2.domain.events.AssetClass` value, e.g. ``equities``.
        data_type: trades or quotes.
        exchange: venue code in any case, e.g. ``ASX``.
        prefix: prepended to the name as is.

    Returns:
        E.g. ``market.equities.trades.asx``.

    Raises:
        InvalidInputError: an unknown asset class, or an exchange or prefix that cannot be part of a
            topic name.
    """
    try:
        asset = AssetClass(asset_class)
    except ValueError:
        raise InvalidInputError(f"unknown asset class {asset_class!r}") from None
    return _topic(prefix, "market", asset.value, data_type.value, _exchange(exchange))


def dlq_topic(exchange: str, prefix: str = "") -> str:
    """The dead-letter topic of a venue: messages of its topics that cannot be read.

    Raises:
        InvalidInputError: an exchange or prefix that cannot be part of a topic name.
    """
    return _topic(prefix, "market", "dlq", _exchange(exchange))


def market_topic_pattern(prefix: str = "") -> str:
    """A subscription pattern (a librdkafka regex) matching every market data topic under ``prefix``.

    Dead-letter topics do not match. Topics created later are picked up at the consumer's next
    metadata refresh.

    Raises:
        InvalidInputError: a prefix that cannot be part of a topic name.
    """
    escaped = _prefix(prefix).replace(".", "\\.")
    assets = "|".join(a.value for a in AssetClass)
    data_types = "|".join(d.value for d in DataType)
    return f"^{escaped}market\\.({assets})\\.({data_types})\\.[a-z0-9_-]+$"


def parse_market_topic(topic: str, prefix: str = "") -> tuple[AssetClass, DataType, str]:
    """The asset class, data type and exchange a market data topic is named after; the exchange
    in upper case, as rows carry it.

    Raises:
        InvalidInputError: ``topic`` is not a market data topic under ``prefix``.
    """
    parts = topic.removeprefix(prefix).split(".") if topic.startswith(prefix) else []
    if len(parts) == 4 and parts[0] == "market" and _EXCHANGE.fullmatch(parts[3]):
        try:
            return AssetClass(parts[1]), DataType(parts[2]), parts[3].upper()
        except ValueError:
            pass
    raise InvalidInputError(f"{topic!r} is not a market data topic under prefix {prefix!r}")


def value_subject(topic: str) -> str:
    """The registry subject of a topic's value schema (Confluent's TopicNameStrategy)."""
    return f"{topic}-value"
