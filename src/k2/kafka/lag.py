"""Consumer lag as librdkafka's periodic statistics report it."""

from __future__ import annotations

import orjson


def consumer_lags(statistics: str) -> dict[tuple[str, int], int]:
    """Each assigned partition's consumer lag (messages) in a librdkafka statistics document;
    partitions whose lag is not known yet (``-1``) are left out.
    """
    lags: dict[tuple[str, int], int] = {}
    for topic, about in orjson.loads(statistics).get("topics", {}).items():
        for partition, numbers in about.get("partitions", {}).items():
            lag = numbers.get("consumer_lag", -1)
            if int(partition) >= 0 and lag >= 0:
                lags[topic, int(partition)] = lag
    return lags
