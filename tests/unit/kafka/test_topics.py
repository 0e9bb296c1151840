import re

import pytest

from k2.domain.events import AssetClass
from k2.errors import InvalidInputError
from k2.kafka.topics import (
    DataType,
    dlq_topic,
    market_topic,
    market_topic_pattern,
    parse_market_topic,
    value_subject,
)
from k2.schemas import INSTRUMENT, QUOTE, TRADE


@pytest.mark.parametrize(
    ("asset_class", "data_type", "exchange", "prefix", "topic"),
    [
        ("equities", DataType.TRADES, "ASX", "", "market.equities.trades.asx"),
        ("equities", DataType.QUOTES, "asx", "", "market.equities.quotes.asx"),
        ("crypto", DataType.QUOTES, "BINANCE", "", "market.crypto.quotes.binance"),
        ("crypto", DataType.TRADES, "Binance", "test-1a2b.", "test-1a2b.market.crypto.trades.binance"),
    ],
)
def test_market_topic_names(
    asset_class: str, data_type: DataType, exchange: str, prefix: str, topic: str
) -> None:
    """Topics are market.{asset_class}.{trades|quotes}.{exchange in lower case}, after the prefix."""
    assert market_topic(asset_class, data_type, exchange, prefix) == topic


def test_dead_letter_topic_is_one_per_exchange() -> None:
    assert dlq_topic("ASX") == "market.dlq.asx"
    assert dlq_topic("BINANCE", prefix="dev.") == "dev.market.dlq.binance"


def test_subject_follows_the_topic_name_strategy() -> None:
    assert value_subject("market.equities.trades.asx") == "market.equities.trades.asx-value"


def test_data_type_maps_to_and_from_its_record() -> None:
    assert DataType.of(TRADE) is DataType.TRADES
    assert DataType.of(QUOTE) is DataType.QUOTES
    assert DataType.QUOTES.record == QUOTE
    with pytest.raises(InvalidInputError, match="no Kafka topic"):
        DataType.of(INSTRUMENT)


@pytest.mark.parametrize(
    ("asset_class", "exchange", "prefix"),
    [("bonds", "ASX", ""), ("equities", "AS.X", ""), ("equities", "", ""), ("equities", "ASX", "a b.")],
    ids=["unknown-asset-class", "dot-in-exchange", "empty-exchange", "space-in-prefix"],
)
def test_names_kafka_would_refuse_are_invalid_input(asset_class: str, exchange: str, prefix: str) -> None:
    with pytest.raises(InvalidInputError):
        market_topic(asset_class, DataType.TRADES, exchange, prefix)


def test_overlong_names_are_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="249"):
        dlq_topic("x" * 240)


@pytest.mark.parametrize("prefix", ["", "test-1a2b.", "dev_x."])
def test_pattern_matches_market_topics_and_parse_inverts_the_name(prefix: str) -> None:
    """The subscription pattern takes every trades and quotes topic under the prefix, and nothing
    else; parsing a topic gives back what named it, the exchange in upper case as rows carry it.
    """
    pattern = re.compile(market_topic_pattern(prefix))
    for asset_class in AssetClass:
        for data_type in DataType:
            topic = market_topic(asset_class, data_type, "ASX", prefix)
            assert pattern.fullmatch(topic)
            assert parse_market_topic(topic, prefix) == (asset_class, data_type, "ASX")
    for other in (
        dlq_topic("ASX", prefix),
        "market.equities.bars.asx",
        "x" + prefix + "market.crypto.trades.b",
    ):
        assert not pattern.fullmatch(other)
        with pytest.raises(InvalidInputError):
            parse_market_topic(other, prefix)
